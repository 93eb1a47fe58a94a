/**
 * The pool of kernels serving a notebook's endpoints.
 *
 * As the reference's ManagedKernelPool: a fixed number of kernels, all seeded before the pool serves;
 * one request per kernel at a time; strict rotation (a request takes the kernel at the head of the idle
 * list, a kernel that finishes goes to its tail); requests beyond the free kernels wait in arrival order.
 *
 * Beyond the reference:
 *  - the wait is bounded (`maxQueued`): beyond it a request is refused at once (`queue-full`, with an
 *    estimate of when to retry), so a burst cannot pile up without limit;
 *  - a request has `requestTimeoutMs` from its arrival; if it is still queued then it just leaves the
 *    queue, if it is running its kernel is interrupted and, unless the kernel then answers an empty
 *    execution within `interruptGraceMs`, replaced;
 *  - a kernel that dies is replaced by a freshly started and seeded one (retrying with back-off while
 *    that fails), so the pool does not shrink; the other kernels serve meanwhile;
 *  - drain() lets a pool finish what it accepted before its kernels stop (a reloaded notebook's old
 *    pool), close() stops at once.
 */
import type { Logger } from '../log.ts';
import type { KernelSource, PoolKernel } from './pool-kernel.ts';

export interface PoolOptions {
  /** Number of kernels (at least 1). */
  size: number;
  /** Requests that may wait for a kernel (0: none wait). */
  maxQueued: number;
  /** Time a request may take from arrival to result, ms (0: no limit, as the reference). */
  requestTimeoutMs: number;
  /** After an interrupt, time the kernel has to answer again before it is replaced, ms. */
  interruptGraceMs: number;
  log: Logger;
  /** Waits between attempts to start a replacement kernel: doubling from `first` up to `max`, ms. */
  replacementBackoffMs?: { first: number; max: number };
}

export type PoolOutcome<T> =
  | { kind: 'done'; value: T }
  /** Every kernel busy and the queue full. */
  | { kind: 'queue-full'; retryAfterSeconds: number }
  | { kind: 'timeout'; phase: 'queued' | 'running' }
  /** The kernel died while running the request. */
  | { kind: 'kernel-died' }
  /** The job failed for another reason than the kernel dying (the kernel serves on). */
  | { kind: 'failed'; error: unknown }
  /** The caller's signal aborted while the request was queued. */
  | { kind: 'cancelled' }
  /** The pool is draining or closed. */
  | { kind: 'closed' };

/** The work a request does with the kernel it was given; `signal` aborts on timeout or close. */
export type PoolJob<T> = (kernel: PoolKernel, signal: AbortSignal) => Promise<T>;

export interface PoolStats {
  size: number;
  idle: number;
  busy: number;
  /** Being interrupted after a timeout. */
  recovering: number;
  /** Replacements being started. */
  starting: number;
  queued: number;
}

interface Waiter {
  take(kernel: PoolKernel): void;
  leave(outcome: PoolOutcome<never>): void;
}

const CLOSED = Symbol('closed');

export class KernelPool {
  readonly #source: KernelSource;
  readonly #options: PoolOptions;
  readonly #log: Logger;
  /** Every kernel the pool owns, until it is retired. */
  readonly #members = new Set<PoolKernel>();
  readonly #idle: PoolKernel[] = [];
  readonly #queue: Waiter[] = [];
  readonly #running = new Set<AbortController>();
  /** For each busy kernel, what ends its request if it dies. */
  readonly #onBusyDeath = new Map<PoolKernel, () => void>();
  #recovering = 0;
  #starting = 0;
  #state: 'open' | 'draining' | 'closed' = 'open';
  /** Aborted by close(): ends back-off waits and recoveries. */
  readonly #closing = new AbortController();
  #drained: (() => void) | undefined;
  #draining: Promise<void> | undefined;
  #closed: Promise<void> | undefined;
  /** Moving average of how long a request holds its kernel, for Retry-After. */
  #averageServiceMs = 0;

  private constructor(source: KernelSource, options: PoolOptions) {
    this.#source = source;
    this.#options = options;
    this.#log = options.log;
  }

  /** Start and seed `size` kernels; when any fails, the others are shut down and the error thrown. */
  static async start(source: KernelSource, options: PoolOptions): Promise<KernelPool> {
    if (!Number.isInteger(options.size) || options.size < 1) throw new RangeError(`a kernel pool needs at least 1 kernel, not ${options.size}`);
    const pool = new KernelPool(source, options);
    const started = await Promise.allSettled(Array.from({ length: options.size }, () => source.start()));
    const failure = started.find((result) => result.status === 'rejected');
    if (failure) {
      await Promise.allSettled(started.map((result) => (result.status === 'fulfilled' ? result.value.shutdown() : undefined)));
      throw failure.reason;
    }
    for (const result of started) pool.#admit((result as PromiseFulfilledResult<PoolKernel>).value);
    return pool;
  }

