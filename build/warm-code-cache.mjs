// A V8 code cache made by a warm-up start: the bundled gateway is started once, in a child process, until
// it answers its first GET /api, and what V8 compiled until then is saved. Such a cache holds the code
// every start runs; one made without running (V8's default, and Node's SEA `useCodeCache`) holds only
// top-level code. Used by bundle.mjs (the npm package) and release.mjs (the executable).
//
//   warmCodeCache({ node, bundle, out, execPath? }) runs `node build/warm-code-cache.mjs <bundle> <out>
//   <port> [execPath]`, which compiles <bundle> as bin/load-bundle.js and the executable's main script
//   do (compileCommonJs), runs it as the gateway and writes the raw V8 cache to <out>. execPath
//   stands in for process.execPath: the executable's bundle looks for its ZeroMQ addon beside it.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import loader from '../bin/load-bundle.js';

const { compileCommonJs, runCommonJs } = loader;

const SELF = fileURLToPath(import.meta.url);
const LOADER = fileURLToPath(new URL('../bin/load-bundle.js', import.meta.url));
const GIVE_UP_MS = 30_000;

/** A port that was free a moment ago on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer().on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Whether `node` takes `cache` (raw V8 data) for `bundle`: V8 refuses one quietly. */
export function codeCacheTaken({ node, bundle, cache }) {
  const check = `const l = require(${JSON.stringify(LOADER)}); const { readFileSync } = require('node:fs');` +
    'process.exit(l.compileCommonJs(readFileSync(process.argv[1], "utf8"), process.argv[1], readFileSync(process.argv[2])).cachedDataRejected ? 1 : 0);';
  return spawnSync(node, ['-e', check, bundle, cache]).status === 0;
}

/**
 * Makes the cache with `node` (the Node that will read it). The child's environment has no KG_* or
 * JUPYTER_* variables and an empty home and Jupyter config, so the builder's settings cannot make it
 * start kernels or do anything but start and answer. Resolves to undefined, or to why it failed.
 */
export async function warmCodeCache({ node, bundle, out, execPath }) {
  const home = mkdtempSync(join(tmpdir(), 'kg-code-cache-'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(KG_|JUPYTER_)/.test(name)));
  Object.assign(env, { HOME: home, JUPYTER_CONFIG_DIR: home, JUPYTER_DATA_DIR: home, JUPYTER_RUNTIME_DIR: join(home, 'runtime') });
  try {
    const args = [SELF, bundle, out, String(await freePort()), ...(execPath ? [execPath] : [])];
    const child = spawn(node, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-2000)));
    const code = await new Promise((resolve) => child.on('close', resolve));
    return code === 0 ? undefined : `the warm-up exited with ${code}\n${stderr}`;
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

function getApi(port, token) {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/api', headers: { Authorization: `token ${token}` }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** The child: start the gateway in this process, wait for GET /api, write the cache. */
async function warmUp([bundle, out, port, execPath]) {
  const script = compileCommonJs(readFileSync(bundle, 'utf8'), bundle);
  const token = randomBytes(16).toString('hex');
  process.env.KG_AUTH_TOKEN = token;
  if (execPath) process.execPath = execPath;
  process.argv = [process.execPath, bundle, '--ip', '127.0.0.1', '--port', port, '--port-retries', '0', '--prespawn-count', '0', '--api', 'kernel_gateway.jupyter_websocket'];
  runCommonJs(script, bundle);
  const started = Date.now();
  while ((await getApi(port, token)) !== 200) {
    if (Date.now() - started > GIVE_UP_MS) {
      process.stderr.write(`the gateway did not answer GET /api on port ${port} within ${GIVE_UP_MS / 1000} s\n`);
      process.exit(1);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  writeFileSync(`${out}.tmp`, script.createCachedData());
  renameSync(`${out}.tmp`, out);
  process.exit(0);
}

if (process.argv[1] === SELF) await warmUp(process.argv.slice(2));
