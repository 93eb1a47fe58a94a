import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isUtf8 } from 'node:buffer';
import { decodeJson, encodeJson } from '../src/bridge/json-protocol.ts';
import type { RawMessage } from '../src/messaging/message.ts';
import { serialize, deserialize } from '@jupyterlab/services/lib/kernel/serialize.js';
import { dvBytes, protocolError, toArrayBuffer, type JlMessage } from './helpers/codec.ts';


const raw = (header: string | Buffer, parent: string | Buffer, metadata: string | Buffer, content: string | Buffer, buffers: Buffer[] = []): RawMessage => ({
  header: Buffer.isBuffer(header) ? header : Buffer.from(header, 'utf8'),
  parentHeader: Buffer.isBuffer(parent) ? parent : Buffer.from(parent, 'utf8'),
  metadata: Buffer.isBuffer(metadata) ? metadata : Buffer.from(metadata, 'utf8'),
  content: Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8'),
  buffers,
});

// --- encodeJson, text frames ------------------------------------------------------------------

test('encodeJson text frame: exact bytes with the kernel parts spliced in', () => {
  // Python-style separators in the kernel's parts must survive untouched.
  const message = raw('{"msg_id": "m1", "msg_type": "status"}', '{"msg_id": "p1"}', '{}', '{"execution_state": "idle"}');
  const { data, binary } = encodeJson('iopub', message, 'm1', 'status');
  assert.is(binary, false);
  assert.instance(data, Buffer);
  assert.is(
    data.toString('utf8'),
    '{"header":{"msg_id": "m1", "msg_type": "status"},"msg_id":"m1","msg_type":"status",' +
      '"parent_header":{"msg_id": "p1"},"metadata":{},"content":{"execution_state": "idle"},"buffers":[],"channel":"iopub"}',
  );
});

test('encodeJson text frame is valid JSON with the expected keys', () => {
  const message = raw('{"msg_id":"m1","msg_type":"kernel_info_reply"}', '{}', '{}', '{"status":"ok"}');
  const { data } = encodeJson('shell', message, 'm1', 'kernel_info_reply');
  const parsed = JSON.parse(data.toString('utf8'));
  assert.equal(Object.keys(parsed), ['header', 'msg_id', 'msg_type', 'parent_header', 'metadata', 'content', 'buffers', 'channel']);
  assert.equal(parsed.header, { msg_id: 'm1', msg_type: 'kernel_info_reply' });
  assert.is(parsed.msg_id, 'm1');
  assert.is(parsed.msg_type, 'kernel_info_reply');
  assert.equal(parsed.parent_header, {});
  assert.equal(parsed.metadata, {});
  assert.equal(parsed.content, { status: 'ok' });
  assert.equal(parsed.buffers, []);
  assert.is(parsed.channel, 'shell');
});

test('encodeJson passes non-ASCII UTF-8 parts byte-for-byte', () => {
  const content = Buffer.from('{"text": "héllo 🌍 名前", "esc": "\\u00e9"}', 'utf8');
  const header = Buffer.from('{"msg_id": "ü", "msg_type": "stream"}', 'utf8');
  const { data } = encodeJson('iopub', raw(header, '{}', '{}', content), 'ü', 'stream');
  assert.ok(isUtf8(data));
  assert.ok(data.includes(content), 'content bytes present unchanged');
  assert.ok(data.includes(header), 'header bytes present unchanged');
  const parsed = JSON.parse(data.toString('utf8'));
  assert.is(parsed.content.text, 'héllo 🌍 名前');
  assert.is(parsed.content.esc, 'é');
  assert.is(parsed.msg_id, 'ü');
});

test('encodeJson escapes msg_id, msg_type and channel as JSON strings', () => {
  const { data } = encodeJson('shell', raw('{}', '{}', '{}', '{}'), 'a"b\\c\n', 'x"y');
  const parsed = JSON.parse(data.toString('utf8'));
  assert.is(parsed.msg_id, 'a"b\\c\n');
  assert.is(parsed.msg_type, 'x"y');
});

test('encodeJson repairs invalid UTF-8 in content', () => {
  const content = Buffer.concat([Buffer.from('{"text": "a'), Buffer.from([0xff]), Buffer.from('b'), Buffer.from([0xe2, 0x82]), Buffer.from('"}')]);
  assert.is(isUtf8(content), false);
  const { data } = encodeJson('iopub', raw('{"msg_id": "m"}', '{}', '{}', content), 'm', 'stream');
  assert.ok(isUtf8(data), 'frame is valid UTF-8');
  const text = data.toString('utf8');
  assert.ok(text.includes('\uFFFD'), 'contains U+FFFD');
  const parsed = JSON.parse(text);
  assert.ok(parsed.content.text.startsWith('a\uFFFDb'));
  assert.ok(parsed.content.text.endsWith('\uFFFD'));
  // the valid parts are untouched
  assert.ok(data.includes(Buffer.from('{"header":{"msg_id": "m"},')));
});

