/**
 * The small things that make a gateway trustworthy to run: tokens never reach the log however they
 * are spelled, routine client aborts are not errors, a misbehaving kernel cannot flood or forge the
 * log, leftovers of a killed gateway are cleaned up, no request vanishes when a kernel dies, and
 * input goes only to the client that was asked.
 */
import { connect } from 'node:net';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  api,
  guardSuite,
  kernelPid,
  processGone,
  shutdownTest,
  sleep,
  startGateway,
  startKernel,
  stopAndCheck,
  waitUntil,
  writeKernelspec,
  type Gateway,
} from '../helpers/gateway.ts';
import { execute, executeContent, finishExecute, isReplyTo, isStatus, KernelClient } from '../helpers/kernel-ws.ts';

const test = suite('hygiene: log safety, aborts, stale files, lost requests, input routing');
let gw: Gateway;

guardSuite(test, async () => {
  gw = await startGateway({ args: ['--log-level', 'DEBUG', '--kernel-startup-timeout', '6'] });
});

test('a token in a percent-encoded query name is accepted but never logged, even at DEBUG', async () => {
  const res = await api(gw, 'GET', `api/kernels?%74oken=${gw.token}`, { token: false });
  assert.is(res.status, 200, res.text);
  const kernel = await startKernel(gw);
  // No session_id: the gateway logs the URL it got at DEBUG.
  const client = await KernelClient.connect(gw, kernel.id, { auth: 'none', query: `%74oken=${encodeURIComponent(gw.token)}`, sessionId: '' });
  await client.closeAndWait();
  await sleep(200);
  assert.match(gw.stderr(), /%74oken=<hidden>/);
  assert.not.ok(gw.stderr().includes(gw.token), 'the token appears in the log');
  assert.is((await api(gw, 'DELETE', `api/kernels/${kernel.id}`)).status, 204);
});

