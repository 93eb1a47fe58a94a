/**
 * One running kernel: its process, its ZeroMQ sockets, its state, and interrupt, restart and shutdown.
 *
 * The kernel owns one iopub SUB socket, subscribed from launch, and fans its messages out to listeners
 * (every client connection), so a client joining later never meets ZeroMQ's slow-joiner window.
 * Shell, control and stdin are per client (see `openChannels`): the kernel routes replies and
 * input requests by the DEALER's routing id.
 */
import type { ChildProcess } from 'node:child_process';
import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import * as zmq from 'zeromq';
import type { Logger } from '../log.ts';
import type { Channel, ExecutionState, MessageHeader, RawMessage } from '../messaging/message.ts';
import { isoNow, MessageFactory, newSessionId, parseSigned, ProtocolError, serializeFrames, Signer, type Parsed } from '../messaging/session.ts';
import {
  choosePorts,
  composeKernelEnv,
  releasePorts,
  removeFile,
  signalGroup,
  spawnKernel,
  substituteArgv,
  writeConnectionFile,
  type ConnectionInfo,
  type Ports,
} from './launcher.ts';
import { receiveLoop, SocketWriter } from './sockets.ts';
import type { KernelSpec } from './specs.ts';

/** A message from the kernel, signature checked, header read, everything else untouched. */
export interface KernelMessage {
  channel: Channel;
  parsed: Parsed;
  header: MessageHeader;
}

export type LifecycleEvent = 'restarting' | 'restarted' | 'dead' | 'shutdown';

export interface KernelOptions {
  id: string;
  spec: KernelSpec;
  runtimeDir: string;
  cwd: string;
  /** Environment before the kernelspec's own entries (see composeKernelEnv). */
  env: NodeJS.ProcessEnv;
  ip: string;
  log: Logger;
  /** Seconds to wait for the first kernel_info reply before letting clients in anyway. */
  kernelInfoTimeout: number;
}

/** Message types that do not count as user activity (Jupyter Server's list). */
const UNTRACKED = new Set([
  'comm_info_request', 'comm_info_reply', 'kernel_info_request', 'kernel_info_reply',
  'shutdown_request', 'shutdown_reply', 'interrupt_request', 'interrupt_reply',
  'debug_request', 'debug_reply', 'stream', 'display_data', 'update_display_data',
  'execute_input', 'execute_result', 'error', 'status', 'clear_output', 'debug_event',
  'input_request', 'input_reply',
]);

interface Handshake {
  replied: boolean;
  iopubSeen: boolean;
  timer?: NodeJS.Timeout;
  deadline?: NodeJS.Timeout;
}

const RESTART_LIMIT = 5;
const STABLE_START_MS = 10_000;
const PROBE_INTERVAL_MS = 500;
const STDERR_TAIL_BYTES = 4096;

export class Kernel {
  readonly id: string;
  readonly spec: KernelSpec;
  readonly connectionFile: string;
  executionState: ExecutionState = 'starting';
  lastActivity = new Date();
  /** Open WebSocket connections, maintained by the bridge. */
  connections = 0;
  reason = '';

  readonly iopubListeners = new Set<(message: KernelMessage) => void>();
  readonly lifecycleListeners = new Set<(event: LifecycleEvent) => void>();

  readonly #options: KernelOptions;
  readonly #log: Logger;
  readonly #factory = new MessageFactory();
  #signer!: Signer;
  #info!: ConnectionInfo;
  #process: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #stderrTail = '';
  /** Set while the gateway itself stops the process (shutdown or manual restart). */
  #stopping = false;
  #gone = false;
  #everReady = false;
  #restartCount = 0;
  #lastRestart = 0;

  #iopub!: zmq.Subscriber;
  #control!: zmq.Dealer;
  #controlWriter!: SocketWriter;
  #probe!: zmq.Dealer;
  #probeWriter!: SocketWriter;
  /** Every DEALER opened for clients, so they can follow the kernel to new ports. */
  readonly #clientSockets = new Map<zmq.Dealer, 'shell' | 'control' | 'stdin'>();

