/**
 * The /api/kernels/{id}/channels bridge with a real ipykernel, in both wire protocols: the legacy
 * JSON protocol (text frames, binary frames for messages with buffers) and
 * v1.kernel.websocket.jupyter.org (binary frames). Messages are encoded with JupyterLab's own
 * serializer; the frame layouts are also checked with hand-written codecs.
 */
import { randomUUID } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { guardSuite, shutdownTest, startGateway, startKernel, type Gateway } from '../helpers/gateway.ts';
import {
  bytesEqual,
  decodeLegacyBinaryByHand,
  decodeV1ByHand,
  ECHO_COMM_TARGET_CODE,
  encodeLegacyBinaryByHand,
  encodeV1ByHand,
  encodeWithJupyterLab,
  execute,
  executeContent,
  finishExecute,
  isReplyTo,
  isStatus,
  KernelClient,
  makeMsg,
  testBytes,
  waitForKernelInfo,
  type Protocol,
} from '../helpers/kernel-ws.ts';

const test = suite('channels: messaging in both protocols');
let gw: Gateway;
let kernelId: string;
const clients = new Map<Protocol, KernelClient>();

guardSuite(
  test,
  async () => {
    gw = await startGateway();
    kernelId = (await startKernel(gw)).id;
  },
  async () => {
    for (const c of clients.values()) await c.closeAndWait();
  },
);

function client(p: Protocol): KernelClient {
  const c = clients.get(p);
  if (!c) throw new Error(`no ${p} connection (the handshake test failed)`);
  return c;
}

const LEGACY_KEYS = ['buffers', 'channel', 'content', 'header', 'metadata', 'msg_id', 'msg_type', 'parent_header'];

