import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRequire } from 'node:module';
import { V1_PROTOCOL, decodeV1, encodeV1 } from '../src/bridge/v1-protocol.ts';
import type { RawMessage } from '../src/messaging/message.ts';
import { serialize, deserialize } from '@jupyterlab/services/lib/kernel/serialize.js';
import { dvBytes, protocolError, toArrayBuffer, type JlMessage } from './helpers/codec.ts';


const msg = (header: string, parent: string, metadata: string, content: string, buffers: Buffer[] = []): RawMessage => ({
  header: Buffer.from(header, 'utf8'),
  parentHeader: Buffer.from(parent, 'utf8'),
  metadata: Buffer.from(metadata, 'utf8'),
  content: Buffer.from(content, 'utf8'),
  buffers,
});

// protocol.md §4.5: channel "shell", parts {"msg_id": "1"}, {}, {}, {}, one 2-byte buffer:
// offset_number 7, offsets (64, 69, 84, 86, 88, 90, 92), total 92.
const KNOWN_FRAME = Buffer.concat([
  Buffer.from(
    '0700000000000000' + // offset_number = 7
      '4000000000000000' + // 64: channel
      '4500000000000000' + // 69: header
      '5400000000000000' + // 84: parent_header
      '5600000000000000' + // 86: metadata
      '5800000000000000' + // 88: content
      '5a00000000000000' + // 90: buffer 0
      '5c00000000000000', // 92: end
    'hex',
  ),
  Buffer.from('shell{"msg_id": "1"}{}{}{}', 'latin1'),
  Buffer.from([0xbe, 0xef]),
]);

test('the protocol name', () => {
  assert.is(V1_PROTOCOL, 'v1.kernel.websocket.jupyter.org');
});

test('known example (protocol.md §4.5): encodeV1 gives exactly that layout', () => {
  assert.is(KNOWN_FRAME.length, 92);
  const frame = encodeV1('shell', msg('{"msg_id": "1"}', '{}', '{}', '{}', [Buffer.from([0xbe, 0xef])]));
  assert.instance(frame, Buffer);
  assert.is(frame.length, 92);
  assert.is(frame.toString('hex'), KNOWN_FRAME.toString('hex'));
});

test('known example (protocol.md §4.5): decodeV1 reads it back', () => {
  const { channel, message } = decodeV1(KNOWN_FRAME);
  assert.is(channel, 'shell');
  assert.is(message.header.toString('latin1'), '{"msg_id": "1"}');
  assert.is(message.parentHeader.toString('latin1'), '{}');
  assert.is(message.metadata.toString('latin1'), '{}');
  assert.is(message.content.toString('latin1'), '{}');
  assert.is(message.buffers.length, 1);
  assert.is(message.buffers[0].toString('hex'), 'beef');
});

test('no buffers: offset_number 6 and a hand-checked layout', () => {
  const frame = encodeV1('iopub', msg('{"a":1}', '{}', '{}', '{"b":2}'));
  // table 8*7=56; iopub 56..61; header 61..68; parent 68..70; metadata 70..72; content 72..79
  const expected = Buffer.concat([
    Buffer.from('0600000000000000' + '3800000000000000' + '3d00000000000000' + '4400000000000000' +
      '4600000000000000' + '4800000000000000' + '4f00000000000000', 'hex'),
    Buffer.from('iopub{"a":1}{}{}{"b":2}', 'latin1'),
  ]);
  assert.is(frame.toString('hex'), expected.toString('hex'));
});

const NON_ASCII_HEADER = '{"msg_id":"ü-1","msg_type":"execute_request","username":"名前","session":"s","date":"2024-01-02T03:04:05.000000Z","version":"5.4"}';
const NON_ASCII_CONTENT = '{"code":"print(\'héllo 🌍 \\u00e9\')","silent":false}';

for (const nbuf of [0, 1, 3]) {
  test(`round trip with ${nbuf} buffer(s) and non-ASCII content`, () => {
    const buffers = [Buffer.from([0x00, 0xff, 0x10]), Buffer.alloc(0), Buffer.from('third buffer é', 'utf8')].slice(0, nbuf);
    const original = msg(NON_ASCII_HEADER, '{"msg_id": "p"}', '{"é": true}', NON_ASCII_CONTENT, buffers);
    const frame = encodeV1('control', original);
    // offset_number = 6 + n, and the last offset is the frame length
    assert.is(Number(frame.readBigUInt64LE(0)), 6 + nbuf);
    assert.is(Number(frame.readBigUInt64LE(8 * (6 + nbuf))), frame.length);
    assert.is(Number(frame.readBigUInt64LE(8)), 8 * (7 + nbuf));
    const { channel, message } = decodeV1(frame);
    assert.is(channel, 'control');
    assert.ok(message.header.equals(original.header), 'header bytes');
    assert.ok(message.parentHeader.equals(original.parentHeader), 'parent bytes');
    assert.ok(message.metadata.equals(original.metadata), 'metadata bytes');
    assert.ok(message.content.equals(original.content), 'content bytes');
    assert.is(message.buffers.length, nbuf);
    buffers.forEach((b, i) => assert.is(message.buffers[i].toString('hex'), b.toString('hex'), `buffer ${i}`));
  });
}

