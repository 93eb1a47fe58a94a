/**
 * Runs notebook cells in one persistent node:vm context: console output, display, input and
 * interrupts go through hooks; top-level declarations persist across cells (see syntax.ts planCell).
 *
 * Limits, by design of node:vm:
 *  - The context is a separate realm: objects made by Node's APIs (Buffers, arrays from fs, errors
 *    thrown by Node) fail `instanceof Array`/`Error` checks against the context's own constructors;
 *    Array.isArray and util.types work.
 *  - Top-level let/const/class behave like var (re-running a cell redeclares them; const is not
 *    enforced across cells; no temporal dead zone).
 *  - A synchronous loop is interrupted only while the cell's synchronous part runs (breakOnSigint);
 *    once a cell has awaited, an endless synchronous loop in its continuation, or in a timer
 *    callback, cannot be interrupted. An interrupted await leaves the awaited work running.
 */
import { Console } from 'node:console';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { types } from 'node:util';
import * as vm from 'node:vm';
import { createDisplay, formatValue, mimeBundle, type DisplayMessage, type MimeBundle } from './display.ts';
import { planCell, type CellPlan } from './syntax.ts';
import { cursorTarget, expressionAt, KEYWORDS, namesInCode } from './tokens.ts';

export interface EvaluatorHooks {
  stdout(text: string): void;
  stderr(text: string): void;
  display(message: DisplayMessage): void;
  /** Ask the frontend for a line of input; rejects when input is not possible. */
  input(prompt: string, password: boolean): Promise<string>;
  /** true just before a cell's synchronous part starts, false when it ends (for interrupts from another thread). */
  syncRunning?(running: boolean): void;
}

/** The error an interrupted cell ends with. */
export class KernelInterrupt extends Error {
  override name = 'KeyboardInterrupt';
  constructor() {
    super('execution was interrupted');
  }
}

export interface ErrorContent {
  ename: string;
  evalue: string;
  traceback: string[];
}

export interface CompletionResult {
  matches: string[];
  /** UTF-16 indexes into the code. */
  start: number;
  end: number;
}

/** Host globals copied into the context. */
const HOST_GLOBALS = [
  'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'setImmediate', 'clearImmediate', 'queueMicrotask',
  'structuredClone', 'process', 'Buffer', 'URL', 'URLSearchParams', 'TextEncoder', 'TextDecoder', 'AbortController',
  'AbortSignal', 'Event', 'EventTarget', 'MessageChannel', 'MessagePort', 'MessageEvent', 'BroadcastChannel', 'Blob',
  'File', 'FormData', 'Headers', 'Request', 'Response', 'fetch', 'WebSocket', 'atob', 'btoa', 'performance', 'crypto',
  'navigator', 'DOMException', 'ReadableStream', 'WritableStream', 'TransformStream', 'CompressionStream',
  'DecompressionStream',
];

const MODULE_DIR_URL = new URL('.', import.meta.url).href;
const MODULE_DIR_PATH = (() => {
  try {
    return fileURLToPath(MODULE_DIR_URL);
  } catch {
    return MODULE_DIR_URL;
  }
})();
const IDENTIFIER = /^[\p{ID_Start}$_][\p{ID_Continue}$_\u200c\u200d]*$/u;
const dynamicImport = (vm as unknown as { constants?: { USE_MAIN_CONTEXT_DEFAULT_LOADER?: symbol } }).constants
  ?.USE_MAIN_CONTEXT_DEFAULT_LOADER;

let warningFiltered = false;

/**
 * Node prints an ExperimentalWarning the first time a script uses the main context's default loader
 * for import(); it is about the kernel, not the user's code, so it is filtered out (once installed,
 * the filter stays: the warning comes when the import runs, which may be any time later).
 */
