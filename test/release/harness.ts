/**
 * Shared pieces of the packaging tests (release executables, the npm package, Deno): start a gateway
 * command, wait for its "is available at" line, and run the kernel smoke test against it over HTTP and
 * the channels WebSocket (legacy JSON protocol) with a real ipykernel.
 */
import { spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { findProcesses, processGone, processGroup, REPO_ROOT, spawnGateway, waitUntil, withTimeout } from '../helpers/processes.ts';

export { findProcesses, processGone, processGroup, REPO_ROOT, sleep, waitUntil, withTimeout } from '../helpers/processes.ts';

export const VERSION: string = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version;

// ---------------------------------------------------------------------------------------------
// The release (npm run release)

export const RELEASE_DIR = join(REPO_ROOT, 'release');
export const PLATFORMS = ['linux-x64', 'linux-arm64', 'darwin-x64', 'win-x64'] as const;
export type Platform = (typeof PLATFORMS)[number];
export const archiveName = (p: Platform): string => `kernelgateway-${VERSION}-${p}.${p === 'win-x64' ? 'zip' : 'tar.gz'}`;
export const topDir = (p: Platform): string => `kernelgateway-${VERSION}-${p}`;

function newestSourceTime(): number {
  let newest = 0;
  const visit = (path: string): void => {
    if (!existsSync(path)) return;
    const st = statSync(path);
    if (st.isDirectory()) for (const e of readdirSync(path)) visit(join(path, e));
    else newest = Math.max(newest, st.mtimeMs);
  };
  for (const p of ['src', 'build', 'package.json', 'package-lock.json']) visit(join(REPO_ROOT, p));
  return newest;
}

function releaseIsFresh(): boolean {
  const files = [...PLATFORMS.map(archiveName), 'SHA256SUMS'].map((f) => join(RELEASE_DIR, f));
  if (!files.every((f) => existsSync(f))) return false;
  const oldest = Math.min(...files.map((f) => statSync(f).mtimeMs));
  return oldest > newestSourceTime();
}

/**
 * Builds the release (node build/release.mjs) unless release/ holds archives newer than every file
 * of src/, build/, package.json and package-lock.json, and at most once per test run.
 * KG_RELEASE_REBUILD=1 always builds, KG_RELEASE_REUSE=1 never does. Returns what it did.
 */
let builtThisRun = false;
export function ensureRelease(): string {
  if (builtThisRun) return 'reused the archives built earlier in this run';
  if (process.env.KG_RELEASE_REBUILD !== '1' && (process.env.KG_RELEASE_REUSE === '1' || releaseIsFresh())) {
    return 'reused the archives in release/';
  }
  const started = Date.now();
  const out = run(process.execPath, [join(REPO_ROOT, 'build', 'release.mjs')], { cwd: REPO_ROOT, timeoutMs: 1_800_000 });
  builtThisRun = true;
  process.stdout.write(out.split('\n').filter((l) => l.startsWith('[release]')).map((l) => `  ${l}\n`).join(''));
  return `built the release in ${((Date.now() - started) / 1000).toFixed(0)} s`;
}

/** A temp directory outside the checkout, removed by `cleanupTempDirs`. */
const tempDirs: string[] = [];
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}
export function cleanupTempDirs(): void {
  for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** The first directory on PATH holding `name`, if any. */
export function which(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(':')) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** Runs a command to completion; throws with its output when it fails. */
export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): string {
  const res = spawnSync(cmd, args, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 600_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (res.error) throw new Error(`${cmd} ${args.join(' ')}: ${res.error.message}`);
  if (res.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} exited ${res.status ?? res.signal}\nstdout:\n${res.stdout.slice(-4000)}\nstderr:\n${res.stderr.slice(-4000)}`);
  }
  return res.stdout;
}

// ---------------------------------------------------------------------------------------------
// A gateway process

export interface RunningGateway {
  url: string;
  port: number;
  token: string;
  proc: ChildProcess;
  runtimeDir: string;
  stderr(): string;
  /** SIGTERM and wait; SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean }>;
  /** Pids of the kernels this gateway started (their argv names a file in its runtime dir). */
  kernelPids(): number[];
}

const running = new Set<RunningGateway>();

export interface LaunchOptions {
  /** The gateway command line: executable and its arguments (before --port/--auth-token, which are added). */
  command: string[];
  cwd: string;
  /** The whole environment (nothing is inherited); JUPYTER_RUNTIME_DIR is added. */
  env: Record<string, string>;
  readyTimeoutMs?: number;
  token?: string;
  /**
   * Where the gateway keeps connection files, when it does not see the host's paths (chroot): the path
   * the gateway is given, and the same directory as this process sees it. Default: a new temp dir.
   */
  runtimeDir?: { gateway: string; host: string };
}

export async function launchGateway(opts: LaunchOptions): Promise<RunningGateway> {
  const token = opts.token ?? `tok-${randomUUID()}`;
  const runtimeDir = opts.runtimeDir?.host ?? join(tempDir('kg-release-runtime-'), 'runtime');
  const gatewayRuntimeDir = opts.runtimeDir?.gateway ?? runtimeDir;
  mkdirSync(runtimeDir, { recursive: true });
  const child = await spawnGateway({
    command: [...opts.command, '--port', '0', '--auth-token', token],
    cwd: opts.cwd,
    env: { ...opts.env, JUPYTER_RUNTIME_DIR: gatewayRuntimeDir, PYDEVD_DISABLE_FILE_VALIDATION: '1' },
    readyTimeoutMs: opts.readyTimeoutMs ?? 30_000,
  });
  const url = child.url;
  const gw: RunningGateway = {
    url: `${url.origin}/`,
    port: Number(url.port),
    token,
    proc: child.proc,
    runtimeDir,
    stderr: () => child.stderr(),
    kernelPids: () => findProcesses(gatewayRuntimeDir),
    async stop(graceMs = 20_000) {
      const result = await child.stop(graceMs);
      running.delete(gw);
      return result;
    },
  };
  running.add(gw);
  return gw;
}

// ---------------------------------------------------------------------------------------------
// REST and the channels WebSocket

export interface HttpResult {
  status: number;
  text: string;
  body: any;
}

export async function api(gw: RunningGateway, method: string, path: string, json?: unknown, timeoutMs = 60_000): Promise<HttpResult> {
  const headers: Record<string, string> = { Authorization: `token ${gw.token}` };
  if (json !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(new URL(path, gw.url), {
    method,
    headers,
    body: json === undefined ? undefined : JSON.stringify(json),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: res.status, text, body };
}

export interface JupyterMessage {
  channel: string;
  header: { msg_id: string; msg_type: string; [k: string]: unknown };
  parent_header: { msg_id?: string; [k: string]: unknown };
  metadata: Record<string, unknown>;
  content: any;
}

/** A channels WebSocket speaking the legacy JSON protocol. */
export class Channels {
  readonly ws: WebSocket;
  readonly session = randomUUID();
  readonly received: JupyterMessage[] = [];
  #waiters: Array<() => void> = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      this.received.push(JSON.parse(data.toString()) as JupyterMessage);
      for (const w of this.#waiters.splice(0)) w();
    });
  }

  static async open(gw: RunningGateway, kernelId: string, timeoutMs = 60_000): Promise<Channels> {
    const url = `${gw.url.replace(/^http/, 'ws')}api/kernels/${kernelId}/channels?session_id=${randomUUID()}`;
    const ws = new WebSocket(url, { headers: { Authorization: `token ${gw.token}` } });
    const channels = new Channels(ws);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
        ws.once('unexpected-response', (_req, res) => reject(new Error(`WebSocket upgrade answered ${res.statusCode}`)));
      }),
      timeoutMs,
      'the channels WebSocket to open',
    );
    return channels;
  }

  send(channel: string, msgType: string, content: unknown): string {
    const msgId = randomUUID();
    this.ws.send(
      JSON.stringify({
        channel,
        header: { msg_id: msgId, msg_type: msgType, username: 'release-test', session: this.session, date: new Date().toISOString(), version: '5.3' },
        parent_header: {},
        metadata: {},
        content,
        buffers: [],
      }),
    );
    return msgId;
  }

  /** Waits for a message matching `pred` among those received so far or later. */
  async waitFor(pred: (m: JupyterMessage) => boolean, timeoutMs: number, what: string): Promise<JupyterMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.received.find(pred);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = this.received.map((m) => `${m.channel}/${m.header.msg_type}`).slice(-20).join(', ');
        throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last messages: ${seen})`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 500));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** execute_request; resolves with the reply and the stdout text the request printed. */
  async execute(code: string, timeoutMs: number): Promise<{ reply: JupyterMessage; stdout: string; result?: string }> {
    const msgId = this.send('shell', 'execute_request', {
      code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true,
    });
    const reply = await this.waitFor((m) => m.channel === 'shell' && m.header.msg_type === 'execute_reply' && m.parent_header.msg_id === msgId, timeoutMs, `execute_reply to ${JSON.stringify(code)}`);
    // Output on iopub comes before the kernel goes idle for this request.
    await this.waitFor((m) => m.channel === 'iopub' && m.header.msg_type === 'status' && m.content.execution_state === 'idle' && m.parent_header.msg_id === msgId, timeoutMs, 'idle after the request');
    const mine = this.received.filter((m) => m.channel === 'iopub' && m.parent_header.msg_id === msgId);
    const stdout = mine.filter((m) => m.header.msg_type === 'stream' && m.content.name === 'stdout').map((m) => m.content.text as string).join('');
    const result = mine.find((m) => m.header.msg_type === 'execute_result')?.content.data['text/plain'] as string | undefined;
    return { reply, stdout, result };
  }

  close(): void {
    this.ws.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The smoke test itself, step by step (each step one uvu test)

export interface SmokeState {
  gw?: RunningGateway;
  kernelId?: string;
  channels?: Channels;
  kernelPid?: number;
}

export interface SmokeOptions {
  /** Multiplies the time limits (an emulated gateway is slower). */
  slow?: number;
  /** Checks that the kernel is in a process group of its own (the launcher spawns it detached). */
  checkProcessGroup?: boolean;
}

async function kernelPidOf(kernelId: string, ms: number): Promise<number> {
  const pid = await waitUntil(() => findProcesses(`kernel-${kernelId}.json`).find((p) => !processGone(p)), ms, `the process of kernel ${kernelId}`);
  return pid!;
}

/** The steps: [name, body] pairs a suite registers as tests, in order. */
export function smokeSteps(state: SmokeState, opts: SmokeOptions = {}): Array<[string, () => Promise<void>]> {
  const k = opts.slow ?? 1;
  const need = (): RunningGateway => {
    if (!state.gw) throw new Error('no gateway (an earlier step failed)');
    return state.gw;
  };
  const needKernel = (): { gw: RunningGateway; id: string; ch: Channels } => {
    if (!state.kernelId || !state.channels) throw new Error('no kernel (an earlier step failed)');
    return { gw: need(), id: state.kernelId, ch: state.channels };
  };
  return [
    ['GET /api answers with the version', async () => {
      const res = await api(need(), 'GET', 'api');
      if (res.status !== 200 || res.body?.version !== VERSION) throw new Error(`GET /api → ${res.status} ${res.text}`);
    }],
    ['POST /api/kernels starts a python3 kernel', async () => {
      const gw = need();
      const res = await api(gw, 'POST', 'api/kernels', { name: 'python3' }, 120_000 * k);
      if (res.status !== 201 || typeof res.body?.id !== 'string') throw new Error(`POST /api/kernels → ${res.status} ${res.text}`);
      state.kernelId = res.body.id as string;
      state.kernelPid = await kernelPidOf(state.kernelId, 30_000 * k);
      if (opts.checkProcessGroup && processGroup(state.kernelPid) !== state.kernelPid) {
        throw new Error(`kernel pid ${state.kernelPid} is in process group ${processGroup(state.kernelPid)}, not its own`);
      }
    }],
    ['execute over the channels WebSocket', async () => {
      const gw = need();
      if (!state.kernelId) throw new Error('no kernel (an earlier step failed)');
      state.channels = await Channels.open(gw, state.kernelId, 60_000 * k);
      const { reply, stdout, result } = await state.channels.execute('import os\nprint("pid", os.getpid())\n6 * 7', 60_000 * k);
      if (reply.content.status !== 'ok') throw new Error(`execute_reply ${JSON.stringify(reply.content)}`);
      if (stdout.trim() !== `pid ${state.kernelPid}`) throw new Error(`stdout ${JSON.stringify(stdout)}, expected "pid ${state.kernelPid}"`);
      if (result !== '42') throw new Error(`execute_result ${JSON.stringify(result)}`);
    }],
    ['POST /api/kernels/{id}/interrupt interrupts a running cell', async () => {
      const { gw, id, ch } = needKernel();
      // stop_on_error false: otherwise ipykernel aborts requests that arrive just after the error reply.
      const msgId = ch.send('shell', 'execute_request', {
        code: 'import time\nprint("sleeping", flush=True)\ntime.sleep(120)', silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: false,
      });
      await ch.waitFor((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === msgId, 30_000 * k, 'the cell to start sleeping');
      const res = await api(gw, 'POST', `api/kernels/${id}/interrupt`);
      if (res.status !== 204) throw new Error(`interrupt → ${res.status} ${res.text}`);
      const reply = await ch.waitFor((m) => m.header.msg_type === 'execute_reply' && m.parent_header.msg_id === msgId, 30_000 * k, 'the interrupted execute_reply');
      if (reply.content.status !== 'error' || reply.content.ename !== 'KeyboardInterrupt') throw new Error(`execute_reply ${JSON.stringify(reply.content)}`);
      await ch.waitFor((m) => m.channel === 'iopub' && m.header.msg_type === 'status' && m.content.execution_state === 'idle' && m.parent_header.msg_id === msgId, 30_000 * k, 'idle after the interrupt');
      const after = await ch.execute('x = 1\nx + 1', 30_000 * k);
      if (after.result !== '2') throw new Error(`after the interrupt: ${JSON.stringify(after.reply.content)}`);
    }],
    ['POST /api/kernels/{id}/restart restarts the kernel', async () => {
      const { gw, id, ch } = needKernel();
      const oldPid = state.kernelPid!;
      const res = await api(gw, 'POST', `api/kernels/${id}/restart`, undefined, 120_000 * k);
      if (res.status !== 200) throw new Error(`restart → ${res.status} ${res.text}`);
      await waitUntil(() => processGone(oldPid), 30_000 * k, `the old kernel process ${oldPid} to exit`);
      state.kernelPid = await kernelPidOf(id, 30_000 * k);
      if (state.kernelPid === oldPid) throw new Error('the kernel process did not change');
      // Same WebSocket: the restarted kernel has no `x` and a new pid.
      const { reply, stdout } = await ch.execute('import os\nprint(os.getpid(), "x" in globals())', 60_000 * k);
      if (reply.content.status !== 'ok' || stdout.trim() !== `${state.kernelPid} False`) {
        throw new Error(`after the restart: ${JSON.stringify(reply.content)} stdout ${JSON.stringify(stdout)}`);
      }
    }],
    ['DELETE /api/kernels/{id} shuts the kernel down', async () => {
      const { gw, id, ch } = needKernel();
      const pid = state.kernelPid!;
      const res = await api(gw, 'DELETE', `api/kernels/${id}`, undefined, 60_000 * k);
      if (res.status !== 204) throw new Error(`DELETE → ${res.status} ${res.text}`);
      ch.close();
      await waitUntil(() => processGone(pid), 20_000 * k, `kernel process ${pid} to exit`);
      const list = await api(gw, 'GET', 'api/kernels');
      if (list.status !== 200 || !Array.isArray(list.body) || list.body.length !== 0) throw new Error(`GET /api/kernels after DELETE → ${list.status} ${list.text}`);
    }],
    ['SIGTERM: the gateway exits 0 and leaves no kernel behind', async () => {
      const gw = need();
      // A second kernel, still running when the gateway is told to stop.
      const res = await api(gw, 'POST', 'api/kernels', { name: 'python3' }, 120_000 * k);
      if (res.status !== 201) throw new Error(`POST /api/kernels → ${res.status} ${res.text}`);
      const pid = await kernelPidOf(res.body.id as string, 30_000 * k);
      const result = await gw.stop(30_000 * k);
      if (result.killed || result.code !== 0) throw new Error(`gateway exit ${JSON.stringify(result)}\nstderr:\n${gw.stderr().slice(-3000)}`);
      await waitUntil(() => processGone(pid), 10_000, `kernel process ${pid} to exit`);
      const left = gw.kernelPids().filter((p) => !processGone(p));
      if (left.length > 0) throw new Error(`kernel processes left: ${left.join(', ')}`);
      const files = existsSync(gw.runtimeDir) ? readdirSync(gw.runtimeDir).filter((f) => f.startsWith('kernel-')) : [];
      if (files.length > 0) throw new Error(`connection files left: ${files.join(', ')}`);
    }],
  ];
}

/** Ends whatever a failed suite left running. */
export async function stopAll(): Promise<void> {
  for (const gw of [...running]) {
    await gw.stop(10_000);
    for (const pid of gw.kernelPids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
}
