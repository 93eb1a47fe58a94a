/**
 * The same source under Deno 2 (`npm run test:deno`): the deno binary from the `deno` devDependency runs
 * `deno run -A src/cli.ts` in the checkout, where Deno resolves cac, ws and zeromq from package.json and
 * node_modules. The built-in javascript kernel, which the gateway starts as `deno run -A src/cli.ts
 * kernel`, answers over the WebSocket; then the kernel smoke test: start, execute over the WebSocket,
 * interrupt, restart, delete, SIGTERM → exit 0 with no kernel process left.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import {
  REPO_ROOT, api, Channels, cleanupTempDirs, findProcesses, launchGateway, processGone, run, smokeSteps, stopAll, tempDir, waitUntil,
  type SmokeState,
} from './harness.ts';

/**
 * The deno executable itself (not npm's bin.cjs wrapper, which would not pass SIGTERM on): the package's
 * postinstall puts it at node_modules/deno/deno; without install scripts it is only in @deno/<platform>.
 */
const DENO = ((): string => {
  const exe = process.platform === 'win32' ? 'deno.exe' : 'deno';
  const direct = join(REPO_ROOT, 'node_modules', 'deno', exe);
  if (existsSync(direct)) return direct;
  const scoped = join(REPO_ROOT, 'node_modules', '@deno');
  for (const dir of existsSync(scoped) ? readdirSync(scoped) : []) {
    if (existsSync(join(scoped, dir, exe))) return join(scoped, dir, exe);
  }
  return direct;
})();
const PINNED: string = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).devDependencies.deno;

const test = suite('Deno: deno run -A src/cli.ts');
const state: SmokeState = {};
let home = '';
/** Deno's own state (transpile cache) goes to a temp HOME; no update check (it would go to the network). */
const denoEnv = (): Record<string, string> => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: home,
  DENO_DIR: join(home, 'deno-dir'),
  DENO_NO_UPDATE_CHECK: '1',
  NO_COLOR: '1',
});

test.before(() => {
  home = tempDir('kg-deno-home-');
});
test.after(async () => {
  await stopAll();
  cleanupTempDirs();
});

test(`the deno devDependency's binary runs here (deno ${PINNED})`, () => {
  if (!existsSync(DENO)) throw new Error(`${DENO} is missing: run npm ci`);
  const out = run(DENO, ['--version'], { env: denoEnv() });
  if (!out.startsWith(`deno ${PINNED} `)) throw new Error(`deno --version printed ${JSON.stringify(out)}`);
});

test("zeromq's native addon loads under Deno", () => {
  const out = run(DENO, ['eval', "import * as zmq from 'zeromq'; console.log(`zeromq ${zmq.version}`)"], { cwd: REPO_ROOT, env: denoEnv() });
  if (!/^zeromq \d+\.\d+\.\d+/.test(out)) throw new Error(`printed ${JSON.stringify(out)}`);
});

test('deno run -A src/cli.ts starts and listens', async () => {
  state.gw = await launchGateway({
    command: [DENO, 'run', '-A', 'src/cli.ts'],
    cwd: REPO_ROOT,
    env: denoEnv(),
    readyTimeoutMs: 120_000,
  });
});

test('the built-in javascript kernel runs under Deno too: execute, declarations, top-level await', async () => {
  const gw = state.gw;
  if (!gw) throw new Error('no gateway (an earlier step failed)');
  const res = await api(gw, 'POST', 'api/kernels', { name: 'javascript' }, 120_000);
  if (res.status !== 201 || typeof res.body?.id !== 'string') throw new Error(`POST /api/kernels → ${res.status} ${res.text}`);
  const id = res.body.id as string;
  const pid = await waitUntil(() => findProcesses(`kernel-${id}.json`)[0], 30_000, `the process of kernel ${id}`);
  const ch = await Channels.open(gw, id, 60_000);
  try {
    const first = await ch.execute('1+1', 60_000);
    if (first.reply.content.status !== 'ok' || first.result !== '2') throw new Error(`1+1: ${JSON.stringify(first.reply.content)} result ${first.result}`);
    await ch.execute('const base = await Promise.resolve(40)', 30_000);
    const second = await ch.execute('console.log(process.versions.deno)\nbase + 2', 30_000);
    if (second.result !== '42' || second.stdout !== `${PINNED}\n`) throw new Error(`base + 2: ${JSON.stringify(second.reply.content)} result ${second.result} stdout ${JSON.stringify(second.stdout)}`);
  } finally {
    ch.close();
  }
  const del = await api(gw, 'DELETE', `api/kernels/${id}`, undefined, 60_000);
  if (del.status !== 204) throw new Error(`DELETE → ${del.status} ${del.text}`);
  await waitUntil(() => processGone(pid), 20_000, `kernel process ${pid} to exit`);
  if (/did not exit after shutdown_request/.test(gw.stderr())) throw new Error('the javascript kernel did not answer its shutdown_request');
});

for (const [name, body] of smokeSteps(state, { checkProcessGroup: true })) test(name, body);

test('no deno.lock was written into the checkout', () => {
  // Deno writes deno.lock beside a deno.json; with package.json alone it must not.
  if (existsSync(join(REPO_ROOT, 'deno.lock'))) throw new Error('deno.lock appeared in the checkout');
});

test.run();
