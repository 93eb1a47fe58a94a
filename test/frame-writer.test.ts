import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AddressInfo } from 'node:net';
import { waitUntil } from './helpers/processes.ts';
import { WebSocket, WebSocketServer } from 'ws';
import { gather, OWN_FRAGMENT_BYTES } from '../src/bridge/chunks.ts';
import { FrameWriter, OutgoingFrame } from '../src/bridge/frame-writer.ts';
import { encodeJson, encodeJsonChunks } from '../src/bridge/json-protocol.ts';
import { encodeV1, encodeV1Chunks } from '../src/bridge/v1-protocol.ts';
import type { RawMessage } from '../src/messaging/message.ts';

const big = (n: number, fill = 'x') => Buffer.alloc(n, fill);
const message = (content: Buffer, buffers: Buffer[] = []): RawMessage => ({
  header: Buffer.from('{"msg_id":"m","msg_type":"stream"}'),
  parentHeader: Buffer.from('{"msg_id":"p"}'),
  metadata: Buffer.from('{}'),
  content,
  buffers,
});

// --- chunks -----------------------------------------------------------------------------------

test('gather joins small pieces and keeps big ones as the very same Buffers', () => {
  const large = big(OWN_FRAGMENT_BYTES);
  const chunks = gather([Buffer.from('ab'), Buffer.from('c'), large, Buffer.alloc(0), Buffer.from('d')]);
  assert.is(chunks.length, 3);
  assert.is(chunks[0].toString(), 'abc');
  assert.ok(chunks[1] === large);
  assert.is(chunks[2].toString(), 'd');
  assert.is(gather([]).length, 1);
  assert.is(gather([Buffer.alloc(0)])[0].length, 0);
});

test('a small message is one chunk in both protocols', () => {
  assert.is(encodeV1Chunks('iopub', message(Buffer.from('{"a":1}'))).length, 1);
  assert.is(encodeJsonChunks('iopub', message(Buffer.from('{"a":1}')), 'm', 'stream').chunks.length, 1);
});

test('a big content and big buffers are not copied; the chunks make the same bytes as one frame', () => {
  const content = Buffer.from(`{"text":"${'y'.repeat(100_000)}"}`);
  const buffer = big(50_000, 'b');
  const raw = message(content, [buffer, Buffer.from([1, 2])]);
  const v1 = encodeV1Chunks('iopub', raw);
  assert.ok(v1.includes(content));
  assert.ok(v1.includes(buffer));
  assert.ok(Buffer.concat(v1).equals(encodeV1('iopub', raw)));
  const json = encodeJsonChunks('iopub', raw, 'm', 'stream');
  assert.ok(json.binary);
  assert.ok(json.chunks.includes(content));
  assert.ok(json.chunks.includes(buffer));
  assert.ok(Buffer.concat(json.chunks).equals(encodeJson('iopub', raw, 'm', 'stream').data));
});

test('OutgoingFrame: a small message goes as one Buffer with its header; big chunks stay the same Buffers', () => {
  const small = new OutgoingFrame([Buffer.from('hello')], false);
  assert.is(small.wire.length, 1);
  assert.equal([...small.wire[0]], [0x81, 5, ...Buffer.from('hello')]);
  assert.ok(small.wire === small.wire, 'made once, for every client');
  const large = big(70_000);
  const frame = new OutgoingFrame([Buffer.from('ab'), large], true);
  assert.is(frame.bytes, 70_002);
  assert.is(frame.wire.length, 2);
  assert.equal([...frame.wire[0].subarray(0, 10)], [0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x72]);
  assert.is(frame.wire[0].subarray(10).toString(), 'ab');
  assert.ok(frame.wire[1] === large);
  const leadingBig = new OutgoingFrame([large], true);
  assert.is(leadingBig.wire.length, 2);
  assert.is(leadingBig.wire[0].length, 10);
  assert.ok(leadingBig.wire[1] === large);
});

// --- FrameWriter over a real WebSocket --------------------------------------------------------

async function pair(): Promise<{ server: WebSocket; client: WebSocket; received: { data: Buffer; binary: boolean }[]; close(): Promise<void> }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
  await new Promise((resolve) => wss.once('listening', resolve));
  const connected = new Promise<WebSocket>((resolve) => wss.once('connection', resolve));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, { perMessageDeflate: false });
  const received: { data: Buffer; binary: boolean }[] = [];
  client.on('message', (data: Buffer, binary: boolean) => received.push({ data, binary }));
  await new Promise((resolve) => client.once('open', resolve));
  const server = await connected;
  return {
    server,
    client,
    received,
    close: async () => {
      client.terminate();
      await new Promise((resolve) => wss.close(resolve));
    },
  };
}

test('FrameWriter: messages of every header size arrive whole, in order, text and binary', async () => {
  const { server, received, close } = await pair();
  try {
    const writer = new FrameWriter(server);
    const lengths = [0, 1, 125, 126, 127, 65_535, 65_536, 70_000, 1_000_000];
    const sent: Buffer[] = [];
    for (const [i, length] of lengths.entries()) {
      const data = big(length, String.fromCharCode(97 + i));
      // In up to three chunks, split unevenly.
      const chunks = length < 3 ? [data] : [data.subarray(0, 1), data.subarray(1, length >> 1), data.subarray(length >> 1)];
      writer.send(new OutgoingFrame(chunks, i % 2 === 0));
      sent.push(data);
    }
    await waitUntil(() => received.length === lengths.length, 5000, 'every message', 10);
    received.forEach(({ data, binary }, i) => {
      assert.is(binary, i % 2 === 0, `message ${i} binary`);
      assert.ok(data.equals(sent[i]), `message ${i} (${lengths[i]} bytes) intact`);
    });
  } finally {
    await close();
  }
});

test('FrameWriter: a burst of small messages in one turn, with ws frames between, keeps its order', async () => {
  const { server, received, close } = await pair();
  try {
    const writer = new FrameWriter(server);
    for (let i = 0; i < 1000; i++) {
      if (i % 100 === 0) server.send(`ws ${i}`);
      writer.send(new OutgoingFrame([Buffer.from(`m ${i}`)], false));
    }
    await waitUntil(() => received.length === 1010, 5000, '1,010 messages', 10);
    const texts = received.map(({ data }) => data.toString());
    const expected: string[] = [];
    for (let i = 0; i < 1000; i++) {
      if (i % 100 === 0) expected.push(`ws ${i}`);
      expected.push(`m ${i}`);
    }
    assert.equal(texts, expected);
  } finally {
    await close();
  }
});

test('FrameWriter: after the WebSocket closes, sending does not throw', async () => {
  const { server, close } = await pair();
  try {
    const writer = new FrameWriter(server);
    server.close(1000);
    writer.send(new OutgoingFrame([Buffer.from('late'), big(OWN_FRAGMENT_BYTES)], true));
  } finally {
    await close();
  }
});

test.run();
