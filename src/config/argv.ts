/**
 * The command line, parsed by cac: `kernelgateway [serve] [options]` (serve, the gateway, is the
 * default command), `kernelgateway kernel -f <connection_file>` (the built-in JavaScript kernel) and
 * `kernelgateway launch` (the launcher a Slurm job runs; it takes its input from its environment).
 *
 * cac (through mri) cannot take the arguments as typed (the README's Options section says why), so
 * each word is first rewritten on its own, without looking at its neighbours:
 *  - an option word, in any spelling (`--port_retries`, `--KernelGatewayApp.port_retries`, `-y`),
 *    becomes the option's one long name, so that its repeats reach cac as one key, in order, and the
 *    last one wins; the spelling is kept for messages;
 *  - every other word, and the `=value` of an option word, is wrapped as NUL <index> NUL <text>:
 *    mri hands it back as typed (no "007" → 7, "" → 0, "-1" read as a flag), and the index says
 *    where it stood, for messages in command-line order and for hiding the token.
 * cac then pairs each option with its value, collects repeats, finds the command and renders --help
 * and --version.
 */
import { cac, type CAC, type Command } from 'cac';
import { VERSION } from '../version.ts';
import { appFlagUsage, HELP_FOOTER, optionDescription, optionUsage } from './help.ts';
import {
  appFlags,
  ConfigError,
  lookupFlag,
  lookupTrait,
  optionTable,
  otherSpellings,
  OWN_CLASSES,
  unknownTraitMessage,
  type AppFlag,
  type OptionSpec,
} from './options.ts';
import { parseBool } from './values.ts';

/** A raw value and the spelling it came with, for messages ("--port", "KG_PORT", "<file>: KernelGatewayApp.port"). */
export interface Given {
  raw: string;
  source: string;
}

/** Where a value stood on the command line: argv[index], whole or (inline) after the `=` of its option's word. */
export interface ArgPlace {
  index: number;
  inline: boolean;
}

/** What the command line says, before config files and the environment are consulted. */
export interface CommandLine {
  /** `serve` (the default: run the gateway), `kernel` (the built-in JavaScript kernel) or `launch` (a Slurm job's launcher). */
  command: CommandName;
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
  /** `-h` / `--help`, `-v` / `--version`: print, then exit. */
  help: boolean;
  version: boolean;
  /** `kernel -f <file>` (also `--f`, `--connection-file`, `=file`): the kernel's connection file. */
  connectionFile?: string;
  /** Where the auth token's values stand on the command line, to hide them from the process list. */
  tokenPlaces: ArgPlace[];
  /** Arguments that are no gateway option at all, in command-line order. */
  errors: string[];
  /** Prints the --help of the command given (cac renders it). */
  printHelp(): void;
  /** Prints `kernelgateway/<version> <platform> <runtime>`. */
  printVersion(): void;
}

/** What a spelling on the command line names. */
type Target =
  | { kind: 'option'; spec: OptionSpec }
  | { kind: 'app'; flag: AppFlag }
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'connectionFile' };

const HELP: Target = { kind: 'help' };
const VERSION_FLAG: Target = { kind: 'version' };
const CONNECTION_FILE: Target = { kind: 'connectionFile' };

/** The long name (without `--`) cac knows a target by. */
function longName(target: Target): string {
  switch (target.kind) {
    case 'option':
      return target.spec.flag.slice(2);
    case 'app':
      return target.flag.flag.slice(2);
    case 'help':
      return 'help';
    case 'version':
      return 'version';
    case 'connectionFile':
      return 'connection-file';
  }
}

/** A name as given (without its dashes and `=value`) → what it names, for one command. */
type Spellings = (name: string, dashes: 1 | 2) => Target | undefined;

const serveSpellings: Spellings = (name, dashes) => {
  if (dashes === 1) {
    if (name === 'h') return HELP;
    if (name === 'v') return VERSION_FLAG;
    const flag = appFlags.find((f) => f.short === `-${name}`);
    return flag && { kind: 'app', flag };
  }
  if (name === 'help') return HELP;
  if (name === 'version') return VERSION_FLAG;
  const flag = appFlags.find((f) => f.flag === `--${name}` || (f.trait !== undefined && name === `KernelGatewayApp.${f.trait}`));
  if (flag) return { kind: 'app', flag };
  const dot = name.indexOf('.');
  const spec = dot >= 0 ? lookupTrait(name.slice(0, dot), name.slice(dot + 1)) : lookupFlag(name);
  return spec && { kind: 'option', spec };
};

const kernelSpellings: Spellings = (name, dashes) => {
  if (name === 'f' || (dashes === 2 && name === 'connection-file')) return CONNECTION_FILE;
  if ((dashes === 1 && name === 'h') || (dashes === 2 && name === 'help')) return HELP;
  return undefined;
};

