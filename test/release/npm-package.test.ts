/**
 * The npm package: `npm pack` (whose prepack builds dist/) gives a tarball holding bin/ and dist/ only;
 * `npm i -g --prefix <tmp> <tarball>` installs it with its dependencies from the registry, and the
 * installed `kernelgateway` command prints its version, starts from the code cache the build made, serves
 * GET /api and runs a kernel.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { suite } from 'uvu';
import { REPO_ROOT, VERSION, api, cleanupTempDirs, launchGateway, processGone, run, stopAll, tempDir, waitUntil, findProcesses, type RunningGateway } from './harness.ts';
import { onGlibc } from '../../src/memory-release.ts';

const test = suite('npm package');
let work = '';
let tarball = '';
let prefix = '';
let gw: RunningGateway | undefined;

const npmCli = (): [string, string[]] => {
  // Under `npm run`, npm_execpath is npm's CLI script; otherwise npm from PATH.
  const cli = process.env.npm_execpath;
  return cli && /npm-cli\.js$/.test(cli) ? [process.execPath, [cli]] : ['npm', []];
};
const npm = (args: string[], cwd: string): string => {
  const [cmd, pre] = npmCli();
  return run(cmd, [...pre, ...args], { cwd, timeoutMs: 600_000 });
};
/** PATH for the installed command: its prefix's bin and this machine's node (its shebang is `env node`). */
const pathFor = (): string => [join(prefix, 'bin'), dirname(process.execPath), '/usr/bin', '/bin'].join(':');

test.before(() => {
  work = tempDir('kg-npm-package-');
});
test.after(async () => {
  await stopAll();
  cleanupTempDirs();
});

test('npm pack runs prepack (the build) and packs bin/ and dist/ only', () => {
  const out = npm(['pack', '--pack-destination', work, '--json', '--silent'], REPO_ROOT);
  const info = JSON.parse(out.slice(out.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = join(work, info[0].filename);
  if (!existsSync(tarball)) throw new Error(`no ${tarball}`);
  const paths = info[0].files.map((f) => f.path).sort();
  for (const needed of ['bin/kernelgateway.js', 'bin/load-bundle.js', 'bin/package.json', 'dist/kernelgateway.cjs', 'dist/kernelgateway.code-cache', 'package.json']) {
    if (!paths.includes(needed)) throw new Error(`the package lacks ${needed}: ${paths.join(', ')}`);
  }
  // glibc Linux: the malloc_trim addon the build made (README: Memory after a burst).
  if (onGlibc() && !paths.includes('dist/native/malloc-trim.node')) throw new Error(`the package lacks dist/native/malloc-trim.node: ${paths.join(', ')}`);
  const stray = paths.filter((p) => !/^(bin|dist)\//.test(p) && !/^(package\.json|README\.md|LICENSE.*)$/i.test(p));
  if (stray.length > 0) throw new Error(`the package holds more than bin/ and dist/: ${stray.join(', ')}`);
});

test('npm i -g --prefix <tmp> installs it with its dependencies', () => {
  if (!tarball) throw new Error('no tarball (an earlier step failed)');
  prefix = join(work, 'prefix');
  npm(['install', '--global', '--prefix', prefix, tarball, '--no-audit', '--no-fund', '--loglevel', 'error'], work);
  const bin = join(prefix, 'bin', 'kernelgateway');
  if (!existsSync(bin)) throw new Error(`no ${bin}; ${join(prefix, 'bin')} holds ${existsSync(join(prefix, 'bin')) ? readdirSync(join(prefix, 'bin')).join(', ') : 'nothing'}`);
  for (const dep of ['zeromq', 'ws', 'cac']) {
    if (!existsSync(join(prefix, 'lib', 'node_modules', 'kernelgateway', 'node_modules', dep)) && !existsSync(join(prefix, 'lib', 'node_modules', dep))) {
      throw new Error(`dependency ${dep} not installed`);
    }
  }
});

test('kernelgateway --version', () => {
  if (!prefix) throw new Error('not installed (an earlier step failed)');
  const out = run(join(prefix, 'bin', 'kernelgateway'), ['--version'], { cwd: work, env: { PATH: pathFor(), HOME: work } });
  if (!out.startsWith(`kernelgateway/${VERSION} `)) throw new Error(`--version printed ${JSON.stringify(out)}`);
});

test('the installed package starts from the code cache its build made (the same Node)', () => {
  if (!prefix) throw new Error('not installed (an earlier step failed)');
  const loader = join(prefix, 'lib', 'node_modules', 'kernelgateway', 'bin', 'load-bundle.js');
  const out = run(process.execPath, ['-p', `require(${JSON.stringify(loader)}).compileBundle().cache`], { cwd: work, env: { PATH: pathFor(), HOME: work } });
  if (out.trim() !== 'used') throw new Error(`the code cache was ${JSON.stringify(out.trim())}, not used`);
});

test('kernelgateway serves GET /api', async () => {
  if (!prefix) throw new Error('not installed (an earlier step failed)');
  gw = await launchGateway({ command: [join(prefix, 'bin', 'kernelgateway')], cwd: work, env: { PATH: pathFor(), HOME: work } });
  const res = await api(gw, 'GET', 'api');
  if (res.status !== 200 || res.body?.version !== VERSION) throw new Error(`GET /api → ${res.status} ${res.text}`);
});

test('the installed gateway starts and deletes a python3 kernel (its zeromq addon loads)', async () => {
  if (!gw) throw new Error('no gateway (an earlier step failed)');
  const res = await api(gw, 'POST', 'api/kernels', { name: 'python3' });
  if (res.status !== 201) throw new Error(`POST /api/kernels → ${res.status} ${res.text}`);
  const id = res.body.id as string;
  const pid = await waitUntil(() => findProcesses(`kernel-${id}.json`)[0], 30_000, 'the kernel process');
  const del = await api(gw, 'DELETE', `api/kernels/${id}`);
  if (del.status !== 204) throw new Error(`DELETE → ${del.status} ${del.text}`);
  await waitUntil(() => processGone(pid), 20_000, 'the kernel process to exit');
  const stop = await gw.stop();
  if (stop.code !== 0) throw new Error(`SIGTERM: exit ${JSON.stringify(stop)}\n${gw.stderr()}`);
});

test.run();
