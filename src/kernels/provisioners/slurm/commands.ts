/**
 * The Slurm commands the provisioner runs: sbatch, squeue, scontrol and scancel, as the gateway's
 * user, with a minimal environment, bounded output and a timeout each.
 */
import { execFile, spawnSync } from 'node:child_process';

/** A job as squeue shows it while it is queued or running. */
export interface QueuedJob {
  /** PENDING, RUNNING, COMPLETING, ... */
  state: string;
  node: string;
  /** Why it waits (Resources, Priority, JobHeldUser, ...); "None" once running. */
  reason: string;
}

/** A job as scontrol remembers it after it ended (for MinJobAge, 300 s by default). */
export interface EndedJob {
  state: string;
  reason: string;
  exitCode: string;
}

const COMMAND_TIMEOUT_MS = 30_000;
const MAX_OUTPUT = 1024 * 1024;

export class SlurmCommandError extends Error {}

export class SlurmCommands {
  /** `env`: what every command runs with (PATH, SLURM_CONF, ...: never the gateway's whole environment). */
  constructor(private readonly env: Record<string, string>) {}

  /** Submit a batch script (on stdin); returns the job id. */
  submit(args: readonly string[], script: string, env: Record<string, string>, cwd: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = execFile('sbatch', args, { env, cwd, timeout: COMMAND_TIMEOUT_MS, maxBuffer: MAX_OUTPUT }, (error, stdout, stderr) => {
        if (error) return reject(new SlurmCommandError(`sbatch failed: ${describe(error, stderr)}`));
        // --parsable: "<job id>" or "<job id>;<cluster>"
        const id = /^(\d+)(?:;\S+)?\s*$/.exec(stdout)?.[1];
        if (!id) return reject(new SlurmCommandError(`sbatch printed no job id: ${JSON.stringify(stdout.slice(0, 200))}`));
        resolve(id);
      });
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(script);
    });
  }

  /** The jobs squeue lists of `jobIds` (those it does not list have left the queue), in one call. */
  async queuedJobs(jobIds: readonly string[]): Promise<Map<string, QueuedJob>> {
    const jobs = new Map<string, QueuedJob>();
    let out: string;
    try {
      out = await this.#run('squeue', ['-h', '-j', jobIds.join(','), '-o', '%i|%T|%N|%r']);
    } catch (error) {
      // Only jobs long gone (past MinJobAge): "Invalid job id specified".
      if (/invalid job id/i.test((error as Error).message)) return jobs;
      throw error;
    }
    for (const line of out.split('\n')) {
      const [id, state, node, reason] = line.trim().split('|');
      if (id && state !== undefined) jobs.set(id, { state, node: node ?? '', reason: reason ?? '' });
    }
    return jobs;
  }

  /** What scontrol says of a job (its final state once it ended); undefined when it no longer knows it. */
  async record(jobId: string): Promise<EndedJob | undefined> {
    let out: string;
    try {
      out = await this.#run('scontrol', ['-o', 'show', 'job', jobId]);
    } catch {
      return undefined;
    }
    const field = (name: string) => new RegExp(`(?:^|\\s)${name}=(\\S*)`).exec(out)?.[1] ?? '';
    return { state: field('JobState'), reason: field('Reason'), exitCode: field('ExitCode') };
  }

  async cancel(jobId: string): Promise<void> {
    try {
      await this.#run('scancel', [jobId]);
    } catch {
      /* already ended */
    }
  }

  /** For the gateway's last moments (process exit): synchronous, bounded. */
  cancelNow(jobId: string): void {
    spawnSync('scancel', [jobId], { env: this.env, timeout: 3000, stdio: 'ignore' });
  }

  #run(command: string, args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(command, args, { env: this.env, timeout: COMMAND_TIMEOUT_MS, maxBuffer: MAX_OUTPUT }, (error, stdout, stderr) => {
        if (error) reject(new SlurmCommandError(`${command} ${args.join(' ')}: ${describe(error, stderr)}`));
        else resolve(stdout);
      });
    });
  }
}

function describe(error: Error & { code?: unknown }, stderr: string): string {
  if (error.code === 'ENOENT') return 'not found on PATH (is this a Slurm submit host?)';
  const text = stderr.trim().split('\n').slice(-3).join(' ');
  return text || error.message;
}
