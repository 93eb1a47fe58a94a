/**
 * Starting a notebook-http gateway: the ways to select the mode (--api, KG_API, the reference's
 * module name as --KernelGatewayApp.api), which kernelspec serves the notebook (its own,
 * --force-kernel-name when its own is missing, one of its language when it names none), and start-up
 * failures with their exit codes and messages: no --seed-uri (2), a missing notebook, a notebook
 * without endpoints, a setup cell that fails, a kernelspec that does not exist (1). A failed start
 * leaves no kernel behind.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { freePort } from '../helpers/processes.ts';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { findProcesses, guardSuite, processGone, runGatewayToExit, shutdownTest, startGateway, waitUntil, type Gateway } from '../helpers/gateway.ts';
import { getText, http, notebookDir, notebookText, writeNotebook } from '../helpers/notebook-http.ts';

const test = suite('notebook-http: selecting the mode, the kernel, and start-up failures');
let dir: string;
let forced: Gateway;
let byLanguage: Gateway;
let early: Gateway | undefined;
let hungUp: Gateway | undefined;

const HELLO = ['import os', '# GET /hello\nprint("hello from", os.environ.get("KG_IT_MARKER", "python3"))'];

guardSuite(
  test,
  async () => {
    dir = notebookDir('startup');
    // A notebook whose own kernelspec is not installed.
    const alien = writeNotebook(dir, 'alien.ipynb', HELLO, 'python', 'fakelang2000');
    // A JavaScript notebook that names no kernelspec, only its language.
    const bare = join(dir, 'bare.ipynb');
    const nb = JSON.parse(notebookText(['// GET /hello\nconsole.log("hello from", process.release.name);'], 'javascript')) as { metadata: Record<string, unknown> };
    nb.metadata = { language_info: { name: 'javascript' } };
    writeFileSync(bare, JSON.stringify(nb));
    [forced, byLanguage] = await Promise.all([
      startGateway({ args: ['--KernelGatewayApp.api=kernel_gateway.notebook_http', `--KernelGatewayApp.seed_uri=${alien}`, '--force-kernel-name', 'testpy', '--base-url', '/svc/'], readyTimeoutMs: 60_000 }),
      startGateway({ args: ['--seed-uri', bare], env: { KG_API: 'notebook-http' }, readyTimeoutMs: 60_000 }),
    ]);
  },
  async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  },
);

test('--KernelGatewayApp.api=kernel_gateway.notebook_http and --force-kernel-name: a notebook whose kernelspec is missing is served by the forced one', async () => {
  assert.is(await getText(forced, '/hello'), 'hello from testpy\n');
  assert.is((await getText(forced, '/_api/spec/swagger.json')).includes('"/hello"'), true);
});

test('--base-url /svc/: endpoints, swagger.json and 404s live under it', async () => {
  assert.match(forced.url, /\/svc\/$/);
  const outside = await fetch(`${forced.origin}/hello`, { headers: { Authorization: `token ${forced.token}` } });
  assert.is(outside.status, 404);
  assert.is((await fetch(`${forced.origin}/svc/nothing`, { headers: { Authorization: `token ${forced.token}` } })).status, 404);
});

/** Whether something listens on `port`. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

test('a request that arrives while the pool is being seeded waits for it, then is served', async () => {
  const gate = join(dir, 'seeding.release');
  const notebook = writeNotebook(dir, 'slow-seed.ipynb', [
    `import pathlib, time\nwhile not pathlib.Path(${JSON.stringify(gate)}).exists():\n    time.sleep(0.02)\nready = "seeded"`,
    '# GET /ready\nprint(ready)',
  ]);
  const port = await freePort();
  const starting = startGateway({ token: 'early-token', args: ['--api', 'notebook-http', '--seed-uri', notebook, '--port', String(port)], readyTimeoutMs: 60_000 });
  starting.then((gw) => (early = gw), () => undefined);
  // The server listens before its kernels are seeded.
  await waitUntil(() => accepts(port), 30_000, `port ${port} to accept connections`);
  const answer = new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/ready', headers: { Authorization: 'token early-token' } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk)).on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end();
  });
  // The setup cell cannot have finished: the request was sent to a gateway still seeding.
  writeFileSync(gate, '');
  const res = await answer;
  assert.is(res.status, 200, res.text);
  assert.is(res.text, 'seeded\n');
  await starting;
});

/**
 * A gateway whose notebook's setup cell waits for `gate`; its pid and port once it listens, still
 * seeding, with the kernels' pids (each writes it to `pids` first).
 */
