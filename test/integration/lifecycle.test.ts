/**
 * Kernel lifecycle as WebSocket clients see it: interrupt, restart, several connections, reconnect
 * with replay, a killed kernel being restarted, malformed frames, and DELETE.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  api,
  checkKernelModel,
  deleteKernel,
  guardSuite,
  kernelPid,
  processGone,
  processRunning,
  shutdownTest,
  sleep,
  startGateway,
  startKernel,
  waitUntil,
  type Gateway,
} from '../helpers/gateway.ts';
import {
  connectExpectingRefusal,
  execute,
  executeContent,
  isReplyTo,
  isStatus,
  KernelClient,
  makeMsg,
  waitForKernelInfo,
  type Protocol,
  type Received,
} from '../helpers/kernel-ws.ts';

const test = suite('lifecycle: interrupt, restart, connections, reconnect, crash, malformed frames');
let gw: Gateway;
const open: KernelClient[] = [];

guardSuite(
  test,
  async () => {
    gw = await startGateway();
  },
  async () => {
    for (const c of open) await c.closeAndWait();
  },
);

async function connect(kernelId: string, protocol: Protocol = 'legacy', sessionId?: string): Promise<KernelClient> {
  const c = await KernelClient.connect(gw, kernelId, { protocol, sessionId });
  open.push(c);
  return c;
}

async function connections(kernelId: string): Promise<number> {
  const res = await api(gw, 'GET', `api/kernels/${kernelId}`);
  if (res.status !== 200) throw new Error(`GET model: ${res.status} ${res.text}`);
  return checkKernelModel(res.body, 'model').connections;
}

/** Executes `expr` and returns its text/plain result; throws with the details if there is none. */
async function value(c: KernelClient, expr: string): Promise<string> {
  const r = await execute(c, expr);
  const result = r.iopub.find((m) => m.header.msg_type === 'execute_result');
  if (!result) {
    const iopub = r.iopub.map((m) => `${m.header.msg_type}${m.header.msg_type === 'error' ? `(${m.content.ename})` : ''}`).join(', ');
    throw new Error(`no execute_result for ${JSON.stringify(expr)}: reply ${JSON.stringify(r.reply.content).slice(0, 300)}; iopub [${iopub}]`);
  }
  return result.content.data['text/plain'] as string;
}

// ---------------------------------------------------------------------------------------------
let k1: string;

test('interrupt via REST stops time.sleep(30): execute_reply error KeyboardInterrupt within seconds', async () => {
  k1 = (await startKernel(gw)).id;
  const c = await connect(k1);
  await waitForKernelInfo(c);
  // Interrupt only once user code runs: ipykernel 6.17 loses the execute_reply when SIGINT lands
  // between execute_input and the start of user code ("KeyboardInterrupt caught in kernel").
  const req = c.request('shell', 'execute_request', executeContent("import time; print('sleeping', flush=True); time.sleep(30)", false, false));
  await c.waitFor((m) => m.channel === 'iopub' && m.header.msg_type === 'stream' && m.parent_header.msg_id === req.header.msg_id, 15000, 'the sleep to start');
  await sleep(100);
  const t0 = Date.now();
  const res = await api(gw, 'POST', `api/kernels/${k1}/interrupt`);
  assert.is(res.status, 204, res.text);
  const reply = await c.waitFor((m) => isReplyTo(m, req, 'execute_reply'), 10000, 'execute_reply after interrupt');
  assert.ok(Date.now() - t0 < 10000);
  assert.is(reply.content.status, 'error');
  assert.is(reply.content.ename, 'KeyboardInterrupt');
  await c.waitFor((m) => isStatus(m, req, 'idle'), 10000, 'idle after interrupt');
  // The kernel survives an interrupt.
  assert.is(await value(c, '2+3'), '5');
});

test('restart via REST clears variables; the same connection works once kernel_info answers', async () => {
  const c = open[open.length - 1];
  const set = await execute(c, 'x = 1');
  assert.is(set.reply.content.status, 'ok');
  assert.is(await value(c, 'x'), '1');
  const pidBefore = await kernelPid(gw, k1);
  const res = await api(gw, 'POST', `api/kernels/${k1}/restart`, { timeoutMs: 60000 });
  assert.is(res.status, 200, res.text);
  assert.is(checkKernelModel(res.body, 'restart').id, k1);
  await waitUntil(() => processGone(pidBefore), 10000, 'the pre-restart kernel process to exit');
  await waitForKernelInfo(c, 30000);
  const r = await execute(c, 'x', 20000, false);
  assert.is(r.reply.content.status, 'error', `x survived the restart: ${JSON.stringify(r.reply.content)}`);
  assert.is(r.reply.content.ename, 'NameError');
  assert.ok(c.isOpen, 'the connection was closed by a restart');
});