for (const p of ['legacy', 'v1'] as const) {
  test(`[${p}] handshake: ${p === 'v1' ? 'the offered v1 subprotocol is echoed' : 'no subprotocol offered, none selected'}`, async () => {
    const c = await KernelClient.connect(gw, kernelId, { protocol: p });
    clients.set(p, c);
    assert.is(c.ws.protocol, p === 'v1' ? 'v1.kernel.websocket.jupyter.org' : '');
  });

  test(`[${p}] kernel_info_request → kernel_info_reply on shell; busy/idle on iopub`, async () => {
    const c = client(p);
    await waitForKernelInfo(c, 30000); // the first one may race the kernel's start-up
    const req = c.request('shell', 'kernel_info_request', {});
    const reply = await c.waitFor((m) => isReplyTo(m, req, 'kernel_info_reply'), 15000, 'kernel_info_reply');
    await c.waitFor((m) => isStatus(m, req, 'busy'), 15000, 'status busy for kernel_info');
    await c.waitFor((m) => isStatus(m, req, 'idle'), 15000, 'status idle for kernel_info');
    assert.is(reply.content.status, 'ok');
    assert.type(reply.content.protocol_version, 'string');
    assert.is(reply.content.implementation, 'ipython');
    assert.is(reply.content.language_info.name, 'python');
    assert.is(reply.parent_header.msg_id, req.header.msg_id);
    assert.is(reply.parent_header.msg_type, 'kernel_info_request');
    assert.is(reply.parent_header.session, c.sessionId, 'the parent header is the client header');
    for (const k of ['msg_id', 'msg_type', 'username', 'session', 'date', 'version']) {
      assert.type(reply.header[k], 'string', `reply header.${k}`);
    }
    if (p === 'legacy') {
      assert.not.ok(reply.frame.binary, 'a buffer-less message came as a binary frame');
      assert.equal([...reply.frame.topKeys].sort(), LEGACY_KEYS);
      const raw = JSON.parse(reply.frame.data.toString('utf8'));
      assert.is(raw.msg_id, raw.header.msg_id);
      assert.is(raw.msg_type, 'kernel_info_reply');
      assert.equal(raw.buffers, []);
      assert.is(raw.channel, 'shell');
    } else {
      assert.ok(reply.frame.binary, 'v1 frames must be binary');
      const layout = decodeV1ByHand(reply.frame.data);
      assert.is(layout.offsetNumber, 6);
      assert.is(layout.channel, 'shell');
      assert.equal(JSON.parse(layout.jsonParts[0]), reply.header);
      assert.equal(JSON.parse(layout.jsonParts[1]), reply.parent_header);
      assert.equal(JSON.parse(layout.jsonParts[3]), reply.content);
      assert.is(layout.buffers.length, 0);
    }
  });

  test(`[${p}] print → execute_input and stream stdout (UTF-8 intact); execute_reply ok`, async () => {
    const c = client(p);
    const r = await execute(c, "print('hi')\nprint('h\\u00e9llo \\u2603 \\U0001F389')");
    assert.is(r.reply.content.status, 'ok', JSON.stringify(r.reply.content));
    assert.type(r.reply.content.execution_count, 'number');
    const input = r.iopub.find((m) => m.header.msg_type === 'execute_input');
    assert.ok(input, `no execute_input: ${c.summary()}`);
    assert.is(input!.content.code, r.request.content.code);
    assert.is(r.stdout, 'hi\nh\u00e9llo \u2603 \u{1F389}\n');
    assert.ok(r.iopub.some((m) => isStatus(m, r.request, 'busy')), 'no busy status');
  });

  test(`[${p}] 1+1 → execute_result text/plain '2'`, async () => {
    const c = client(p);
    const r = await execute(c, '1+1');
    assert.is(r.reply.content.status, 'ok');
    const res = r.iopub.find((m) => m.header.msg_type === 'execute_result');
    assert.ok(res, `no execute_result: ${c.summary()}`);
    assert.is(res!.content.data['text/plain'], '2');
    assert.is(res!.content.execution_count, r.reply.content.execution_count);
  });

  test(`[${p}] display(HTML(...)) → display_data`, async () => {
    const c = client(p);
    const r = await execute(c, "from IPython.display import display, HTML; display(HTML('<b>x</b>'))");
    assert.is(r.reply.content.status, 'ok');
    const d = r.iopub.find((m) => m.header.msg_type === 'display_data');
    assert.ok(d, `no display_data: ${c.summary()}`);
    assert.is(d!.content.data['text/html'], '<b>x</b>');
    assert.type(d!.content.data['text/plain'], 'string');
  });

  test(`[${p}] 1/0 → error ZeroDivisionError on iopub, execute_reply status error`, async () => {
    const c = client(p);
    const r = await execute(c, '1/0', 20000, false);
    const err = r.iopub.find((m) => m.header.msg_type === 'error');
    assert.ok(err, `no iopub error: ${c.summary()}`);
    assert.is(err!.content.ename, 'ZeroDivisionError');
    assert.ok(Array.isArray(err!.content.traceback) && err!.content.traceback.length > 0, 'traceback missing');
    assert.is(r.reply.content.status, 'error');
    assert.is(r.reply.content.ename, 'ZeroDivisionError');
  });

  test(`[${p}] input() → input_request on stdin; input_reply; value echoed`, async () => {
    const c = client(p);
    const req = c.request('shell', 'execute_request', executeContent("v = input('name? ')\nprint('got', v)", true));
    const ir = await c.waitFor(
      (m) => m.channel === 'stdin' && m.header.msg_type === 'input_request' && m.parent_header.msg_id === req.header.msg_id,
      15000,
      'input_request on stdin',
    );
    assert.is(ir.content.prompt, 'name? ');
    assert.is(ir.content.password, false);
    c.request('stdin', 'input_reply', { value: `Ada-${p} \u00e9` }, { parent: ir.header });
    const r = await finishExecute(c, req);
    assert.is(r.reply.content.status, 'ok', JSON.stringify(r.reply.content));
    assert.ok(r.stdout.includes(`got Ada-${p} \u00e9`), `stdout ${JSON.stringify(r.stdout)}`);
  });

  test(`[${p}] comm_open/comm_msg with a binary buffer are echoed back byte for byte`, async () => {
    const c = client(p);
    const reg = await execute(c, ECHO_COMM_TARGET_CODE);
    assert.is(reg.reply.content.status, 'ok', JSON.stringify(reg.reply.content));
    const commId = randomUUID();
    const b1 = testBytes(300, p === 'v1' ? 1 : 2);
    c.request('shell', 'comm_open', { comm_id: commId, target_name: 'echo', data: {} }, { buffers: [b1] });
    const opened = await c.waitFor(
      (m) => m.channel === 'iopub' && m.header.msg_type === 'comm_msg' && m.content.comm_id === commId && m.content.data?.opened === true,
      15000,
      'comm_msg {opened: true}',
    );
    assert.is(opened.buffers.length, 1, 'the open reply has no buffer');
    assert.ok(bytesEqual(opened.buffers[0], b1), 'buffer echoed on open differs');

    const b2 = testBytes(70000, 5);
    c.request('shell', 'comm_msg', { comm_id: commId, data: { hello: 'w\u00f6rld' } }, { buffers: [b2, new Uint8Array(0), testBytes(3, 9)] });
    const echo = await c.waitFor(
      (m) => m.channel === 'iopub' && m.header.msg_type === 'comm_msg' && m.content.comm_id === commId && m.content.data?.hello !== undefined,
      15000,
      'echoed comm_msg',
    );
    assert.is(echo.content.data.hello, 'w\u00f6rld');
    assert.is(echo.buffers.length, 3, `echo has ${echo.buffers.length} buffers`);
    assert.ok(bytesEqual(echo.buffers[0], b2), 'echoed 70000-byte buffer differs');
    assert.is(echo.buffers[1].byteLength, 0);
    assert.ok(bytesEqual(echo.buffers[2], testBytes(3, 9)), 'echoed 3-byte buffer differs');

    if (p === 'legacy') {
      // Messages with buffers travel as binary frames with the legacy layout.
      assert.ok(opened.frame.binary, 'a message with buffers arrived as a text frame');
      const layout = decodeLegacyBinaryByHand(opened.frame.data);
      assert.is(layout.nbufs, 2);
      assert.is(layout.offsets[0], 12);
      assert.not.ok('buffers' in layout.json, 'the JSON part of a binary frame must not carry "buffers"');
      for (const k of ['header', 'msg_id', 'msg_type', 'parent_header', 'metadata', 'content', 'channel']) {
        assert.ok(k in layout.json, `binary frame JSON lacks ${k}`);
      }
      assert.is(layout.json.msg_type, 'comm_msg');
      assert.is(layout.json.channel, 'iopub');
      assert.ok(bytesEqual(layout.buffers[0], b1));
    } else {
      const layout = decodeV1ByHand(echo.frame.data);
      assert.is(layout.offsetNumber, 9);
      assert.is(layout.channel, 'iopub');
      assert.ok(bytesEqual(layout.buffers[0], b2));
    }

    c.request('shell', 'comm_close', { comm_id: commId, data: {} });
  });
}

