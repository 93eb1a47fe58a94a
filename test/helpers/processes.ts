/**
 * The one process harness of the integration tests, the release tests and the benchmark: start a
 * gateway command and wait for the address it announces, capture its output, stop it (SIGTERM, then
 * SIGKILL after a grace period), and find the processes it left. Linux /proc is used to find and
 * inspect processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout: the nearest ancestor of this file whose package.json is kernelgateway's. */
export const REPO_ROOT: string = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj) && (JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'kernelgateway') return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`no kernelgateway package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
})();

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every `intervalMs` until it returns a truthy value; fails with `what` after `timeoutMs`. */
export async function waitUntil<T>(check: () => T | Promise<T>, timeoutMs: number, what: string, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${detail})`);
    }
    await sleep(intervalMs);
  }
}

/** Rejects with a clear message if `p` does not settle within `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** TCP ports free on 127.0.0.1 right now: `n` listeners at once (so the ports differ), then closed. */
export async function freePorts(n: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, resolve);
      });
      servers.push(server);
    }
    return servers.map((s) => (s.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

/** One TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return (await freePorts(1))[0];
}

// ---------------------------------------------------------------------------------------------
// Processes

function stat(pid: number): string[] | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name: state, ppid, pgrp, session, ...
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Pids of processes (other than this one) whose command line has an argument containing `needle`. */
export function findProcesses(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').some((arg) => arg.includes(needle))) pids.push(Number(entry));
    } catch {
      /* gone */
    }
  }
  return pids;
}

/** True while the process exists and is not a zombie. */
export function processRunning(pid: number): boolean {
  const fields = stat(pid);
  return fields !== undefined && fields[0] !== 'Z' && fields[0] !== 'X';
}

/** True once the process has exited (reaped, or a zombie waiting for its parent). */
export function processGone(pid: number): boolean {
  return !processRunning(pid);
}

export function processGroup(pid: number): number {
  return Number(stat(pid)?.[2]);
}

/** True when the process leads its own session (setsid), as the gateway starts kernels. */
export function sessionLeader(pid: number): boolean {
  return Number(stat(pid)?.[3]) === pid;
}

/** Processes whose parent is `pid`. */
export function childPids(pid: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && Number(stat(Number(entry))?.[1]) === pid)
    .map(Number);
}

/** utime + stime of a process, in seconds (clock ticks of 10 ms); throws when it is gone. */
export function cpuSeconds(pid: number): number {
  const fields = stat(pid);
  if (!fields) throw new Error(`process ${pid} is gone: no CPU time to read`);
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Minor page faults of a process so far (first touches of memory); throws when it is gone. */
export function minorFaults(pid: number): number {
  const fields = stat(pid);
  if (!fields) throw new Error(`process ${pid} is gone: no page faults to read`);
  return Number(fields[7]);
}

/** A figure from /proc/<pid>/status in kB, e.g. VmHWM (peak RSS) or VmRSS. */
export function procStatusKb(pid: number, field: string): number | undefined {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Resets VmHWM to the current RSS (Linux: write 5 to clear_refs); false when not allowed. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// A gateway process

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  /** The executable and its arguments. */
  command: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** Run it with this limit of open files (`ulimit -n`, soft and hard), through a shell that execs it. */
  fileLimit?: number;
  /** Every chunk of its output, as it comes (stdout and stderr). */
  onOutput?: (chunk: Buffer) => void;
}

/** A running (or finished) command with its output captured. */
export interface LoggedProcess {
  proc: ChildProcess;
  stderr(): string;
  stdout(): string;
  readonly exit: ExitInfo | undefined;
  exited: Promise<ExitInfo>;
  /** SIGTERM, wait; SIGKILL after `graceMs`. Idempotent. */
  stop(graceMs?: number): Promise<ExitInfo & { killed: boolean }>;
}

const running = new Set<LoggedProcess>();

// If the test process ends abruptly (uncaught error, Ctrl-C, a `timeout` wrapper), SIGTERM the gateways
// it started so that they shut their kernels down instead of lingering as orphans.
function terminateRunning(): void {
  for (const p of running) {
    if (p.exit) continue;
    try {
      p.proc.kill('SIGTERM');
    } catch {
      /* already gone */
    }
  }
}
process.on('exit', terminateRunning);
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
  process.once(signal, () => {
    terminateRunning();
    process.exit(code);
  });
}