// ---------------------------------------------------------------------------------------------
let k2: string;

test('connections count follows open WebSockets', async () => {
  k2 = (await startKernel(gw)).id;
  assert.is(await connections(k2), 0);
  const a = await connect(k2, 'legacy');
  await waitUntil(async () => (await connections(k2)) === 1, 5000, 'connections == 1');
  const b = await connect(k2, 'v1');
  await waitUntil(async () => (await connections(k2)) === 2, 5000, 'connections == 2');
  await b.closeAndWait();
  await waitUntil(async () => (await connections(k2)) === 1, 5000, 'connections back to 1');
  await a.closeAndWait();
  await waitUntil(async () => (await connections(k2)) === 0, 5000, 'connections back to 0');
});

test('two connections (different session_ids): both get iopub, only the requester gets execute_reply', async () => {
  const a = await connect(k2, 'legacy');
  const b = await connect(k2, 'v1');
  await waitForKernelInfo(a);
  await waitForKernelInfo(b);
  assert.is(await connections(k2), 2);
  const req = a.request('shell', 'execute_request', executeContent("print('for everyone')"));
  await a.waitFor((m) => isReplyTo(m, req, 'execute_reply'), 15000, 'execute_reply on the requester');
  await a.waitFor((m) => isStatus(m, req, 'idle'), 15000, 'idle on the requester');
  const seen = await b.waitFor(
    (m) => m.channel === 'iopub' && m.header.msg_type === 'stream' && m.parent_header.msg_id === req.header.msg_id,
    15000,
    'the other connection to see the stream',
  );
  assert.is(seen.content.text, 'for everyone\n');
  await b.waitFor((m) => isStatus(m, req, 'idle'), 15000, 'idle on the other connection');
  await sleep(300);
  assert.not.ok(b.messages.some((m) => m.parent_header.msg_id === req.header.msg_id && m.channel !== 'iopub'), 'the other connection got a non-iopub message for A\'s request');

  // And the other way round, with stdin: only the requester gets input_request.
  const req2 = b.request('shell', 'execute_request', executeContent("print(input('> '))", true));
  const ir = await b.waitFor((m) => m.channel === 'stdin' && m.header.msg_type === 'input_request' && m.parent_header.msg_id === req2.header.msg_id, 15000, 'input_request on B');
  b.request('stdin', 'input_reply', { value: 'from B' }, { parent: ir.header });
  await b.waitFor((m) => isReplyTo(m, req2, 'execute_reply'), 15000, 'execute_reply on B');
  await a.waitFor((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === req2.header.msg_id && m.content.text === 'from B\n', 15000, 'A sees B\'s output');
  assert.not.ok(a.messages.some((m) => m.channel === 'stdin'), 'A received a stdin message for B\'s request');
  a.assertClean();
  b.assertClean();
  await a.closeAndWait();
  await b.closeAndWait();
});

test('reconnect with the same session_id: output produced while away is delivered, none missing', async () => {
  const session = `reconnect-${Date.now()}`;
  const a = await connect(k2, 'legacy', session);
  await waitForKernelInfo(a);
  const req = a.request('shell', 'execute_request', executeContent('import time\nfor i in range(5): print(i, flush=True); time.sleep(0.3)'));
  await a.waitFor((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === req.header.msg_id, 15000, 'first stream output');
  await a.closeAndWait();
  await sleep(2500);
  const b = await connect(k2, 'legacy', session);
  await b.waitFor((m) => isReplyTo(m, req, 'execute_reply'), 15000, 'execute_reply replayed after reconnect');
  await b.waitFor((m) => isStatus(m, req, 'idle'), 15000, 'idle replayed after reconnect');
  const streamText = (c: KernelClient) =>
    c.messages.filter((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === req.header.msg_id).map((m) => m.content.text as string).join('');
  const lines = (streamText(a) + streamText(b)).split('\n').filter((l) => l !== '');
  const counts = new Map<string, number>();
  for (const l of lines) counts.set(l, (counts.get(l) ?? 0) + 1);
  for (const n of ['0', '1', '2', '3', '4']) {
    assert.ok(counts.has(n), `line ${n} is missing; first connection got ${JSON.stringify(streamText(a))}, second got ${JSON.stringify(streamText(b))}`);
    assert.is(counts.get(n), 1, `line ${n} was delivered ${counts.get(n)} times`);
  }
  assert.ok(streamText(b).length > 0, 'nothing was delivered to the reconnected client');
  // The reconnected client is fully functional.
  assert.is(await value(b, '40+2'), '42');
  a.assertClean();
  b.assertClean();
  await b.closeAndWait();
});

// ---------------------------------------------------------------------------------------------
test('kill -9 of the kernel: the client receives status restarting, then the kernel answers execute again', async () => {
  const k3 = (await startKernel(gw)).id;
  const c = await connect(k3, 'legacy');
  const v = await connect(k3, 'v1');
  await waitForKernelInfo(c);
  await waitForKernelInfo(v);
  assert.is((await execute(c, 'y = 5')).reply.content.status, 'ok');
  const pid = await kernelPid(gw, k3);
  process.kill(pid, 'SIGKILL');
  const restarting = (m: Received) => m.channel === 'iopub' && m.header.msg_type === 'status' && m.content.execution_state === 'restarting';
  const st = await c.waitFor(restarting, 20000, 'iopub status restarting after kill -9');
  assert.type(st.header.msg_id, 'string');
  assert.type(st.header.session, 'string');
  assert.not.ok(st.frame.binary);
  for (const key of ['header', 'msg_id', 'msg_type', 'parent_header', 'metadata', 'content', 'channel']) {
    assert.ok(st.frame.topKeys.includes(key), `the restarting status frame lacks "${key}": ${st.frame.topKeys}`);
  }
  await v.waitFor(restarting, 20000, 'status restarting on the v1 connection');
  await waitForKernelInfo(c, 30000);
  const r = await execute(c, '1+1');
  assert.is(r.reply.content.status, 'ok');
  assert.is(r.iopub.find((m) => m.header.msg_type === 'execute_result')?.content.data['text/plain'], '2');
  const gone = await execute(c, 'y', 20000, false);
  assert.is(gone.reply.content.ename, 'NameError', 'the restarted kernel is a new process');
  const newPid = await kernelPid(gw, k3);
  assert.is.not(newPid, pid);
  await waitForKernelInfo(v, 30000);
  const model = await api(gw, 'GET', `api/kernels/${k3}`);
  assert.is(model.status, 200);
  assert.ok(['idle', 'busy', 'starting'].includes(model.body.execution_state), `state ${model.body.execution_state}`);
  c.assertClean();
  v.assertClean();
  await c.closeAndWait();
  await v.closeAndWait();
  const del = await deleteKernel(gw, k3);
  assert.is(del.status, 204, del.text);
  await waitUntil(() => processGone(newPid), 5000, 'restarted kernel process to exit after DELETE');
});

// ---------------------------------------------------------------------------------------------
const ACCEPTABLE_CLOSE = (code: number) => code === 1007 || code === 1008 || (code >= 4000 && code <= 4999);

test('malformed frames do not close other connections or kill the kernel; legacy connections keep working', async () => {
  const k4 = k2;
  const pid = await kernelPid(gw, k4);
  const bystander = await connect(k4, 'legacy');
  const bystanderV1 = await connect(k4, 'v1');
  await waitForKernelInfo(bystander);

  const legacyFrames: [string, string | Buffer][] = [
    ['text frame "not json"', 'not json'],
    ['JSON that is not an object', '[1, 2, 3]'],
    ['unknown channel "nope"', JSON.stringify({ ...makeMsg('nope', 'execute_request', executeContent('1'), 'x'), buffers: [] })],
    ['message without a header', JSON.stringify({ parent_header: {}, metadata: {}, content: {}, channel: 'shell', buffers: [] })],
    ['legacy binary frame with nbufs 0xffffffff', Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 8, 1, 2, 3])],
    ['legacy binary frame with offsets past the end', Buffer.from([0, 0, 0, 2, 0, 0, 0x10, 0, 0, 0, 0x20, 0, 0x7b, 0x7d])],
  ];
  let legacy = await connect(k4, 'legacy');
  for (const [label, frame] of legacyFrames) {
    legacy.sendRaw(frame);
    await sleep(300);
    if (legacy.closeInfo || !legacy.isOpen) {
      const info = legacy.closeInfo ?? (await legacy.waitForClose(5000));
      assert.ok(ACCEPTABLE_CLOSE(info.code), `${label}: connection closed with code ${info.code} (${info.reason}); expected to stay open or 1007/1008/4xxx`);
      legacy = await connect(k4, 'legacy');
    } else {
      const r = await execute(legacy, '3*3', 15000);
      assert.is(r.reply.content.status, 'ok', `${label}: the same connection cannot execute afterwards`);
    }
    assert.ok(bystander.isOpen, `${label} closed another connection`);
    assert.ok(processRunning(pid), `${label} killed the kernel`);
  }

  const v1Frames: [string, Buffer][] = [
    ['v1 frame with offsets past the end', (() => {
      const b = Buffer.alloc(8 * 8 + 10);
      b.writeBigUInt64LE(7n, 0);
      for (let i = 1; i <= 7; i++) b.writeBigUInt64LE(BigInt(1000 * i), 8 * i);
      return b;
    })()],
    ['v1 frame with offset_number 2^40', (() => {
      const b = Buffer.alloc(64);
      b.writeBigUInt64LE(1n << 40n, 0);
      return b;
    })()],
    ['v1 frame with decreasing offsets', (() => {
      const b = Buffer.alloc(8 * 7 + 20, 0x7b);
      b.writeBigUInt64LE(6n, 0);
      [56, 70, 60, 65, 70, 76].forEach((o, i) => b.writeBigUInt64LE(BigInt(o), 8 * (i + 1)));
      return b;
    })()],
    ['v1 frame of 3 bytes', Buffer.from([1, 2, 3])],
    ['text frame on a v1 connection', Buffer.from('not json')],
  ];
  for (const [label, frame] of v1Frames) {
    const c = await connect(k4, 'v1');
    if (label.startsWith('text frame')) c.sendRaw(frame.toString('utf8'));
    else c.sendRaw(frame);
    await sleep(300);
    if (c.closeInfo || !c.isOpen) {
      const info = c.closeInfo ?? (await c.waitForClose(5000));
      assert.ok(ACCEPTABLE_CLOSE(info.code), `${label}: connection closed with code ${info.code} (${info.reason}); expected to stay open or 1007/1008/4xxx`);
    } else {
      await waitForKernelInfo(c, 15000);
      await c.closeAndWait();
    }
    assert.ok(bystander.isOpen && bystanderV1.isOpen, `${label} closed another connection`);
    assert.ok(processRunning(pid), `${label} killed the kernel`);
  }

  // The kernel still works from another connection, with the same process.
  assert.is(await value(bystander, '7*6'), '42');
  await waitForKernelInfo(bystanderV1, 15000);
  assert.is(await kernelPid(gw, k4), pid, 'the kernel was restarted');
  await legacy.closeAndWait();
  await bystander.closeAndWait();
  await bystanderV1.closeAndWait();
});

test('DELETE while a client is connected: 204, process exits, connection file gone; the gateway keeps serving', async () => {
  const c = await connect(k2, 'legacy');
  await waitForKernelInfo(c);
  const pid = await kernelPid(gw, k2);
  const del = await deleteKernel(gw, k2);
  assert.is(del.status, 204, del.text);
  assert.not.ok(existsSync(join(gw.runtimeDir, `kernel-${k2}.json`)), 'connection file still present');
  await waitUntil(() => processGone(pid), 5000, `kernel process ${pid} to exit`);
  assert.is((await api(gw, 'GET', `api/kernels/${k2}`)).status, 404);
  // If the server keeps the socket open, it must not be in a state that breaks the gateway.
  await c.closeAndWait();
  const again = (await connectExpectingRefusal(gw, k2)).status;
  assert.is(again, 404, 'a WebSocket to a deleted kernel should be refused with 404');
  assert.is((await api(gw, 'GET', 'api')).status, 200);
});

// k1 is left running on purpose: SIGTERM must shut it down.
shutdownTest(test, () => gw);
test.run();
