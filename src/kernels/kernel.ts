/**
 * One kernel's life: start, interrupt, restart, shutdown, and restarts after an unexpected death,
 * with the state the REST model reports. How its process comes to exist is its provisioner's
 * business (provisioners/); the kernel launches, signals and watches it only through that seam.
 * Talking to the kernel is kernel-connection.ts's: iopub is fanned out to listeners (every client)
 * from one subscription made at launch, and clients send through shared sockets whose replies come
 * back to their sender.
 */
import { errorDetail, errorMessage, type Logger } from '../log.ts';
import type { ExecutionState, MessageHeader, RawMessage } from '../messaging/message.ts';
import { isoNow } from '../messaging/session.ts';
import { trackActivity } from './activity.ts';
import { Handshake, Readiness } from './handshake.ts';
import { RESTART_LIMIT, RestartPolicy } from './restart-policy.ts';
import { KernelConnection } from './kernel-connection.ts';
import type { KernelMessage, KernelModel } from './kernel-message.ts';
import { CurrentProcess } from './current-process.ts';
import type { ExitStatus, KernelProvisioner } from './provisioners/provisioner.ts';
import type { RequestChannel, RequestHeader, Requester } from './requests.ts';
import type { KernelSpec } from './specs.ts';
import { metrics } from '../metrics/gateway-metrics.ts';

export type { KernelMessage, KernelModel } from './kernel-message.ts';
export type { Requester, RequestChannel, RequestHeader } from './requests.ts';

export type LifecycleEvent = 'restarting' | 'restarted' | 'dead' | 'shutdown';

export interface KernelOptions {
  id: string;
  spec: KernelSpec;
  provisioner: KernelProvisioner;
  cwd: string;
  /** Environment before the kernelspec's own entries (see composeKernelEnv). */
  env: NodeJS.ProcessEnv;
  log: Logger;
  /** Seconds to wait for kernel_info after a restart before letting clients in anyway. */
  kernelInfoTimeout: number;
  /** false: a process that dies makes the kernel dead at once, for an owner that replaces it. Default true. */
  autoRestart?: boolean;
}

export class Kernel {
  readonly id: string;
  readonly spec: KernelSpec;
  readonly provisioner: KernelProvisioner;
  executionState: ExecutionState = 'starting';
  lastActivity = new Date();
  reason = '';

  readonly iopubListeners = new Set<(message: KernelMessage) => void>();
  readonly lifecycleListeners = new Set<(event: LifecycleEvent) => void>();

  readonly #options: KernelOptions;
  readonly #log: Logger;
  readonly #connection: KernelConnection;
  readonly #process = new CurrentProcess();
  /** Set while the gateway itself stops the process (shutdown or manual restart). */
  #stopping = false;
  #gone = false;
  readonly #restarts = new RestartPolicy();
  readonly #readiness = new Readiness();
  #queue: Promise<unknown> = Promise.resolve();
  #handshake: Handshake | undefined;

