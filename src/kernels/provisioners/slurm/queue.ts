/**
 * One look at the queue for every job the gateway waits on: a single `squeue` per interval, however
 * many kernels are starting or stopping, so a busy gateway does not load the Slurm controller with a
 * call per job (site policies often forbid that).
 */
import type { QueuedJob, SlurmCommands } from './commands.ts';

/** Between two looks; shorter while some job is expected to leave the queue at any moment. */
const INTERVAL_MS = 1000;
const FAST_INTERVAL_MS = 200;

type Listener = (job: QueuedJob | undefined) => void;

interface Watch {
  listener: Listener;
  fast: boolean;
}

export class QueuePoller {
  readonly #watches = new Map<string, Set<Watch>>();
  #timer: NodeJS.Timeout | undefined;
  #polling = false;

  constructor(
    private readonly commands: SlurmCommands,
    private readonly onError: (error: Error) => void,
  ) {}

  /**
   * Calls `listener` after each look with the job as squeue shows it (undefined: it has left the
   * queue) until the returned function is called. `fast`: look more often (a job about to end).
   */
  watch(jobId: string, listener: Listener, fast = false): () => void {
    const watch = { listener, fast };
    let watches = this.#watches.get(jobId);
    if (!watches) this.#watches.set(jobId, (watches = new Set()));
    watches.add(watch);
    this.#schedule(fast ? FAST_INTERVAL_MS : 250);
    return () => {
      watches.delete(watch);
      if (watches.size === 0 && this.#watches.get(jobId) === watches) this.#watches.delete(jobId);
    };
  }

  #schedule(withinMs: number): void {
    if (this.#polling || this.#watches.size === 0) return;
    if (this.#timer) {
      // Never later than asked for.
      if (withinMs >= INTERVAL_MS) return;
      clearTimeout(this.#timer);
    }
    this.#timer = setTimeout(() => void this.#poll(), withinMs);
    this.#timer.unref();
  }

  async #poll(): Promise<void> {
    this.#timer = undefined;
    this.#polling = true;
    const ids = [...this.#watches.keys()];
    let jobs: Map<string, QueuedJob> | undefined;
    try {
      jobs = await this.commands.queuedJobs(ids);
    } catch (error) {
      this.onError(error as Error);
    }
    this.#polling = false;
    if (jobs) {
      for (const id of ids) for (const watch of [...(this.#watches.get(id) ?? [])]) watch.listener(jobs.get(id));
    }
    const fast = [...this.#watches.values()].some((watches) => [...watches].some((w) => w.fast));
    this.#schedule(fast ? FAST_INTERVAL_MS : INTERVAL_MS);
  }
}