  get stats(): PoolStats {
    return {
      size: this.#options.size,
      idle: this.#idle.length,
      busy: this.#running.size,
      recovering: this.#recovering,
      starting: this.#starting,
      queued: this.#queue.length,
    };
  }

  /**
   * Run `job` on the next free kernel. Never rejects: every way a request can end is an outcome.
   * `signal` (the client going away) takes the request out of the queue; a running job is not stopped.
   */
  run<T>(job: PoolJob<T>, signal?: AbortSignal): Promise<PoolOutcome<T>> {
    if (this.#state !== 'open') return Promise.resolve({ kind: 'closed' });
    if (this.#idle.length === 0 && this.#queue.length >= this.#options.maxQueued) {
      return Promise.resolve({ kind: 'queue-full', retryAfterSeconds: this.#retryAfterSeconds() });
    }
    return new Promise((resolve) => {
      let controller: AbortController | undefined;
      let deadline: ReturnType<typeof setTimeout> | undefined;
      let settled = false;
      const finish = (outcome: PoolOutcome<T>): void => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        signal?.removeEventListener('abort', onCancel);
        resolve(outcome);
      };
      const leaveQueue = (outcome: PoolOutcome<never>): void => {
        const index = this.#queue.indexOf(waiter);
        if (index >= 0) this.#queue.splice(index, 1);
        finish(outcome);
        this.#checkDrained();
      };
      const waiter: Waiter = {
        take: (kernel) => {
          controller = new AbortController();
          void this.#execute(kernel, job, controller).then(finish);
        },
        leave: leaveQueue,
      };
      const onCancel = (): void => {
        if (!controller) leaveQueue({ kind: 'cancelled' });
      };
      if (this.#options.requestTimeoutMs > 0) {
        deadline = setTimeout(() => {
          if (controller) controller.abort(new RequestTimeout());
          else leaveQueue({ kind: 'timeout', phase: 'queued' });
        }, this.#options.requestTimeoutMs);
      }
      if (signal?.aborted) return finish({ kind: 'cancelled' });
      signal?.addEventListener('abort', onCancel, { once: true });
      this.#queue.push(waiter);
      this.#pump();
    });
  }

  /** Take no new requests, finish the queued and running ones, then shut every kernel down. */
  drain(): Promise<void> {
    if (this.#state === 'open') {
      this.#state = 'draining';
      this.#draining = new Promise<void>((resolve) => {
        this.#drained = resolve;
        this.#checkDrained();
      }).then(() => this.close());
    }
    return this.#draining ?? this.close();
  }

  /** Stop now: queued requests end `closed`, running jobs are aborted, every kernel is shut down. */
  close(): Promise<void> {
    this.#closed ??= this.#closeNow();
    return this.#closed;
  }

  async #closeNow(): Promise<void> {
    this.#state = 'closed';
    this.#closing.abort();
    this.#drained?.();
    this.#drained = undefined;
    for (const waiter of this.#queue.splice(0)) waiter.leave({ kind: 'closed' });
    for (const controller of this.#running) controller.abort(CLOSED);
    this.#idle.length = 0;
    const kernels = [...this.#members];
    this.#members.clear();
    await Promise.allSettled(kernels.map((kernel) => this.#shutdown(kernel)));
  }

  #admit(kernel: PoolKernel): void {
    this.#members.add(kernel);
    if (!kernel.alive) {
      this.#log.warn(`notebook-http: kernel ${kernel.id} died before it could serve; starting a replacement`);
      return this.#retire(kernel);
    }
    kernel.onDeath(() => this.#onDeath(kernel));
    this.#idle.push(kernel);
    this.#pump();
  }

  /** Hand free kernels to waiting requests: head of the idle list to the longest-waiting request. */
  #pump(): void {
    while (this.#idle.length > 0 && this.#queue.length > 0) {
      const kernel = this.#idle.shift()!;
      this.#queue.shift()!.take(kernel);
    }
  }

  async #execute<T>(kernel: PoolKernel, job: PoolJob<T>, controller: AbortController): Promise<PoolOutcome<T>> {
    this.#running.add(controller);
    const started = Date.now();
    const ended = await new Promise<{ value: T } | { error: unknown } | { died: true } | { aborted: unknown }>((resolve) => {
      const onAbort = () => resolve({ aborted: controller.signal.reason });
      controller.signal.addEventListener('abort', onAbort, { once: true });
      if (!kernel.alive) resolve({ died: true });
      else this.#onBusyDeath.set(kernel, () => resolve({ died: true }));
      job(kernel, controller.signal).then(
        (value) => resolve({ value }),
        (error: unknown) => resolve(kernel.alive ? { error } : { died: true }),
      );
    });
    this.#running.delete(controller);
    this.#onBusyDeath.delete(kernel);
    if ('value' in ended) {
      this.#averageServiceMs = this.#averageServiceMs === 0 ? Date.now() - started : 0.8 * this.#averageServiceMs + 0.2 * (Date.now() - started);
      this.#release(kernel);
      return { kind: 'done', value: ended.value };
    }
    if ('error' in ended) {
      this.#release(kernel);
      return { kind: 'failed', error: ended.error };
    }
    if ('died' in ended) {
      this.#log.warn(`notebook-http: kernel ${kernel.id} died while serving a request; starting a replacement`);
      this.#retire(kernel);
      this.#checkDrained();
      return { kind: 'kernel-died' };
    }
    if (ended.aborted === CLOSED) return { kind: 'closed' };
    void this.#recover(kernel);
    return { kind: 'timeout', phase: 'running' };
  }

  /** After a timeout: interrupt, and keep the kernel only if it answers again within the grace period. */
  async #recover(kernel: PoolKernel): Promise<void> {
    this.#recovering++;
    const grace = new AbortController();
    const timer = setTimeout(() => grace.abort(new Error('no answer after the interrupt')), this.#options.interruptGraceMs);
    const onClose = () => grace.abort(new Error('the pool is closing'));
    this.#closing.signal.addEventListener('abort', onClose, { once: true });
    let answered = false;
    try {
      await Promise.race([
        kernel.interrupt(),
        new Promise((_, reject) => grace.signal.addEventListener('abort', () => reject(grace.signal.reason), { once: true })),
      ]);
      await kernel.execute('', grace.signal);
      answered = true;
    } catch {
      answered = false;
    } finally {
      clearTimeout(timer);
      this.#closing.signal.removeEventListener('abort', onClose);
    }
    this.#recovering--;
    if (answered) {
      this.#log.info(`notebook-http: kernel ${kernel.id} was interrupted after a request timed out and serves again`);
      this.#release(kernel);
    } else {
      if (this.#state !== 'closed') {
        this.#log.warn(`notebook-http: kernel ${kernel.id} did not answer within ${this.#options.interruptGraceMs} ms of an interrupt; replacing it`);
      }
      this.#retire(kernel);
    }
    this.#checkDrained();
  }

  /** A kernel back from a request: to the tail of the idle list, or retired if it died meanwhile. */
  #release(kernel: PoolKernel): void {
    if (!this.#members.has(kernel)) return;
    if (!kernel.alive) {
      this.#retire(kernel);
    } else {
      this.#idle.push(kernel);
      this.#pump();
    }
    this.#checkDrained();
  }

  #onDeath(kernel: PoolKernel): void {
    this.#onBusyDeath.get(kernel)?.();
    const index = this.#idle.indexOf(kernel);
    if (index >= 0) {
      this.#idle.splice(index, 1);
      this.#log.warn(`notebook-http: idle kernel ${kernel.id} died; starting a replacement`);
      this.#retire(kernel);
    }
  }

  /** Take a kernel out of the pool for good, shut it down, and start a replacement if still needed. */
  #retire(kernel: PoolKernel): void {
    if (!this.#members.delete(kernel)) return;
    const index = this.#idle.indexOf(kernel);
    if (index >= 0) this.#idle.splice(index, 1);
    void this.#shutdown(kernel);
    if (this.#needsKernels()) void this.#replace();
  }

  #needsKernels(): boolean {
    return this.#state === 'open' || (this.#state === 'draining' && this.#queue.length > 0);
  }

  async #replace(): Promise<void> {
    this.#starting++;
    const backoff = this.#options.replacementBackoffMs ?? { first: 1000, max: 60_000 };
    let wait = backoff.first;
    try {
      while (this.#needsKernels()) {
        let kernel: PoolKernel;
        try {
          kernel = await this.#source.start();
        } catch (error) {
          this.#log.error(`notebook-http: starting a replacement kernel failed (retrying in ${wait} ms): ${(error as Error).message ?? error}`);
          await abortableSleep(wait, this.#closing.signal);
          wait = Math.min(wait * 2, backoff.max);
          continue;
        }
        if (!this.#needsKernels()) {
          await this.#shutdown(kernel);
          return;
        }
        this.#log.info(`notebook-http: replacement kernel ${kernel.id} is ready`);
        this.#admit(kernel);
        return;
      }
    } finally {
      this.#starting--;
    }
  }

  async #shutdown(kernel: PoolKernel): Promise<void> {
    try {
      await kernel.shutdown();
    } catch (error) {
      this.#log.warn(`notebook-http: shutting down kernel ${kernel.id} failed: ${(error as Error).message ?? error}`);
    }
  }

  #checkDrained(): void {
    if (this.#state === 'draining' && this.#queue.length === 0 && this.#running.size === 0 && this.#recovering === 0) {
      const drained = this.#drained;
      this.#drained = undefined;
      drained?.();
    }
  }

  /** Seconds until a place in the queue is likely free: the queue's length of average requests per kernel. */
  #retryAfterSeconds(): number {
    const estimate = Math.ceil(((this.#queue.length + 1) * this.#averageServiceMs) / this.#options.size / 1000);
    return Math.min(60, Math.max(1, estimate));
  }
}

class RequestTimeout extends Error {
  override name = 'RequestTimeout';
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
