/**
 * Prespawned kernels (KG_PRESPAWN_COUNT / --prespawn-count): started after the server listens, kept
 * out of GET /api/kernels, handed out by POST /api/kernels for the default kernelspec, refilled, and
 * seeded like any other kernel.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  api,
  checkKernelModel,
  guardSuite,
  kernelPid,
  processRunning,
  seedNotebook,
  shutdownTest,
  startGateway,
  waitUntil,
  type Gateway,
} from '../helpers/gateway.ts';
import { runInKernel } from '../helpers/kernel-ws.ts';

const test = suite('prespawned kernels');
let gw: Gateway;
let dir: string;

guardSuite(
  test,
  async () => {
    dir = mkdtempSync(join(tmpdir(), 'kg-it-prespawn-'));
    const nb = join(dir, 'seed.ipynb');
    writeFileSync(nb, seedNotebook([{ type: 'code', source: 'seeded = 41' }, { type: 'markdown', source: '# not code' }, { type: 'code', source: 'seeded += 1' }]));
    // The count comes from the environment variable here; max-kernels.test.ts uses the flag.
    gw = await startGateway({ env: { KG_PRESPAWN_COUNT: '2' }, args: ['--seed-uri', nb] });
  },
  async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  },
);

const fileOf = (id: string) => `kernel-${id}.json`;
const idOf = (file: string) => file.replace(/^kernel-/, '').replace(/\.json$/, '');
const logCount = (re: RegExp) => (gw.stderr().match(new RegExp(re.source, 'g')) ?? []).length;

async function listedIds(): Promise<string[]> {
  const res = await api(gw, 'GET', 'api/kernels');
  assert.is(res.status, 200, res.text);
  return (res.body as Array<{ id: string }>).map((k) => k.id);
}

/** POSTs a start and returns the model and how long it took. */
async function timedStart(body: unknown): Promise<{ id: string; ms: number }> {
  const t0 = performance.now();
  const res = await api(gw, 'POST', 'api/kernels', { json: body, timeoutMs: 60000 });
  const ms = performance.now() - t0;
  assert.is(res.status, 201, `POST ${JSON.stringify(body)} → ${res.status} ${res.text}`);
  return { id: checkKernelModel(res.body, 'started kernel').id, ms };
}

test('after start-up: 2 prespawned kernels run with connection files but are not listed', async () => {
  await waitUntil(() => logCount(/prespawned kernel \S+ \(python3\) is ready/) >= 2, 30000, 'two "prespawned kernel … is ready" log lines', 100);
  const files = gw.connectionFiles();
  assert.is(files.length, 2, `connection files: ${files.join(', ')}`);
  for (const f of files) {
    const pid = await kernelPid(gw, idOf(f));
    assert.ok(processRunning(pid), `prespawned kernel ${f} has no running process`);
  }
  assert.equal(await listedIds(), [], 'GET /api/kernels lists prespawned kernels');
  // They started after the server was listening.
  const listenAt = gw.stderr().indexOf('is available at');
  const firstKernel = gw.stderr().search(/kernel \S+ \(python3\) started, pid/);
  assert.ok(listenAt >= 0 && firstKernel > listenAt, 'a prespawned kernel was started before the server listened');
});

let pooledId: string;
let withPoolMs = 0;

test('POST {} hands out a ready pooled kernel (its connection file existed before the POST); the pool refills', async () => {
  const before = gw.connectionFiles();
  assert.is(before.length, 2);
  const { id, ms } = await timedStart({});
  withPoolMs = ms;
  pooledId = id;
  assert.ok(before.includes(fileOf(id)), `kernel ${id} was not one of the prespawned ones (${before.join(', ')})`);
  const model = await api(gw, 'GET', `api/kernels/${id}`);
  assert.is(model.status, 200);
  assert.is(model.body.name, 'python3');
  assert.equal(await listedIds(), [id]);
  // Refill: a connection file that was not there before appears, and the pool is full again.
  const fresh = await waitUntil(() => gw.connectionFiles().find((f) => !before.includes(f)), 30000, 'a new prespawned kernel');
  assert.is.not(fresh, fileOf(id));
  await waitUntil(() => logCount(/prespawned kernel \S+ \(python3\) is ready/) >= 3, 30000, 'the refill to be ready');
  assert.equal(await listedIds(), [id], 'the refill kernel is listed');
});

test('the pooled kernel was seeded: seeded == 42 before anything else ran', async () => {
  const out = await runInKernel(gw, pooledId, 'print(seeded, seeded == 42)');
  assert.is(out, '42 True\n');
});

test('POST {"name": "python3"} also gets a pooled kernel', async () => {
  const before = gw.connectionFiles();
  const { id } = await timedStart({ name: 'python3' });
  assert.ok(before.includes(fileOf(id)), `kernel ${id} was freshly started, not taken from the pool`);
  await waitUntil(() => logCount(/prespawned kernel \S+ \(python3\) is ready/) >= 4, 30000, 'the refill to be ready');
});

test('a POST with a path, or with other env, starts a fresh kernel (seeded too)', async () => {
  await waitUntil(() => gw.connectionFiles().length === 4, 10000, '2 handed out + 2 pooled connection files');
  const before = gw.connectionFiles();
  const withPath = await timedStart({ path: 'nb.ipynb' });
  assert.not.ok(before.includes(fileOf(withPath.id)), 'a POST with a path got a pooled kernel');
  const withEnv = await timedStart({ env: { KERNEL_FOO: 'x' } });
  assert.not.ok(before.includes(fileOf(withEnv.id)), 'a POST with env KERNEL_FOO got a pooled kernel');
  // Any env changes the kernel's environment (PATH plus whitelisted variables only), so it is never pooled.
  const withTimeout = await timedStart({ env: { KERNEL_LAUNCH_TIMEOUT: '40' } });
  assert.not.ok(before.includes(fileOf(withTimeout.id)), 'a POST with env KERNEL_LAUNCH_TIMEOUT got a pooled kernel');
  // The pool was not touched: its two kernels are still there.
  for (const f of before) assert.ok(existsSync(join(gw.runtimeDir, f)), `${f} went away`);
  assert.is(gw.connectionFiles().length, 7);
  assert.is((await listedIds()).length, 5);
  assert.is(await runInKernel(gw, withEnv.id, 'import os; print(seeded, os.environ["KERNEL_FOO"])'), '42 x\n');
  console.log(
    `    POST /api/kernels latency: ${withPoolMs.toFixed(0)} ms with a ready pooled kernel, ` +
      `${withPath.ms.toFixed(0)} ms / ${withEnv.ms.toFixed(0)} ms starting a fresh (seeded) kernel`,
  );
});

shutdownTest(test, () => gw);
test.run();
