/**
 * The names of the two cell parsers, as options spell them. Apart from the parsers themselves so that
 * reading the configuration does not load them.
 */
export type CellParserName = 'annotations' | 'swagger';

/** Accepted names of each parser: ours and the reference's module names. */
const PARSER_NAMES: Record<string, CellParserName> = {
  annotations: 'annotations',
  'kernel_gateway.notebook_http.cell.parser': 'annotations',
  swagger: 'swagger',
  'kernel_gateway.notebook_http.swagger.parser': 'swagger',
};

/** The parser an option value names, or undefined (the caller reports the accepted names). */
export function cellParserByName(name: string): CellParserName | undefined {
  return PARSER_NAMES[name.trim()];
}
export const CELL_PARSER_NAMES: readonly string[] = Object.keys(PARSER_NAMES);
