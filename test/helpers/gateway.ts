/**
 * Integration-test harness: runs the real gateway binary (bin/kernelgateway.js) in a child process
 * with its own runtime dir and JUPYTER_PATH, talks REST to it, finds its kernel processes, and makes
 * sure every gateway is stopped (and checked) when a suite ends.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'uvu';
import { findProcesses, processGone, processRunning, REPO_ROOT, sessionLeader, sleep, spawnGateway, spawnLogged, waitUntil, withTimeout, type ExitInfo } from './processes.ts';

export { findProcesses, processGone, processRunning, REPO_ROOT, sleep, waitUntil, withTimeout } from './processes.ts';

export const GATEWAY_BIN = join(REPO_ROOT, 'bin', 'kernelgateway.js');

/** A 1x1 PNG, standing in for a kernelspec logo. */
export const PNG_BYTES = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'base64',
);
export const KERNEL_JS_TEXT = "// test kernel.js\ndefine(function () { return { onload: function () {} }; });\n";
/** The extra kernelspec every test gateway gets in its JUPYTER_PATH. */
export const TEST_SPEC_NAME = 'testpy';
export const TEST_SPEC = {
  argv: ['/usr/bin/python3', '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
  display_name: 'Test Python (integration)',
  language: 'python',
  env: { KG_IT_MARKER: 'testpy' },
  metadata: { origin: 'integration-test' },
};

// ---------------------------------------------------------------------------------------------
// Harness-level failures (things found in `after` hooks, which uvu cannot report as test failures)

const harnessFailures: string[] = [];
process.on('exit', () => {
  if (harnessFailures.length > 0) {
    process.stderr.write(`\nIntegration harness failures (${harnessFailures.length}):\n  ${harnessFailures.join('\n  ')}\n`);
    process.exitCode = 1;
  }
});
/** Records a failure found outside a test; the run's exit code becomes 1. */
export function recordHarnessFailure(message: string): void {
  harnessFailures.push(message);
  process.stderr.write(`\n[integration harness] FAILURE: ${message}\n`);
}

// ---------------------------------------------------------------------------------------------
// The gateway process

export interface StartOptions {
  /** undefined: a random token; null: no --auth-token flag (the gateway generates one); '': auth off. */
  token?: string | null;
  /** Further command-line flags. */
  args?: string[];
  /** Extra environment variables for the gateway. */
  env?: Record<string, string>;
  /** How long to wait for the "is available at" line. */
  readyTimeoutMs?: number;
  /**
   * With token: null, the token the gateway was given another way (KG_AUTH_TOKEN, a config file):
   * used as `gw.token`, and no logged token URL is waited for.
   */
  knownToken?: string;
  /** Run the gateway with this limit of open files (`ulimit -n`, soft and hard). */
  fileLimit?: number;
}

export interface StopResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the gateway ignored SIGTERM for too long and had to be killed. */
  killed: boolean;
}

export interface Gateway {
  /** Base URL including base_url, always ending in '/': http://127.0.0.1:<port>/ or …/gw/ */
  url: string;
  /** http://127.0.0.1:<port> */
  origin: string;
  /** `url` with ws: instead of http: */
  wsUrl: string;
  /** The token clients must send ('' when auth is off). */
  token: string;
  /** The URL exactly as the gateway logged it in its "is available at" line. */
  loggedUrl: string;
  /** The first logged URL carrying ?token= (how a generated token is shown), if any. */
  tokenUrl: string | undefined;
  port: number;
  runtimeDir: string;
  jupyterPath: string;
  proc: ChildProcess;
  stderr(): string;
  /** SIGTERM, wait (SIGKILL after 20 s); idempotent. */
  stop(): Promise<StopResult>;
  exited: boolean;
  /** kernel-*.json files currently in the runtime dir. */
  connectionFiles(): string[];
  /** Pids of kernel processes started by this gateway (their argv names a file in our runtime dir). */
  kernelPids(): number[];
}

const running = new Set<Gateway>();

