/**
 * Start-up of the release executable (linux-x64, from release/; run `npm run release` first):
 *  - `kernelgateway --version`, wall time;
 *  - time from spawning `kernelgateway --port P` to the first answered GET /api (polled every 2 ms);
 * each several times from an unpacked archive in a temp folder, median and range; for comparison the
 * same two figures for `node bin/kernelgateway.js` (the npm package's command, Node of this machine);
 * then the size of every archive in release/.
 *
 *   node out/bench/startup.js [--runs N]
 *
 * Goals: --version < 0.3 s, GET /api < 0.5 s, linux-x64 archive < 60 MB. Exit code 1 when one is missed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url)); // out/bench/startup.js → repository
const VERSION: string = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
const RELEASE = join(ROOT, 'release');
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 11;
const GOAL_VERSION_S = 0.3;
const GOAL_API_S = 0.5;
const GOAL_ARCHIVE_MB = 60;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (xs: number[]): string =>
  `median ${(median(xs) / 1000).toFixed(3)} s (min ${(Math.min(...xs) / 1000).toFixed(3)}, max ${(Math.max(...xs) / 1000).toFixed(3)}, ${xs.length} runs)`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

function getApi(port: number): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/api', headers: { Authorization: 'token bench' }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

function timeVersion(cmd: string[], env: NodeJS.ProcessEnv, cwd: string): number {
  const t0 = performance.now();
  const res = spawnSync(cmd[0], [...cmd.slice(1), '--version'], { env, cwd, encoding: 'utf8' });
  const ms = performance.now() - t0;
  if (res.status !== 0 || !res.stdout.includes(`kernelgateway/${VERSION}`)) throw new Error(`${cmd.join(' ')} --version: ${res.status} ${res.stdout}${res.stderr}`);
  return ms;
}

async function timeFirstApi(cmd: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<number> {
  const port = await freePort();
  const t0 = performance.now();
  const proc = spawn(cmd[0], [...cmd.slice(1), '--port', String(port), '--auth-token', 'bench', '--port-retries', '0'], { env, cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  let exited = false;
  proc.on('exit', () => (exited = true));
  try {
    for (;;) {
      const status = await getApi(port);
      if (status === 200) return performance.now() - t0;
      if (status !== 0) throw new Error(`GET /api → ${status}`);
      if (exited) throw new Error(`the gateway exited before answering: ${stderr}`);
      if (performance.now() - t0 > 30_000) throw new Error(`no answer within 30 s: ${stderr}`);
      await new Promise((r) => setTimeout(r, 2));
    }
  } finally {
    const done = new Promise((r) => proc.once('exit', r));
    if (!exited) proc.kill('SIGTERM');
    await done;
  }
}

async function measure(label: string, cmd: string[], env: NodeJS.ProcessEnv, cwd: string): Promise<{ version: number; api: number }> {
  timeVersion(cmd, env, cwd); // warm the page cache: what is measured is start-up, not disk reads
  const versions: number[] = [];
  const apis: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    versions.push(timeVersion(cmd, env, cwd));
    apis.push(await timeFirstApi(cmd, env, cwd));
  }
  console.log(`${label}`);
  console.log(`  --version        ${fmt(versions)}`);
  console.log(`  first GET /api   ${fmt(apis)}`);
  return { version: median(versions) / 1000, api: median(apis) / 1000 };
}

async function main(): Promise<void> {
  const archive = join(RELEASE, `kernelgateway-${VERSION}-linux-x64.tar.gz`);
  if (!existsSync(archive)) {
    console.error(`${archive} is missing: run npm run release first`);
    process.exit(2);
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    console.error('the linux-x64 executable cannot run on this machine');
    process.exit(2);
  }
  const dir = mkdtempSync(join(tmpdir(), 'kg-startup-'));
  const problems: string[] = [];
  try {
    spawnSync('tar', ['-xzf', archive, '-C', dir], { stdio: 'inherit' });
    const exe = join(dir, `kernelgateway-${VERSION}-linux-x64`, 'kernelgateway');
    const home = join(dir, 'home');
    const env = { PATH: '/nonexistent', HOME: home, JUPYTER_RUNTIME_DIR: join(home, 'runtime') };
    console.log(`kernelgateway ${VERSION} start-up, ${RUNS} runs each (median, min, max)\n`);
    const exeTimes = await measure(`release executable (linux-x64, ${(statSync(exe).size / 1e6).toFixed(1)} MB, Node inside)`, [exe], env, dir);
    if (exeTimes.version >= GOAL_VERSION_S) problems.push(`--version took ${exeTimes.version.toFixed(3)} s (goal < ${GOAL_VERSION_S} s)`);
    if (exeTimes.api >= GOAL_API_S) problems.push(`first GET /api took ${exeTimes.api.toFixed(3)} s (goal < ${GOAL_API_S} s)`);
    const bin = join(ROOT, 'bin', 'kernelgateway.js');
    if (existsSync(join(ROOT, 'dist', 'kernelgateway.js'))) {
      await measure(`for comparison: node bin/kernelgateway.js (the npm package; Node ${process.version})`, [process.execPath, bin], { ...env, PATH: process.env.PATH }, dir);
    }

    console.log('\narchives in release/');
    for (const name of readdirSync(RELEASE).filter((n) => /\.(tar\.gz|zip)$/.test(n)).sort()) {
      const mb = statSync(join(RELEASE, name)).size / 1e6;
      console.log(`  ${name.padEnd(44)} ${mb.toFixed(1).padStart(6)} MB`);
      if (name.includes('-linux-x64.') && mb >= GOAL_ARCHIVE_MB) problems.push(`${name} is ${mb.toFixed(1)} MB (goal < ${GOAL_ARCHIVE_MB} MB)`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(problems.length === 0 ? '\nall start-up and size goals met' : `\ngoals missed:\n  ${problems.join('\n  ')}`);
  process.exitCode = problems.length === 0 ? 0 : 1;
}

await main();