test('[v1] hand-encoded frames are accepted, and match the JupyterLab encoding byte for byte', async () => {
  const c = client('v1');
  const info = makeMsg('shell', 'kernel_info_request', {}, c.sessionId);
  const hand = encodeV1ByHand(info);
  const jl = Buffer.from(encodeWithJupyterLab(info, 'v1') as ArrayBuffer);
  assert.ok(hand.equals(jl), 'hand-encoded v1 frame differs from JupyterLab\'s');
  // Layout per the spec example: offset_number, then the offset table.
  assert.is(Number(hand.readBigUInt64LE(0)), 6);
  assert.is(Number(hand.readBigUInt64LE(8)), 56);
  assert.is(Number(hand.readBigUInt64LE(16)), 61); // 'shell' is 5 bytes
  c.sendRaw(hand);
  await c.waitFor((m) => isReplyTo(m, info, 'kernel_info_reply'), 15000, 'reply to hand-encoded kernel_info_request');

  const exec = makeMsg('shell', 'execute_request', executeContent("print('by hand')"), c.sessionId);
  c.sendRaw(encodeV1ByHand(exec));
  const r = await finishExecute(c, exec);
  assert.is(r.stdout, 'by hand\n');

  // A comm_msg with a buffer, encoded by hand.
  const reg = await execute(c, ECHO_COMM_TARGET_CODE);
  assert.is(reg.reply.content.status, 'ok');
  const commId = randomUUID();
  c.sendRaw(encodeV1ByHand(makeMsg('shell', 'comm_open', { comm_id: commId, target_name: 'echo', data: {} }, c.sessionId, { buffers: [testBytes(10, 3)] })));
  const opened = await c.waitFor((m) => m.header.msg_type === 'comm_msg' && m.content.comm_id === commId, 15000, 'comm echo of a hand-encoded open');
  assert.ok(bytesEqual(opened.buffers[0], testBytes(10, 3)));
});