async function startSeeding(name: string, cells: string[] = []) {
  const gate = join(dir, `${name}.release`);
  const pids = join(dir, `${name}.pids`);
  const notebook = writeNotebook(dir, `${name}.ipynb`, [
    `import os, pathlib, time\nopen(${JSON.stringify(pids)}, "a").write(f"{os.getpid()}\\n")\nwhile not pathlib.Path(${JSON.stringify(gate)}).exists():\n    time.sleep(0.02)`,
    '# GET /v1\nprint("version 1")',
    ...cells,
  ]);
  const port = await freePort();
  const starting = startGateway({ args: ['--api', 'notebook-http', '--seed-uri', notebook, '--port', String(port), '--prespawn-count', '2'], readyTimeoutMs: 60_000 });
  starting.catch(() => undefined);
  await waitUntil(() => accepts(port), 30_000, `port ${port} to accept connections`);
  const [pid] = findProcesses(notebook);
  assert.ok(pid, 'the gateway process');
  await waitUntil(() => existsSync(pids) && readFileSync(pids, 'utf8').trim().split('\n').length === 2, 30_000, 'both kernels to run the setup cell');
  const kernels = readFileSync(pids, 'utf8').trim().split('\n').map(Number);
  return { notebook, gate, pid, kernels, starting };
}

test('SIGHUP while the pool is being seeded: the gateway goes on starting, then loads the notebook again', async () => {
  const { notebook, gate, pid, starting } = await startSeeding('hup');
  // The notebook changes while the gateway starts: the reload asked for meanwhile serves the new one.
  writeFileSync(notebook, notebookText(['# GET /v2\nprint("version 2")'], 'python', 'testpy'));
  process.kill(pid, 'SIGHUP');
  writeFileSync(gate, '');
  hungUp = await starting;
  await waitUntil(async () => (await http(hungUp!, 'GET', '/v2')).status === 200, 60_000, '/v2 after the reload');
  assert.is(await getText(hungUp, '/v2'), 'version 2\n');
  assert.is((await http(hungUp, 'GET', '/v1')).status, 404);
});

test('SIGTERM while the pool is being seeded: the gateway stops, and so do the kernels it started', async () => {
  const { pid, kernels, starting } = await startSeeding('term');
  process.kill(pid, 'SIGTERM');
  const error = await starting.then(() => undefined, (e: Error) => e);
  assert.ok(error, 'the gateway announced itself after SIGTERM');
  assert.match(error.message, /exited/);
  await waitUntil(() => kernels.every(processGone), 10_000, `kernels ${kernels} to exit`);
});

test('KG_API=notebook-http: a notebook naming no kernelspec is served by a kernelspec of its language', async () => {
  assert.is(await getText(byLanguage, '/hello'), 'hello from node\n');
});

/** Run a gateway that must fail to start; its exit code and stderr. */
async function failedStart(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string }> {
  const result = await runGatewayToExit({ args, env, timeoutMs: 60_000 });
  assert.not.ok(result.timedOut, `the gateway kept running:\n${result.stderr}`);
  assert.not.match(result.stderr, /is available at/, 'the gateway announced itself');
  return result;
}

