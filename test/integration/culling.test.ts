/**
 * Idle-kernel culling (--cull-idle-timeout, --cull-interval, --cull-connected, --cull-busy), with
 * Jupyter Server's rules, on short timings: timeout 2 s, a sweep every second.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  api,
  getKernel,
  guardSuite,
  kernelPid,
  processGone,
  shutdownTest,
  sleep,
  startGateway,
  waitUntil,
  type Gateway,
} from '../helpers/gateway.ts';
import { executeContent, isStatus, KernelClient } from '../helpers/kernel-ws.ts';

const test = suite('culling idle kernels');
const CULL = ['--cull-idle-timeout', '2', '--cull-interval', '1'];
let plain: Gateway;
let connected: Gateway;
let busy: Gateway;
let pooled: Gateway;
const open: KernelClient[] = [];

guardSuite(
  test,
  async () => {
    [plain, connected, busy, pooled] = await Promise.all([
      startGateway({ args: CULL }),
      startGateway({ args: [...CULL, '--cull-connected'] }),
      startGateway({ args: [...CULL, '--cull-busy'] }),
      startGateway({ args: [...CULL, '--prespawn-count', '1'] }),
    ]);
  },
  async () => {
    for (const c of open) await c.closeAndWait();
  },
);

async function start(gw: Gateway): Promise<{ id: string; pid: number; at: number; sentAt: number }> {
  const sentAt = Date.now();
  const res = await api(gw, 'POST', 'api/kernels', { json: { name: 'python3' }, timeoutMs: 60000 });
  assert.is(res.status, 201, res.text);
  const at = Date.now();
  return { id: res.body.id as string, pid: await kernelPid(gw, res.body.id), at, sentAt };
}

async function exists(gw: Gateway, id: string): Promise<boolean> {
  const res = await getKernel(gw, id);
  if (res.status !== 200 && res.status !== 404) throw new Error(`GET kernel: ${res.status} ${res.text}`);
  return res.status === 200;
}

/** Waits until the kernel is gone (404) and checks the log line, its process and its connection file. */
async function assertCulled(gw: Gateway, k: { id: string; pid: number }, withinMs: number): Promise<void> {
  await waitUntil(async () => !(await exists(gw, k.id)), withinMs, `kernel ${k.id} to be culled`, 200);
  assert.match(gw.stderr(), new RegExp(`culling kernel ${k.id}`), 'no "culling kernel <id>" log line');
  await waitUntil(() => processGone(k.pid), 10000, 'the culled kernel process to exit');
  assert.not.ok(existsSync(join(gw.runtimeDir, `kernel-${k.id}.json`)), 'the culled kernel\'s connection file is still there');
}

/** Holds until `ms` after `t0`. */
const until = (t0: number, ms: number) => sleep(Math.max(0, t0 + ms - Date.now()));

test('an idle kernel with no connections is culled within ~5 s (log line, process and connection file gone)', async () => {
  const k = await start(plain);
  await assertCulled(plain, k, 5000);
  assert.ok(Date.now() - k.sentAt >= 1900, `culled ${Date.now() - k.sentAt} ms after the POST was sent, before the 2 s idle timeout`);
});

test('an idle kernel with an open WebSocket survives (checked at 5 s); closed, it is culled', async () => {
  const k = await start(plain);
  const c = await KernelClient.connect(plain, k.id);
  open.push(c);
  await until(k.at, 5000);
  assert.ok(await exists(plain, k.id), 'a connected kernel was culled without --cull-connected');
  assert.not.match(plain.stderr(), new RegExp(`culling kernel ${k.id}`));
  await c.closeAndWait();
  await assertCulled(plain, k, 6000);
});

test('--cull-connected: an idle kernel with an open WebSocket is culled', async () => {
  const k = await start(connected);
  const c = await KernelClient.connect(connected, k.id);
  open.push(c);
  const model = await api(connected, 'GET', `api/kernels/${k.id}`);
  assert.is(model.body.connections, 1);
  await assertCulled(connected, k, 6000);
  await c.waitForClose(5000);
});

/** Starts `time.sleep(8)` over a WebSocket, waits for busy, closes the socket; returns when it was busy. */
async function startBusy(gw: Gateway): Promise<{ id: string; pid: number; at: number; sentAt: number; busyAt: number }> {
  const k = await start(gw);
  const c = await KernelClient.connect(gw, k.id);
  open.push(c);
  const req = c.request('shell', 'execute_request', executeContent("import time; print('sleeping', flush=True); time.sleep(8)"));
  await c.waitFor((m) => m.header.msg_type === 'stream' && m.parent_header?.msg_id === req.header.msg_id, 15000, 'the sleep to start');
  assert.ok(c.messages.some((m) => isStatus(m, req, 'busy')), 'no busy status');
  const busyAt = Date.now();
  await c.closeAndWait();
  await waitUntil(async () => (await api(gw, 'GET', `api/kernels/${k.id}`)).body?.connections === 0, 5000, 'connections 0');
  return { ...k, busyAt };
}

test('busy kernels (time.sleep(8), WebSocket closed): survive while busy without --cull-busy, then are culled; culled at once with --cull-busy', async () => {
  // Both scenarios at the same time, on two gateways, to save 8 seconds.
  const [kept, culled] = await Promise.all([startBusy(plain), startBusy(busy)]);
  await until(kept.busyAt, 5000);
  const model = await api(plain, 'GET', `api/kernels/${kept.id}`);
  assert.is(model.status, 200, 'a busy kernel was culled without --cull-busy');
  assert.is(model.body.execution_state, 'busy');
  // --cull-busy: gone while its sleep still runs (the sleep ends ~8 s after busyAt).
  await assertCulled(busy, culled, Math.max(0, culled.busyAt + 7000 - Date.now()));
  assert.match(busy.stderr(), new RegExp(`culling kernel ${culled.id}[^\\n]*state busy`), 'the culled kernel was not busy');
  // Without --cull-busy it goes once it is idle again (sleep ends ~8 s after busyAt, then 2 s idle).
  await assertCulled(plain, kept, 12000);
  assert.ok(Date.now() - kept.busyAt >= 8000, 'culled before its sleep ended');
});

test('a kernel handed out from the pool after waiting there longer than the timeout is not culled at once', async () => {
  await waitUntil(() => /prespawned kernel \S+ \(python3\) is ready/.test(pooled.stderr()), 30000, 'the prespawned kernel');
  const [file] = pooled.connectionFiles();
  await sleep(3000); // longer than the idle timeout, while pooled
  const res = await api(pooled, 'POST', 'api/kernels', { json: {}, timeoutMs: 60000 });
  assert.is(res.status, 201, res.text);
  const handedOut = Date.now();
  assert.is(`kernel-${res.body.id}.json`, file, 'the POST did not get the pooled kernel');
  // A client that just got a kernel needs a moment to connect; 1.5 s is less than the 2 s timeout.
  await until(handedOut, 1500);
  assert.ok(
    await exists(pooled, res.body.id),
    `the pooled kernel was culled ${Date.now() - handedOut} ms after being handed out (its idle clock started in the pool): ` +
      (pooled.stderr().match(new RegExp(`culling kernel ${res.body.id}[^\\n]*`))?.[0] ?? ''),
  );
});

shutdownTest(test, () => plain, 'cull');
shutdownTest(test, () => connected, 'cull-connected');
shutdownTest(test, () => busy, 'cull-busy');
shutdownTest(test, () => pooled, 'cull with prespawn');
test.run();
