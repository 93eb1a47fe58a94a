/**
 * Config files: finding kernelgateway_config.json in the Jupyter config path, reading one, and
 * parsing its text (traitlets' JSON shape with whole-line `//` comments) into checked option values.
 */
import { readFileSync, statSync } from 'node:fs';
import { posix as pathPosix, win32 as pathWin32 } from 'node:path';
import { CONFIG_FILE_NAME, configSearchPath, type PathOptions } from '../paths.ts';
import { ConfigError, lookupTrait, OWN_CLASSES, unknownTraitMessage, type OptionSpec } from './options.ts';
import { fsProblem, jsonKind, parseJsonValue, type Value } from './values.ts';
import { errorMessage } from '../log.ts';

/** Option values from one config file, in file order. */
export type FileValues = { spec: OptionSpec; value: Value; source: string; file: string }[];

/** Drops whole-line `//` comments (keeping the line count, so JSON positions still match lines). */
function stripCommentLines(text: string): string {
  return text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .map((line) => (/^\s*\/\//.test(line) ? '' : line))
    .join('\n');
}

/** "… at position 52" → "… at position 52 (line 3, column 7)". */
function withLineNumber(message: string, text: string): string {
  const m = /at position (\d+)/.exec(message);
  if (!m || /line \d+/.test(message)) return message;
  const before = text.slice(0, Number(m[1]));
  const line = before.split('\n').length;
  const column = before.length - before.lastIndexOf('\n');
  return `${message} (line ${line}, column ${column})`;
}

/**
 * Parses the text of a config file: traitlets' JSON shape, `{"<Class>": {"<trait>": value}}`, with
 * whole-line `//` comments. Every value is checked; `file` names the file in messages.
 */
export function parseConfigText(text: string, file: string): FileValues {
  const json = stripCommentLines(text);
  if (json.trim() === '') return [];
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (err) {
    const why = withLineNumber(errorMessage(err), json);
    throw new ConfigError(`${file}: invalid JSON: ${why} (only whole-line // comments are allowed, and no trailing commas)`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`${file}: is ${jsonKind(data)}; expected a JSON object of classes, e.g. {"KernelGatewayApp": {"port": 9000}}`);
  }
  const values: FileValues = [];
  for (const [cls, section] of Object.entries(data)) {
    if (!OWN_CLASSES.includes(cls)) {
      throw new ConfigError(`${file}: unknown class "${cls}"; known classes: ${OWN_CLASSES.join(', ')}`);
    }
    if (section === null || typeof section !== 'object' || Array.isArray(section)) {
      throw new ConfigError(`${file}: ${cls} is ${jsonKind(section)}; expected an object of options, e.g. {"${cls}": {"<option>": value}}`);
    }
    for (const [trait, value] of Object.entries(section as Record<string, unknown>)) {
      const where = `${file}: ${cls}.${trait}`;
      const spec = lookupTrait(cls, trait);
      if (!spec) throw new ConfigError(unknownTraitMessage(where, cls, trait));
      const parsed = parseJsonValue(spec, value);
      if ('problem' in parsed) throw new ConfigError(`${where}: ${JSON.stringify(value)} ${parsed.problem}`);
      values.push({ spec, value: parsed.value, source: where, file });
    }
  }
  return values;
}

/** Reads and parses one config file; `how` says where its name came from, for messages. */
export function readConfigFile(file: string, how: string): FileValues {
  let text: string;
  try {
    if (!statSync(file).isFile()) throw new ConfigError(`config file ${file} (${how}) is not a file`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`config file ${file} (${how}) ${fsProblem(err)}`);
  }
  return parseConfigText(text, file);
}

/** Whether a search-path file is there; one that cannot even be looked at is an error, not skipped. */
function isPresent(file: string): boolean {
  try {
    statSync(file);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw new ConfigError(`config file ${file} (in the Jupyter config path) ${fsProblem(err)}`);
  }
}

/** The kernelgateway_config.json files present in the Jupyter config path, highest priority first. */
export function findConfigFiles(env: NodeJS.ProcessEnv, opts: PathOptions = {}): string[] {
  const p = (opts.platform ?? process.platform) === 'win32' ? pathWin32 : pathPosix;
  return configSearchPath(env, opts)
    .map((dir) => p.join(dir, CONFIG_FILE_NAME))
    .filter(isPresent);
}