test('[legacy] a hand-encoded binary frame (message with buffers) is accepted', async () => {
  const c = client('legacy');
  const reg = await execute(c, ECHO_COMM_TARGET_CODE);
  assert.is(reg.reply.content.status, 'ok');
  const commId = randomUUID();
  const buf = testBytes(1000, 11);
  const open = makeMsg('shell', 'comm_open', { comm_id: commId, target_name: 'echo', data: {} }, c.sessionId, { buffers: [buf] });
  const frame = encodeLegacyBinaryByHand(open);
  assert.is(frame.readUInt32BE(0), 2);
  assert.is(frame.readUInt32BE(4), 12);
  c.sendRaw(frame);
  const opened = await c.waitFor((m) => m.header.msg_type === 'comm_msg' && m.content.comm_id === commId, 15000, 'comm echo of a hand-encoded legacy binary open');
  assert.ok(bytesEqual(opened.buffers[0], buf), 'echoed buffer differs');

  // A text frame sent without the optional "buffers" key is accepted too.
  const info = makeMsg('shell', 'kernel_info_request', {}, c.sessionId);
  const { buffers: _unused, ...noBuffers } = info;
  c.sendRaw(JSON.stringify(noBuffers));
  await c.waitFor((m) => isReplyTo(m, info, 'kernel_info_reply'), 15000, 'reply to a text frame without "buffers"');
});

test('[legacy] every frame: text iff the message has no buffers; v1: every frame is binary with a valid layout', async () => {
  const legacy = client('legacy');
  legacy.assertClean();
  for (const m of legacy.messages) {
    assert.is(m.frame.binary, m.buffers.length > 0, `${m.channel}/${m.header.msg_type} with ${m.buffers.length} buffers came as binary=${m.frame.binary}`);
    if (!m.frame.binary) assert.equal([...m.frame.topKeys].filter((k) => LEGACY_KEYS.includes(k)).sort(), LEGACY_KEYS, `${m.header.msg_type} keys ${m.frame.topKeys}`);
  }
  const v1 = client('v1');
  v1.assertClean();
  for (const m of v1.messages) {
    assert.ok(m.frame.binary);
    const layout = decodeV1ByHand(m.frame.data);
    assert.ok(['shell', 'iopub', 'stdin', 'control'].includes(layout.channel), `channel ${layout.channel}`);
    assert.is(layout.buffers.length, m.buffers.length);
  }
});

test('the two connections saw each other\'s iopub but not each other\'s replies', async () => {
  const legacy = client('legacy');
  const v1 = client('v1');
  const v1Requests = new Set(v1.messages.filter((m) => m.channel === 'shell').map((m) => m.parent_header.msg_id));
  const legacyShell = legacy.messages.filter((m) => m.channel === 'shell').map((m) => m.parent_header.msg_id);
  assert.not.ok(legacyShell.some((id) => v1Requests.has(id)), 'a shell reply to the v1 client reached the legacy client');
  const legacyExecs = legacy.messages.filter((m) => m.channel === 'iopub' && m.header.msg_type === 'execute_input').map((m) => m.content.code);
  assert.ok(legacyExecs.includes("print('by hand')"), 'the legacy client did not see the v1 client\'s execute_input on iopub');
});

shutdownTest(test, () => gw);
test.run();