function filterLoaderWarning(): void {
  if (warningFiltered) return;
  warningFiltered = true;
  const emitWarning = process.emitWarning;
  process.emitWarning = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    const text = typeof warning === 'string' ? warning : warning?.message;
    if (typeof text === 'string' && text.includes('USE_MAIN_CONTEXT_DEFAULT_LOADER')) return;
    (emitWarning as (...args: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
}

function textSink(write: (text: string) => void): Writable {
  return new Writable({
    decodeStrings: false,
    write(chunk: unknown, _encoding, callback) {
      write(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8'));
      callback();
    },
  });
}

export class Evaluator {
  readonly context: vm.Context;
  readonly #hooks: EvaluatorHooks;
  #cell = 0;
  /** For cells run in an async wrapper: filename -> the wrapper's closing line (its frames are hidden). */
  readonly #wrapperLines = new Map<string, number>();
  /** Rejects the await of the running cell, while one is awaiting. */
  #abort: ((error: Error) => void) | undefined;

  constructor(hooks: EvaluatorHooks, options: { cwd?: string } = {}) {
    this.#hooks = hooks;
    const cwd = options.cwd ?? process.cwd();
    const sandbox: Record<string, unknown> = {};
    this.context = vm.createContext(sandbox, { name: 'kernelgateway-javascript' });
    const host = globalThis as unknown as Record<string, unknown>;
    const define = (name: string, value: unknown) =>
      Object.defineProperty(this.context, name, { value, writable: true, configurable: true, enumerable: false });
    for (const name of HOST_GLOBALS) if (host[name] !== undefined) define(name, host[name]);
    define('global', this.context);
    define('console', new Console({ stdout: textSink((t) => hooks.stdout(t)), stderr: textSink((t) => hooks.stderr(t)), colorMode: false }));
    define('require', createRequire(join(cwd, '[kernel]')));
    define('display', createDisplay((message) => hooks.display(message)));
    define('input', (prompt: unknown = '', options?: { password?: boolean }) =>
      hooks.input(String(prompt), !!(options && typeof options === 'object' && options.password)));
  }

  /** Run a cell. Resolves with its value (undefined when it has none); rejects with what it threw. */
  async execute(code: string): Promise<unknown> {
    const filename = `<cell ${++this.#cell}>`;
    const { script, plan } = this.#compile(code, filename);
    if (plan.async) this.#wrapperLines.set(filename, code.split('\n').length + 1);
    this.#hooks.syncRunning?.(true);
    let value: unknown;
    try {
      value = script.runInContext(this.context, { breakOnSigint: true, displayErrors: false });
    } catch (error) {
      throw interruptedOr(error);
    } finally {
      this.#hooks.syncRunning?.(false);
    }
    if (!plan.async) return plan.returnsValue ? value : undefined;
    const result = await this.#awaitInterruptibly(value);
    return plan.returnsValue ? result : undefined;
  }

  /** Stop the running cell's await (the sync part stops on SIGINT). Returns false if nothing was awaiting. */
  interrupt(): boolean {
    const abort = this.#abort;
    if (!abort) return false;
    this.#abort = undefined;
    abort(new KernelInterrupt());
    return true;
  }

  /** Await `value` unless interrupted first. */
  #awaitInterruptibly(value: unknown): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      this.#abort = reject;
      Promise.resolve(value).then(resolve, reject);
    }).finally(() => {
      this.#abort = undefined;
    });
  }

  /** The cell's script (planCell throws the SyntaxError of a cell that does not parse). */
  #compile(code: string, filename: string): { script: vm.Script; plan: CellPlan } {
    const plan = planCell(code, { filename });
    const options: vm.ScriptOptions = { filename, lineOffset: plan.lineOffset };
    if (dynamicImport && /\bimport\s*\(/.test(code)) {
      (options as { importModuleDynamically?: unknown }).importModuleDynamically = dynamicImport;
      filterLoaderWarning();
    }
    return { script: new vm.Script(plan.source, options), plan };
  }

  /** Evaluate an expression synchronously (user_expressions, completion, inspection); 1 s limit. */
  evaluate(expression: string): unknown {
    const script = new vm.Script(`(${expression}\n)`, { filename: '<expression>' });
    return script.runInContext(this.context, { timeout: 1000, displayErrors: false, breakOnSigint: true });
  }

  complete(code: string, cursor: number): CompletionResult {
    const target = cursorTarget(code, cursor);
    const none = { matches: [], start: cursor, end: cursor };
    if (target.inLiteral) return none;
    let names: string[];
    if (target.object !== undefined) {
      let value: unknown;
      try {
        value = this.evaluate(target.object);
      } catch {
        return none;
      }
      names = propertyNames(value);
    } else {
      names = [...this.globalNames(), ...namesInCode(code), ...KEYWORDS];
    }
    const matches = [...new Set(names)]
      .filter((name) => name.startsWith(target.prefix) && IDENTIFIER.test(name))
      .sort((a, b) => Number(a.startsWith('_')) - Number(b.startsWith('_')) || (a < b ? -1 : a > b ? 1 : 0));
    return { matches, start: target.start, end: cursor };
  }

  /** Names visible as globals in the context (its own properties and the builtins). */
  globalNames(): string[] {
    const names = new Set<string>();
    try {
      const inside = vm.runInContext(
        '(() => { const out = []; for (let o = globalThis; o; o = Object.getPrototypeOf(o)) out.push(...Object.getOwnPropertyNames(o)); return out; })()',
        this.context,
        { timeout: 1000 },
      ) as string[];
      for (const name of inside) names.add(name);
    } catch {
      /* a user-broken global object: fall back to the sandbox's names */
    }
    for (const name of Object.getOwnPropertyNames(this.context)) names.add(name);
    return [...names];
  }

  /** What the name at the cursor is, for inspect_request. */
  inspect(code: string, cursor: number, detailLevel: number): { found: boolean; data: MimeBundle } {
    const expression = expressionAt(code, cursor);
    if (!expression) return { found: false, data: {} };
    let value: unknown;
    try {
      value = this.evaluate(expression);
    } catch {
      return { found: false, data: {} };
    }
    const kind = value === null ? 'null' : Array.isArray(value) ? 'array' : typeof value;
    let text = `${expression}: ${kind}\n`;
    if (typeof value === 'function') {
      const source = Function.prototype.toString.call(value);
      text += detailLevel > 0 ? source : source.split('\n')[0];
    } else {
      text += formatValue(value);
    }
    return { found: true, data: { 'text/plain': text } };
  }

  /** ename, evalue and traceback for something a cell threw, without the kernel's own frames. */
  errorContent(error: unknown): ErrorContent {
    return errorContent(error, (line) => {
      const m = /(<cell \d+>):(\d+):\d+\)?$/.exec(line);
      return !!m && this.#wrapperLines.get(m[1]) === Number(m[2]);
    });
  }

  /** The bundle for a cell's value. */
  bundle(value: unknown): MimeBundle {
    return mimeBundle(value);
  }
}

