/**
 * The kernel's ZeroMQ side: the connection file, the five sockets (ROUTER shell/control/stdin, PUB
 * iopub, ROUTER heartbeat echo), and the "wire" the protocol code talks to.
 *
 * By default the sockets live in a worker thread, so the heartbeat keeps beating and an
 * interrupt_request on control still arrives while a cell runs a long synchronous loop: the worker
 * then sends SIGINT to its own process, which vm's breakOnSigint turns into an exception in the cell.
 * If the worker cannot start (no worker support for the zeromq addon, for instance), the sockets
 * live in the main thread instead; interrupt_request then works for awaiting cells only, SIGINT
 * for both. Under Deno the sockets are polled rather than awaited (see zmq/io.ts).
 */
import type { ConnectionInfo } from '../messaging/message.ts';
import { readFileSync, writeSync } from 'node:fs';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import * as zmq from 'zeromq';
import { createLogger, LOG_LEVELS, type Logger, type LogLevel } from '../log.ts';
import { parseSigned, Signer } from '../messaging/session.ts';
import { receiveLoop, SocketWriter } from '../zmq/io.ts';
import { IO_ROLE, isIoWorker } from './io-worker-role.ts';

export type InboundChannel = 'shell' | 'control' | 'stdin';
export type OutboundChannel = 'shell' | 'control' | 'stdin' | 'iopub';

/** The connection file this kernel binds. */
export type KernelConnection = ConnectionInfo;

const PORTS = ['shell_port', 'iopub_port', 'stdin_port', 'control_port', 'hb_port'] as const;

/** Read and check a Jupyter connection file. Throws an Error saying what is wrong. */
export function readConnectionFile(path: string): KernelConnection {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`cannot read connection file ${path}: ${(error as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null) throw new Error(`connection file ${path}: not a JSON object`);
  const r = raw as Record<string, unknown>;
  const transport = r.transport ?? 'tcp';
  if (transport !== 'tcp' && transport !== 'ipc') throw new Error(`connection file ${path}: unsupported transport ${JSON.stringify(transport)}`);
  const ip = r.ip ?? '127.0.0.1';
  if (typeof ip !== 'string' || ip === '') throw new Error(`connection file ${path}: ip must be a string`);
  for (const name of PORTS) {
    const port = r[name];
    if (typeof port !== 'number' || !Number.isInteger(port) || port <= 0 || port > 65535) {
      throw new Error(`connection file ${path}: ${name} must be a port number (got ${JSON.stringify(port)})`);
    }
  }
  const key = r.key ?? '';
  if (typeof key !== 'string') throw new Error(`connection file ${path}: key must be a string`);
  const scheme = r.signature_scheme ?? 'hmac-sha256';
  if (typeof scheme !== 'string') throw new Error(`connection file ${path}: signature_scheme must be a string`);
  new Signer(key, scheme); // throws on an unsupported scheme
  return {
    transport,
    ip,
    shell_port: r.shell_port as number,
    iopub_port: r.iopub_port as number,
    stdin_port: r.stdin_port as number,
    control_port: r.control_port as number,
    hb_port: r.hb_port as number,
    key,
    signature_scheme: scheme,
    ...(typeof r.kernel_name === 'string' ? { kernel_name: r.kernel_name } : {}),
  };
}

export function endpoint(info: KernelConnection, channel: InboundChannel | 'iopub' | 'hb'): string {
  const port = info[`${channel}_port`];
  if (info.transport === 'ipc') return `ipc://${info.ip}-${port}`;
  const host = info.ip.includes(':') && !info.ip.startsWith('[') ? `[${info.ip}]` : info.ip;
  return `tcp://${host}:${port}`;
}

