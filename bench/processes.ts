/**
 * The processes the benchmark runs: an ipykernel it launches itself (the direct side) and the gateway
 * (started with the tests' harness, test/helpers/processes.ts, which also reads /proc for it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { childPids, freePorts, processRunning, sleep, spawnGateway } from '../test/helpers/processes.ts';
import type { ConnectionInfo } from './connections.ts';

export { cpuSeconds, findProcesses, minorFaults, procStatusKb, resetPeakRss } from '../test/helpers/processes.ts';

export const PYTHON = '/usr/bin/python3';

/** Keeps the last lines a process wrote, for error messages. */
class Tail {
  #lines: string[] = [];
  #partial = '';
  constructor(readonly max = 40) {}
  push(chunk: Buffer): string[] {
    const lines = (this.#partial + chunk.toString('utf8')).split('\n');
    this.#partial = lines.pop() ?? '';
    this.#lines.push(...lines);
    if (this.#lines.length > this.max) this.#lines.splice(0, this.#lines.length - this.max);
    return lines;
  }
  toString(): string {
    return [...this.#lines, this.#partial].filter(Boolean).map((line) => `    | ${line}`).join('\n');
  }
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', () => resolve()));
}

export interface DirectKernel {
  info: ConnectionInfo;
  pid: number;
  /** Rejects if the kernel dies before stop(); for racing against waits. */
  died: Promise<never>;
  stop(): Promise<void>;
}

/** The python3 kernelspec's command; `{connection_file}` is replaced as a kernelspec's argv is. */
export const IPYKERNEL_ARGV = [PYTHON, '-m', 'ipykernel_launcher', '-f', '{connection_file}'];

/** Launches a kernel (ipykernel unless `argv` says otherwise) as the gateway would, with a connection file we write. */
export async function launchKernel(dir: string, argv: readonly string[] = IPYKERNEL_ARGV, name = 'direct'): Promise<DirectKernel> {
  const [shell, iopub, stdin, control, hb] = await freePorts(5);
  const info: ConnectionInfo = {
    ip: '127.0.0.1',
    transport: 'tcp',
    shell_port: shell,
    iopub_port: iopub,
    stdin_port: stdin,
    control_port: control,
    hb_port: hb,
    key: randomBytes(16).toString('hex'),
    signature_scheme: 'hmac-sha256',
  };
  const file = join(dir, `kernel-${name}.json`);
  writeFileSync(file, JSON.stringify(info), { mode: 0o600 });
  const args = argv.map((arg) => arg.replace('{connection_file}', file));
  // Detached: its own process group, so stop() also takes any children it started.
  const child = spawn(args[0], args.slice(1), { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail = new Tail();
  child.stdout!.on('data', (chunk: Buffer) => tail.push(chunk));
  child.stderr!.on('data', (chunk: Buffer) => tail.push(chunk));
  let stopping = false;
  const died = new Promise<never>((_, reject) => {
    child.once('exit', (code, signal) => {
      if (!stopping) reject(new Error(`${name} kernel exited (code ${code}, signal ${signal}); its output:\n${tail}`));
    });
    child.once('error', (error) => reject(new Error(`could not start ${args[0]}: ${error.message}`)));
  });
  died.catch(() => {});
  if (child.pid === undefined) await died;
  const pid = child.pid!;
  return {
    info,
    pid,
    died,
    async stop() {
      stopping = true;
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        return;
      }
      await Promise.race([exited(child), sleep(3000)]);
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    },
  };
}

export interface Gateway {
  url: URL;
  pid: number;
  logFile: string;
  died: Promise<never>;
  /** Lines logged at WARN or above. */
  complaints: string[];
  /** SIGTERM, wait for exit; describes what had to be forced, '' if nothing. */
  stop(timeoutMs: number): Promise<string>;
  tail(): string;
}

export interface GatewayOptions {
  /** Further command-line arguments. */
  args?: string[];
  /** Its log file is <dir>/<name>.log (default: gateway), so several gateways can share a folder. */
  name?: string;
  env?: NodeJS.ProcessEnv;
  /** Options for node itself, before the script (e.g. --cpu-prof). */
  nodeOptions?: readonly string[];
}

/**
 * Starts `node bin/kernelgateway.js --port 0 --auth-token <token> [args]` with the tests' process
 * harness and waits for its URL; its output goes to a log file, and its kernels are watched so that
 * stop() can tell whether any outlived it.
 */
export async function launchGateway(root: string, dir: string, token: string, timeoutMs: number, options: GatewayOptions = {}): Promise<Gateway> {
  const logFile = join(dir, `${options.name ?? 'gateway'}.log`);
  writeFileSync(logFile, '');
  const tail = new Tail();
  const complaints: string[] = [];
  /** Kernel processes, from the log and from /proc at stop: they must not outlive the gateway. */
  const kernelPids = new Map<number, string>();
  const noteKernel = (kernel: number) => {
    if (!kernelPids.has(kernel)) kernelPids.set(kernel, cmdline(kernel));
  };
  const gateway = await spawnGateway({
    command: [process.execPath, ...(options.nodeOptions ?? []), join(root, 'bin/kernelgateway.js'), '--port', '0', '--auth-token', token, ...(options.args ?? [])],
    cwd: root,
    env: options.env ?? process.env,
    readyTimeoutMs: timeoutMs,
    onOutput: (chunk) => {
      appendFileSync(logFile, chunk);
      for (const line of tail.push(chunk)) {
        if (/^\[[WEC] /.test(line)) complaints.push(line);
        const started = /started, pid (\d+)/.exec(line);
        if (started) noteKernel(Number(started[1]));
      }
    },
  });
  let stopping = false;
  const died = new Promise<never>((_, reject) => {
    void gateway.exited.then(({ code, signal }) => {
      if (!stopping) reject(new Error(`gateway exited (code ${code}, signal ${signal}); last output:\n${tail}`));
    });
  });
  died.catch(() => {});
  const pid = gateway.proc.pid!;
  return {
    url: gateway.url,
    pid,
    logFile,
    died,
    complaints,
    tail: () => tail.toString(),
    async stop(waitMs) {
      stopping = true;
      const forced: string[] = [];
      for (const kernel of childPids(pid)) noteKernel(kernel);
      const before = gateway.exit;
      const exit = await gateway.stop(waitMs);
      if (before) forced.push(`gateway had already exited (code ${before.code}, signal ${before.signal})`);
      else if (exit.killed) forced.push(`gateway did not exit within ${waitMs} ms of SIGTERM: killed`);
      else if (exit.code !== 0) forced.push(`gateway exited with code ${exit.code} signal ${exit.signal} after SIGTERM`);
      // Kernels the gateway started must be gone with it (give them a moment).
      const alive = (kernel: number) => isAlive(kernel, kernelPids.get(kernel) ?? '');
      let left = [...kernelPids.keys()].filter(alive);
      for (let i = 0; i < 10 && left.length; i++) {
        await sleep(300);
        left = left.filter(alive);
      }
      if (left.length) {
        forced.push(`gateway left its kernel processes ${left.join(', ')} running after exit: killed`);
        for (const kernel of left) {
          try {
            process.kill(kernel, 'SIGKILL');
          } catch {
            // Gone meanwhile.
          }
        }
      }
      return forced.join('; ');
    },
  };
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** A live kernel process; the command line seen at its start guards against a reused pid. */
function isAlive(pid: number, command: string): boolean {
  return command !== '' && cmdline(pid) === command && processRunning(pid);
}

/** REST calls with the token header and a timeout. */
export async function rest(gateway: Gateway, token: string, method: string, path: string, body?: unknown, timeoutMs = 60_000): Promise<{ status: number; body: unknown }> {
  const url = new URL(path, gateway.url);
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers: { Authorization: `token ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw new Error(`${method} ${url.pathname} failed: ${(error as Error).message}`);
  }
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // Not JSON: keep the text for the error message.
  }
  return { status: response.status, body: parsed };
}