test('encodeJson repairs invalid UTF-8 in header, parent_header and metadata too', () => {
  const bad = (key: string) => Buffer.concat([Buffer.from(`{"${key}": "`), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
  const { data } = encodeJson('shell', raw(bad('h'), bad('p'), bad('m'), '{}'), 'm', 't');
  assert.ok(isUtf8(data));
  const parsed = JSON.parse(data.toString('utf8'));
  assert.is(parsed.header.h, '\uFFFD(');
  assert.is(parsed.parent_header.p, '\uFFFD(');
  assert.is(parsed.metadata.m, '\uFFFD(');
});

test('encodeJson turns an empty part into {}', () => {
  const empty = Buffer.alloc(0);
  const { data } = encodeJson('iopub', raw('{"msg_id":"m"}', empty, empty, empty), 'm', 'status');
  assert.is(
    data.toString('utf8'),
    '{"header":{"msg_id":"m"},"msg_id":"m","msg_type":"status","parent_header":{},"metadata":{},"content":{},"buffers":[],"channel":"iopub"}',
  );
  const { data: allEmpty } = encodeJson('iopub', raw(empty, empty, empty, empty), 'm', 'status');
  assert.equal(JSON.parse(allEmpty.toString()).header, {});
});

test('a JupyterLab client reads encodeJson text frames', () => {
  const { data } = encodeJson('iopub', raw('{"msg_id": "m", "msg_type": "stream"}', '{}', '{}', '{"name": "stdout", "text": "é\\n"}'), 'm', 'stream');
  const out = deserialize(data.toString('utf8') as unknown as ArrayBuffer) as unknown as Record<string, unknown>;
  assert.is(out.channel, 'iopub');
  assert.equal(out.content, { name: 'stdout', text: 'é\n' });
  assert.equal(out.buffers, []);
});

// --- encodeJson, binary frames (legacy layout) -------------------------------------------------

// The JSON for a message with buffers: no "buffers" key. 157 bytes long.
const BIN_JSON =
  '{"header":{"msg_id":"m2","msg_type":"comm_msg"},"msg_id":"m2","msg_type":"comm_msg","parent_header":{},"metadata":{},"content":{"data":{}},"channel":"iopub"}';

test('encodeJson with one 3-byte buffer: the protocol.md §4.4 layout', () => {
  assert.is(Buffer.byteLength(BIN_JSON), 157);
  const message = raw('{"msg_id":"m2","msg_type":"comm_msg"}', '{}', '{}', '{"data":{}}', [Buffer.from([0x01, 0x02, 0x03])]);
  const { data, binary } = encodeJson('iopub', message, 'm2', 'comm_msg');
  assert.is(binary, true);
  // nbufs = 2; offset[0] = 12 (0x0c); offset[1] = 12 + 157 = 169 (0xa9)
  assert.is(data.subarray(0, 12).toString('hex'), '00000002' + '0000000c' + '000000a9');
  assert.is(data.length, 12 + 157 + 3);
  assert.is(data.subarray(12, 169).toString('utf8'), BIN_JSON);
  assert.is(data.subarray(169).toString('hex'), '010203');
});

test('encodeJson with three buffers: u32 BE table and buffers in order', () => {
  const message = raw('{"msg_id":"m2","msg_type":"comm_msg"}', '{}', '{}', '{"data":{}}', [
    Buffer.from([0xaa]),
    Buffer.alloc(0),
    Buffer.from([0xbb, 0xcc]),
  ]);
  const { data, binary } = encodeJson('iopub', message, 'm2', 'comm_msg');
  assert.is(binary, true);
  // nbufs 4, table 20 bytes, JSON 20..177, buffers at 177, 178, 178
  assert.is(data.subarray(0, 20).toString('hex'), '00000004' + '00000014' + '000000b1' + '000000b2' + '000000b2');
  assert.is(data.subarray(20, 177).toString('utf8'), BIN_JSON);
  assert.is(data.subarray(177).toString('hex'), 'aabbcc');
  assert.is(data.length, 180);
});

test('encodeJson binary frame: the JSON has no "buffers" key', () => {
  const { data } = encodeJson('shell', raw('{"msg_id":"x"}', '{}', '{}', '{}', [Buffer.from('b')]), 'x', 't');
  const jsonEnd = data.readUInt32BE(8);
  const json = JSON.parse(data.subarray(data.readUInt32BE(4), jsonEnd).toString('utf8'));
  assert.equal(Object.keys(json), ['header', 'msg_id', 'msg_type', 'parent_header', 'metadata', 'content', 'channel']);
});

test('JupyterLab deserialize reads an encodeJson binary frame back with its buffers', () => {
  const buffers = [Buffer.from([0xde, 0xad, 0xbe, 0xef]), Buffer.from('β-buffer', 'utf8')];
  const message = raw(
    '{"msg_id": "k1", "msg_type": "comm_msg", "username": "k", "session": "s", "date": "2024-01-02T03:04:05.123456Z", "version": "5.4"}',
    '{"msg_id": "c1"}',
    '{}',
    '{"comm_id": "abc", "data": {"text": "héllo"}}',
    buffers,
  );
  const { data } = encodeJson('iopub', message, 'k1', 'comm_msg');
  const out = deserialize(toArrayBuffer(data)) as unknown as Record<string, unknown>;
  assert.is(out.channel, 'iopub');
  assert.is(out.msg_id, 'k1');
  assert.is(out.msg_type, 'comm_msg');
  assert.equal(out.parent_header, { msg_id: 'c1' });
  assert.equal(out.content, { comm_id: 'abc', data: { text: 'héllo' } });
  const outBuffers = out.buffers as unknown[];
  assert.is(outBuffers.length, 2);
  buffers.forEach((b, i) => assert.is(dvBytes(outBuffers[i]).toString('hex'), b.toString('hex')));
});

// --- decodeJson -------------------------------------------------------------------------------

const jlMessage = (buffers?: Uint8Array[]): Record<string, unknown> => ({
  channel: 'shell',
  header: { msg_id: 'jl-1', msg_type: 'comm_msg', username: 'ü', session: 's', date: '2024-01-02T03:04:05.123Z', version: '5.4' },
  parent_header: {},
  metadata: { trusted: true },
  content: { comm_id: 'c', data: { value: 'héllo 🌍' } },
  ...(buffers ? { buffers } : { buffers: [] }),
});

test("decodeJson of a JupyterLab text frame (default protocol)", () => {
  const jl = jlMessage();
  const text = serialize(jl as unknown as JlMessage);
  assert.type(text, 'string');
  const { channel, message } = decodeJson(Buffer.from(text as string, 'utf8'), false);
  assert.is(channel, 'shell');
  assert.equal(JSON.parse(message.header.toString('utf8')), jl.header);
  assert.equal(JSON.parse(message.parentHeader.toString('utf8')), {});
  assert.equal(JSON.parse(message.metadata.toString('utf8')), jl.metadata);
  assert.equal(JSON.parse(message.content.toString('utf8')), jl.content);
  assert.equal(message.buffers, []);
});

test('decodeJson of a JupyterLab binary frame (default protocol, with buffers)', () => {
  const buffers = [new Uint8Array([1, 2, 3]), new Uint8Array([0xff, 0x00])];
  const jl = jlMessage(buffers);
  const expected = structuredClone({ header: jl.header, metadata: jl.metadata, content: jl.content });
  const data = serialize(jl as unknown as JlMessage);
  assert.instance(data, ArrayBuffer);
  const { channel, message } = decodeJson(Buffer.from(data as ArrayBuffer), true);
  assert.is(channel, 'shell');
  assert.equal(JSON.parse(message.header.toString('utf8')), expected.header);
  assert.equal(JSON.parse(message.metadata.toString('utf8')), expected.metadata);
  assert.equal(JSON.parse(message.content.toString('utf8')), expected.content);
  assert.is(message.buffers.length, 2);
  assert.is(message.buffers[0].toString('hex'), '010203');
  assert.is(message.buffers[1].toString('hex'), 'ff00');
});

test('decodeJson of a hand-built binary frame', () => {
  const json = '{"header":{"msg_type":"comm_msg"},"channel":"shell"}'; // 52 bytes
  const frame = Buffer.concat([
    Buffer.from('00000003' + '00000010' + '00000044' + '00000046', 'hex'), // nbufs 3; 16, 68, 70
    Buffer.from(json, 'latin1'),
    Buffer.from([0x0a, 0x0b]),
    Buffer.from([0x0c]),
  ]);
  const { channel, message } = decodeJson(frame, true);
  assert.is(channel, 'shell');
  assert.is(message.buffers.length, 2);
  assert.is(message.buffers[0].toString('hex'), '0a0b');
  assert.is(message.buffers[1].toString('hex'), '0c');
});

test('decodeJson: missing parent_header, metadata and content default to {}', () => {
  const { message } = decodeJson(Buffer.from('{"header":{"msg_id":"a","msg_type":"kernel_info_request"},"channel":"shell"}'), false);
  assert.is(message.parentHeader.toString(), '{}');
  assert.is(message.metadata.toString(), '{}');
  assert.is(message.content.toString(), '{}');
  assert.equal(JSON.parse(message.header.toString()), { msg_id: 'a', msg_type: 'kernel_info_request' });
  const nulls = decodeJson(Buffer.from('{"header":{"msg_type":"x"},"parent_header":null,"metadata":null,"content":null}'), false);
  assert.is(nulls.message.parentHeader.toString(), '{}');
  assert.is(nulls.message.metadata.toString(), '{}');
  assert.is(nulls.message.content.toString(), '{}');
});

test('decodeJson: a missing channel gives channel undefined', () => {
  const { channel } = decodeJson(Buffer.from('{"header":{"msg_type":"execute_request"},"content":{}}'), false);
  assert.is(channel, undefined);
});

test('decodeJson keeps non-ASCII content', () => {
  const { message } = decodeJson(Buffer.from('{"header":{"msg_type":"execute_request"},"content":{"code":"é🌍"},"channel":"shell"}', 'utf8'), false);
  assert.equal(JSON.parse(message.content.toString('utf8')), { code: 'é🌍' });
});

test('decodeJson: non-object header is a ProtocolError', () => {
  for (const header of ['"x"', '[]', 'null', '1', '[{"msg_type":"x"}]']) {
    protocolError(() => decodeJson(Buffer.from(`{"header":${header},"content":{}}`), false));
  }
  protocolError(() => decodeJson(Buffer.from('{"content":{}}'), false));
});

test('decodeJson: missing or non-string msg_type is a ProtocolError', () => {
  protocolError(() => decodeJson(Buffer.from('{"header":{"msg_id":"a"},"channel":"shell"}'), false));
  protocolError(() => decodeJson(Buffer.from('{"header":{"msg_type":5},"channel":"shell"}'), false));
  protocolError(() => decodeJson(Buffer.from('{"header":{"msg_type":null},"channel":"shell"}'), false));
});

test("decodeJson: 'not json', a JSON array and other non-objects are ProtocolErrors", () => {
  protocolError(() => decodeJson(Buffer.from('not json'), false));
  protocolError(() => decodeJson(Buffer.from(''), false));
  protocolError(() => decodeJson(Buffer.from('[{"header":{"msg_type":"x"}}]'), false));
  protocolError(() => decodeJson(Buffer.from('null'), false));
  protocolError(() => decodeJson(Buffer.from('"string"'), false));
  protocolError(() => decodeJson(Buffer.from('42'), false));
});

test('decodeJson: non-string channel and non-object parts are ProtocolErrors', () => {
  protocolError(() => decodeJson(Buffer.from('{"header":{"msg_type":"x"},"channel":7}'), false));
  protocolError(() => decodeJson(Buffer.from('{"header":{"msg_type":"x"},"content":[1]}'), false));
  protocolError(() => decodeJson(Buffer.from('{"header":{"msg_type":"x"},"metadata":"m"}'), false));
  protocolError(() => decodeJson(Buffer.from('{"header":{"msg_type":"x"},"parent_header":3}'), false));
});

test('decodeJson: impossible binary offsets are ProtocolErrors', () => {
  const json = Buffer.from('{"header":{"msg_type":"x"}}');
  // shorter than the table
  protocolError(() => decodeJson(Buffer.from('000000', 'hex'), true));
  protocolError(() => decodeJson(Buffer.from('00000001', 'hex'), true));
  // nbufs = 0
  protocolError(() => decodeJson(Buffer.concat([Buffer.from('00000000' + '00000008', 'hex'), json]), true));
  // nbufs larger than the frame can hold
  protocolError(() => decodeJson(Buffer.concat([Buffer.from('000000ff' + '00000008', 'hex'), json]), true));
  protocolError(() => decodeJson(Buffer.concat([Buffer.from('ffffffff' + '00000008', 'hex'), json]), true));
  // offset[0] inside the table
  protocolError(() => decodeJson(Buffer.concat([Buffer.from('00000002' + '00000004' + '0000000c', 'hex'), json]), true));
  // offset past the end
  protocolError(() => decodeJson(Buffer.concat([Buffer.from('00000002' + '0000000c' + '00001000', 'hex'), json]), true));
  // offsets out of order
  const end = 12 + json.length;
  const outOfOrder = Buffer.concat([Buffer.from('00000003' + '00000010', 'hex'), Buffer.alloc(8), json, Buffer.from([1, 2])]);
  outOfOrder.writeUInt32BE(end + 4 + 2, 8);
  outOfOrder.writeUInt32BE(end + 4, 12);
  protocolError(() => decodeJson(outOfOrder, true));
});

test('decodeJson binary: a JSON part that is not JSON is a ProtocolError', () => {
  protocolError(() => decodeJson(Buffer.concat([Buffer.from('00000002' + '0000000c' + '00000010', 'hex'), Buffer.from('nope'), Buffer.from([1])]), true));
});

test.run();