/** Kernel logs: straight to fd 2 (synchronous, so they survive a busy main thread and a patched process.stderr). */
export function kernelLogger(): Logger {
  const wanted = (process.env.KG_JSKERNEL_LOG_LEVEL ?? '').toUpperCase();
  const level: LogLevel = (LOG_LEVELS as readonly string[]).includes(wanted) ? (wanted as LogLevel) : 'INFO';
  const stream = {
    write(text: string): boolean {
      try {
        writeSync(2, text);
      } catch {
        /* no stderr: nowhere to complain */
      }
      return true;
    },
  };
  return createLogger(level, stream as unknown as NodeJS.WritableStream);
}

interface SocketSet {
  shell: zmq.Router;
  control: zmq.Router;
  stdin: zmq.Router;
  iopub: zmq.Publisher;
  hb: zmq.Router;
}

/** The bound sockets, in whichever thread owns them. */
export class KernelSockets {
  readonly #sockets: SocketSet;
  readonly #writers: Record<OutboundChannel | 'hb', SocketWriter>;
  #closed = false;

  private constructor(sockets: SocketSet, onError: (channel: string, error: Error) => void) {
    this.#sockets = sockets;
    const writer = (name: OutboundChannel | 'hb') => new SocketWriter(sockets[name], (e) => onError(name, e));
    this.#writers = { shell: writer('shell'), control: writer('control'), stdin: writer('stdin'), iopub: writer('iopub'), hb: writer('hb') };
  }

