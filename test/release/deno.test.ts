/**
 * The same source under Deno 2 (`npm run test:deno`): the deno binary from the `deno` devDependency runs
 * `deno run -A src/cli.ts` in the checkout, where Deno resolves cac, ws and zeromq from package.json and
 * node_modules. Then the kernel smoke test: start, execute over the WebSocket, interrupt, restart,
 * delete, SIGTERM → exit 0 with no kernel process left.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import { REPO_ROOT, cleanupTempDirs, launchGateway, run, smokeSteps, stopAll, tempDir, type SmokeState } from './harness.ts';

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

for (const [name, body] of smokeSteps(state, { checkProcessGroup: true })) test(name, body);

test('no deno.lock was written into the checkout', () => {
  // Deno writes deno.lock beside a deno.json; with package.json alone it must not.
  if (existsSync(join(REPO_ROOT, 'deno.lock'))) throw new Error('deno.lock appeared in the checkout');
});

test.run();
