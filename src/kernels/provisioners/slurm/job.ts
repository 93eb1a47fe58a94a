/**
 * One kernel's Slurm job: submitted, watched in the queue (state, node, pending reason) until its
 * launcher connects or launch_timeout passes, and ended: by itself after a shutdown, by scancel
 * when it does not, and described in words when it ends from outside.
 */
import type { Logger } from '../../../log.ts';
import type { QueuedJob, SlurmCommands } from './commands.ts';
import type { QueuePoller } from './queue.ts';
import { batchScript, sbatchArguments, sbatchEnvironment, type LaunchVariables, type SlurmKernelConfig } from './sbatch.ts';

/** States in which a job no longer runs. */
const FINISHED = new Set(['COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'NODE_FAIL', 'PREEMPTED', 'OUT_OF_MEMORY', 'BOOT_FAIL', 'DEADLINE', 'REVOKED']);
const IN_QUEUE = new Set(['PENDING', 'CONFIGURING', 'REQUEUED', 'REQUEUE_HOLD', 'REQUEUE_FED', 'RESV_DEL_HOLD', 'SUSPENDED']);

const WHY: Record<string, string> = {
  CANCELLED: 'was cancelled',
  TIMEOUT: 'reached its time limit',
  PREEMPTED: 'was preempted',
  NODE_FAIL: 'lost its node',
  OUT_OF_MEMORY: 'ran out of memory',
  DEADLINE: 'passed its deadline',
};

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface Submission {
  config: SlurmKernelConfig;
  resources: string[];
  cwd: string;
  gatewayEnv: NodeJS.ProcessEnv;
  launch: LaunchVariables;
}

export class JobWatch {
  id: string | undefined;
  state = 'SUBMITTING';
  node = '';
  reason = '';
  /** The job is over (or lost to us); endReason says how, for clients. */
  ended = false;
  endReason = '';
  #interrupt: (() => void) | undefined;
  #stopped = false;

  constructor(
    private readonly commands: SlurmCommands,
    private readonly queue: QueuePoller,
    private readonly kernelId: string,
    private readonly log: Logger,
  ) {}

  async submit(s: Submission): Promise<void> {
    const env = sbatchEnvironment(s.gatewayEnv, s.launch);
    const args = sbatchArguments(this.kernelId, s.config, s.resources);
    this.id = await this.commands.submit(args, batchScript(this.kernelId, s.config.launcher), env, s.cwd);
    this.state = 'PENDING';
    // The arguments name no secret; the environment (which holds one) is never logged.
    this.log.info(`kernel ${this.kernelId}: submitted Slurm job ${this.id} (sbatch ${args.join(' ')})`);
  }

  /**
   * Wait for `connected` (the launcher's connection) while watching the queue. Throws when the job
   * ends first, when `launchTimeout` passes (naming Slurm's pending reason), or when stopWaiting().
   */
  waitFor<T>(connected: Promise<T>, deadline: number, launchTimeout: number): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const finish = (settle: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        unwatch();
        this.#interrupt = undefined;
        settle();
      };
      const timer = setTimeout(() => {
        const reason = this.reason && this.reason !== 'None' ? ` (reason: ${this.reason})` : '';
        finish(() => reject(new Error(`Slurm job ${this.id} did not start the kernel within ${launchTimeout} s (launch_timeout); it was ${this.state}${reason} and has been cancelled`)));
      }, Math.max(0, deadline - Date.now()));
      const unwatch = this.queue.watch(this.id!, (queued) => {
        if (queued && !FINISHED.has(queued.state)) return this.#update(queued);
        void this.#refreshRecord().then(() => {
          if (!this.ended) return;
          const hint = "the launcher's messages go to the job's --output, /dev/null unless sbatch_args set it";
          finish(() => reject(new Error(`Slurm job ${this.id} ${this.endReason} before its launcher connected (${hint})`)));
        });
      });
      this.#interrupt = () => finish(() => reject(new Error(`the kernel was shut down while Slurm job ${this.id} waited to start`)));
      if (this.#stopped) this.#interrupt();
      void connected.then((value) =>
        finish(() => {
          this.state = 'RUNNING';
          this.reason = 'None';
          resolve(value);
        }),
      );
    });
  }

  /** The kernel is being shut down: a waitFor under way gives up. */
  stopWaiting(): void {
    this.#stopped = true;
    this.#interrupt?.();
  }

  /** The job ended from outside, or its launcher was lost: find out how (and cancel what is left). */
  async markEnded(fallback: string): Promise<void> {
    if (this.ended || !this.id) return;
    // Slurm marks the job in a moment; a launcher lost while the job runs on is cancelled.
    for (let attempt = 0; attempt < 5 && !this.ended; attempt++) {
      await this.#refreshRecord();
      if (!this.ended) await sleep(200);
    }
    if (!this.ended) {
      await this.cancel();
      this.endReason = `Slurm job ${this.id} ${fallback}; it has been cancelled`;
    }
  }

  /** scancel, unless it already ended. */
  async cancel(): Promise<void> {
    if (!this.id || this.ended) return;
    this.ended = true;
    this.endReason ||= `Slurm job ${this.id} was cancelled by the gateway`;
    await this.commands.cancel(this.id);
  }

  /** After the launcher was told to stop: the job should end by itself in a moment; if not, it is cancelled. */
  async finish(): Promise<void> {
    if (!this.id || this.ended) return;
    const gone = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => settle(false), 5000);
      const settle = (value: boolean) => {
        clearTimeout(timer);
        unwatch();
        resolve(value);
      };
      const unwatch = this.queue.watch(
        this.id!,
        (queued) => {
          if (!queued || queued.state === 'COMPLETING' || FINISHED.has(queued.state)) settle(true);
          else if (IN_QUEUE.has(queued.state)) settle(false); // never started: nothing but scancel ends it
        },
        true,
      );
    });
    if (!gone) return this.cancel();
    this.ended = true;
    this.endReason = `Slurm job ${this.id} has ended`;
  }

  /** Synchronous, for the gateway's last moments. */
  cancelNow(): void {
    if (!this.id || this.ended) return;
    this.ended = true;
    this.commands.cancelNow(this.id);
  }

  #update(queued: QueuedJob): void {
    if (queued.state !== this.state || queued.reason !== this.reason) {
      this.log.info(`kernel ${this.kernelId}: Slurm job ${this.id} is ${queued.state}${queued.reason && queued.reason !== 'None' ? ` (${queued.reason})` : ''}`);
    }
    this.state = queued.state;
    this.node = queued.node;
    this.reason = queued.reason;
  }

  async #refreshRecord(): Promise<void> {
    const record = await this.commands.record(this.id!);
    if (!record) {
      this.state = 'GONE';
      this.ended = true;
      this.endReason = `Slurm job ${this.id} has ended (Slurm no longer knows it)`;
      return;
    }
    this.state = record.state;
    this.reason = record.reason;
    if (!FINISHED.has(record.state)) return;
    this.ended = true;
    const exit = record.exitCode && record.exitCode !== '0:0' ? `, exit code ${record.exitCode}` : '';
    this.endReason = `Slurm job ${this.id} ${WHY[record.state] ?? 'ended'} (${record.state}${exit})`;
  }
}