  /** Bind all five sockets (closing any already bound if one fails) and start receiving. */
  static async bind(
    info: KernelConnection,
    onMessage: (channel: InboundChannel, frames: Buffer[]) => void,
    onError: (channel: string, error: Error) => void,
  ): Promise<KernelSockets> {
    // handover: a client reconnecting with the same routing id takes it over (as ipykernel's sockets do).
    const options = { linger: 1000, sendHighWaterMark: 0, receiveHighWaterMark: 0, handover: true };
    const sockets: SocketSet = {
      shell: new zmq.Router(options),
      control: new zmq.Router(options),
      stdin: new zmq.Router(options),
      iopub: new zmq.Publisher({ linger: 1000, sendHighWaterMark: 0 }),
      hb: new zmq.Router({ linger: 0 }),
    };
    try {
      for (const name of ['shell', 'control', 'stdin', 'iopub', 'hb'] as const) {
        const at = endpoint(info, name);
        try {
          await sockets[name].bind(at);
        } catch (error) {
          throw new Error(`cannot bind the ${name} socket to ${at}: ${(error as Error).message}`);
        }
      }
    } catch (error) {
      for (const socket of Object.values(sockets)) socket.close();
      throw error;
    }
    const self = new KernelSockets(sockets, onError);
    for (const channel of ['shell', 'control', 'stdin'] as const) {
      void receiveLoop(sockets[channel], (frames) => onMessage(channel, frames), (e) => onError(channel, e));
    }
    // Heartbeat: echo every message back to its sender, routing identity included.
    void receiveLoop(sockets.hb, (frames) => self.#writers.hb.write(frames), (e) => onError('hb', e));
    return self;
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(channel: OutboundChannel, frames: Buffer[]): void {
    if (!this.#closed) this.#writers[channel].write(frames);
  }

  /** Stop at once (messages not yet handed to ZeroMQ are lost). Synchronous. */
  closeNow(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const socket of Object.values(this.#sockets)) socket.close();
  }

  /** Hand queued messages to ZeroMQ (waiting up to `timeoutMs`), then close; linger delivers what ZeroMQ holds. */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.#closed) return;
    const deadline = Date.now() + timeoutMs;
    const queued = () => Object.values(this.#writers).reduce((sum, w) => sum + w.queuedBytes, 0);
    while (queued() > 0 && Date.now() < deadline) await sleep(10);
    await sleep(50); // the last send() may still be in flight
    this.closeNow();
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// The wire: what the protocol code sees, with the sockets in a worker or in this thread

export interface Wire {
  /** True when the sockets live in a worker thread. */
  readonly threaded: boolean;
  send(channel: OutboundChannel, frames: Buffer[]): void;
  /** Flush and close the sockets (and stop the worker). */
  close(): Promise<void>;
  /** Close at once, synchronously (for process 'exit'). */
  closeNow(): void;
}

export interface WireEvents {
  /** `signalled`: the worker already sent SIGINT for this interrupt_request. */
  message(channel: InboundChannel, frames: Buffer[], signalled: boolean): void;
  /** The wire is broken for good (the worker died, say). */
  fatal(error: Error): void;
}

export interface WireOptions {
  /** The module whose import starts the socket worker (see startIoWorkerIfAsked); undefined: no worker. */
  workerUrl?: URL;
  /** Arguments the worker's process.argv gets (so an entry script loaded there sees `kernel -f <file>`). */
  workerArgv?: string[];
  /** Shared flags: [0] is 1 while a cell's synchronous part runs; [1] is set by the worker once closed. */
  flags: Int32Array;
  log: Logger;
}

interface IoWorkerData {
  role: typeof IO_ROLE;
  info: KernelConnection;
  flags: SharedArrayBuffer;
}

type ToWorker = { type: 'send'; channel: OutboundChannel; frames: Uint8Array[] } | { type: 'close' } | { type: 'closeNow' };
type FromWorker =
  | { type: 'ready' }
  | { type: 'failed'; message: string }
  | { type: 'message'; channel: InboundChannel; frames: Uint8Array[]; signalled: boolean }
  | { type: 'closed' };

/** Exact-size copies of frames (a Buffer may view a larger pooled ArrayBuffer), and their buffers to transfer. */
function packFrames(frames: Buffer[]): { frames: Uint8Array[]; transfer: ArrayBuffer[] } {
  const copies = frames.map((f) => new Uint8Array(f));
  return { frames: copies, transfer: copies.map((c) => c.buffer as ArrayBuffer) };
}

function unpackFrames(frames: Uint8Array[]): Buffer[] {
  return frames.map((f) => Buffer.from(f.buffer, f.byteOffset, f.byteLength));
}

/** Open the wire: sockets in a worker when possible, else here. Rejects if the sockets cannot be bound. */
export async function openWire(info: KernelConnection, events: WireEvents, options: WireOptions): Promise<Wire> {
  if (options.workerUrl) {
    try {
      return await openThreadedWire(info, events, options, options.workerUrl);
    } catch (error) {
      if ((error as { bindFailed?: boolean }).bindFailed) throw error;
      options.log.warn(`sockets stay in the main thread (no worker: ${(error as Error).message}); interrupt_request cannot stop a synchronous loop`);
    }
  }
  const sockets = await KernelSockets.bind(
    info,
    (channel, frames) => events.message(channel, frames, false),
    (channel, error) => options.log.error(`${channel} socket error: ${error.message}`),
  );
  return {
    threaded: false,
    send: (channel, frames) => sockets.send(channel, frames),
    close: () => sockets.close(),
    closeNow: () => sockets.closeNow(),
  };
}

function openThreadedWire(info: KernelConnection, events: WireEvents, options: WireOptions, url: URL): Promise<Wire> {
  return new Promise<Wire>((resolve, reject) => {
    const data: IoWorkerData = { role: IO_ROLE, info, flags: options.flags.buffer as SharedArrayBuffer };
    const worker = new Worker(url, { workerData: data, argv: options.workerArgv ?? [], stdout: false, stderr: false });
    let state: 'starting' | 'running' | 'closing' | 'closed' = 'starting';
    let onClosed: (() => void) | undefined;
    const startTimer = setTimeout(() => fail(new Error('the socket worker did not start within 15 s')), 15_000);

    function fail(error: Error, bindFailed = false): void {
      clearTimeout(startTimer);
      if (state !== 'starting') return;
      state = 'closed';
      void worker.terminate();
      reject(Object.assign(error, { bindFailed }));
    }

    const post = (message: ToWorker, transfer: ArrayBuffer[] = []) => worker.postMessage(message, transfer);
    const wire: Wire = {
      threaded: true,
      send(channel, frames) {
        if (state !== 'running') return;
        const packed = packFrames(frames);
        post({ type: 'send', channel, frames: packed.frames }, packed.transfer);
      },
      close() {
        if (state !== 'running') return Promise.resolve();
        state = 'closing';
        return new Promise<void>((done) => {
          const timer = setTimeout(() => finish(), 3000);
          const finish = () => {
            clearTimeout(timer);
            state = 'closed';
            void worker.terminate().then(() => done(), () => done());
          };
          onClosed = finish;
          post({ type: 'close' });
        });
      },
      closeNow() {
        if (state === 'closed' || state === 'starting') return;
        state = 'closed';
        // The worker must close its sockets before the process exits (zeromq aborts otherwise):
        // ask, and wait on the shared flag it sets when done.
        post({ type: 'closeNow' });
        Atomics.wait(options.flags, 1, 0, 1000);
      },
    };

    worker.on('message', (message: FromWorker) => {
      switch (message.type) {
        case 'ready':
          clearTimeout(startTimer);
          state = 'running';
          resolve(wire);
          break;
        case 'failed':
          fail(new Error(message.message), true);
          break;
        case 'message':
          events.message(message.channel, unpackFrames(message.frames), message.signalled);
          break;
        case 'closed':
          onClosed?.();
          break;
      }
    });
    worker.on('error', (error) => {
      if (state === 'starting') fail(error);
      else if (state === 'running') events.fatal(new Error(`socket worker failed: ${error.message}`));
    });
    worker.on('exit', (code) => {
      if (state === 'starting') fail(new Error(`the socket worker exited with code ${code}`));
      else if (state === 'running') {
        state = 'closed';
        events.fatal(new Error(`the socket worker exited with code ${code}`));
      }
    });
  });
}

/** Is this (signed) control message an interrupt_request? */
function isInterruptRequest(frames: Buffer[], signer: Signer): boolean {
  try {
    const parsed = parseSigned(frames, signer);
    if (!parsed.header.includes('interrupt_request')) return false;
    return (JSON.parse(parsed.header.toString('utf8')) as { msg_type?: unknown }).msg_type === 'interrupt_request';
  } catch {
    return false;
  }
}

/** The socket worker's body. Call at module load; does nothing outside the worker. */
export function startIoWorkerIfAsked(): void {
  if (!isIoWorker({ isMainThread, workerData }) || !parentPort) return;
  const port = parentPort;
  const data = workerData as IoWorkerData;
  const flags = new Int32Array(data.flags);
  const signer = new Signer(data.info.key, data.info.signature_scheme);
  const log = kernelLogger();
  const reply = (message: FromWorker, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);
  let sockets: KernelSockets | undefined;
  const markClosed = () => {
    Atomics.store(flags, 1, 1);
    Atomics.notify(flags, 1);
  };

  port.on('message', (message: ToWorker) => {
    if (message.type === 'send') sockets?.send(message.channel, unpackFrames(message.frames));
    else if (message.type === 'closeNow') {
      sockets?.closeNow();
      markClosed();
    } else if (message.type === 'close') {
      void (sockets ? sockets.close() : Promise.resolve()).then(() => {
        markClosed();
        reply({ type: 'closed' });
      });
    }
  });

  KernelSockets.bind(
    data.info,
    (channel, frames) => {
      let signalled = false;
      // The main thread is stuck in synchronous code: only a signal can reach it.
      if (channel === 'control' && Atomics.load(flags, 0) === 1 && isInterruptRequest(frames, signer)) {
        try {
          process.kill(process.pid, 'SIGINT');
          signalled = true;
        } catch (error) {
          log.error(`cannot send SIGINT to the kernel: ${(error as Error).message}`);
        }
      }
      const packed = packFrames(frames);
      reply({ type: 'message', channel, frames: packed.frames, signalled }, packed.transfer);
    },
    (channel, error) => log.error(`${channel} socket error: ${error.message}`),
  ).then(
    (bound) => {
      sockets = bound;
      reply({ type: 'ready' });
    },
    (error: Error) => reply({ type: 'failed', message: error.message }),
  );
}