const launchSpellings: Spellings = (name, dashes) =>
  (dashes === 1 && name === 'h') || (dashes === 2 && name === 'help') ? HELP : undefined;

const COMMANDS = ['serve', 'kernel', 'launch'] as const;
type CommandName = (typeof COMMANDS)[number];
const SPELLINGS: Record<CommandName, Spellings> = { serve: serveSpellings, kernel: kernelSpellings, launch: launchSpellings };

// ---------------------------------------------------------------------------------------------
// The rewrite before cac
// ---------------------------------------------------------------------------------------------

/** NUL cannot occur in a real argument (the OS passes C strings), so a wrapped word is never mistaken. */
const MARK = '\0';

/** A word of the command line and where it stood. */
interface Word {
  index: number;
  text: string;
}

function wrap(index: number, text: string): string {
  return `${MARK}${index}${MARK}${text}`;
}

/** A wrapped word as cac hands it back; undefined for anything else (`true`: the option had no value). */
function unwrap(value: unknown): Word | undefined {
  if (typeof value !== 'string' || !value.startsWith(MARK)) return undefined;
  const end = value.indexOf(MARK, 1);
  return { index: Number(value.slice(1, end)), text: value.slice(end + 1) };
}

/** One option word: what it names, how it was spelled (`--KernelGatewayApp.port`), where it stood. */
interface Occurrence {
  target: Target;
  spelling: string;
  index: number;
}

interface Rewritten {
  /** The arguments as cac gets them. */
  words: string[];
  occurrences: Occurrence[];
  /** Option words that name nothing (`--frobnicate`). */
  unknown: Word[];
  /** `--KernelGatewayApp.<unknown>`: surely a mistyped option, which stops start-up. */
  refused: { index: number; message: string }[];
}

