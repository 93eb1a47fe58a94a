/**
 * One option's value: parsing the text of a flag or KG_* variable, or a config file's JSON value,
 * into its type, and the checks some options make (an existing folder, a readable file).
 * A problem comes back as text ("is not an integer") for the caller to put after the option's name.
 */
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import { errorMessage, type LogLevel } from '../log.ts';
import type { Config, OptionSpec, OptionType } from './options.ts';

export type Value = Config[keyof Config];
export type Parsed = { value: Value } | { problem: string };

const BOOL_WORDS: Record<string, boolean> = { true: true, false: false, yes: true, no: false, '1': true, '0': false };

/** true/false, yes/no, 1/0 in any case; undefined for anything else. */
export function parseBool(raw: string): boolean | undefined {
  return BOOL_WORDS[raw.trim().toLowerCase()];
}

const LEVEL_NAMES: Record<string, LogLevel> = {
  DEBUG: 'DEBUG', INFO: 'INFO', WARN: 'WARN', WARNING: 'WARN', ERROR: 'ERROR', CRITICAL: 'CRITICAL',
};
const LEVEL_BY_NUMBER: LogLevel[] = ['DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL'];

function parseLogLevel(raw: string): LogLevel | undefined {
  const text = raw.trim();
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    // Like Python logging, a number in between behaves as the next named level up (15 → INFO).
    return n >= 10 && n <= 50 ? LEVEL_BY_NUMBER[Math.ceil(n / 10) - 1] : undefined;
  }
  return LEVEL_NAMES[text.toUpperCase()];
}

/** 'A, B,,C ' → ['A', 'B', 'C']: comma-separated, trimmed, empty items dropped. */
export function splitList(raw: string): string[] {
  return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** Items of a list given as an array (config file, or `["A","B"]` as text): strings, trimmed, empties dropped. */
function listFromArray(items: unknown[]): Parsed {
  if (!items.every((item) => typeof item === 'string')) return { problem: 'is not a list of strings' };
  return { value: (items as string[]).map((s) => s.trim()).filter((s) => s !== '') };
}

/** A JSON object whose values are all strings. */
function mapFromObject(value: unknown): Parsed {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { problem: `is ${jsonKind(value)}; expected an object of strings` };
  if (!Object.values(value).every((v) => typeof v === 'string')) return { problem: 'is not an object of strings' };
  return { value: { ...(value as Record<string, string>) } };
}

/** Parses one raw text value for `spec`; returns the value, or a problem text ("is not …"). */
export function parseValue(spec: OptionSpec, raw: string): Parsed {
  switch (spec.type) {
    case 'string': {
      const problem = spec.check?.(raw);
      if (problem) return { problem };
      return { value: spec.normalize ? spec.normalize(raw) : raw };
    }
    case 'bool': {
      const value = parseBool(raw);
      return value === undefined ? { problem: 'is not a boolean; expected true/false, yes/no or 1/0' } : { value };
    }
    case 'loglevel': {
      const value = parseLogLevel(raw);
      return value === undefined
        ? { problem: 'is not a log level; expected DEBUG, INFO, WARN, ERROR, CRITICAL or a number 10..50' }
        : { value };
    }
    case 'list': {
      const text = raw.trim();
      if (!text.startsWith('[')) return { value: splitList(raw) };
      // `["A", "B"]` (as the reference's command line allows): a JSON array of strings.
      let items: unknown;
      try {
        items = JSON.parse(text);
      } catch {
        return { problem: 'is not a list; expected comma-separated names or a JSON array of strings' };
      }
      return Array.isArray(items) ? listFromArray(items) : { problem: 'is not a list' };
    }
    case 'map': {
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch {
        return { problem: 'is not JSON; expected an object such as {"scala": "//"}' };
      }
      return mapFromObject(value);
    }
    case 'int': {
      const text = raw.trim();
      if (!/^[+-]?\d+$/.test(text)) return { problem: 'is not an integer' };
      const value = Number(text);
      const min = spec.min ?? Number.MIN_SAFE_INTEGER;
      const max = spec.max ?? Number.MAX_SAFE_INTEGER;
      if (value < min || value > max) {
        let range: string;
        if (spec.min !== undefined && spec.max !== undefined) range = `${min}..${max}`;
        else if (value < min) range = `at least ${min}`;
        else range = `at most ${max}`;
        return { problem: `is out of range; expected ${range}` };
      }
      return { value };
    }
  }
}

/** "a number", "an object", "null": what a JSON value is, for messages. */
export function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number') return 'a number';
  if (typeof value === 'boolean') return 'a boolean';
  return `a ${typeof value}`;
}

const EXPECTED_JSON: Record<OptionType, string> = {
  string: 'a string',
  int: 'an integer (a number or a numeric string)',
  bool: 'true or false (or the strings "true"/"false")',
  loglevel: 'a level name such as "INFO" (or a number 10..50)',
  list: 'an array of strings or a comma-separated string',
  map: 'an object of strings',
};

/** Parses one config-file (JSON) value for `spec`. */
export function parseJsonValue(spec: OptionSpec, value: unknown): Parsed {
  if (typeof value === 'string') return parseValue(spec, value);
  const wrongType = { problem: `is ${jsonKind(value)}; expected ${EXPECTED_JSON[spec.type]}` };
  switch (spec.type) {
    case 'int':
      if (typeof value !== 'number') return wrongType;
      return Number.isInteger(value) ? parseValue(spec, String(value)) : { problem: 'is not an integer' };
    case 'loglevel':
      return typeof value === 'number' && Number.isInteger(value) ? parseValue(spec, String(value)) : wrongType;
    case 'bool':
      return typeof value === 'boolean' ? { value } : wrongType;
    case 'list':
      return Array.isArray(value) ? listFromArray(value) : wrongType;
    case 'map':
      return mapFromObject(value);
    case 'string':
      return wrongType;
  }
}

// ---------------------------------------------------------------------------------------------
// Checks of string options
// ---------------------------------------------------------------------------------------------

/** '/', 'api', '//a//b' → '/', '/api/', '/a/b/': a leading and trailing slash, no doubled ones. */
export function normalizeBaseUrl(value: string): string {
  return `/${value}/`.replace(/\/{2,}/g, '/');
}

/** '' (unset) passes; else the path must name an existing directory. */
export function checkDirectory(value: string): string | undefined {
  if (value === '') return undefined;
  let st;
  try {
    st = statSync(value);
  } catch (err) {
    return `${fsProblem(err)}; expected an existing directory`;
  }
  return st.isDirectory() ? undefined : 'is not a directory; expected an existing directory';
}

/** A check: '' (unset) passes; else the path must name a file this process can read (`expected` says what file). */
export function checkReadableFile(expected: string): (value: string) => string | undefined {
  return (value) => {
    if (value === '') return undefined;
    try {
      if (!statSync(value).isFile()) return `is not a file; expected ${expected}`;
      accessSync(value, fsConstants.R_OK);
    } catch (err) {
      return `${fsProblem(err)}; expected ${expected}`;
    }
    return undefined;
  };
}

/** "does not exist", "cannot be read (permission denied)", …: what is wrong with a path, for messages. */
export function fsProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'ENOTDIR') return 'does not exist (a part of the path is not a directory)';
  if (code === 'EACCES' || code === 'EPERM') return 'cannot be read (permission denied)';
  return `cannot be read (${errorMessage(err)})`;
}