function writeTestKernelspec(jupyterPath: string): void {
  const dir = join(jupyterPath, 'kernels', TEST_SPEC_NAME);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'kernel.json'), JSON.stringify(TEST_SPEC, null, 1));
  writeFileSync(join(dir, 'logo-64x64.png'), PNG_BYTES);
  writeFileSync(join(dir, 'kernel.js'), KERNEL_JS_TEXT);
  // A file just outside the spec directory, which must never be served through /kernelspecs/.
  writeFileSync(join(jupyterPath, 'kernels', 'secret.txt'), 'not for you\n');
  writeFileSync(join(jupyterPath, 'secret.txt'), 'not for you either\n');
}

/**
 * A fresh folder for one gateway (its cwd, runtime dir and JUPYTER_PATH with the test kernelspec) and the
 * environment to run it in: ours without KG_* and JUPYTER_* variables, with Jupyter's config dir inside the
 * folder and no virtualenv/conda prefix, so nothing from the developer's own setup reaches the test.
 */
function prepareGatewayDir(
  prefix: string,
  opts: StartOptions,
): { root: string; runtimeDir: string; jupyterPath: string; env: Record<string, string> } {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const runtimeDir = join(root, 'runtime');
  const jupyterPath = join(root, 'jupyter');
  mkdirSync(runtimeDir, { recursive: true });
  writeTestKernelspec(jupyterPath);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('KG_') || k.startsWith('JUPYTER_') || k === 'VIRTUAL_ENV' || k === 'CONDA_PREFIX') continue;
    env[k] = v;
  }
  Object.assign(
    env,
    { JUPYTER_RUNTIME_DIR: runtimeDir, JUPYTER_PATH: jupyterPath, JUPYTER_CONFIG_DIR: join(root, 'config'), PYDEVD_DISABLE_FILE_VALIDATION: '1' },
    opts.env,
  );
  return { root, runtimeDir, jupyterPath, env };
}

/** Starts `node bin/kernelgateway.js --port 0 …` and waits for its "is available at" line. */
export async function startGateway(opts: StartOptions = {}): Promise<Gateway> {
  if (!existsSync(join(REPO_ROOT, 'dist', 'kernelgateway.cjs'))) {
    throw new Error('dist/kernelgateway.cjs is missing: run `npm run build` first');
  }
  const { root, runtimeDir, jupyterPath, env } = prepareGatewayDir('kg-it-', opts);

  const tokenArgs: string[] = [];
  const token = opts.token === undefined ? `tok-${Math.random().toString(36).slice(2)}` : opts.token;
  if (token !== null) tokenArgs.push('--auth-token', token);

  const args = [GATEWAY_BIN, '--port', '0', ...tokenArgs, ...(opts.args ?? [])];
  let process_;
  try {
    process_ = await spawnGateway({
      command: [process.execPath, ...args],
      cwd: root,
      env,
      fileLimit: opts.fileLimit,
      readyTimeoutMs: opts.readyTimeoutMs ?? 20000,
    });
  } catch (error) {
    rmSync(root, { recursive: true, force: true });
    throw error;
  }
  const child = process_;
  const stderr = () => child.stderr();
  const loggedUrl = child.loggedUrl;
  const parsed = new URL(loggedUrl);
  // A generated token is logged in a URL (possibly on a line after the "is available at" one).
  let tokenUrl: string | undefined;
  const tokenUrlRe = /(https?:\/\/\S*[?&]token=[^\s&]+)/;
  if (token === null && opts.knownToken === undefined) {
    const until = Date.now() + 3000;
    let m: RegExpMatchArray | null;
    while (!(m = stderr().match(tokenUrlRe)) && Date.now() < until && !child.exit) await sleep(25);
    tokenUrl = m?.[1].replace(/[.,;)\]'"}]+$/, '');
  } else {
    tokenUrl = stderr().match(tokenUrlRe)?.[1];
  }
  const loggedToken = tokenUrl ? new URL(tokenUrl).searchParams.get('token') : null;
  parsed.search = '';
  parsed.hash = '';
  let url = parsed.toString();
  if (!url.endsWith('/')) url += '/';

  const gw: Gateway = {
    url,
    origin: parsed.origin,
    wsUrl: url.replace(/^http/, 'ws'),
    token: token === null ? (opts.knownToken ?? loggedToken ?? '') : token,
    loggedUrl,
    tokenUrl,
    port: Number(parsed.port),
    runtimeDir,
    jupyterPath,
    proc: child.proc,
    stderr,
    get exited() {
      return child.exit !== undefined;
    },
    connectionFiles: () =>
      existsSync(runtimeDir) ? readdirSync(runtimeDir).filter((f) => /^kernel-.*\.json$/.test(f)) : [],
    kernelPids: () => findProcesses(runtimeDir),
    async stop() {
      const result = await child.stop(20000);
      running.delete(gw);
      return result;
    },
  };
  running.add(gw);
  cleanupRoots.set(gw, root);
  return gw;
}