function rewrite(argv: readonly string[], spellings: Spellings): Rewritten {
  const out: Rewritten = { words: [], occurrences: [], unknown: [], refused: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      out.words.push('--', ...argv.slice(i + 1).map((rest, k) => wrap(i + 1 + k, rest)));
      break;
    }
    // The command's name is the only word cac has to see bare (and only first).
    if (i === 0 && (COMMANDS as readonly string[]).includes(arg)) {
      out.words.push(arg);
      continue;
    }
    const dashes = arg.startsWith('--') ? 2 : arg.length > 1 && arg.startsWith('-') ? 1 : 0;
    if (dashes === 0) {
      out.words.push(wrap(i, arg));
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(dashes, eq < 0 ? undefined : eq);
    const inlineValue = eq < 0 ? '' : `=${wrap(i, arg.slice(eq + 1))}`;
    const target = spellings(name, dashes);
    if (target) {
      out.occurrences.push({ target, spelling: `${'-'.repeat(dashes)}${name}`, index: i });
      out.words.push(`--${longName(target)}${inlineValue}`);
    } else if (dashes === 2) {
      const dot = name.indexOf('.');
      const cls = dot >= 0 ? name.slice(0, dot) : '';
      if (OWN_CLASSES.includes(cls)) out.refused.push({ index: i, message: unknownTraitMessage(`--${name}`, cls, name.slice(dot + 1)) });
      else out.unknown.push({ index: i, text: `--${name}` });
      // Still an option to cac, under a name no spelling reaches, so that it takes its value along.
      out.words.push(`--${MARK}${i}${inlineValue}`);
    } else {
      // `-x`, or a value such as `-1`: a plain word, the value of the option before it if that takes one.
      out.words.push(wrap(i, arg));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The cac program
// ---------------------------------------------------------------------------------------------

/** The `kernelgateway` program for cac, and the key under which cac reports each long name. */
function program(): { cli: CAC; keys: Map<string, string> } {
  const cli = cac('kernelgateway');
  const keys = new Map<string, string>();
  const declare = (command: Command, usage: string, description: string, target: Target) => {
    command.option(usage, description);
    keys.set(longName(target), command.options[command.options.length - 1].name);
  };

  const serve = cli.command('serve', 'Run the gateway (the default command)').alias('!').usage('[serve] [options]');
  for (const spec of optionTable) declare(serve, optionUsage(spec), optionDescription(spec), { kind: 'option', spec });
  for (const flag of appFlags) declare(serve, appFlagUsage(flag), flag.help, { kind: 'app', flag });

  const kernel = cli.command('kernel', 'Run the built-in JavaScript kernel, as its kernelspec does').usage('kernel -f <connection_file>');
  declare(kernel, '-f, --connection-file <file>', 'The connection file the gateway wrote for this kernel', CONNECTION_FILE);

  cli
    .command('launch', 'Run the launcher of a kernel in a Slurm job (the gateway submits it; input comes from the environment)')
    .usage('launch');

  cli.help((sections) => (cli.matchedCommandName === 'kernel' || cli.matchedCommandName === 'launch' ? sections : [...sections, HELP_FOOTER]));
  cli.version(VERSION);
  // Printed when the caller asks (printHelp, printVersion), not while parsing.
  cli.showHelpOnExit = false;
  cli.showVersionOnExit = false;
  return { cli, keys };
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/**
 * A boolean's raw text: 'true' when given alone; its `=value`; a following word only when that is a
 * boolean word (`--list-kernels false`), else that word is left as a stray argument.
 */
function booleanText(word: Word | undefined, at: number, strays: Word[]): string {
  if (!word) return 'true';
  if (word.index === at || parseBool(word.text) !== undefined) return word.text;
  strays.push(word);
  return 'true';
}

/**
 * Reads the command line (without node and script). `--port 9`, `--port=9`, `--KernelGatewayApp.port=9`
 * are the same option and the last one given wins. Throws ConfigError for an option without its value,
 * a bad switch value and an unknown `--KernelGatewayApp.x` (the leftmost problem), unless help or the
 * version is asked for; values are checked later, by resolveConfig.
 */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  const command: CommandName = argv[0] === 'kernel' || argv[0] === 'launch' ? argv[0] : 'serve';
  const rewritten = rewrite(argv, SPELLINGS[command]);
  const { cli, keys } = program();
  const parsed = cli.parse(['node', 'kernelgateway', ...rewritten.words], { run: false });
  const options = parsed.options as Record<string, unknown>;

  const cmd: CommandLine = {
    command,
    values: new Map(),
    generateConfig: false,
    answerYes: false,
    helpAll: false,
    help: options.help === true,
    version: options.version === true,
    tokenPlaces: [],
    errors: [],
    printHelp: () => cli.outputHelp(),
    printVersion: () => cli.outputVersion(),
  };
  const problems = [...rewritten.refused];
  const strays: Word[] = parsed.args.flatMap((arg) => unwrap(arg) ?? []);

  // cac gives each long name's values in command-line order, one per occurrence.
  const pending = new Map<string, unknown[]>();
  for (const occ of rewritten.occurrences) {
    const name = longName(occ.target);
    if (!pending.has(name)) pending.set(name, [options[keys.get(name) ?? name]].flat());
    const word = unwrap(pending.get(name)!.shift());
    const problem = (message: string) => problems.push({ index: occ.index, message });
    const target = occ.target;
    switch (target.kind) {
      case 'option': {
        const { spec } = target;
        if (spec.type === 'bool') {
          cmd.values.set(spec, { raw: booleanText(word, occ.index, strays), source: occ.spelling });
        } else if (!word) {
          problem(`${occ.spelling}: needs a value (${otherSpellings(spec, occ.spelling)})`);
        } else {
          cmd.values.set(spec, { raw: word.text, source: occ.spelling });
          if (spec.key === 'authToken' && word.text !== '') cmd.tokenPlaces.push({ index: word.index, inline: word.index === occ.index });
        }
        break;
      }
      case 'app': {
        const { flag } = target;
        if (flag.takes === 'file') {
          if (word && word.text !== '') cmd.configFile = { raw: word.text, source: occ.spelling };
          else problem(`${occ.spelling}: needs a file name (also --config, --KernelGatewayApp.config_file, KG_CONFIG_FILE)`);
        } else {
          const raw = booleanText(word, occ.index, strays);
          const on = parseBool(raw);
          if (on === undefined) problem(`${occ.spelling}: ${JSON.stringify(raw)} is not a boolean; expected true/false`);
          else cmd[flag.key] = on;
        }
        break;
      }
      case 'connectionFile':
        if (word) cmd.connectionFile = word.text;
        break;
      case 'help':
      case 'version':
        break; // cac knows them by their own names (options.help, options.version)
    }
  }

  const rest = [options['--']].flat().flatMap((arg) => unwrap(arg) ?? []);
  const errors = [
    ...rewritten.unknown.map((w) => ({ index: w.index, message: `unknown option ${w.text}` })),
    ...strays.map((w) => ({ index: w.index, message: w.text.startsWith('-') ? `unknown option ${w.text}` : `unexpected argument "${w.text}"` })),
    ...rest.map((w) => ({ index: w.index, message: `unexpected argument "${w.text}"` })),
  ];
  cmd.errors = errors.sort((a, b) => a.index - b.index).map((e) => e.message);

  if (command === 'serve' && problems.length > 0 && !cmd.help && !cmd.version && !cmd.helpAll) {
    throw new ConfigError(problems.sort((a, b) => a.index - b.index)[0].message);
  }
  return cmd;
}
