/**
 * The Jupyter messaging protocol (5.3) for the JavaScript kernel: requests in, replies and iopub
 * out. Shell requests run one at a time in arrival order; control requests are handled at once
 * (interrupt_request reaches an awaiting cell; see server.ts for cells stuck in synchronous code).
 */
import type { Logger } from '../log.ts';
import type { MessageHeader, RawMessage } from '../messaging/message.ts';
import { MessageFactory, parseSigned, serializeFrames, type Signer } from '../messaging/session.ts';
import { VERSION } from '../version.ts';
import type { DisplayMessage } from './display.ts';
import { Evaluator, KernelInterrupt, type ErrorContent } from './evaluator.ts';
import type { InboundChannel, OutboundChannel } from './server.ts';
import { isComplete } from './syntax.ts';
import { codePointToIndex, indexToCodePoint } from './tokens.ts';

export const KERNEL_PROTOCOL_VERSION = '5.3';
/**
 * After a failed cell (with stop_on_error), execute requests that arrived before its execute_reply
 * is sent are aborted; this long is given to requests still on their way through the process.
 */
const STOP_ON_ERROR_SETTLE_MS = 10;
/** Stream output is sent at least this often while a cell runs. */

type Content = Record<string, unknown>;

interface Request {
  /** Arrival order. */
  seq: number;
  channel: InboundChannel;
  identities: Buffer[];
  header: MessageHeader;
  content: Content;
}

/** The error `input()` raises when the frontend cannot answer input requests. */
export class StdinNotImplementedError extends Error {
  override name = 'StdinNotImplementedError';
}

export interface JsKernelOptions {
  signer: Signer;
  send(channel: OutboundChannel, frames: Buffer[]): void;
  log: Logger;
  /** Called once a shutdown_request has been answered. */
  onShutdown(restart: boolean): void;
  /** Told when a cell's synchronous part starts and ends. */
  syncRunning?(running: boolean): void;
  cwd?: string;
}

export function runtimeName(): string {
  const deno = (globalThis as { Deno?: { version?: { deno?: string } } }).Deno?.version?.deno;
  return deno ? `Deno ${deno}` : `Node.js ${process.version}`;
}

export function languageVersion(): string {
  return (globalThis as { Deno?: { version?: { deno?: string } } }).Deno?.version?.deno ?? process.versions.node;
}

export function kernelInfoContent(): Content {
  return {
    status: 'ok',
    protocol_version: KERNEL_PROTOCOL_VERSION,
    implementation: 'kernelgateway-javascript',
    implementation_version: VERSION,
    language_info: {
      name: 'javascript',
      version: languageVersion(),
      mimetype: 'application/javascript',
      file_extension: '.js',
      pygments_lexer: 'javascript',
      codemirror_mode: 'javascript',
      nbconvert_exporter: 'script',
    },
    banner:
      `JavaScript (${runtimeName()}) - the kernel built into kernelgateway ${VERSION}\n` +
      'display(value), display.html(s), display.markdown(s), display.json(v), display.png(b64); await input(prompt)',
    help_links: [{ text: 'JavaScript (MDN)', url: 'https://developer.mozilla.org/docs/Web/JavaScript' }],
    debugger: false,
  };
}

export class JsKernel {
  readonly evaluator: Evaluator;
  readonly #options: JsKernelOptions;
  readonly #log: Logger;
  readonly #factory = new MessageFactory();
  #executionCount = 0;
  readonly #queue: Request[] = [];
  #draining = false;
  /** The execute_request running now. */
  #current: { request: Request; allowStdin: boolean } | undefined;
  /** Parent for output produced outside any cell (timers): the last execute_request. */
  #lastExecute: MessageHeader | undefined;
  #received = 0;
  /** Execute requests with seq up to this one are aborted (a cell failed with stop_on_error). */
  #abortThrough = 0;
  #pendingInput: { resolve: (value: string) => void; reject: (error: Error) => void } | undefined;
  #shuttingDown = false;