test('a client that aborts its request body gets one DEBUG line, not an ERROR with a stack', async () => {
  const errorsBefore = (gw.stderr().match(/^\[E /gm) ?? []).length;
  await new Promise<void>((resolve, reject) => {
    const socket = connect(gw.port, '127.0.0.1', () => {
      socket.write(
        `POST /api/kernels HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: token ${gw.token}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"name": "py',
      );
      setTimeout(() => {
        socket.destroy();
        resolve();
      }, 200);
    });
    socket.on('error', reject);
  });
  await waitUntil(() => /the client aborted the request/.test(gw.stderr()), 5000, 'the DEBUG line for the aborted request');
  assert.is((gw.stderr().match(/^\[E /gm) ?? []).length, errorsBefore, 'an ERROR line was logged for an aborted request');
  assert.is((await api(gw, 'GET', 'api')).status, 200);
});

test('a kernel speaking garbage: its warnings are collapsed, its binary stderr is escaped', async () => {
  const script = join(mkdtempSync(join(tmpdir(), 'kg-it-garbage-')), 'garbage_kernel.py');
  writeFileSync(
    script,
    [
      'import json, sys, time, zmq',
      'info = json.load(open(sys.argv[1]))',
      'ctx = zmq.Context()',
      "pub = ctx.socket(zmq.PUB); pub.bind('tcp://%s:%d' % (info['ip'], info['iopub_port']))",
      "for name in ('shell', 'control', 'stdin'):",
      "    s = ctx.socket(zmq.ROUTER); s.bind('tcp://%s:%d' % (info['ip'], info[name + '_port']))",
      "sys.stderr.buffer.write(b'\\x1b[31mred\\x00\\xff forged [E line\\n'); sys.stderr.flush()",
      'time.sleep(1)',
      'for i in range(2000):',
      "    pub.send_multipart([b'topic', b'<IDS|MSG>', b'bad-signature', b'{}', b'{}', b'{}', b'{}'])",
      'time.sleep(30)',
    ].join('\n'),
  );
  writeKernelspec(gw.jupyterPath, 'garbage', { argv: ['/usr/bin/python3', script, '{connection_file}'], display_name: 'Garbage', language: 'python' });
  const res = await api(gw, 'POST', 'api/kernels', { json: { name: 'garbage' }, timeoutMs: 60000 });
  assert.is(res.status, 500, res.text);
  const log = gw.stderr();
  const dropped = log.split('\n').filter((line) => /dropped a iopub message: invalid signature/.test(line));
  assert.ok(dropped.length >= 1 && dropped.length <= 10, `${dropped.length} lines about dropped messages (expected at most 10 per minute)`);
  const stderrLine = log.split('\n').find((line) => line.includes('stderr: ') && line.includes('red'));
  assert.ok(stderrLine, 'the kernel\'s stderr is not in the log');
  assert.ok(stderrLine!.includes('\\x1b[31mred\\x00\\xff forged [E line'), stderrLine);
  assert.not.ok(log.includes('\x1b'), 'a raw escape byte reached the log');
});

test("connection files a SIGKILLed gateway left behind are removed by the next gateway on that runtime dir; other files stay", async () => {
  const first = await startGateway();
  const runtime = first.runtimeDir;
  const kernel = await startKernel(first);
  const pid = await kernelPid(first, kernel.id);
  first.proc.kill('SIGKILL');
  await waitUntil(() => processGone(pid) || (process.kill(pid, 'SIGKILL'), false), 15000, 'the orphaned kernel to go');
  const left = join(runtime, `kernel-${kernel.id}.json`);
  assert.ok(existsSync(left), 'the killed gateway left no connection file (nothing to test)');
  assert.ok(existsSync(join(runtime, `kernelgateway-${first.proc.pid}.json`)), 'the killed gateway left no list of its files');
  // Another tool's file, and a file listed by a gateway that still runs (this process stands in for it).
  const foreign = join(runtime, 'kernel-foreign.json');
  const live = join(runtime, 'kernel-live-owner.json');
  writeFileSync(foreign, JSON.stringify({ shell_port: 1, key: 'x' }));
  writeFileSync(live, JSON.stringify({ shell_port: 1, key: 'x' }));
  writeFileSync(join(runtime, `kernelgateway-${process.pid}.json`), JSON.stringify({ pid: process.pid, connection_files: ['kernel-live-owner.json'] }));
  const second = await startGateway({ env: { JUPYTER_RUNTIME_DIR: runtime }, args: ['--log-level', 'DEBUG'] });
  assert.not.ok(existsSync(left), `the stale connection file is still there; the new gateway said:\n${second.stderr()}`);
  assert.ok(existsSync(foreign), "another tool's connection file was removed");
  assert.ok(existsSync(live), 'the file of a gateway that still runs was removed');
  assert.match(second.stderr(), new RegExp(`removed 1 connection file\\(s\\) left in .* by a gateway that is gone: kernel-${kernel.id}\\.json`));
  assert.not.ok(existsSync(join(runtime, `kernelgateway-${first.proc.pid}.json`)), 'the list of the gone gateway is still there');
  rmSync(join(runtime, `kernelgateway-${process.pid}.json`));
  rmSync(foreign);
  rmSync(live);
  await stopAndCheck(first);
  assert.equal(await stopAndCheck(second), []);
});

test('a request sent right after a busy kernel dies is answered: by the restarted kernel, or with an error reply', async () => {
  const kernel = await startKernel(gw);
  const client = await KernelClient.connect(gw, kernel.id);
  const busy = client.request('shell', 'execute_request', executeContent('import time\ntime.sleep(60)'));
  await client.waitFor((m) => m.header.msg_type === 'execute_input' && m.parent_header.msg_id === busy.header.msg_id, 20000, 'the sleep to start');
  process.kill(await kernelPid(gw, kernel.id), 'SIGKILL');
  const after = client.request('shell', 'execute_request', executeContent("print('after')"));
  const busyReply = await client.waitFor((m) => isReplyTo(m, busy, 'execute_reply'), 30000, 'a reply to the request the kernel died in');
  assert.is(busyReply.content.status, 'error');
  assert.is(busyReply.content.ename, 'KernelGatewayError');
  assert.match(busyReply.content.evalue, /the kernel died while handling this request/);
  const afterReply = await client.waitFor((m) => isReplyTo(m, after, 'execute_reply'), 60000, 'a reply to the request sent right after the death');
  if (afterReply.content.status === 'ok') {
    const r = await finishExecute(client, after, 30000);
    assert.is(r.stdout, 'after\n');
  } else {
    assert.is(afterReply.content.ename, 'KernelGatewayError', JSON.stringify(afterReply.content));
  }
  assert.ok(client.messages.some((m) => isStatus(m, undefined, 'restarting')), 'no restarting status');
  client.assertClean();
  await client.closeAndWait();
  assert.is((await api(gw, 'DELETE', `api/kernels/${kernel.id}`)).status, 204);
});

test('input goes only to the client that was asked; an input_reply from another client is dropped, not mixed in', async () => {
  const kernel = await startKernel(gw);
  const asker = await KernelClient.connect(gw, kernel.id);
  const other = await KernelClient.connect(gw, kernel.id, { protocol: 'v1' });
  const request = asker.request('shell', 'execute_request', executeContent("print('got ' + input('name? '))", true));
  const prompt = await asker.waitFor((m) => m.channel === 'stdin' && m.header.msg_type === 'input_request', 20000, 'input_request');
  assert.is(prompt.content.prompt, 'name? ');
  // The other client answers first, unasked: it must not reach the kernel.
  other.request('stdin', 'input_reply', { status: 'ok', value: 'intruder' }, { parent: prompt.header });
  await waitUntil(() => /dropped an input_reply from session .*: the kernel did not ask it for input/.test(gw.stderr()), 10000, 'the log line for the dropped input_reply');
  asker.request('stdin', 'input_reply', { status: 'ok', value: 'asker' }, { parent: prompt.header });
  const r = await finishExecute(asker, request, 20000);
  assert.is(r.stdout, 'got asker\n');
  assert.not.ok(other.messages.some((m) => m.channel === 'stdin'), 'the other client received the input_request');
  // Both clients keep working.
  assert.is((await execute(other, 'print(2)', 20000)).stdout, '2\n');
  await asker.closeAndWait();
  await other.closeAndWait();
  assert.is((await api(gw, 'DELETE', `api/kernels/${kernel.id}`)).status, 204);
});

test('no internal error was contained during these tests', () => {
  assert.not.match(gw.stderr(), /internal error/);
});

shutdownTest(test, () => gw);
test.run();
