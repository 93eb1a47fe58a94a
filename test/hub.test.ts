/**
 * The bridge (KernelHub, ClientConnection) against a kernel on real ZeroMQ sockets in this process
 * (test/helpers/fake-kernel.ts) and real WebSocket clients: fan-out, reply routing, input routing,
 * a reconnect that takes over its session, the offline buffer, and the gateway's own statuses.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { WebSocketServer } from 'ws';
import { KernelHub } from '../src/bridge/hub.ts';
import { V1_PROTOCOL } from '../src/bridge/v1-protocol.ts';
import { Kernel } from '../src/kernels/kernel.ts';
import { createLogger } from '../src/log.ts';
import { FakeProvisioner } from './helpers/fake-kernel.ts';
import type { Gateway } from './helpers/gateway.ts';
import { execute, executeContent, finishExecute, isReplyTo, isStatus, KernelClient } from './helpers/kernel-ws.ts';

const test = suite('bridge: KernelHub over a kernel on real ZeroMQ sockets');
const log = createLogger('ERROR');

interface Setup {
  kernel: Kernel;
  provisioner: FakeProvisioner;
  hub: KernelHub;
  server: Server;
  gw: Gateway;
}

let setup: Setup;

async function start(): Promise<Setup> {
  const provisioner = new FakeProvisioner();
  const kernel = new Kernel({
    id: '00000000-0000-4000-8000-000000000001',
    spec: { name: 'fake', resourceDir: '', spec: { argv: [], env: {}, display_name: 'Fake', language: 'fake', interrupt_mode: 'signal', metadata: {} } },
    provisioner,
    cwd: process.cwd(),
    env: {},
    log,
    kernelInfoTimeout: 10,
  });
  await kernel.start();
  assert.ok(await kernel.whenReady(10000), 'the fake kernel did not become ready');
  const hub = new KernelHub(kernel, { log, offlineLimitBytes: 1024 * 1024, clientBufferBytes: 64 * 1024 * 1024, kernelBufferBytes: 64 * 1024 * 1024 });
  const wss = new WebSocketServer({ noServer: true, handleProtocols: (protocols) => (protocols.has(V1_PROTOCOL) ? V1_PROTOCOL : false) });
  const server = createServer();
  server.on('upgrade', (req, socket, head) => {
    const sessionId = new URL(req.url ?? '/', 'http://x').searchParams.get('session_id') ?? 'anonymous';
    wss.handleUpgrade(req, socket, head, (ws) => hub.connect(ws, ws.protocol === V1_PROTOCOL ? 'v1' : 'json', sessionId));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const gw = { wsUrl: `ws://127.0.0.1:${port}/`, token: '' } as Gateway;
  return { kernel, provisioner, hub, server, gw };
}

test.before(async () => {
  setup = await start();
});

test.after(async () => {
  setup.hub.closeAll(1001, 'test over');
  await setup.kernel.shutdown();
  await new Promise((resolve) => setup.server.close(resolve));
});

test('iopub reaches every connection, in both protocols; replies reach only the sender', async () => {
  const [a, b, c] = await Promise.all([
    KernelClient.connect(setup.gw, setup.kernel.id, { protocol: 'v1' }),
    KernelClient.connect(setup.gw, setup.kernel.id),
    KernelClient.connect(setup.gw, setup.kernel.id, { protocol: 'v1' }),
  ]);
  assert.is(setup.hub.connectionCount, 3);
  const r = await execute(a, 'hello');
  assert.is(r.stdout, 'hello');
  for (const other of [b, c]) {
    await other.waitFor((m) => isStatus(m, r.request, 'idle'), 5000, 'the idle of a\'s cell');
    assert.ok(other.messages.some((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === r.request.header.msg_id));
    assert.not.ok(other.messages.some((m) => isReplyTo(m, r.request, 'execute_reply')), 'a reply reached another client');
    other.assertClean();
  }
  for (const client of [a, b, c]) await client.closeAndWait();
});

test('a big output reaches every client whole; one with a wrong signature, checked while it arrived, reaches none', async () => {
  const [a, b] = await Promise.all([
    KernelClient.connect(setup.gw, setup.kernel.id, { protocol: 'v1' }),
    KernelClient.connect(setup.gw, setup.kernel.id),
  ]);
  // Over 1 MB: the content's signature is computed as its bytes arrive (zmtp-subscriber.ts onStream).
  const text = 'é'.repeat(1_500_000);
  const r = await execute(a, `forged:${text}`);
  assert.is(r.stdout, text, 'the signed output, whole');
  for (const client of [a, b]) {
    await client.waitFor((m) => isStatus(m, r.request, 'idle'), 10_000, 'the idle of the cell');
    const streams = client.messages.filter((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === r.request.header.msg_id);
    assert.is(streams.length, 1, 'only the signed output arrived');
    assert.is((streams[0].content as { text: string }).text, text);
  }
  a.close();
  b.close();
});

test('input_request goes to the asker only; an unasked input_reply is dropped', async () => {
  const asker = await KernelClient.connect(setup.gw, setup.kernel.id);
  const other = await KernelClient.connect(setup.gw, setup.kernel.id);
  const request = asker.request('shell', 'execute_request', executeContent('input:name?', true));
  const prompt = await asker.waitFor((m) => m.header.msg_type === 'input_request', 5000, 'input_request');
  other.request('stdin', 'input_reply', { status: 'ok', value: 'intruder' }, { parent: prompt.header });
  await new Promise((r) => setTimeout(r, 200));
  asker.request('stdin', 'input_reply', { status: 'ok', value: 'asker' }, { parent: prompt.header });
  const done = await finishExecute(asker, request, 5000);
  assert.is(done.stdout, 'asker');
  assert.not.ok(other.messages.some((m) => m.channel === 'stdin'));
  assert.is(setup.provisioner.current!.received.filter(([channel]) => channel === 'stdin').length, 1, 'the intruder\'s reply reached the kernel');
  await asker.closeAndWait();
  await other.closeAndWait();
});

test('a reconnect with the same session takes over: the stale socket is closed with 1000, replies in flight reach the new one', async () => {
  const first = await KernelClient.connect(setup.gw, setup.kernel.id, { sessionId: 'roaming' });
  const request = first.request('shell', 'execute_request', executeContent('input:again?', true));
  await first.waitFor((m) => m.header.msg_type === 'input_request', 5000, 'input_request');
  const second = await KernelClient.connect(setup.gw, setup.kernel.id, { sessionId: 'roaming' });
  assert.is((await first.waitForClose(5000)).code, 1000);
  assert.is(setup.hub.connectionCount, 1);
  // The new socket answers the input the old one was asked for, and gets the reply.
  second.request('stdin', 'input_reply', { status: 'ok', value: 'moved' }, {});
  const reply = await second.waitFor((m) => isReplyTo(m, request, 'execute_reply'), 5000, 'the reply on the new socket');
  assert.is(reply.content.status, 'ok');
  await second.closeAndWait();
});

test('a client asked for input that drops out and reconnects (others stay connected) may still answer; others may not', async () => {
  const watcher = await KernelClient.connect(setup.gw, setup.kernel.id);
  const first = await KernelClient.connect(setup.gw, setup.kernel.id, { sessionId: 'blip' });
  const request = first.request('shell', 'execute_request', executeContent('input:after the blip?', true));
  await first.waitFor((m) => m.header.msg_type === 'input_request', 5000, 'input_request');
  await first.closeAndWait();
  // Someone else cannot answer the orphaned prompt...
  watcher.request('stdin', 'input_reply', { status: 'ok', value: 'intruder' }, {});
  await new Promise((r) => setTimeout(r, 200));
  // ...but the same session, back, can.
  const back = await KernelClient.connect(setup.gw, setup.kernel.id, { sessionId: 'blip' });
  back.request('stdin', 'input_reply', { status: 'ok', value: 'back again' }, {});
  const idle = await watcher.waitFor((m) => isStatus(m, request, 'idle'), 5000, 'the cell to finish');
  assert.ok(idle);
  const output = watcher.messages.find((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === request.header.msg_id);
  assert.is(output?.content.text, 'back again');
  await back.closeAndWait();
  await watcher.closeAndWait();
});

test('the last client away: what the kernel sends is kept and replayed to the same session only', async () => {
  const client = await KernelClient.connect(setup.gw, setup.kernel.id, { sessionId: 'away' });
  const request = client.request('shell', 'execute_request', executeContent('input:later?', true));
  await client.waitFor((m) => m.header.msg_type === 'input_request', 5000, 'input_request');
  await client.closeAndWait();
  assert.is(setup.hub.connectionCount, 0);
  const back = await KernelClient.connect(setup.gw, setup.kernel.id, { sessionId: 'away' });
  back.request('stdin', 'input_reply', { status: 'ok', value: 'back' }, {});
  const r = await finishExecute(back, request, 5000);
  assert.is(r.stdout, 'back');
  await back.closeAndWait();
  // Kept for 'away', not for anyone else.
  const other = await KernelClient.connect(setup.gw, setup.kernel.id, { sessionId: 'someone-else' });
  await new Promise((r2) => setTimeout(r2, 200));
  assert.not.ok(other.messages.some((m) => m.parent_header.msg_id === request.header.msg_id), 'another session got the kept messages');
  await other.closeAndWait();
});

test('a kernel that dies: clients see restarting, then an error reply for the request it never answered, then it serves again', async () => {
  const client = await KernelClient.connect(setup.gw, setup.kernel.id);
  const request = client.request('shell', 'execute_request', executeContent('hang'));
  await client.waitFor((m) => isStatus(m, request, 'busy'), 5000, 'busy');
  setup.provisioner.current!.die();
  await client.waitFor((m) => isStatus(m, undefined, 'restarting'), 10000, 'restarting');
  const reply = await client.waitFor((m) => isReplyTo(m, request, 'execute_reply'), 10000, 'the error reply');
  assert.is(reply.content.ename, 'KernelGatewayError');
  assert.ok(await setup.kernel.whenReady(10000));
  assert.is((await execute(client, 'after')).stdout, 'after');
  assert.is(setup.provisioner.launches, 2);
  client.assertClean();
  await client.closeAndWait();
});

test.run();
