/**
 * Fake pool kernels for notebook-http tests: each runs "code" by a small script language, so tests can
 * make executions print, fail, sleep, hang (interruptibly or not) and kernels die.
 *
 * A cell's code is read line by line; lines the fake does not know are ignored (so annotation comments
 * and Python-looking setup code are harmless):
 *   print <text>        stdout stream "<text>\n"            stderr <text>   stderr stream
 *   result <json>       execute_result with that data bundle
 *   raise <name> <value> error output
 *   sleep <ms>          wait (aborted by an interrupt: KeyboardInterrupt error)
 *   hang                wait until interrupted               hang-hard   wait forever, ignore interrupts
 *   die                 the kernel dies
 *   echo-request        prints the REQUEST value last assigned (for request tests)
 *   request <a.b.c>     prints that member of the parsed REQUEST (JSON unless a string), then a newline
 *   set <name> <value>  / get <name>: per-kernel memory; remember <name> <a.b>: set it from REQUEST
 * An assignment made by requestAssignment (REQUEST = "...") is understood for Python syntax, alone or
 * in front of the first line of the code (assignedSource).
 */
import type { Logger } from '../../src/log.ts';
import type { KernelOutput, KernelSource, PoolKernel } from '../../src/notebook-http/pool-kernel.ts';

let nextId = 1;

export class FakeKernel implements PoolKernel {
  readonly id: string;
  alive = true;
  /** Every code string executed, in order. */
  readonly executed: string[] = [];
  interrupts = 0;
  shutdowns = 0;
  /** Executions asked for and not yet answered (the pool must never have two at once on a kernel). */
  inFlight = 0;
  maxInFlight = 0;
  readonly memory = new Map<string, string>();
  request: string | undefined;
  #deathCallbacks: Array<() => void> = [];
  /** Like a real kernel, one execution at a time: an abandoned one still runs before the next. */
  #previous: Promise<unknown> = Promise.resolve();
  #interruptHandlers = new Set<() => void>();
  #deathHandlers = new Set<() => void>();

  constructor(readonly name = `fake-${nextId++}`) {
    this.id = name;
  }

