/**
 * Help texts: --help-all (every option with its flag, env var, reference spellings and default),
 * and what --help, which cac renders, says about each option.
 */
import { CONFIG_FILE_NAME } from '../paths.ts';
import { DEFAULTS, optionTable, type OptionSpec, type OptionType } from './options.ts';

const PLACEHOLDER: Record<OptionType, string> = {
  string: ' <text>',
  int: ' <int>',
  bool: ' [true|false]',
  loglevel: ' <level>',
  list: ' <a,b,...>',
};

/** Shown default of an option in help texts. */
export function shownDefault(spec: OptionSpec): string {
  return spec.key === 'authToken' ? '(generated)' : JSON.stringify(DEFAULTS[spec.key]);
}

/** Lays out rows of cells (a cell may have several lines) in aligned columns; the last column is not padded. */
function table(rows: string[][][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, c) => (widths[c] = Math.max(widths[c] ?? 0, ...cell.map((l) => l.length))));
  const out: string[] = [];
  for (const row of rows) {
    const height = Math.max(...row.map((cell) => cell.length));
    for (let l = 0; l < height; l++) {
      const parts = row.map((cell, c) => (c === row.length - 1 ? (cell[l] ?? '') : (cell[l] ?? '').padEnd(widths[c])));
      out.push(`  ${parts.join('  ')}`.trimEnd());
    }
  }
  return out.join('\n');
}

/**
 * The --help-all text: every option with its flag, env var, reference spelling(s), default and help,
 * then the other flags and where config files are read from (`searchPath` when given, else the rule).
 */
export function helpAllText(searchPath?: readonly string[]): string {
  const header = [['Flag'], ['Env var'], ['Default'], ['Reference spelling(s)'], ['Meaning']];
  const rows = optionTable.map((spec) => [
    [spec.flag + PLACEHOLDER[spec.type]],
    [spec.env ?? '-'],
    [shownDefault(spec)],
    spec.classes.map((c) => `--${c}.${spec.trait}`),
    [spec.help],
  ]);
  const flags = [
    [['--config <file>'], ['JSON config file to read instead of the search path (also KG_CONFIG_FILE, --KernelGatewayApp.config_file)']],
    [['--generate-config'], [`Write every option with its default to ${CONFIG_FILE_NAME} in $JUPYTER_CONFIG_DIR (else ~/.jupyter),`, 'or to the --config file, and exit']],
    [['-y, --yes'], ['With --generate-config: overwrite an existing file without asking']],
    [['-h, --help'], ['Short help']],
    [['--help-all'], ['This list']],
    [['-v, --version'], ['Version']],
  ];
  const where = searchPath
    ? searchPath.map((d) => `    ${d}`)
    : [
        '    each $JUPYTER_CONFIG_PATH entry, $JUPYTER_CONFIG_DIR (else ~/.jupyter), {prefix}/etc/jupyter',
        '    (prefix: $KG_ENV_PREFIX, $VIRTUAL_ENV or $CONDA_PREFIX), /usr/local/etc/jupyter, /etc/jupyter',
      ];
  return [
    'Usage: kernelgateway [options]',
    '',
    'Options (command line > config file > KG_* variable > default; given twice, the last one wins):',
    '',
    table([header, ...rows]),
    '',
    'Booleans: a flag alone means true; true/false, yes/no, 1/0. Lists: comma-separated names.',
    `Config file (JSON, traitlets' shape, // comment lines allowed), e.g.:`,
    '  {"KernelGatewayApp": {"port": 9000}, "JupyterWebsocketPersonality": {"list_kernels": true},',
    '   "MappingKernelManager": {"cull_idle_timeout": 600}}',
    `Without --config, ${CONFIG_FILE_NAME} is read from each of these directories, the earlier ones winning:`,
    ...where,
    '',
    'Other flags:',
    '',
    table(flags),
    '',
  ].join('\n');
}