/** Property names of a value and its prototypes, as completion candidates. */
export function propertyNames(value: unknown): string[] {
  if (value === null || value === undefined) return [];
  const names = new Set<string>();
  let level = 0;
  for (let o: object | null = Object(value); o && level < 50; o = Object.getPrototypeOf(o), level++) {
    for (const name of Object.getOwnPropertyNames(o)) if (name !== '__proto__') names.add(name);
  }
  return [...names];
}

function interruptedOr(error: unknown): unknown {
  if (error && typeof error === 'object' && (error as { code?: unknown }).code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED') {
    return new KernelInterrupt();
  }
  return error;
}

/** Is this stack line a frame of the kernel's own code (or Node's plumbing around it)? */
function internalFrame(line: string): boolean {
  return (
    line.includes(MODULE_DIR_URL) ||
    line.includes(MODULE_DIR_PATH) ||
    line.includes('node:internal/process/task_queues') ||
    line.includes('node:internal/timers')
  );
}

/** ename, evalue and traceback lines for something a cell threw. */
export function errorContent(error: unknown, hideFrame: (line: string) => boolean = () => false): ErrorContent {
  if (error instanceof KernelInterrupt) {
    return { ename: 'KeyboardInterrupt', evalue: error.message, traceback: [`KeyboardInterrupt: ${error.message}`] };
  }
  const isError =
    types.isNativeError(error) ||
    (typeof error === 'object' && error !== null && typeof (error as Error).message === 'string' && typeof (error as Error).stack === 'string');
  if (!isError) {
    const evalue = formatValue(error);
    return { ename: 'Uncaught', evalue, traceback: [`Uncaught ${evalue}`] };
  }
  const e = error as Error;
  let ename = 'Error';
  try {
    ename = typeof e.name === 'string' && e.name ? e.name : (e.constructor?.name ?? 'Error');
  } catch {
    /* keep 'Error' */
  }
  const evalue = String(e.message);
  let stack: string;
  try {
    stack = typeof e.stack === 'string' && e.stack ? e.stack : `${ename}: ${evalue}`;
  } catch {
    stack = `${ename}: ${evalue}`;
  }
  const traceback: string[] = [];
  for (const line of stack.split('\n')) {
    if (/^\s+at /.test(line)) {
      if (line.includes('node:vm:') || line.includes('at new Script')) break;
      if (internalFrame(line) || hideFrame(line)) continue;
    }
    traceback.push(line);
  }
  while (traceback.length > 1 && traceback[traceback.length - 1].trim() === '') traceback.pop();
  return { ename, evalue, traceback };
}