const cleanupRoots = new Map<Gateway, string>();

/**
 * Stops `gw` if needed and checks what a clean stop means: exit code 0 on SIGTERM, every kernel
 * process it started gone, no kernel-*.json left in its runtime dir. Returns the problems found.
 */
export async function stopAndCheck(gw: Gateway): Promise<string[]> {
  const problems: string[] = [];
  const pidsBefore = gw.kernelPids();
  const result = await gw.stop();
  if (result.killed) problems.push('the gateway did not exit within 20 s of SIGTERM and was killed');
  else if (result.code !== 0) problems.push(`the gateway exited with code ${result.code} (signal ${result.signal}) on SIGTERM, expected 0`);
  try {
    await waitUntil(() => pidsBefore.every(processGone), 5000, 'kernel processes to exit after the gateway stopped');
  } catch {
    const alive = pidsBefore.filter((p) => !processGone(p));
    problems.push(`kernel processes still present after the gateway exited: ${alive.join(', ')}`);
  }
  const leftovers = gw.connectionFiles();
  if (leftovers.length > 0) problems.push(`connection files left in the runtime dir: ${leftovers.join(', ')}`);
  // Our own clean-up: anything this gateway spawned that is still around is killed by pid.
  for (const pid of gw.kernelPids()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  const root = cleanupRoots.get(gw);
  if (root) rmSync(root, { recursive: true, force: true });
  cleanupRoots.delete(gw);
  if (problems.length > 0) problems.push(`gateway stderr (tail):\n${gw.stderr().slice(-3000)}`);
  return problems;
}

/** Stops every gateway still running; problems are recorded as harness failures. */
export async function stopAllGateways(): Promise<void> {
  for (const gw of [...running]) {
    const problems = await stopAndCheck(gw);
    if (problems.length > 0) recordHarnessFailure(`gateway at ${gw.url}: ${problems.join('; ')}`);
  }
}

/**
 * Wires a suite to gateways: `setup` runs in `before` (a failure there fails every test with the
 * cause, instead of uvu's silent "0 / N"), and `after` stops every gateway still running and
 * checks its exit.
 */
export function guardSuite(test: Test, setup: () => Promise<void>, teardown?: () => Promise<void>): void {
  let setupError: unknown;
  test.before(async () => {
    try {
      await setup();
    } catch (err) {
      setupError = err;
    }
  });
  test.before.each(() => {
    if (setupError) {
      const e = setupError instanceof Error ? setupError : new Error(String(setupError));
      throw new Error(`suite setup failed: ${e.message}`);
    }
  });
  test.after(async () => {
    try {
      if (teardown) await teardown();
    } catch (err) {
      recordHarnessFailure(`teardown of a suite failed: ${err instanceof Error ? err.stack : String(err)}`);
    }
    await stopAllGateways();
  });
}

/** The last test of a suite: SIGTERM the gateway and check that it exits cleanly. */
export function shutdownTest(test: Test, getGateway: () => Gateway | undefined, label = ''): void {
  test(`SIGTERM${label ? ` (${label})` : ''}: gateway exits 0, its kernels exit, no connection files remain`, async () => {
    const gw = getGateway();
    if (!gw) throw new Error('no gateway (setup failed)');
    const problems = await stopAndCheck(gw);
    if (problems.length > 0) throw new Error(problems.join('\n'));
  });
}

// ---------------------------------------------------------------------------------------------
// REST

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body when it is JSON, else undefined. */
  body: any;
}

