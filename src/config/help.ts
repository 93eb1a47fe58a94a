/**
 * Help texts: how each option is written in a usage line, what --help (rendered by cac) says about
 * it, and --help-all: every option with its flag, env var, reference spellings and default.
 */
import { CONFIG_FILE_NAME } from '../paths.ts';
import { appFlags, DEFAULTS, optionTable, type AppFlag, type OptionSpec, type OptionType } from './options.ts';

const PLACEHOLDER: Record<OptionType, string> = {
  string: ' <text>',
  int: ' <int>',
  bool: ' [true|false]',
  loglevel: ' <level>',
  list: ' <a,b,...>',
  map: ' <json>',
};

/** "--port <int>", "--list-kernels [true|false]": an option as usage lines write it. */
export function optionUsage(spec: OptionSpec): string {
  return spec.flag + PLACEHOLDER[spec.type];
}

/** "--config <file>", "-y, --yes [true|false]": an app flag as usage lines write it. */
export function appFlagUsage(flag: AppFlag): string {
  return `${flag.short ? `${flag.short}, ` : ''}${flag.flag}${flag.takes === 'file' ? ' <file>' : PLACEHOLDER.bool}`;
}

/** Shown default of an option in help texts. */
export function shownDefault(spec: OptionSpec): string {
  return spec.key === 'authToken' ? '(generated)' : JSON.stringify(DEFAULTS[spec.key]);
}

/** An option's line in --help: its meaning, env var and default. */
export function optionDescription(spec: OptionSpec): string {
  const env = spec.env ? `env ${spec.env}, ` : '';
  // Defaults go into the text ourselves: cac would print `(default: )` for empty strings.
  return `${spec.help} [${env}default ${shownDefault(spec)}]`;
}

/** What --help adds after cac's option list. */
export const HELP_FOOTER = {
  title: 'Reference spellings',
  body:
    '  Every option can also be given as --KernelGatewayApp.<name>=<value>, e.g. --KernelGatewayApp.port=9000;\n' +
    '  also --JupyterWebsocketPersonality.list_kernels/env_whitelist, --MappingKernelManager.cull_*, and others\n' +
    '  (see --help-all). Precedence: command line > config file > KG_* variables > defaults;\n' +
    '  when an option is given twice, the last one wins.',
};

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
    [optionUsage(spec)],
    [spec.env ?? '-'],
    [shownDefault(spec)],
    spec.classes.map((c) => `--${c}.${spec.trait}`),
    [spec.help],
  ]);
  const flags = [
    ...appFlags.map((f) => [[appFlagUsage(f)], [f.trait ? `${f.help}; also --KernelGatewayApp.${f.trait}` : f.help]]),
    [['-h, --help'], ['Short help']],
    [['-v, --version'], ['Version']],
  ];
  const where = searchPath
    ? searchPath.map((d) => `    ${d}`)
    : [
        '    each $JUPYTER_CONFIG_PATH entry, $JUPYTER_CONFIG_DIR (else ~/.jupyter), {prefix}/etc/jupyter',
        '    (prefix: $KG_ENV_PREFIX, $VIRTUAL_ENV or $CONDA_PREFIX), /usr/local/etc/jupyter, /etc/jupyter',
      ];
  return [
    'Usage: kernelgateway [serve] [options]',
    '       kernelgateway kernel -f <connection_file>   (the built-in JavaScript kernel)',
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