test('JSON parts pass through byte-for-byte, even when not canonical or not valid UTF-8', () => {
  const header = Buffer.from('{ "msg_id" : "x",\n  "msg_type":"y", "n": 1.0 }', 'utf8');
  const content = Buffer.concat([Buffer.from('{"t": "'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]);
  const original: RawMessage = { header, parentHeader: Buffer.alloc(0), metadata: Buffer.from('{}'), content, buffers: [] };
  const { message } = decodeV1(encodeV1('shell', original));
  assert.is(message.header.toString('hex'), header.toString('hex'));
  assert.is(message.parentHeader.length, 0);
  assert.is(message.content.toString('hex'), content.toString('hex'));
});

// --- cross-check with JupyterLab's client codec --------------------------------------------------

test('the JupyterLab codec loads from ESM and via createRequire', () => {
  assert.type(serialize, 'function');
  assert.type(deserialize, 'function');
  const require = createRequire(import.meta.url);
  const cjs = require('@jupyterlab/services/lib/kernel/serialize.js') as { serialize: unknown; deserialize: unknown };
  assert.is(cjs.serialize, serialize);
  assert.is(cjs.deserialize, deserialize);
});

const jlMessage = (buffers: Uint8Array[]): JlMessage =>
  ({
    channel: 'shell',
    header: {
      msg_id: 'jl-1',
      msg_type: 'execute_request',
      username: 'ü',
      session: 'sess',
      date: '2024-01-02T03:04:05.123Z',
      version: '5.4',
    },
    parent_header: {},
    metadata: { deletedCells: [], cellId: 'c-é' },
    content: { code: 'x = "héllo 🌍"', silent: false, store_history: true },
    buffers,
  }) as unknown as JlMessage;

for (const nbuf of [0, 2]) {
  test(`a JupyterLab v1 frame (${nbuf} buffers) decodes with decodeV1 to the same JSON`, () => {
    const buffers = [new Uint8Array([1, 2, 3, 4]), new Uint8Array([0xff])].slice(0, nbuf);
    const jl = jlMessage(buffers) as unknown as Record<string, unknown>;
    const data = serialize(jl as unknown as JlMessage, V1_PROTOCOL);
    assert.instance(data, ArrayBuffer);
    const { channel, message } = decodeV1(Buffer.from(data as ArrayBuffer));
    assert.is(channel, 'shell');
    assert.equal(JSON.parse(message.header.toString('utf8')), jl.header);
    assert.equal(JSON.parse(message.parentHeader.toString('utf8')), {});
    assert.equal(JSON.parse(message.metadata.toString('utf8')), jl.metadata);
    assert.equal(JSON.parse(message.content.toString('utf8')), jl.content);
    assert.is(message.buffers.length, nbuf);
    buffers.forEach((b, i) => assert.is(message.buffers[i].toString('hex'), Buffer.from(b).toString('hex')));
  });
}

test('JupyterLab encodes a null parent_header as {}, which decodeV1 reads', () => {
  const jl = { ...(jlMessage([]) as unknown as Record<string, unknown>), parent_header: null };
  const { message } = decodeV1(Buffer.from(serialize(jl as unknown as JlMessage, V1_PROTOCOL) as ArrayBuffer));
  assert.is(message.parentHeader.toString(), '{}');
});

for (const nbuf of [0, 1, 3]) {
  test(`an encodeV1 frame (${nbuf} buffers) deserializes in JupyterLab to the same message`, () => {
    const header = { msg_id: 'k-1', msg_type: 'display_data', username: 'kernel', session: 'ks', date: '2024-01-02T03:04:05.123456Z', version: '5.4' };
    const parent = { msg_id: 'jl-1', msg_type: 'execute_request' };
    const metadata = { 'ü': [1, 2] };
    const content = { data: { 'text/plain': 'héllo 🌍' }, metadata: {}, transient: {} };
    const buffers = [Buffer.from([0xde, 0xad, 0xbe, 0xef]), Buffer.from('β', 'utf8'), Buffer.from([0])].slice(0, nbuf);
    const frame = encodeV1('iopub', {
      header: Buffer.from(JSON.stringify(header)),
      parentHeader: Buffer.from(JSON.stringify(parent)),
      metadata: Buffer.from(JSON.stringify(metadata)),
      content: Buffer.from(JSON.stringify(content)),
      buffers,
    });
    const out = deserialize(toArrayBuffer(frame), V1_PROTOCOL) as unknown as Record<string, unknown>;
    assert.is(out.channel, 'iopub');
    assert.equal(out.header, header);
    assert.equal(out.parent_header, parent);
    assert.equal(out.metadata, metadata);
    assert.equal(out.content, content);
    const outBuffers = out.buffers as unknown[];
    assert.is(outBuffers.length, nbuf);
    buffers.forEach((b, i) => assert.is(dvBytes(outBuffers[i]).toString('hex'), b.toString('hex'), `buffer ${i}`));
  });
}

// --- decodeV1 rejections -------------------------------------------------------------------------

const u64 = (...values: (number | bigint)[]): Buffer => {
  const b = Buffer.alloc(8 * values.length);
  values.forEach((v, i) => b.writeBigUInt64LE(BigInt(v), 8 * i));
  return b;
};

test('decodeV1 rejects frames shorter than 8 bytes', () => {
  protocolError(() => decodeV1(Buffer.alloc(0)));
  protocolError(() => decodeV1(Buffer.from([6, 0, 0, 0, 0, 0, 0])));
});

test('decodeV1 rejects offset_number < 6', () => {
  // a well-formed table for 5 offsets (no content part): 48-byte table + 4 parts
  const five = Buffer.concat([u64(5, 48, 53, 55, 57, 59), Buffer.from('shell{}{}{}', 'latin1')]);
  protocolError(() => decodeV1(five));
  protocolError(() => decodeV1(Buffer.concat([u64(0), Buffer.alloc(64)])));
  protocolError(() => decodeV1(Buffer.concat([u64(1), Buffer.alloc(64)])));
});

test('decodeV1 rejects an offset table past the end of the frame', () => {
  // KNOWN_FRAME but claims 20 offsets (168-byte table > 92 bytes)
  const frame = Buffer.from(KNOWN_FRAME);
  frame.writeBigUInt64LE(20n, 0);
  protocolError(() => decodeV1(frame));
  // the table alone, truncated
  protocolError(() => decodeV1(KNOWN_FRAME.subarray(0, 60)));
  // absurd counts must not overflow into acceptance or a RangeError
  const huge = Buffer.from(KNOWN_FRAME);
  huge.writeBigUInt64LE(0xffffffffffffffffn, 0);
  protocolError(() => decodeV1(huge));
  huge.writeBigUInt64LE(0x2000000000000000n, 0); // 8 * (count + 1) wraps to 8 in 64-bit arithmetic
  protocolError(() => decodeV1(huge));
});

test('decodeV1 rejects offsets out of order', () => {
  const frame = Buffer.from(KNOWN_FRAME);
  frame.writeBigUInt64LE(86n, 8 * 3); // parent_header start 84 -> 86
  frame.writeBigUInt64LE(84n, 8 * 4); // metadata start 86 -> 84
  protocolError(() => decodeV1(frame));
});

test('decodeV1 rejects an offset past the end', () => {
  const lastPastEnd = Buffer.from(KNOWN_FRAME);
  lastPastEnd.writeBigUInt64LE(93n, 8 * 7);
  protocolError(() => decodeV1(lastPastEnd));
  // every offset after the channel is huge
  const allPast = Buffer.concat([u64(6, 56, 1000, 1001, 1002, 1003, 1004), Buffer.from('shell')]);
  protocolError(() => decodeV1(allPast));
  // beyond 2^53
  const giant = Buffer.from(KNOWN_FRAME);
  giant.writeBigUInt64LE(0xffffffffffffffffn, 8 * 7);
  protocolError(() => decodeV1(giant));
});

test('decodeV1 rejects offsets[0] not right after the table', () => {
  const after = Buffer.from(KNOWN_FRAME);
  after.writeBigUInt64LE(65n, 8); // channel starts one byte late
  protocolError(() => decodeV1(after));
  const inside = Buffer.from(KNOWN_FRAME);
  inside.writeBigUInt64LE(8n, 8); // channel "starts" inside the table
  protocolError(() => decodeV1(inside));
  const zero = Buffer.from(KNOWN_FRAME);
  zero.writeBigUInt64LE(0n, 8);
  protocolError(() => decodeV1(zero));
});

test.run();
