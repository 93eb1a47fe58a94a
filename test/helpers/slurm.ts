/**
 * For tests with real Slurm jobs (a one-node Slurm that .ci/slurm-start runs on this machine):
 * the check that Slurm is there, Slurm kernelspecs, and what Slurm says about a job.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { GATEWAY_BIN, processRunning, waitUntil, writeKernelspec, type Gateway } from './gateway.ts';

export type Transport = 'tunnel' | 'direct';
export const TRANSPORTS: readonly Transport[] = ['tunnel', 'direct'];

export const PYTHON_ARGV = ['/usr/bin/python3', '-m', 'ipykernel_launcher', '-f', '{connection_file}'];
/** The built-in JavaScript kernel, run by this very program, as its kernelspec does. */
export const JAVASCRIPT_ARGV = [process.execPath, GATEWAY_BIN, 'kernel', '-f', '{connection_file}'];

function slurmCommand(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 15000 });
}

/** Throws, saying what to do, unless a Slurm controller answers and has a usable node. */
export function requireSlurm(): void {
  let state: string;
  try {
    state = slurmCommand('sinfo', ['-h', '-o', '%T']).trim();
  } catch (error) {
    throw new Error(`Slurm is not running on this machine (sinfo failed: ${(error as Error).message.split('\n')[0]}): start it with .ci/slurm-start (as root), then run the tests again`);
  }
  if (!/^(idle|mixed|allocated)/.test(state)) {
    throw new Error(`Slurm's node is "${state}", not usable: restart it with .ci/slurm-stop and .ci/slurm-start (as root)`);
  }
}

export interface SlurmSpecOptions {
  argv?: string[];
  language?: string;
  transport?: Transport;
  sbatchArgs?: string[];
  launchTimeout?: number;
  interruptMode?: 'signal' | 'message';
  env?: Record<string, string>;
}

/** Writes a kernelspec `name` that runs its kernel as a Slurm job. */
export function writeSlurmSpec(gw: Gateway, name: string, options: SlurmSpecOptions = {}): void {
  const config: Record<string, unknown> = { transport: options.transport ?? 'tunnel' };
  if (options.sbatchArgs) config.sbatch_args = options.sbatchArgs;
  if (options.launchTimeout) config.launch_timeout = options.launchTimeout;
  writeKernelspec(gw.jupyterPath, name, {
    argv: options.argv ?? PYTHON_ARGV,
    display_name: `Slurm ${name}`,
    language: options.language ?? 'python',
    interrupt_mode: options.interruptMode ?? 'signal',
    env: { PYDEVD_DISABLE_FILE_VALIDATION: '1', ...options.env },
    metadata: { kernel_provisioner: { provisioner_name: 'slurm-provisioner', config } },
  });
}

/** scontrol's fields of a job (JobState, ExitCode, Partition, TimeLimit, ...); undefined once Slurm forgot it. */
export function jobRecord(jobId: string): Record<string, string> | undefined {
  let out: string;
  try {
    out = slurmCommand('scontrol', ['-o', 'show', 'job', jobId]);
  } catch {
    return undefined;
  }
  const fields: Record<string, string> = {};
  for (const match of out.trim().matchAll(/(\S+?)=(\S*)/g)) fields[match[1]] ??= match[2];
  return fields;
}

/** True while squeue lists the job (pending, running or completing). */
export function jobQueued(jobId: string): boolean {
  try {
    return slurmCommand('squeue', ['-h', '-j', jobId, '-o', '%i']).trim() !== '';
  } catch {
    return false;
  }
}

/** Ids of every job in the queue whose name starts with `prefix` (the gateway names its jobs kg-<kernel id>). */
export function queuedJobs(prefix = 'kg-'): string[] {
  return slurmCommand('squeue', ['-h', '-o', '%i %j'])
    .trim()
    .split('\n')
    .filter((line) => line.split(' ')[1]?.startsWith(prefix))
    .map((line) => line.split(' ')[0]);
}

export async function waitJobEnded(jobId: string, timeoutMs: number): Promise<Record<string, string>> {
  await waitUntil(() => !jobQueued(jobId), timeoutMs, `Slurm job ${jobId} to leave the queue`, 200);
  return jobRecord(jobId) ?? {};
}

/** The provisioner part of a kernel model, checked. */
export function slurmModel(model: { provisioner?: unknown }): { name: string; job_id: string; state: string; node: string | null; reason: string | null } {
  const p = model.provisioner as Record<string, unknown> | undefined;
  if (!p || p.name !== 'slurm-provisioner' || typeof p.job_id !== 'string') throw new Error(`not a Slurm kernel model: ${JSON.stringify(model)}`);
  return p as ReturnType<typeof slurmModel>;
}

/** Pids of the processes of a job on this host (their environment names it): the launcher, the kernel, what it started. */
export function jobProcesses(jobId: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(`SLURM_JOB_ID=${jobId}`)) pids.push(Number(entry));
    } catch {
      /* gone, or not ours */
    }
  }
  return pids.filter(processRunning);
}

/** The environment a process started with (from /proc). */
export function processEnvironment(pid: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0')) {
    const at = entry.indexOf('=');
    if (at > 0) env[entry.slice(0, at)] = entry.slice(at + 1);
  }
  return env;
}

/** The command line of a process, as its words. */
export function processArgv(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
}
