/**
 * The kernel_info handshake after every process start: the gateway asks kernel_info every half
 * second until the kernel has replied AND the gateway's iopub subscription has seen the kernel's
 * status for one of those requests, and the stdin socket has finished its ZeroMQ handshake with the
 * kernel. Only then is the kernel ready, so no client request can run before the subscription that
 * carries its output is live (ZeroMQ's slow-joiner window), and no input request is sent to a stdin
 * connection the kernel does not know yet (its ROUTER would drop it, and the cell would wait forever).
 */
const PROBE_INTERVAL_MS = 500;
/** Where the stdin handshake cannot be observed (or the kernel has no stdin), how long after the reply to stop waiting for it. */
const STDIN_GRACE_MS = 2000;

export interface HandshakeOptions {
  /** Send one kernel_info_request. */
  probe: () => void;
  /** Both conditions hold (or the deadline passed, with `timedOut`). */
  done: (timedOut: boolean) => void;
  /** Milliseconds after which `done(true)` is called anyway; none for a first start (the caller has its own timeout). */
  deadlineMs?: number;
}

export class Handshake {
  #replied = false;
  #iopubSeen = false;
  #stdinConnected = false;
  #finished = false;
  readonly #timer: NodeJS.Timeout;
  #stdinGrace: NodeJS.Timeout | undefined;
  readonly #deadline: NodeJS.Timeout | undefined;
  readonly #done: (timedOut: boolean) => void;

  constructor({ probe, done, deadlineMs }: HandshakeOptions) {
    this.#done = done;
    probe();
    this.#timer = setInterval(probe, PROBE_INTERVAL_MS);
    this.#deadline = deadlineMs === undefined ? undefined : setTimeout(() => this.#finish(true), deadlineMs);
  }

  /** A kernel_info_reply to one of our probes arrived. */
  replied(): void {
    this.#replied = true;
    this.#stdinGrace ??= setTimeout(() => this.stdinConnected(), STDIN_GRACE_MS);
    this.#check();
  }

  /** Our subscription received iopub traffic caused by one of our probes. */
  iopubSeen(): void {
    this.#iopubSeen = true;
    this.#check();
  }

  /** The gateway's stdin socket finished its ZeroMQ handshake with the kernel. */
  stdinConnected(): void {
    this.#stdinConnected = true;
    this.#check();
  }

  stop(): void {
    this.#finished = true;
    clearInterval(this.#timer);
    clearTimeout(this.#deadline);
    clearTimeout(this.#stdinGrace);
  }

  #check(): void {
    if (this.#replied && this.#iopubSeen && this.#stdinConnected) this.#finish(false);
  }

  #finish(timedOut: boolean): void {
    if (this.#finished) return;
    this.stop();
    this.#done(timedOut);
  }
}

/** Whether a kernel is ready, and promises waiting for it to be. */
export class Readiness {
  #ready = false;
  #waiters: Array<(ready: boolean) => void> = [];

  get ready(): boolean {
    return this.#ready;
  }

  /** Resolves true when ready, false after `timeoutMs` or when `fail()` is called. */
  wait(timeoutMs: number): Promise<boolean> {
    if (this.#ready) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#waiters.push((ready) => {
        clearTimeout(timer);
        resolve(ready);
      });
    });
  }

  set(ready: boolean): void {
    this.#ready = ready;
    if (ready) this.#wake(true);
  }

  /** It will not become ready (the kernel is gone): every waiter gets false now. */
  fail(): void {
    this.#ready = false;
    this.#wake(false);
  }

  #wake(ready: boolean): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake(ready);
  }
}