  #ready = false;
  #queue: Promise<unknown> = Promise.resolve();
  #lastIopubAt = 0;
  #readyWaiters: Array<(ready: boolean) => void> = [];
  #handshake: Handshake | undefined;

  constructor(options: KernelOptions) {
    this.id = options.id;
    this.spec = options.spec;
    this.#options = options;
    this.#log = options.log;
    this.connectionFile = join(options.runtimeDir, `kernel-${options.id}.json`);
  }

  get name(): string {
    return this.spec.name;
  }

  get signer(): Signer {
    return this.#signer;
  }

  get pid(): number | undefined {
    return this.#process?.pid;
  }

  /** True once the kernel answered kernel_info and our iopub subscription is live. */
  get ready(): boolean {
    return this.#ready;
  }

  /** True once the kernel has been shut down or declared dead: it will never be ready again. */
  get gone(): boolean {
    return this.#gone;
  }

  /** Resolves when the kernel is ready, or after `timeoutMs` (whichever comes first). */
  whenReady(timeoutMs = this.#options.kernelInfoTimeout * 1000): Promise<boolean> {
    if (this.#ready) return Promise.resolve(true);
    if (this.#gone) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#readyWaiters.push((ready) => {
        clearTimeout(timer);
        resolve(ready);
      });
    });
  }

  /** Write the connection file, spawn the process and connect. Resolves once spawned (not yet ready). */
  async start(): Promise<void> {
    const ports = await choosePorts(this.#options.ip);
    this.#info = {
      ...ports,
      ip: this.#options.ip,
      // A fresh random key per kernel, in jupyter_client's shape.
      key: newSessionId(),
      transport: 'tcp',
      signature_scheme: 'hmac-sha256',
      kernel_name: this.spec.name,
    };
    this.#signer = new Signer(this.#info.key, this.#info.signature_scheme);
    this.#openKernelSockets();
    try {
      await this.#launch();
    } catch (error) {
      await this.#cleanUp();
      throw error;
    }
  }

  /** Interrupt by signal or by message, as the kernelspec's interrupt_mode says. */
  async interrupt(): Promise<void> {
    if (this.spec.spec.interrupt_mode === 'message') {
      this.#sendControl('interrupt_request', {});
    } else if (this.#process) {
      signalGroup(this.#process, 'SIGINT');
    }
  }

  /** Stop the process and start a new one with the same id, ports and key. Resolves once spawned. */
  restart(): Promise<void> {
    return this.#serially(async () => {
      if (this.#gone) throw new Error(`kernel ${this.id} is shut down`);
      const wasReady = this.#ready;
      // From here on, client messages wait for the new process instead of reaching the dying one.
      this.#setNotReady();
      this.#stopping = true;
      try {
        await this.#stopProcess(true, wasReady);
        await this.#drainIopub();
        if (this.#gone) return;
        this.#reopenIopub();
        await this.#launch();
      } finally {
        this.#stopping = false;
      }
    });
  }

  /** shutdown_request, then SIGTERM, then SIGKILL to the process group; then remove every trace. */
  shutdown(): Promise<void> {
    if (this.#gone) return this.#queue.then(() => undefined);
    // Marked at once, so a restart already under way does not start a new process.
    this.#gone = true;
    this.#stopping = true;
    return this.#serially(async () => {
      await this.#stopProcess(false, this.#ready);
      await this.#cleanUp();
      this.#emit('shutdown');
    });
  }

  /** Lifecycle operations (restart, shutdown, auto-restart) run one at a time, in order. */
  #serially<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(operation);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Let the iopub messages the old process sent before it exited arrive (at most 300 ms). */
  async #drainIopub(): Promise<void> {
    const until = Date.now() + 300;
    while (Date.now() < until && Date.now() - this.#lastIopubAt < 50) await new Promise((r) => setTimeout(r, 20));
  }

  /** Last resort when the gateway exits without a clean shutdown: kill the process group, remove the file. */
  killNow(): void {
    if (this.#process) signalGroup(this.#process, 'SIGKILL');
    removeFile(this.connectionFile);
  }

  /**
   * Open a client's shell, control and stdin DEALERs sharing one routing id, so the kernel sends a
   * request's replies and input_request back to that client. Messages from the kernel go to `deliver`.
   */
  openChannels(routingId: string, deliver: (message: KernelMessage) => void): ClientChannels {
    return new ClientChannels(this, routingId, deliver);
  }

  /** @internal used by ClientChannels */
  createClientSocket(channel: 'shell' | 'control' | 'stdin', routingId: string): zmq.Dealer {
    const socket = new zmq.Dealer({ routingId, linger: 1000, receiveHighWaterMark: 0, sendHighWaterMark: 0 });
    socket.connect(this.#endpoint(channel));
    this.#clientSockets.set(socket, channel);
    return socket;
  }

  /** @internal */
  closeClientSocket(socket: zmq.Dealer): void {
    this.#clientSockets.delete(socket);
    socket.close();
  }

  /** @internal parse and check a message from one of the kernel's sockets, or log why not. */
  readMessage(channel: Channel, frames: Buffer[]): KernelMessage | undefined {
    try {
      const parsed = parseSigned(frames, this.#signer);
      const header = JSON.parse(parsed.header.toString('utf8')) as MessageHeader;
      if (typeof header !== 'object' || header === null || typeof header.msg_type !== 'string') {
        throw new ProtocolError('header has no msg_type');
      }
      return { channel, parsed, header };
    } catch (error) {
      this.#log.warn(`kernel ${this.id}: dropped a ${channel} message: ${(error as Error).message}`);
      return undefined;
    }
  }

  /** The REST model, in Jupyter Server's key order. */
  model(): Record<string, unknown> {
    const model: Record<string, unknown> = {
      id: this.id,
      name: this.name,
      last_activity: isoNow(this.lastActivity),
      execution_state: this.executionState,
      connections: this.connections,
    };
    if (this.reason) model.reason = this.reason;
    return model;
  }

  // ---- process ----

  async #launch(): Promise<void> {
    const cwd = this.#options.cwd;
    writeConnectionFile(this.connectionFile, this.#info);
    const connectionFile = realpathSync(this.connectionFile);
    const argv = substituteArgv(this.spec.spec.argv, {
      connection_file: connectionFile,
      resource_dir: this.spec.resourceDir,
      cwd,
    });
    const env = composeKernelEnv(this.#options.env, this.spec.spec.env, this.spec.spec.language);
    const child = spawnKernel(argv, env, cwd);
    this.#stderrTail = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
      this.#stderrTail = (this.#stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES);
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (error) => reject(new Error(`cannot start kernel ${this.name} (${argv[0]}): ${error.message}`)));
    });
    this.#process = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('exit', (code, signal) => this.#onExit(child, code, signal));
    this.executionState = 'starting';
    this.#log.info(`kernel ${this.id} (${this.name}) started, pid ${child.pid}`);
    this.#startHandshake();
  }

  #onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.#stopping || this.#gone || child !== this.#process) return;
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    this.#log.warn(`kernel ${this.id} (${this.name}) died (${how})`);
    void this.#serially(() => this.#autoRestart());
  }

  /** After an unexpected death: restart, unless it keeps dying; then it is dead and removed. */
  async #autoRestart(): Promise<void> {
    if (this.#gone) return;
    await this.#drainIopub();
    const now = Date.now();
    this.#restartCount = now - this.#lastRestart < STABLE_START_MS || !this.#everReady ? this.#restartCount + 1 : 1;
    this.#lastRestart = now;
    this.#setNotReady();
    if (this.#restartCount > RESTART_LIMIT) {
      const tail = this.#stderrTail.trim().split('\n').slice(-5).join('\n');
      this.reason = `kernel died ${RESTART_LIMIT + 1} times in a row${tail ? `; last output:\n${tail}` : ''}`;
      this.#log.error(`kernel ${this.id} (${this.name}) is dead: ${this.reason}`);
      this.executionState = 'dead';
      this.#gone = true;
      if (this.#process) signalGroup(this.#process, 'SIGKILL');
      await this.#cleanUp();
      this.#emit('dead');
      return;
    }
    this.executionState = 'restarting';
    this.#emit('restarting');
    this.#log.info(`kernel ${this.id} restarting (attempt ${this.#restartCount} of ${RESTART_LIMIT})`);
    if (this.#process) signalGroup(this.#process, 'SIGKILL');
    try {
      // A kernel that never came up may have lost its ports to another process: take new ones.
      if (!this.#everReady) await this.#movePorts();
      this.#reopenIopub();
      await this.#launch();
      this.#emit('restarted');
    } catch (error) {
      this.#log.error(`kernel ${this.id}: restart failed: ${(error as Error).message}`);
      void this.#serially(() => this.#autoRestart());
    }
  }

  /** interrupt, shutdown_request, SIGTERM, SIGKILL: each step only if the process is still there. */
  async #stopProcess(restart: boolean, polite: boolean): Promise<void> {
    const child = this.#process;
    if (!child) return;
    if (child.exitCode !== null || child.signalCode !== null) {
      // The leader is gone; whatever it started in its group goes too.
      signalGroup(child, 'SIGKILL');
      return;
    }
    // As jupyter_client: interrupt first, so a kernel stuck in a computation reaches its shutdown handler.
    // Not while it is still starting: SIGINT during interpreter start-up is a fatal error, not an interrupt.
    if (polite) {
      await this.interrupt();
      this.#sendControl('shutdown_request', { restart });
      if (await this.#waitExit(2500)) return signalGroup(child, 'SIGKILL');
      this.#log.warn(`kernel ${this.id} did not exit after shutdown_request; sending SIGTERM`);
    }
    // A kernel that has not answered kernel_info will not answer shutdown_request either.
    signalGroup(child, 'SIGTERM');
    if (await this.#waitExit(2500)) return signalGroup(child, 'SIGKILL');
    this.#log.warn(`kernel ${this.id} did not exit after SIGTERM; sending SIGKILL`);
    signalGroup(child, 'SIGKILL');
    if (!(await this.#waitExit(5000))) this.#log.error(`kernel ${this.id} (pid ${child.pid}) survived SIGKILL`);
  }

  #waitExit(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      void this.#exited.then(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  async #cleanUp(): Promise<void> {
    this.#setNotReady();
    this.#wakeWaiters(false);
    if (this.#handshake) this.#stopHandshake();
    removeFile(this.connectionFile);
    if (this.#info) releasePorts(this.#info);
    this.#iopub?.close();
    this.#control?.close();
    this.#probe?.close();
    for (const socket of this.#clientSockets.keys()) socket.close();
    this.#clientSockets.clear();
  }

  // ---- sockets ----

  #endpoint(channel: 'shell' | 'control' | 'stdin' | 'iopub'): string {
    return `tcp://${this.#info.ip}:${this.#info[`${channel}_port`]}`;
  }

  #openKernelSockets(): void {
    // No high-water marks on our side: whatever the kernel publishes is read at once (nothing dropped
    // in ZeroMQ); the bridge applies explicit, reported limits per client instead.
    this.#openIopub();

    this.#control = new zmq.Dealer({ linger: 100, receiveHighWaterMark: 0, sendHighWaterMark: 0 });
    this.#control.connect(this.#endpoint('control'));
    this.#controlWriter = new SocketWriter(this.#control, (e) => this.#socketError('control', e));
    void receiveLoop(this.#control, () => undefined, (e) => this.#socketError('control', e));

    this.#probe = new zmq.Dealer({ linger: 0, receiveHighWaterMark: 0, sendHighWaterMark: 0 });
    this.#probe.connect(this.#endpoint('shell'));
    this.#probeWriter = new SocketWriter(this.#probe, (e) => this.#socketError('shell', e));
    void receiveLoop(this.#probe, (frames) => this.#onProbeReply(frames), (e) => this.#socketError('shell', e));
  }

  #openIopub(): void {
    this.#iopub = new zmq.Subscriber({ receiveHighWaterMark: 0, linger: 0 });
    this.#iopub.subscribe();
    this.#iopub.connect(this.#endpoint('iopub'));
    void receiveLoop(this.#iopub, (frames) => this.#onIopub(frames), (e) => this.#socketError('iopub', e));
  }

  /**
   * A fresh iopub subscription for a new kernel process. Under Deno a SUB socket that reconnects to a
   * restarted publisher stops delivering, so it is replaced rather than left to reconnect.
   */
  #reopenIopub(): void {
    const old = this.#iopub;
    this.#openIopub();
    old.close();
  }

  /** Take five new ports and point every socket at them. */
  async #movePorts(): Promise<void> {
    const old: Ports = { ...this.#info };
    // iopub is not moved: every new process gets a fresh subscription (#reopenIopub).
    const oldEndpoints = { control: this.#endpoint('control'), shell: this.#endpoint('shell'), stdin: this.#endpoint('stdin') };
    releasePorts(old);
    Object.assign(this.#info, await choosePorts(this.#info.ip));
    const move = (socket: zmq.Socket, channel: 'shell' | 'control' | 'stdin') => {
      try {
        socket.disconnect(oldEndpoints[channel]);
      } catch {
        /* not connected */
      }
      socket.connect(this.#endpoint(channel));
    };
    move(this.#control, 'control');
    move(this.#probe, 'shell');
    for (const [socket, channel] of this.#clientSockets) move(socket, channel);
  }

  #socketError(channel: string, error: Error): void {
    this.#log.error(`kernel ${this.id}: ${channel} socket error: ${error.message}`);
  }

  #sendControl(msgType: string, content: unknown): void {
    const message = this.#factory.message(msgType, content);
    this.#controlWriter.write(serializeFrames(message, this.#signer));
  }

  #onIopub(frames: Buffer[]): void {
    this.#lastIopubAt = Date.now();
    const message = this.readMessage('iopub', frames);
    if (!message) return;
    const parent = this.#parentOf(message);
    if (parent?.session === this.#factory.session && parent.msg_type === 'kernel_info_request') {
      // Traffic caused by our own handshake probes: it proves the subscription is live; clients never asked for it.
      if (this.#handshake) {
        this.#handshake.iopubSeen = true;
        this.#checkHandshake();
      }
      if (this.executionState === 'starting') this.executionState = 'idle';
      return;
    }
    this.#track(message, parent);
    for (const listener of this.iopubListeners) listener(message);
  }

  #parentOf(message: KernelMessage): MessageHeader | undefined {
    const bytes = message.parsed.parentHeader;
    if (bytes.length <= 2) return undefined;
    try {
      return JSON.parse(bytes.toString('utf8')) as MessageHeader;
    } catch {
      return undefined;
    }
  }

  /** Jupyter Server's activity rules: user-caused traffic updates last_activity and execution_state. */
  #track(message: KernelMessage, parent: MessageHeader | undefined): void {
    const type = message.header.msg_type;
    const parentTracked = !parent || typeof parent.msg_type !== 'string' || !UNTRACKED.has(parent.msg_type);
    if (!UNTRACKED.has(type) || parentTracked || this.executionState === 'busy') this.lastActivity = new Date();
    if (type !== 'status') return;
    let state: unknown;
    try {
      state = (JSON.parse(message.parsed.content.toString('utf8')) as { execution_state?: unknown }).execution_state;
    } catch {
      return;
    }
    if (parentTracked && (state === 'busy' || state === 'idle' || state === 'starting')) this.executionState = state;
    else if (this.executionState === 'starting' && state !== 'starting') this.executionState = 'idle';
  }

  // ---- handshake: kernel_info until a reply arrives and our iopub subscription sees the kernel ----

  #startHandshake(): void {
    if (this.#handshake) this.#stopHandshake();
    const handshake: Handshake = { replied: false, iopubSeen: false };
    this.#handshake = handshake;
    const send = () => {
      const message = this.#factory.message('kernel_info_request', {});
      this.#probeWriter.write(serializeFrames(message, this.#signer));
    };
    send();
    handshake.timer = setInterval(send, PROBE_INTERVAL_MS);
    // A first start has the manager's startup timeout; after a restart, clients are let in at the deadline anyway.
    if (!this.#everReady) return;
    handshake.deadline = setTimeout(() => {
      this.#log.warn(
        `kernel ${this.id} (${this.name}) did not answer kernel_info within ${this.#options.kernelInfoTimeout} s; ` +
          'letting clients in anyway (check the kernel\'s output above)',
      );
      this.#finishHandshake();
    }, this.#options.kernelInfoTimeout * 1000);
  }

  #onProbeReply(frames: Buffer[]): void {
    const message = this.readMessage('shell', frames);
    if (!message || message.header.msg_type !== 'kernel_info_reply' || !this.#handshake) return;
    this.#handshake.replied = true;
    this.#checkHandshake();
  }

  #checkHandshake(): void {
    if (this.#handshake?.replied && this.#handshake.iopubSeen) this.#finishHandshake();
  }

  #finishHandshake(): void {
    this.#stopHandshake();
    this.#everReady = true;
    if (this.executionState === 'starting') this.executionState = 'idle';
    this.#ready = true;
    this.#wakeWaiters(true);
  }

  #wakeWaiters(ready: boolean): void {
    const waiters = this.#readyWaiters;
    this.#readyWaiters = [];
    for (const wake of waiters) wake(ready);
  }

  #stopHandshake(): void {
    if (!this.#handshake) return;
    clearInterval(this.#handshake.timer);
    clearTimeout(this.#handshake.deadline);
    this.#handshake = undefined;
  }

  #setNotReady(): void {
    this.#ready = false;
  }

  #emit(event: LifecycleEvent): void {
    for (const listener of this.lifecycleListeners) listener(event);
  }
}

/**
 * One client's shell, control and stdin sockets on a kernel. Messages sent before the kernel is
 * ready wait here, so a request never runs before the iopub subscription that carries its output.
 */
export class ClientChannels {
  readonly #kernel: Kernel;
  readonly #sockets: Record<'shell' | 'control' | 'stdin', zmq.Dealer>;
  readonly #writers: Record<'shell' | 'control' | 'stdin', SocketWriter>;
  readonly #pending: Array<{ channel: 'shell' | 'control' | 'stdin'; message: RawMessage }> = [];
  #waiting = false;
  #closed = false;
  deliver: (message: KernelMessage) => void;

  constructor(kernel: Kernel, routingId: string, deliver: (message: KernelMessage) => void) {
    this.#kernel = kernel;
    this.deliver = deliver;
    const open = (channel: 'shell' | 'control' | 'stdin') => {
      const socket = kernel.createClientSocket(channel, routingId);
      void receiveLoop(
        socket,
        (frames) => {
          const message = kernel.readMessage(channel, frames);
          if (message) this.deliver(message);
        },
        () => undefined,
      );
      return socket;
    };
    this.#sockets = { shell: open('shell'), control: open('control'), stdin: open('stdin') };
    const writer = (channel: 'shell' | 'control' | 'stdin') => new SocketWriter(this.#sockets[channel], () => undefined);
    this.#writers = { shell: writer('shell'), control: writer('control'), stdin: writer('stdin') };
  }

  /** Bytes waiting to go to the kernel (for backpressure on the client). */
  get queuedBytes(): number {
    return this.#writers.shell.queuedBytes + this.#writers.control.queuedBytes + this.#writers.stdin.queuedBytes;
  }

  send(channel: 'shell' | 'control' | 'stdin', message: RawMessage): void {
    if (this.#closed) return;
    if (!this.#kernel.ready || this.#pending.length > 0) {
      this.#pending.push({ channel, message });
      this.#flushWhenReady();
      return;
    }
    this.#writers[channel].write(serializeFrames(message, this.#kernel.signer));
  }

  #flushWhenReady(): void {
    if (this.#waiting) return;
    this.#waiting = true;
    const attempt = (): void => {
      if (this.#closed) return;
      if (this.#kernel.gone) {
        // Nothing will ever take these messages; the hub closes the connection.
        this.#pending.length = 0;
        this.#waiting = false;
        return;
      }
      if (!this.#kernel.ready) {
        void this.#kernel.whenReady(2000).then(attempt);
        return;
      }
      this.#waiting = false;
      for (const { channel, message } of this.#pending.splice(0)) {
        this.#writers[channel].write(serializeFrames(message, this.#kernel.signer));
      }
    };
    attempt();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending.length = 0;
    for (const socket of Object.values(this.#sockets)) this.#kernel.closeClientSocket(socket);
  }
}
