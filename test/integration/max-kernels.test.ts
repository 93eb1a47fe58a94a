/**
 * --max-kernels: starts beyond the limit get 403 (also under concurrency), a DELETE makes room, and
 * prespawned kernels count toward the limit.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  api,
  checkKernelModel,
  deleteKernel,
  errorBody,
  guardSuite,
  kernelPid,
  processGone,
  shutdownTest,
  sleep,
  startGateway,
  waitUntil,
  type ApiResponse,
  type Gateway,
} from '../helpers/gateway.ts';

const test = suite('--max-kernels');
let two: Gateway;
let concurrent: Gateway;
let pooled: Gateway;
let refilling: Gateway;

guardSuite(test, async () => {
  [two, concurrent, pooled, refilling] = await Promise.all([
    startGateway({ args: ['--max-kernels', '2'] }),
    startGateway({ args: ['--max-kernels', '2'] }),
    startGateway({ args: ['--prespawn-count', '1', '--max-kernels', '1'] }),
    startGateway({ args: ['--prespawn-count', '1', '--max-kernels', '2'] }),
  ]);
});

const post = (gw: Gateway, body: unknown = { name: 'python3' }) => api(gw, 'POST', 'api/kernels', { json: body, timeoutMs: 60000 });

function assertLimitRefusal(res: ApiResponse, limit: number, context: string): void {
  assert.is(res.status, 403, `${context}: ${res.status} ${res.text}`);
  const body = errorBody(res, context);
  assert.match(body.message, /limit/i, `${context}: message does not say it is a limit: ${body.message}`);
  assert.match(body.message, new RegExp(`\\b${limit}\\b`), `${context}: message does not state the limit ${limit}: ${body.message}`);
}

let first: string;

test('two kernels start; the third POST → 403 JSON stating the limit, and no process is spawned for it', async () => {
  const a = await post(two);
  const b = await post(two);
  assert.is(a.status, 201, a.text);
  assert.is(b.status, 201, b.text);
  first = checkKernelModel(a.body, 'first').id;
  await kernelPid(two, first);
  await kernelPid(two, b.body.id);
  const c = await post(two);
  assertLimitRefusal(c, 2, 'third POST');
  await sleep(300);
  assert.is(two.kernelPids().length, 2, `kernel processes: ${two.kernelPids().join(', ')}`);
  assert.is(two.connectionFiles().length, 2);
  const listed = await api(two, 'GET', 'api/kernels');
  assert.is(listed.body.length, 2);
});

test('after a DELETE a new POST succeeds (and the one after it is refused again)', async () => {
  const pid = await kernelPid(two, first);
  assert.is((await deleteKernel(two, first)).status, 204);
  await waitUntil(() => processGone(pid), 10000, 'the deleted kernel to exit');
  const again = await post(two);
  assert.is(again.status, 201, again.text);
  assertLimitRefusal(await post(two), 2, 'POST after refilling the limit');
});

test('5 concurrent POSTs on a fresh gateway → exactly 2×201 and 3×403', async () => {
  const results = await Promise.all([0, 1, 2, 3, 4].map(() => post(concurrent)));
  const statuses = results.map((r) => r.status).sort();
  assert.equal(statuses, [201, 201, 403, 403, 403], `statuses: ${results.map((r) => `${r.status} ${r.text.slice(0, 120)}`).join(' | ')}`);
  for (const r of results.filter((x) => x.status === 403)) assertLimitRefusal(r, 2, 'concurrent POST');
  const ids = results.filter((r) => r.status === 201).map((r) => r.body.id as string);
  assert.is(new Set(ids).size, 2);
  const listed = await api(concurrent, 'GET', 'api/kernels');
  assert.equal(listed.body.map((k: { id: string }) => k.id).sort(), [...ids].sort());
  await sleep(300);
  assert.is(concurrent.kernelPids().length, 2, `kernel processes: ${concurrent.kernelPids().join(', ')}`);
});

test('--prespawn-count 1 --max-kernels 1: the pooled kernel is handed out; the next POST → 403 (the pool counts)', async () => {
  await waitUntil(() => /prespawned kernel \S+ \(python3\) is ready/.test(pooled.stderr()), 30000, 'the prespawned kernel');
  const before = pooled.connectionFiles();
  assert.is(before.length, 1);
  const res = await post(pooled, {});
  assert.is(res.status, 201, res.text);
  assert.ok(before.includes(`kernel-${res.body.id}.json`), 'the POST did not get the prespawned kernel');
  assertLimitRefusal(await post(pooled, {}), 1, 'POST with the pooled kernel handed out');
  // No refill beyond the limit.
  await sleep(500);
  assert.equal(pooled.connectionFiles(), before);
  assert.is(pooled.kernelPids().length, 1);
});

test('--prespawn-count 1 --max-kernels 1: after a DELETE a POST succeeds again', async () => {
  const [only] = (await api(pooled, 'GET', 'api/kernels')).body as Array<{ id: string }>;
  assert.is((await deleteKernel(pooled, only.id)).status, 204);
  const res = await post(pooled, {});
  assert.is(res.status, 201, res.text);
  assertLimitRefusal(await post(pooled, {}), 1, 'POST after the replacement');
});

test('--prespawn-count 1 --max-kernels 2: a POST during the refill gets the refilling kernel, not a 403; a DELETE lets the pool refill', async () => {
  await waitUntil(() => /prespawned kernel \S+ \(python3\) is ready/.test(refilling.stderr()), 30000, 'the prespawned kernel');
  const first = await post(refilling, {});
  assert.is(first.status, 201, first.text);
  // The refill now holds the second place under the limit; this request must wait for it, not be refused.
  const second = await post(refilling, {});
  assert.is(second.status, 201, `POST during the refill: ${second.status} ${second.text}`);
  assert.is.not(second.body.id, first.body.id);
  assertLimitRefusal(await post(refilling, {}), 2, 'third POST');
  assert.is((await deleteKernel(refilling, first.body.id)).status, 204);
  const ids = [second.body.id];
  await waitUntil(
    () => refilling.connectionFiles().some((f) => !ids.some((id: string) => f === `kernel-${id}.json`)),
    30000,
    'the pool to refill after the DELETE',
  );
});

shutdownTest(test, () => two, 'max 2');
shutdownTest(test, () => concurrent, 'concurrent');
shutdownTest(test, () => pooled, 'prespawn 1, max 1');
shutdownTest(test, () => refilling, 'prespawn 1, max 2');
test.run();