/** Start a command with its output captured. */
export function spawnLogged(options: SpawnOptions): LoggedProcess {
  const [cmd, ...args] = options.command;
  const stdio: ['ignore', 'pipe', 'pipe'] = ['ignore', 'pipe', 'pipe'];
  // With a file limit, a shell sets it and then becomes the command (exec: same pid).
  const proc =
    options.fileLimit === undefined
      ? spawn(cmd, args, { cwd: options.cwd, env: options.env, stdio })
      : spawn('/bin/sh', ['-c', `ulimit -n ${options.fileLimit} && exec "$@"`, 'sh', cmd, ...args], { cwd: options.cwd, env: options.env, stdio });
  let stderr = '';
  let stdout = '';
  proc.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString('utf8');
    options.onOutput?.(d);
  });
  proc.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString('utf8');
    options.onOutput?.(d);
  });
  let exit: ExitInfo | undefined;
  const exited = new Promise<ExitInfo>((resolve) => {
    proc.on('exit', (code, signal) => resolve((exit = { code, signal })));
    proc.on('error', (error) => {
      stderr += `\n[spawn error] ${error.message}`;
      // A process that never started emits no 'exit'.
      if (proc.pid === undefined) resolve((exit = { code: null, signal: null }));
    });
  });
  let stopping: Promise<ExitInfo & { killed: boolean }> | undefined;
  const logged: LoggedProcess = {
    proc,
    stderr: () => stderr,
    stdout: () => stdout,
    get exit() {
      return exit;
    },
    exited,
    stop(graceMs = 20_000) {
      stopping ??= (async () => {
        let killed = false;
        if (!exit) {
          proc.kill('SIGTERM');
          const timer = setTimeout(() => {
            killed = true;
            proc.kill('SIGKILL');
          }, graceMs);
          await exited;
          clearTimeout(timer);
        }
        running.delete(logged);
        return { ...(await exited), killed };
      })();
      return stopping;
    },
  };
  running.add(logged);
  void exited.then(() => running.delete(logged));
  return logged;
}

/** A gateway process that announced its address. */
export interface GatewayProcess extends LoggedProcess {
  /** The address it announced (with base_url). */
  url: URL;
  /** That address exactly as logged. */
  loggedUrl: string;
}

/** How the gateway announces itself; the address ends before quotes or braces (the JSON log format). */
const ANNOUNCED = /is available at (https?:\/\/[^\s"'}]+)/;

/** Start a gateway command and wait for its "is available at <url>" line; a gateway that exits first, or is too slow, fails. */
export async function spawnGateway(options: SpawnOptions & { readyTimeoutMs?: number }): Promise<GatewayProcess> {
  const logged = spawnLogged(options);
  const timeoutMs = options.readyTimeoutMs ?? 30_000;
  const deadline = Date.now() + timeoutMs;
  let match: RegExpMatchArray | null;
  while (!(match = logged.stderr().match(ANNOUNCED))) {
    const exit = logged.exit;
    if (exit || Date.now() > deadline) {
      if (!exit) logged.proc.kill('SIGKILL');
      await logged.exited;
      throw new Error(
        `${options.command.join(' ')} ${exit ? `exited (code ${exit.code}, signal ${exit.signal})` : `did not log "is available at <url>" within ${timeoutMs} ms`}` +
          ` before listening\nstderr:\n${logged.stderr()}\nstdout:\n${logged.stdout()}`,
      );
    }
    await sleep(20);
  }
  const loggedUrl = match[1].replace(/[.,;)\]]+$/, '');
  return Object.assign(logged, { url: new URL(loggedUrl), loggedUrl });
}
