/**
 * Leveled logging to stderr. Secrets never go through here: callers pass redacted values.
 *
 * Two protections for the operator reading the log: a line (INFO and above) that repeats (the same
 * text up to its numbers) more than a few times a minute is collapsed into one "... N more like this" line, so a
 * misbehaving kernel or client cannot flood the log; and control characters are escaped, so text a
 * kernel printed cannot rewrite the terminal or forge log lines.
 */
import { isUtf8 } from 'node:buffer';

export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Record<string, string | number | boolean | undefined>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  critical(message: string, fields?: LogFields): void;
  /** Shared by every logger made with `with`. */
  level: LogLevel;
  /** A logger that adds `fields` to every line it writes (shown by the JSON format; the text format shows the message). */
  with(fields: LogFields): Logger;
}

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

const rank: Record<LogLevel, number> = { DEBUG: 10, INFO: 20, WARN: 30, ERROR: 40, CRITICAL: 50 };

export interface LoggerOptions {
  /** Lines with the same shape allowed per window before they are collapsed. */
  repeatLimit?: number;
  /** The window, in milliseconds. */
  repeatWindowMs?: number;
  /** `text` (default): `[L date KernelGateway] message`; `json`: one object per line, for log collectors. */
  format?: LogFormat;
}

interface RepeatState {
  windowStart: number;
  count: number;
  suppressed: number;
  level: LogLevel;
  sample: string;
  fields: LogFields;
}

/** A logger that writes lines to `stream`: text (`[L YYYY-MM-DD HH:MM:SS.mmm KernelGateway] message`) or JSON. */
export function createLogger(
  level: LogLevel = 'INFO',
  stream: NodeJS.WritableStream = process.stderr,
  options: LoggerOptions = {},
): Logger {
  const repeatLimit = options.repeatLimit ?? 10;
  const windowMs = options.repeatWindowMs ?? 60_000;
  const json = options.format === 'json';
  const repeats = new Map<string, RepeatState>();
  let sweeper: NodeJS.Timeout | undefined;
  const shared = { level };

  function emit(at: LogLevel, message: string, fields: LogFields): void {
    const now = new Date();
    if (json) {
      // JSON.stringify escapes control characters itself; a field never overrides the three keys.
      stream.write(`${JSON.stringify({ ...fields, time: now.toISOString(), level: at, message })}\n`);
      return;
    }
    const stamp = now.toISOString().replace('T', ' ').slice(0, 23);
    stream.write(`[${at[0]} ${stamp} KernelGateway] ${escapeControls(message)}\n`);
  }

  function summarize(state: RepeatState): void {
    if (state.suppressed === 0) return;
    const window = windowMs >= 1000 ? `${Math.round(windowMs / 1000)} s` : `${windowMs} ms`;
    emit(state.level, `${state.sample} ... ${state.suppressed.toLocaleString('en-US')} more like this in the last ${window}`, {
      ...state.fields,
      repeated: state.suppressed,
    });
    state.suppressed = 0;
  }

  /** Close the windows that have ended, with their summaries; stops itself when nothing is left. */
  function sweep(): void {
    const now = Date.now();
    for (const [key, state] of repeats) {
      if (now - state.windowStart < windowMs) continue;
      summarize(state);
      repeats.delete(key);
    }
    if (repeats.size === 0 && sweeper) {
      clearInterval(sweeper);
      sweeper = undefined;
    }
  }

  /** A line at a level that is on (the caller checked). */
  function write(at: LogLevel, message: string, fields: LogFields): void {
    // DEBUG is asked for to see everything; it is never collapsed.
    if (at === 'DEBUG') return emit(at, message, fields);
    const key = `${at}:${shapeOf(message)}`;
    const now = Date.now();
    let state = repeats.get(key);
    if (state && now - state.windowStart >= windowMs) {
      summarize(state);
      state = undefined;
    }
    if (!state) {
      state = { windowStart: now, count: 0, suppressed: 0, level: at, sample: message.split('\n', 1)[0], fields };
      repeats.set(key, state);
      if (!sweeper) {
        sweeper = setInterval(sweep, Math.min(windowMs, 1000));
        sweeper.unref();
      }
    }
    state.count++;
    if (state.count > repeatLimit) {
      state.suppressed++;
      return;
    }
    emit(at, message, fields);
  }

  function view(bound: LogFields): Logger {
    // The level is checked before the fields are merged: a DEBUG line costs nothing when DEBUG is off.
    const line = (at: LogLevel) => (message: string, fields?: LogFields) => {
      if (rank[at] >= rank[shared.level]) write(at, message, fields ? { ...bound, ...fields } : bound);
    };
    return {
      get level() {
        return shared.level;
      },
      set level(value: LogLevel) {
        shared.level = value;
      },
      debug: line('DEBUG'),
      info: line('INFO'),
      warn: line('WARN'),
      error: line('ERROR'),
      critical: line('CRITICAL'),
      with: (fields) => view({ ...bound, ...fields }),
    };
  }

  return view({});
}

/** The text of a line with its numbers blanked: lines that differ only in counts, ports or ids share it. */
function shapeOf(message: string): string {
  return message.length > 300 ? message.slice(0, 300).replace(/\d+/g, '#') : message.replace(/\d+/g, '#');
}

/**
 * C0 and C1 control characters (but newline and tab) as visible escapes: `\x1b`, `\r`, `\u009b`.
 * Our own messages may span lines (stack traces); anything else that moves the cursor is escaped.
 */
export function escapeControls(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, (c) => {
    const code = c.charCodeAt(0);
    if (c === '\r') return '\\r';
    return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * Bytes a kernel printed, as one log-safe line: valid UTF-8 is kept (controls escaped, newline
 * too), anything else is shown byte by byte as `\xNN`.
 */
export function printableBytes(bytes: Buffer): string {
  if (isUtf8(bytes)) return escapeControls(bytes.toString('utf8')).replace(/\n/g, '\\n');
  let out = '';
  for (const byte of bytes) {
    out += byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : byte === 0x09 ? '\t' : `\\x${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** The message of anything thrown, for log lines and error bodies. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The stack when there is one, else the message: for unexpected errors in logs. */
export function errorDetail(error: unknown): string {
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}