  constructor(options: JsKernelOptions) {
    this.#options = options;
    this.#log = options.log;
    this.evaluator = new Evaluator(
      {
        stdout: (text) => this.write('stdout', text),
        stderr: (text) => this.write('stderr', text),
        display: (message) => this.#display(message),
        input: (prompt, password) => this.#input(prompt, password),
        syncRunning: options.syncRunning,
      },
      { cwd: options.cwd },
    );
  }

  get session(): string {
    return this.#factory.session;
  }

  /** Announce the kernel on iopub (ipykernel sends 'starting' once at start). */
  start(): void {
    this.#publish('status', { execution_state: 'starting' }, {});
  }

  // ---- incoming ----

  /** A multipart message from a socket. `signalled`: SIGINT was already sent for this interrupt_request. */
  handle(channel: InboundChannel, frames: Buffer[], signalled = false): void {
    let request: Request;
    try {
      const parsed = parseSigned(frames, this.#options.signer);
      const header = JSON.parse(parsed.header.toString('utf8')) as MessageHeader;
      const content = JSON.parse(parsed.content.toString('utf8') || '{}') as Content;
      if (typeof header !== 'object' || header === null || typeof header.msg_type !== 'string') throw new Error('header has no msg_type');
      request = { seq: ++this.#received, channel, identities: parsed.identities, header, content: content && typeof content === 'object' ? content : {} };
    } catch (error) {
      this.#log.warn(`dropped a ${channel} message: ${(error as Error).message}`);
      return;
    }
    if (this.#shuttingDown) return;
    if (channel === 'stdin') return this.#onStdin(request);
    if (channel === 'control') {
      void this.#serve(request, signalled);
      return;
    }
    this.#queue.push(request);
    if (!this.#draining) void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    try {
      while (this.#queue.length > 0 && !this.#shuttingDown) await this.#serve(this.#queue.shift()!, false);
    } finally {
      this.#draining = false;
    }
  }

  /** busy, the handler, idle. */
  async #serve(request: Request, signalled: boolean): Promise<void> {
    const type = request.header.msg_type;
    this.#publish('status', { execution_state: 'busy' }, request.header);
    try {
      switch (type) {
        case 'execute_request':
          await this.#execute(request);
          break;
        case 'kernel_info_request':
          this.#reply(request, 'kernel_info_reply', kernelInfoContent());
          break;
        case 'interrupt_request':
          if (!signalled) this.interrupt();
          this.#reply(request, 'interrupt_reply', { status: 'ok' });
          break;
        case 'shutdown_request':
          this.#shutdown(request);
          return; // idle already sent
        case 'is_complete_request':
          this.#reply(request, 'is_complete_reply', isComplete(String(request.content.code ?? '')));
          break;
        case 'complete_request':
          this.#reply(request, 'complete_reply', this.#complete(request.content));
          break;
        case 'inspect_request':
          this.#reply(request, 'inspect_reply', this.#inspect(request.content));
          break;
        case 'comm_info_request':
          this.#reply(request, 'comm_info_reply', { status: 'ok', comms: {} });
          break;
        case 'history_request':
          this.#reply(request, 'history_reply', { status: 'ok', history: [] });
          break;
        case 'comm_open':
        case 'comm_msg':
        case 'comm_close':
          this.#log.debug(`ignored ${type}: this kernel has no comms`);
          break;
        default:
          this.#log.warn(`ignored a ${request.channel} message of unknown type ${JSON.stringify(type)}`);
      }
    } catch (error) {
      this.#log.error(`${type} failed: ${(error as Error).stack ?? error}`);
    }
    this.#publish('status', { execution_state: 'idle' }, request.header);
  }

  #onStdin(request: Request): void {
    if (request.header.msg_type !== 'input_reply') {
      this.#log.warn(`ignored a stdin message of type ${JSON.stringify(request.header.msg_type)}`);
      return;
    }
    const pending = this.#pendingInput;
    if (!pending) {
      this.#log.warn('ignored an input_reply: no input() is waiting');
      return;
    }
    this.#pendingInput = undefined;
    pending.resolve(String(request.content.value ?? ''));
  }

  // ---- execute ----

  async #execute(request: Request): Promise<void> {
    const c = request.content;
    const code = String(c.code ?? '');
    const silent = c.silent === true;
    const storeHistory = silent ? false : c.store_history !== false;
    const stopOnError = c.stop_on_error !== false;
    if (request.seq <= this.#abortThrough) {
      this.#reply(request, 'execute_reply', { status: 'aborted', execution_count: this.#executionCount });
      return;
    }
    if (storeHistory) this.#executionCount++;
    const count = this.#executionCount;
    this.#lastExecute = request.header;
    this.#current = { request, allowStdin: c.allow_stdin !== false };
    if (!silent) this.#publish('execute_input', { code, execution_count: count }, request.header);
    // Let queued messages (busy, execute_input) reach ZeroMQ before the cell can block this thread.
    await new Promise<void>((resolve) => setImmediate(resolve));
    let reply: Content;
    try {
      const value = await this.evaluator.execute(code);
      if (value !== undefined && !silent) {
        this.#publish('execute_result', { execution_count: count, data: this.evaluator.bundle(value), metadata: {} }, request.header);
      }
      reply = { status: 'ok', execution_count: count, payload: [], user_expressions: this.#userExpressions(c.user_expressions) };
    } catch (thrown) {
      const error = this.#errorContent(thrown);
      this.#publish('error', error, request.header);
      reply = { status: 'error', execution_count: count, ...error };
      if (stopOnError) {
        await new Promise<void>((resolve) => setTimeout(resolve, STOP_ON_ERROR_SETTLE_MS));
        this.#abortThrough = this.#received;
      }
    } finally {
      this.#current = undefined;
      if (this.#pendingInput) {
        this.#pendingInput.reject(new Error('the cell finished before its input() was answered'));
        this.#pendingInput = undefined;
      }
    }
    this.#reply(request, 'execute_reply', reply);
  }

  #errorContent(thrown: unknown): ErrorContent {
    try {
      return this.evaluator.errorContent(thrown);
    } catch (error) {
      return { ename: 'Error', evalue: String(error), traceback: [String(error)] };
    }
  }

  #userExpressions(expressions: unknown): Content {
    const out: Content = {};
    if (!expressions || typeof expressions !== 'object') return out;
    for (const [name, expression] of Object.entries(expressions as Record<string, unknown>)) {
      try {
        const value = this.evaluator.evaluate(String(expression));
        out[name] = { status: 'ok', data: this.evaluator.bundle(value), metadata: {} };
      } catch (error) {
        out[name] = { status: 'error', ...this.#errorContent(error) };
      }
    }
    return out;
  }

  /** Interrupt the running cell (its await, and any input() it waits for). */
  interrupt(): void {
    const interrupted = this.evaluator.interrupt();
    if (this.#pendingInput) {
      this.#pendingInput.reject(new KernelInterrupt());
      this.#pendingInput = undefined;
    } else if (!interrupted) {
      this.#log.debug('interrupt: nothing to interrupt');
    }
  }

  // ---- output ----

  /**
   * Stream text from the cell (or from a timer, attributed to the last cell), sent at once: output
   * held back for batching would be stuck behind a cell that then blocks in synchronous code.
   */
  write(name: 'stdout' | 'stderr', text: string): void {
    if (!text) return;
    const parent = this.#current?.request.header ?? this.#lastExecute;
    this.#publish('stream', { name, text }, parent ?? {});
  }

  #display(message: DisplayMessage): void {
    const parent = this.#current?.request.header ?? this.#lastExecute ?? {};
    const content = { data: message.data, metadata: message.metadata, transient: message.transient };
    this.#publish(message.update ? 'update_display_data' : 'display_data', content, parent);
  }