export interface ApiOptions {
  /** A JSON value to send, or a raw string body. */
  json?: unknown;
  body?: string;
  headers?: Record<string, string>;
  /** Token for `Authorization: token X`; false sends no Authorization header. Default: gw.token. */
  token?: string | false;
  timeoutMs?: number;
}

/** fetch() against the gateway; `path` is relative to its base URL ('api/kernels'). */
export async function api(gw: Gateway, method: string, path: string, opts: ApiOptions = {}): Promise<ApiResponse> {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token === undefined ? gw.token : opts.token;
  if (token !== false && token !== '' && !Object.keys(headers).some((h) => h.toLowerCase() === 'authorization')) {
    headers.Authorization = `token ${token}`;
  }
  let body: string | undefined = opts.body;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers['Content-Type'] ??= 'application/json';
  }
  const target = new URL(path, gw.url);
  const timeoutMs = opts.timeoutMs ?? 30000;
  let res: Response;
  try {
    res = await fetch(target, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new Error(`${method} ${target.pathname}${target.search} failed: ${(err as Error).message}`);
  }
  const text = await res.text();
  let parsed: unknown;
  if (text.length > 0 && /json/i.test(res.headers.get('content-type') ?? '')) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  return { status: res.status, headers: res.headers, text, body: parsed };
}

/** A plain node:http request with the path sent exactly as given (fetch would normalise '..'). */
export function rawRequest(
  gw: Gateway,
  method: string,
  rawPath: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = httpRequest(
        { host: '127.0.0.1', port: gw.port, method, path: rawPath, headers },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end();
    }),
    15000,
    `${method} ${rawPath}`,
  );
}

export interface KernelModel {
  id: string;
  name: string;
  last_activity: string;
  execution_state: string;
  connections: number;
  reason?: string;
  /** What a provisioner other than the local one says (a Slurm job). */
  provisioner?: Record<string, unknown>;
}

/** POST api/kernels and return the model (asserting 201). */
export async function startKernel(gw: Gateway, name = 'python3'): Promise<KernelModel> {
  const res = await api(gw, 'POST', 'api/kernels', { json: { name }, timeoutMs: 60000 });
  if (res.status !== 201) throw new Error(`POST api/kernels {"name": "${name}"} → ${res.status} ${res.text}`);
  return res.body as KernelModel;
}

export async function getKernel(gw: Gateway, id: string): Promise<ApiResponse> {
  return api(gw, 'GET', `api/kernels/${id}`);
}

export async function deleteKernel(gw: Gateway, id: string): Promise<ApiResponse> {
  return api(gw, 'DELETE', `api/kernels/${id}`, { timeoutMs: 30000 });
}

/** The pid of the kernel process for `kernelId` (its argv names kernel-<id>.json). */
export async function kernelPid(gw: Gateway, kernelId: string, timeoutMs = 15000): Promise<number> {
  return waitUntil<number | undefined>(
    () => {
      // The kernel is the session leader the gateway spawned (setsid), whatever its language.
      const pids = findProcesses(`kernel-${kernelId}.json`).filter(sessionLeader);
      return pids.find(processRunning);
    },
    timeoutMs,
    `a kernel process (session leader) whose argv contains kernel-${kernelId}.json`,
  ) as Promise<number>;
}

/** Asserts the JSON error shape every error response must have; returns the body. */
export function errorBody(res: ApiResponse, context: string): { reason: string; message: string } {
  const ct = res.headers.get('content-type') ?? '';
  if (!/application\/json/i.test(ct)) throw new Error(`${context}: error response Content-Type is ${JSON.stringify(ct)}, expected application/json; body ${JSON.stringify(res.text)}`);
  const b = res.body as { reason?: unknown; message?: unknown } | undefined;
  if (!b || typeof b !== 'object') throw new Error(`${context}: error body is not a JSON object: ${JSON.stringify(res.text)}`);
  if (typeof b.reason !== 'string') throw new Error(`${context}: error body has no string "reason": ${res.text}`);
  if (typeof b.message !== 'string') throw new Error(`${context}: error body has no string "message": ${res.text}`);
  return b as { reason: string; message: string };
}

