// Run by bundle.mjs in a child process: `node build/warm-code-cache.mjs <port>`. Starts the bundled gateway
// in this process, the way bin/kernelgateway.js does, waits for its first answered GET /api and writes
// the V8 code cache of everything compiled until then: the code a start runs, which is what a cache
// made before running (top-level code only) would miss.
import { randomBytes } from 'node:crypto';
import { renameSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { BUNDLE, CODE_CACHE, compileBundle } from '../bin/load-bundle.js';

const port = Number(process.argv[2]);
const token = randomBytes(16).toString('hex');
const GIVE_UP_MS = 30_000;

function getApi() {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/api', headers: { Authorization: `token ${token}` }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', () => resolve(0));
    req.end();
  });
}

const bundle = compileBundle();
process.env.KG_AUTH_TOKEN = token;
process.argv = [process.execPath, BUNDLE, '--ip', '127.0.0.1', '--port', String(port), '--port-retries', '0', '--prespawn-count', '0', '--api', 'kernel_gateway.jupyter_websocket'];
bundle.run();

const started = Date.now();
while ((await getApi()) !== 200) {
  if (Date.now() - started > GIVE_UP_MS) {
    process.stderr.write(`the gateway did not answer GET /api on port ${port} within ${GIVE_UP_MS / 1000} s\n`);
    process.exit(1);
  }
  await new Promise((resolve) => setTimeout(resolve, 5));
}
writeFileSync(`${CODE_CACHE}.tmp`, bundle.codeCache());
renameSync(`${CODE_CACHE}.tmp`, CODE_CACHE);
process.exit(0);