  async execute(code: string, signal: AbortSignal): Promise<KernelOutput[]> {
    if (signal.aborted) throw signal.reason;
    if (!this.alive) throw new Error(`kernel ${this.id} is dead`);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const run = this.#previous.then(() => {
      this.executed.push(code);
      return this.#run(code);
    });
    this.#previous = run.catch(() => undefined);
    try {
      return await this.#withAbort(run, signal);
    } finally {
      this.inFlight--;
    }
  }

  async interrupt(): Promise<void> {
    this.interrupts++;
    for (const handler of [...this.#interruptHandlers]) handler();
  }

  onDeath(callback: () => void): void {
    this.#deathCallbacks.push(callback);
  }

  async shutdown(): Promise<void> {
    this.shutdowns++;
    this.alive = false;
  }

  /** The kernel process ends: pending executions fail, death callbacks run. */
  die(): void {
    if (!this.alive) return;
    this.alive = false;
    for (const handler of [...this.#deathHandlers]) handler();
    for (const callback of this.#deathCallbacks.splice(0)) callback();
  }

  #withAbort<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  async #run(code: string): Promise<KernelOutput[]> {
    const outputs: KernelOutput[] = [];
    // REQUEST = "..." alone, or in front of the cell's first line (assignedSource).
    const assignment = /^REQUEST = "((?:[^"\\]|\\.)*)"(?:$| )/.exec(code);
    if (assignment) {
      this.request = JSON.parse(`"${assignment[1]}"`) as string;
      code = code.slice(assignment[0].length);
    }
    for (const line of code.split('\n')) {
      const [word, ...rest] = line.trim().split(' ');
      const arg = rest.join(' ');
      switch (word) {
        case 'print':
          outputs.push({ type: 'stream', name: 'stdout', text: arg + '\n' });
          break;
        case 'stderr':
          outputs.push({ type: 'stream', name: 'stderr', text: arg + '\n' });
          break;
        case 'result':
          outputs.push({ type: 'execute_result', data: JSON.parse(arg) as Record<string, unknown> });
          break;
        case 'raise':
          outputs.push({ type: 'error', ename: rest[0], evalue: rest.slice(1).join(' '), traceback: [] });
          return outputs;
        case 'echo-request':
          outputs.push({ type: 'stream', name: 'stdout', text: this.request ?? '' });
          break;
        case 'request':
          outputs.push({ type: 'stream', name: 'stdout', text: `${this.#requestMember(arg)}\n` });
          break;
        case 'remember':
          this.memory.set(rest[0], this.#requestMember(rest[1] ?? ''));
          break;
        case 'set':
          this.memory.set(rest[0], rest.slice(1).join(' '));
          break;
        case 'get':
          outputs.push({ type: 'stream', name: 'stdout', text: `${this.memory.get(arg) ?? ''}\n` });
          break;
        case 'sleep':
          if (await this.#wait(Number(arg), true)) return [...outputs, interrupted()];
          break;
        case 'hang':
          if (await this.#wait(Infinity, true)) return [...outputs, interrupted()];
          break;
        case 'hang-hard':
          await this.#wait(Infinity, false);
          break;
        case 'die':
          queueMicrotask(() => this.die());
          await this.#wait(Infinity, false);
          break;
      }
    }
    return outputs;
  }

  #requestMember(path: string): string {
    let value: unknown = JSON.parse(this.request ?? '{}');
    for (const key of path.split('.').filter(Boolean)) value = (value as Record<string, unknown>)?.[key];
    return typeof value === 'string' ? value : JSON.stringify(value);
  }

  /** Resolves true when interrupted (if interruptible), false when the time is up; rejects when the kernel dies. */
  #wait(ms: number, interruptible: boolean): Promise<boolean> {
    return new Promise((resolve, reject) => {
      const timer = Number.isFinite(ms) ? setTimeout(() => done(false), ms) : undefined;
      const onInterrupt = () => done(true);
      const onDeath = () => {
        cleanup();
        reject(new Error(`kernel ${this.id} died`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        this.#interruptHandlers.delete(onInterrupt);
        this.#deathHandlers.delete(onDeath);
      };
      function done(value: boolean): void {
        cleanup();
        resolve(value);
      }
      if (interruptible) this.#interruptHandlers.add(onInterrupt);
      this.#deathHandlers.add(onDeath);
    });
  }
}

function interrupted(): KernelOutput {
  return { type: 'error', ename: 'KeyboardInterrupt', evalue: '', traceback: [] };
}

/** A KernelSource of FakeKernels that records what it started; `failNext` makes starts fail. */
export class FakeKernelSource implements KernelSource {
  readonly started: FakeKernel[] = [];
  starts = 0;
  failNext = 0;
  /** Delay of each start, ms. */
  delayMs = 0;
  /** Code every new kernel runs first (the setup cells). */
  setup: string[] = [];

  constructor(readonly prefix = 'k') {}

  async start(): Promise<FakeKernel> {
    this.starts++;
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('setup cell 2 failed: NameError: x');
    }
    const kernel = new FakeKernel(`${this.prefix}${this.started.length + 1}`);
    for (const code of this.setup) {
      const outputs = await kernel.execute(code, new AbortController().signal);
      const error = outputs.find((o) => o.type === 'error');
      if (error) throw new Error(`setup failed in ${kernel.id}`);
    }
    this.started.push(kernel);
    return kernel;
  }
}

/** A Logger that keeps its lines (and prints nothing). */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const at = (level: string) => (message: string) => void lines.push(`${level} ${message}`);
  const logger: Logger & { lines: string[] } = {
    level: 'DEBUG', lines, debug: at('DEBUG'), info: at('INFO'), warn: at('WARN'), error: at('ERROR'), critical: at('CRITICAL'),
    with: () => logger,
  };
  return logger;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll until `check` holds (or fail after `ms`). */
export async function eventually(check: () => boolean, ms = 2000, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
