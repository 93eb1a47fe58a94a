/**
 * The processes the benchmark runs: an ipykernel it launches itself (the direct side) and the gateway.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync, appendFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { ConnectionInfo } from './connections.ts';

export const PYTHON = '/usr/bin/python3';

/** Free TCP ports: bind n servers on port 0 at once (so they differ), then release them. */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(server));
    })),
  );
  const ports = servers.map((server) => (server.address() as { port: number }).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
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

const AVAILABLE = /is available at (http:\/\/\S+?)\/?(?:\s|$)/;

export interface GatewayOptions {
  /** Further command-line arguments. */
  args?: string[];
  /** Its log file is <dir>/<name>.log (default: gateway), so several gateways can share a folder. */
  name?: string;
  env?: NodeJS.ProcessEnv;
  /** Options for node itself, before the script (e.g. --cpu-prof). */
  nodeOptions?: readonly string[];
}

/** Starts `node bin/kernelgateway.js --port 0 --auth-token <token> [args]` and waits for its URL. */
export async function launchGateway(root: string, dir: string, token: string, timeoutMs: number, options: GatewayOptions = {}): Promise<Gateway> {
  const logFile = join(dir, `${options.name ?? 'gateway'}.log`);
  writeFileSync(logFile, '');
  const child = spawn(process.execPath, [...(options.nodeOptions ?? []), join(root, 'bin/kernelgateway.js'), '--port', '0', '--auth-token', token, ...(options.args ?? [])], {
    cwd: root,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail = new Tail();
  const complaints: string[] = [];
  /** Kernel processes, from the log and from /proc at stop: they must not outlive the gateway. */
  const kernelPids = new Map<number, string>();
  const noteKernel = (kernel: number) => {
    if (!kernelPids.has(kernel)) kernelPids.set(kernel, cmdline(kernel));
  };
  let announce: ((url: URL) => void) | undefined;
  const announced = new Promise<URL>((resolve) => (announce = resolve));
  const onOutput = (chunk: Buffer) => {
    appendFileSync(logFile, chunk);
    for (const line of tail.push(chunk)) {
      if (/^\[[WEC] /.test(line)) complaints.push(line);
      const match = AVAILABLE.exec(line);
      if (match) announce?.(new URL(`${match[1]}/`));
      const started = /started, pid (\d+)/.exec(line);
      if (started) noteKernel(Number(started[1]));
    }
  };
  child.stdout!.on('data', onOutput);
  child.stderr!.on('data', onOutput);
  let stopping = false;
  const died = new Promise<never>((_, reject) => {
    child.once('exit', (code, signal) => {
      if (!stopping) reject(new Error(`gateway exited (code ${code}, signal ${signal}); last output:\n${tail}`));
    });
    child.once('error', (error) => reject(new Error(`could not start the gateway: ${error.message}`)));
  });
  died.catch(() => {});
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`gateway did not log "is available at http://..." within ${timeoutMs} ms; last output:\n${tail}`)), timeoutMs);
  });
  let url: URL;
  try {
    url = await Promise.race([announced, died, timeout]);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const pid = child.pid!;
  return {
    url,
    pid,
    logFile,
    died,
    complaints,
    tail: () => tail.toString(),
    async stop(waitMs) {
      stopping = true;
      const forced: string[] = [];
      for (const kernel of childPids(pid)) noteKernel(kernel);
      if (child.exitCode !== null || child.signalCode !== null) {
        forced.push(`gateway had already exited (code ${child.exitCode}, signal ${child.signalCode})`);
      } else {
        child.kill('SIGTERM');
        const done = await Promise.race([exited(child).then(() => true), sleep(waitMs).then(() => false)]);
        if (!done) {
          forced.push(`gateway did not exit within ${waitMs} ms of SIGTERM: killed`);
          child.kill('SIGKILL');
          await exited(child);
        } else if (child.exitCode !== 0) {
          forced.push(`gateway exited with code ${child.exitCode} signal ${child.signalCode} after SIGTERM`);
        }
      }
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

/** Processes whose parent is `pid` (from /proc). */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the parenthesised command name: state, ppid, ...
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) children.push(Number(entry));
    } catch {
      // Exited while we looked.
    }
  }
  return children;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** A live (not zombie) kernel process; the command line seen at its start guards against a reused pid. */
function isAlive(pid: number, command: string): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (command === '' || cmdline(pid) !== command) return false;
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
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

/** utime + stime of a process, in seconds (clock ticks of 10 ms). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
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
