/** The benchmark's tables: one row per workload, direct ZeroMQ beside the gateway in both protocols, with ratios. */

export type Cell = number | string | undefined;
export interface Row {
  label: string;
  direct: Cell;
  v1: Cell;
  json: Cell;
  digits: number;
  /** Ratios make no sense for counts. */
  ratio?: boolean;
}

export function format(cell: Cell, digits: number): string {
  if (cell === undefined) return '-';
  if (typeof cell === 'string') return cell;
  return cell.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function ratio(gateway: Cell, direct: Cell): string {
  return typeof gateway === 'number' && typeof direct === 'number' && direct > 0 ? `${(gateway / direct).toFixed(2)}x` : '-';
}

/** Prints `rows`; `columns` names the two columns beside direct (the gateway's protocols unless said). */
export function printTable(rows: Row[], columns = { v1: 'gateway v1', json: 'gateway json' }): void {
  const short = (title: string) => title.replace(/^gateway /, '').split(' ')[0];
  const header = ['workload', 'direct', columns.v1, columns.json, `ratio ${short(columns.v1)}`, `ratio ${short(columns.json)}`];
  const lines = rows.map((row) => [
    row.label,
    format(row.direct, row.digits),
    format(row.v1, row.digits),
    format(row.json, row.digits),
    row.ratio === false ? '-' : ratio(row.v1, row.direct),
    row.ratio === false ? '-' : ratio(row.json, row.direct),
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i].length)));
  const render = (cells: string[]) => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(' | ');
  console.log(render(header));
  console.log(widths.map((width) => '-'.repeat(width)).join('-|-'));
  for (const line of lines) console.log(render(line));
}

