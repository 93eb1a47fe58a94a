/**
 * The command line (without node and script): which options it sets, with which raw values and
 * spellings, and the app flags (--config, --generate-config, -y, --help-all).
 */
import { ConfigError, lookupFlag, lookupTrait, otherSpellings, OWN_CLASSES, unknownTraitMessage, type OptionSpec } from './options.ts';
import { parseBool } from './values.ts';

/** A raw value and the spelling it came with, for messages ("--port", "KG_PORT", "<file>: KernelGatewayApp.port"). */
export interface Given {
  raw: string;
  source: string;
}

/** What the command line says, before config files and the environment are consulted. */
export interface CommandLine {
  /** The raw command-line value of each option given (the last one given wins). */
  values: Map<OptionSpec, Given>;
  /** `--config FILE` / `--KernelGatewayApp.config_file=FILE`. */
  configFile?: Given;
  /** `--generate-config`: write a config file with every default, then exit. */
  generateConfig: boolean;
  /** `-y` / `--yes`: answer yes (overwrite an existing file with --generate-config). */
  answerYes: boolean;
  /** `--help-all`: print every option, then exit. */
  helpAll: boolean;
  /** Arguments that are no gateway option at all. */
  errors: string[];
}

/** Command-line words that are not options of the table. */
type AppFlag = 'configFile' | 'generateConfig' | 'answerYes' | 'helpAll';
const APP_FLAGS: Record<string, AppFlag> = {
  config: 'configFile',
  'KernelGatewayApp.config_file': 'configFile',
  'generate-config': 'generateConfig',
  'KernelGatewayApp.generate_config': 'generateConfig',
  yes: 'answerYes',
  y: 'answerYes',
  'KernelGatewayApp.answer_yes': 'answerYes',
  'help-all': 'helpAll',
};
/**
 * Reads the command line (without node and script): `--port 9`, `--port=9`, `--KernelGatewayApp.port=9`
 * are the same option and the last one given wins. Throws ConfigError for an option without its value
 * and for an unknown `--KernelGatewayApp.x`; values are checked later, by resolveConfig.
 */
export function parseCommandLine(argv: string[]): CommandLine {
  const cmd: CommandLine = { values: new Map(), generateConfig: false, answerYes: false, helpAll: false, errors: [] };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      for (const rest of argv.slice(i + 1)) cmd.errors.push(`unexpected argument "${rest}"`);
      break;
    }
    if (arg === '-y') {
      cmd.answerYes = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      cmd.errors.push(arg.startsWith('-') ? `unknown option ${arg}` : `unexpected argument "${arg}"`);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const source = `--${name}`;
    let raw = eq < 0 ? undefined : arg.slice(eq + 1);
    const next = argv[i + 1];
    // A following word counts as the value unless it looks like the next option.
    const nextIsValue = next !== undefined && !next.startsWith('--');

    const appFlag = APP_FLAGS[name];
    if (appFlag === 'configFile') {
      if (raw === undefined && nextIsValue) raw = argv[++i];
      if (raw === undefined || raw === '') {
        throw new ConfigError(`${source}: needs a file name (also --config, --KernelGatewayApp.config_file, KG_CONFIG_FILE)`);
      }
      cmd.configFile = { raw, source };
      continue;
    }
    if (appFlag) {
      // Plain switches: `--generate-config`, or `--generate-config=false`; a following word is not theirs.
      const on = raw === undefined ? true : parseBool(raw);
      if (on === undefined) throw new ConfigError(`${source}: ${JSON.stringify(raw)} is not a boolean; expected true/false`);
      cmd[appFlag] = on;
      continue;
    }

    const dot = name.indexOf('.');
    const spec = dot >= 0 ? lookupTrait(name.slice(0, dot), name.slice(dot + 1)) : lookupFlag(name);
    if (!spec) {
      const cls = dot >= 0 ? name.slice(0, dot) : '';
      if (OWN_CLASSES.includes(cls)) throw new ConfigError(unknownTraitMessage(source, cls, name.slice(dot + 1)));
      cmd.errors.push(`unknown option ${source}`);
      if (raw === undefined && nextIsValue) i++; // skip its value so it is not reported twice
      continue;
    }
    if (raw === undefined) {
      if (spec.type === 'bool') {
        // `--list-kernels` alone means true; `--list-kernels false` takes the word only if it is a boolean.
        if (nextIsValue && parseBool(next) !== undefined) raw = argv[++i];
        else raw = 'true';
      } else if (nextIsValue) {
        raw = argv[++i];
      } else {
        throw new ConfigError(`${source}: needs a value (${otherSpellings(spec, source)})`);
      }
    }
    cmd.values.set(spec, { raw, source });
  }
  return cmd;
}