export const LAST_ACTIVITY_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/;
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Checks a kernel model's shape; throws naming the offending field. */
export function checkKernelModel(m: unknown, context: string): KernelModel {
  const k = m as Record<string, unknown>;
  if (!k || typeof k !== 'object') throw new Error(`${context}: model is not an object: ${JSON.stringify(m)}`);
  const problems: string[] = [];
  if (typeof k.id !== 'string' || !UUID_RE.test(k.id)) problems.push(`id ${JSON.stringify(k.id)} is not a uuid`);
  if (typeof k.name !== 'string') problems.push(`name ${JSON.stringify(k.name)} is not a string`);
  if (typeof k.last_activity !== 'string' || !LAST_ACTIVITY_RE.test(k.last_activity)) problems.push(`last_activity ${JSON.stringify(k.last_activity)} is not YYYY-MM-DDTHH:MM:SS.ffffffZ`);
  if (!['starting', 'idle', 'busy', 'dead', 'restarting'].includes(k.execution_state as string)) problems.push(`execution_state ${JSON.stringify(k.execution_state)}`);
  if (typeof k.connections !== 'number' || !Number.isInteger(k.connections)) problems.push(`connections ${JSON.stringify(k.connections)} is not an integer`);
  if (problems.length > 0) throw new Error(`${context}: bad kernel model (${problems.join('; ')}): ${JSON.stringify(m)}`);
  return k as unknown as KernelModel;
}

// ---------------------------------------------------------------------------------------------
// Gateways that are expected not to start, and extra kernelspecs

export interface ExitResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  stdout: string;
  /** True when it was still running at the deadline and had to be killed. */
  timedOut: boolean;
}

/**
 * Runs `node bin/kernelgateway.js --port 0 [--auth-token X] …args` in a fresh runtime dir and
 * JUPYTER_PATH (as startGateway does) and waits for it to exit on its own, for start-up failures.
 * A gateway that is still running after `timeoutMs` (or that starts listening) is SIGTERMed, then
 * killed, and reported with timedOut = true.
 */
export async function runGatewayToExit(opts: StartOptions & { timeoutMs?: number } = {}): Promise<ExitResult> {
  const { root, env } = prepareGatewayDir('kg-it-exit-', opts);
  const token = opts.token === undefined ? `tok-${Math.random().toString(36).slice(2)}` : opts.token;
  const args = [GATEWAY_BIN, '--port', '0', ...(token !== null ? ['--auth-token', token] : []), ...(opts.args ?? [])];
  const child = spawnLogged({ command: [process.execPath, ...args], cwd: root, env });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void child.stop(10000);
  }, opts.timeoutMs ?? 15000);
  const result: ExitInfo = await child.exited;
  clearTimeout(timer);
  // Let the pipes drain.
  await sleep(50);
  rmSync(root, { recursive: true, force: true });
  return { ...result, stderr: child.stderr(), stdout: child.stdout(), timedOut };
}

/** Writes <jupyterPath>/kernels/<name>/kernel.json (the gateway rescans kernelspecs on every lookup). */
export function writeKernelspec(jupyterPath: string, name: string, spec: Record<string, unknown>): void {
  const dir = join(jupyterPath, 'kernels', name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'kernel.json'), JSON.stringify(spec, null, 1));
}

/** nbformat 4 notebook JSON with the given cells; metadata names the python3 kernelspec and `language`. */
export function seedNotebook(cells: Array<{ type: 'code' | 'markdown'; source: string }>, language = 'python'): string {
  return JSON.stringify({
    nbformat: 4,
    nbformat_minor: 5,
    metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language }, language_info: { name: language } },
    cells: cells.map((c, i) =>
      c.type === 'code'
        ? { id: `c${i}`, cell_type: 'code', metadata: {}, execution_count: null, outputs: [], source: c.source }
        : { id: `c${i}`, cell_type: 'markdown', metadata: {}, source: c.source },
    ),
  });
}