test('--api notebook-http without --seed-uri → exit 2 saying --seed-uri is needed', async () => {
  const { code, stderr } = await failedStart(['--api', 'notebook-http']);
  assert.is(code, 2, stderr);
  assert.match(stderr, /notebook-http.*--seed-uri/);
  const env = await failedStart([], { KG_API: 'kernel_gateway.notebook_http' });
  assert.is(env.code, 2, env.stderr);
  assert.match(env.stderr, /KG_API/);
});

test('an unknown --cell-parser → exit 2 listing the parsers', async () => {
  const notebook = writeNotebook(dir, 'parser.ipynb', HELLO);
  const { code, stderr } = await failedStart(['--api', 'notebook-http', '--seed-uri', notebook, '--cell-parser', 'yaml']);
  assert.is(code, 2, stderr);
  assert.match(stderr, /annotations.*swagger/);
});

test('a notebook that does not exist → exit 1 naming it', async () => {
  const missing = join(dir, 'no-such.ipynb');
  const { code, stderr } = await failedStart(['--api', 'notebook-http', '--seed-uri', missing]);
  assert.is(code, 1, stderr);
  assert.ok(stderr.includes(missing), stderr);
});

test('a notebook without endpoints → exit 1: "No endpoints were discovered" and how to declare one', async () => {
  const notebook = writeNotebook(dir, 'plain.ipynb', ['x = 1', '#GET /no-space-is-no-endpoint', { type: 'markdown', source: '# GET /markdown' }]);
  const { code, stderr } = await failedStart(['--api', 'notebook-http', '--seed-uri', notebook]);
  assert.is(code, 1, stderr);
  assert.match(stderr, /No endpoints were discovered in .*plain\.ipynb/);
  assert.match(stderr, /# GET \/path/);
});

test('a setup cell that fails → exit 1 naming the cell and the error; every pool kernel it started is gone', async () => {
  const pids = join(dir, 'pids.txt');
  const notebook = writeNotebook(dir, 'failing.ipynb', [
    `import os\nopen(${JSON.stringify(pids)}, "a").write(f"{os.getpid()}\\n")`,
    '# GET /hello\nprint("hello")',
    'import no_such_module_anywhere',
  ]);
  const { code, stderr } = await failedStart(['--api', 'notebook-http', '--seed-uri', notebook, '--prespawn-count', '2']);
  assert.is(code, 1, stderr);
  assert.match(stderr, /cell 3 failed: ModuleNotFoundError/);
  assert.ok(existsSync(pids), 'no kernel ever ran the first cell');
  const started = readFileSync(pids, 'utf8').trim().split('\n').map(Number);
  assert.is(started.length, 2, `kernels that ran the first cell: ${started}`);
  await waitUntil(() => started.every(processGone), 10_000, `kernels ${started} to exit`);
});

test('a notebook whose kernelspec does not exist (no --force-kernel-name) → exit 1 naming it', async () => {
  const notebook = writeNotebook(dir, 'alien2.ipynb', HELLO, 'python', 'fakelang2000');
  const { code, stderr } = await failedStart(['--api', 'notebook-http', '--seed-uri', notebook]);
  assert.is(code, 1, stderr);
  assert.match(stderr, /fakelang2000/);
});

test('a notebook that names no kernelspec, in a language none speaks → exit 1 saying so', async () => {
  const notebook = join(dir, 'klingon.ipynb');
  const nb = JSON.parse(notebookText(['# GET /qapla\nprint("Qapla")'], 'klingon')) as { metadata: Record<string, unknown> };
  nb.metadata = { language_info: { name: 'klingon' } };
  writeFileSync(notebook, JSON.stringify(nb));
  const { code, stderr } = await failedStart(['--api', 'notebook-http', '--seed-uri', notebook]);
  assert.is(code, 1, stderr);
  assert.match(stderr, /names no kernelspec and no installed kernelspec speaks its language, klingon/);
});

shutdownTest(test, () => early, 'seeded late');
shutdownTest(test, () => hungUp, 'SIGHUP while starting');
shutdownTest(test, () => forced, 'forced kernel');
shutdownTest(test, () => byLanguage, 'kernel by language');

test.run();