  #input(prompt: string, password: boolean): Promise<string> {
    const current = this.#current;
    if (!current) return Promise.reject(new Error('input() works only while its cell is running'));
    if (!current.allowStdin) {
      return Promise.reject(new StdinNotImplementedError('input() is not available: this frontend does not support input requests'));
    }
    if (this.#pendingInput) return Promise.reject(new Error('input() is already waiting for an answer'));
    return new Promise<string>((resolve, reject) => {
      this.#pendingInput = { resolve, reject };
      const message = this.#message('input_request', { prompt, password }, current.request.header);
      this.#options.send('stdin', serializeFrames(message, this.#options.signer, current.request.identities));
    });
  }

  /** Report an error nobody caught (a throwing timer callback, an unhandled rejection) under the last cell. */
  reportUncaught(error: unknown, kind: string): void {
    const { traceback } = this.#errorContent(error);
    this.write('stderr', `${kind}: ${traceback.join('\n')}\n`);
  }

  // ---- complete / inspect ----

  #complete(content: Content): Content {
    const code = String(content.code ?? '');
    const cursor = codePointToIndex(code, typeof content.cursor_pos === 'number' ? content.cursor_pos : [...code].length);
    let result = { matches: [] as string[], start: cursor, end: cursor };
    try {
      result = this.evaluator.complete(code, cursor);
    } catch (error) {
      this.#log.debug(`completion failed: ${(error as Error).message}`);
    }
    return {
      status: 'ok',
      matches: result.matches,
      cursor_start: indexToCodePoint(code, result.start),
      cursor_end: indexToCodePoint(code, result.end),
      metadata: {},
    };
  }

  #inspect(content: Content): Content {
    const code = String(content.code ?? '');
    const cursor = codePointToIndex(code, typeof content.cursor_pos === 'number' ? content.cursor_pos : [...code].length);
    const detail = typeof content.detail_level === 'number' ? content.detail_level : 0;
    let found = { found: false, data: {} as Record<string, unknown> };
    try {
      found = this.evaluator.inspect(code, cursor, detail);
    } catch (error) {
      this.#log.debug(`inspection failed: ${(error as Error).message}`);
    }
    return { status: 'ok', found: found.found, data: found.data, metadata: {} };
  }

  // ---- shutdown ----

  #shutdown(request: Request): void {
    const restart = request.content.restart === true;
    this.#shuttingDown = true;
    this.interrupt();
    const content = { status: 'ok', restart };
    this.#reply(request, 'shutdown_reply', content);
    this.#publish('shutdown_reply', content, request.header);
    this.#publish('status', { execution_state: 'idle' }, request.header);
    this.#options.onShutdown(restart);
  }

  // ---- sending ----

  #message(msgType: string, content: unknown, parent: MessageHeader | Record<string, never>): RawMessage {
    const header = this.#factory.header(msgType);
    header.version = KERNEL_PROTOCOL_VERSION;
    return {
      header: Buffer.from(JSON.stringify(header)),
      parentHeader: Buffer.from(JSON.stringify(parent ?? {})),
      metadata: Buffer.from('{}'),
      content: Buffer.from(JSON.stringify(content)),
      buffers: [],
    };
  }

  #reply(request: Request, msgType: string, content: unknown): void {
    const message = this.#message(msgType, content, request.header);
    this.#options.send(request.channel, serializeFrames(message, this.#options.signer, request.identities));
  }

  #publish(msgType: string, content: unknown, parent: MessageHeader | Record<string, never>): void {
    const message = this.#message(msgType, content, parent);
    const topic = Buffer.from(`kernel.${this.#factory.session}.${msgType}`);
    this.#options.send('iopub', serializeFrames(message, this.#options.signer, [topic]));
  }
}