  constructor(options: KernelOptions) {
    this.id = options.id;
    this.spec = options.spec;
    this.provisioner = options.provisioner;
    this.#options = options;
    this.#log = options.log.with({ kernel_id: options.id, kernelspec: options.spec.name });
    this.#connection = new KernelConnection({
      kernelId: this.id,
      log: this.#log,
      onIopub: (message, parent) => this.#onIopub(message, parent),
      onOwnReply: (message) => {
        if (message.header.msg_type === 'kernel_info_reply') this.#handshake?.replied();
      },
      onStdinConnected: () => this.#handshake?.stdinConnected(),
    });
  }

  get name(): string {
    return this.spec.name;
  }

  get pid(): number | undefined {
    return this.#process.pid;
  }

  /** True once the kernel answered kernel_info and our iopub subscription is live. */
  get ready(): boolean {
    return this.#readiness.ready;
  }

  /** True once the kernel has been shut down or declared dead: it will never be ready again. */
  get gone(): boolean {
    return this.#gone;
  }

  /** Resolves when the kernel is ready, or after `timeoutMs` (whichever comes first). */
  whenReady(timeoutMs = this.#options.kernelInfoTimeout * 1000): Promise<boolean> {
    if (this.#gone && !this.ready) return Promise.resolve(false);
    return this.#readiness.wait(timeoutMs);
  }

  /** Launch the process and connect. Resolves once launched (not yet ready). */
  async start(): Promise<void> {
    try {
      await this.#launch(false);
    } catch (error) {
      this.#gone = true;
      this.reason = errorMessage(error);
      await this.#cleanUp();
      this.#emit('shutdown');
      throw error;
    }
  }

  /**
   * Queue a message for the kernel; replies and input requests go to `requester`. Held while the
   * kernel is not ready. Returns false when the message was refused (an input_reply nobody asked for).
   */
  send(channel: RequestChannel, message: RawMessage, header: RequestHeader, requester: Requester): boolean {
    if (this.#gone) return false;
    return this.#connection.send(channel, message, header, requester);
  }

  /** Bytes of `requester`'s messages still waiting to go to the kernel. */
  backlog(requester: Requester): number {
    return this.#connection.backlog(requester);
  }

  /** A sender left: drop what it still had queued and the replies it awaited. */
  forget(requester: Requester): { messages: number; bytes: number } {
    return this.#connection.forget(requester);
  }

  /** Interrupt by signal or by message, as the kernelspec's interrupt_mode says. */
  async interrupt(): Promise<void> {
    if (this.spec.spec.interrupt_mode === 'message') this.#connection.sendOwn('control', 'interrupt_request', {});
    else if (this.#process.launched) await this.provisioner.signal('SIGINT');
  }

  /** Stop the process and start a new one with the same id, ports and key. Resolves once launched. */
  restart(): Promise<void> {
    return this.#serially(async () => {
      if (this.#gone) throw new Error(`kernel ${this.id} is shut down`);
      metrics.kernelRestarts.labels({ kernelspec: this.name, cause: 'requested' }).inc();
      const wasReady = this.ready;
      // From here on, client messages wait for the new process instead of reaching the dying one.
      this.#setNotReady();
      this.#stopping = true;
      try {
        await this.#stopProcess(true, wasReady);
        await this.#connection.drainIopub();
        this.#connection.disconnect('was restarted');
        if (this.#gone) return;
        await this.#launch(false);
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
      await this.#stopProcess(false, this.ready);
      await this.#cleanUp();
      this.#emit('shutdown');
    });
  }

  /** Last resort when the gateway exits without a clean shutdown: kill the process, remove its files. */
  killNow(): void {
    this.provisioner.killNow();
  }

  /** The REST model; `connections` is the bridge's count of clients (the kernel does not know them). */
  model(connections: number): KernelModel {
    const model: KernelModel = {
      id: this.id,
      name: this.name,
      last_activity: isoNow(this.lastActivity),
      execution_state: this.executionState,
      connections,
    };
    if (this.reason) model.reason = this.reason;
    const provisioner = this.provisioner.model?.();
    if (provisioner) model.provisioner = provisioner;
    return model;
  }

  /** Lifecycle operations (restart, shutdown, auto-restart) run one at a time, in order. */
  #serially<T>(operation: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(operation);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  // ---- process ----

  async #launch(newPorts: boolean): Promise<void> {
    const launched = await this.provisioner.launch({
      key: this.#connection.key,
      signatureScheme: this.#connection.signatureScheme,
      cwd: this.#options.cwd,
      env: this.#options.env,
      newPorts,
    });
    if (this.#gone) {
      // Shut down while the launch was under way (a job waiting in a queue): nothing may outlive that.
      await this.provisioner.signal('SIGKILL');
      await this.provisioner.cleanup();
      throw new Error(`kernel ${this.id} was shut down while it started`);
    }
    this.#process.watch(launched, (status) => this.#onExit(status));
    this.#connection.connect(launched.connection);
    this.executionState = 'starting';
    this.#log.info(`kernel ${this.id} (${this.name}) started${launched.pid ? `, pid ${launched.pid}` : ''}`);
    this.#startHandshake();
  }

  /** The current process ended (not the gateway's doing when neither stopping nor gone). */
  #onExit(status: ExitStatus): void {
    if (this.#stopping || this.#gone) return;
    const how = status.signal ? `signal ${status.signal}` : `exit code ${status.code}`;
    const final = status.final ?? (this.#options.autoRestart === false ? 'its process ended and it is not restarted' : undefined);
    if (final) {
      this.#log.warn(`kernel ${this.id} (${this.name}) is gone (${how}): ${final}`);
      void this.#serially(() => this.#die(final));
      return;
    }
    this.#log.warn(`kernel ${this.id} (${this.name}) died (${how})`);
    void this.#serially(() => this.#autoRestart());
  }

  /** After an unexpected death: restart, unless it keeps dying; then it is dead and removed. */
  async #autoRestart(): Promise<void> {
    if (this.#gone) return;
    await this.#connection.drainIopub();
    const attempt = this.#restarts.died();
    this.#setNotReady();
    if (attempt === undefined) {
      const tail = this.provisioner.lastOutput().trim().split('\n').slice(-5).join('\n');
      return this.#die(`kernel died ${RESTART_LIMIT + 1} times in a row${tail ? `; last output:\n${tail}` : ''}`);
    }
    this.executionState = 'restarting';
    metrics.kernelRestarts.labels({ kernelspec: this.name, cause: 'auto' }).inc();
    this.#emit('restarting');
    this.#connection.disconnect('died');
    this.#log.info(`kernel ${this.id} restarting (attempt ${attempt} of ${RESTART_LIMIT})`);
    await this.provisioner.signal('SIGKILL');
    try {
      // A kernel that never came up may have lost its ports to another process: take new ones.
      await this.#launch(!this.#restarts.everReady);
      this.#emit('restarted');
    } catch (error) {
      this.#log.error(`kernel ${this.id}: restart failed: ${errorMessage(error)}`);
      void this.#serially(() => this.#autoRestart());
    }
  }

  /** The kernel cannot come back: clients are told `dead`, and it goes. */
  async #die(reason: string): Promise<void> {
    if (this.#gone) return;
    this.reason = reason;
    this.#log.error(`kernel ${this.id} (${this.name}) is dead: ${reason}`);
    this.executionState = 'dead';
    this.#gone = true;
    this.#setNotReady();
    this.#emit('dead');
    this.#connection.disconnect('died');
    await this.#cleanUp();
  }

  /** interrupt, shutdown_request, SIGTERM, SIGKILL: each step only if the process is still there. */
  async #stopProcess(restart: boolean, polite: boolean): Promise<void> {
    if (!this.#process.launched) return;
    if (this.#process.exited) {
      // The leader is gone; whatever it started in its group goes too.
      await this.provisioner.signal('SIGKILL');
      return;
    }
    // As jupyter_client: interrupt first, so a kernel stuck in a computation reaches its shutdown handler.
    // Not while it is still starting: SIGINT during interpreter start-up is a fatal error, not an interrupt.
    if (polite) {
      await this.interrupt();
      this.#connection.sendOwn('control', 'shutdown_request', { restart });
      if (await this.#process.waitExit(2500)) return this.provisioner.signal('SIGKILL');
      this.#log.warn(`kernel ${this.id} did not exit after shutdown_request; sending SIGTERM`);
    }
    // A kernel that has not answered kernel_info will not answer shutdown_request either.
    await this.provisioner.signal('SIGTERM');
    if (await this.#process.waitExit(2500)) return this.provisioner.signal('SIGKILL');
    this.#log.warn(`kernel ${this.id} did not exit after SIGTERM; sending SIGKILL`);
    await this.provisioner.signal('SIGKILL');
    if (!(await this.#process.waitExit(5000))) this.#log.error(`kernel ${this.id} (pid ${this.pid}) survived SIGKILL`);
  }

  async #cleanUp(): Promise<void> {
    this.#setNotReady();
    this.#readiness.fail();
    this.#handshake?.stop();
    this.#handshake = undefined;
    this.#connection.disconnect();
    await this.provisioner.cleanup();
  }

  #onIopub(message: KernelMessage, parent: MessageHeader | undefined): void {
    if (parent?.session === this.#connection.factory.session && parent.msg_type === 'kernel_info_request') {
      // Traffic caused by our own probes: it proves the subscription is live; clients never asked for it.
      this.#handshake?.iopubSeen();
      if (this.executionState === 'starting') this.executionState = 'idle';
      return;
    }
    trackActivity(this, message, parent);
    for (const listener of this.iopubListeners) listener(message);
  }

  // ---- readiness ----

  #startHandshake(): void {
    this.#handshake?.stop();
    // A first start has the manager's startup timeout; after a restart, clients are let in at the deadline anyway.
    const deadlineMs = this.#restarts.everReady ? this.#options.kernelInfoTimeout * 1000 : undefined;
    this.#handshake = new Handshake({
      probe: () => this.#connection.sendOwn('shell', 'kernel_info_request', {}),
      deadlineMs,
      done: (timedOut) => {
        if (timedOut) {
          this.#log.warn(
            `kernel ${this.id} (${this.name}) did not answer kernel_info within ${this.#options.kernelInfoTimeout} s; ` +
              "letting clients in anyway (check the kernel's output above)",
          );
        }
        this.#handshake = undefined;
        this.#restarts.everReady = true;
        if (this.executionState === 'starting') this.executionState = 'idle';
        this.#connection.setOpen(true);
        this.#readiness.set(true);
      },
    });
  }

  #setNotReady(): void {
    this.#readiness.set(false);
    this.#connection.setOpen(false);
  }

  #emit(event: LifecycleEvent): void {
    for (const listener of this.lifecycleListeners) {
      try {
        listener(event);
      } catch (error) {
        this.#log.error(`kernel ${this.id}: a ${event} listener failed: ${errorDetail(error)}`);
      }
    }
  }
}
