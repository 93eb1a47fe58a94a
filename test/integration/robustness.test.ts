/**
 * Input that must not take the gateway down, and lifecycle operations that overlap: each case is followed
 * by a check that the gateway still serves and that no kernel process or connection file is left behind.
 */
import { connect } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  api,
  findProcesses,
  guardSuite,
  kernelPid,
  processGone,
  rawRequest,
  shutdownTest,
  startGateway,
  startKernel,
  waitUntil,
  withTimeout,
  type Gateway,
} from '../helpers/gateway.ts';
import { connectExpectingRefusal, runInKernel } from '../helpers/kernel-ws.ts';

const test = suite('robustness');
let gw: Gateway;

guardSuite(test, async () => {
  gw = await startGateway();
});

async function stillServes(context: string): Promise<void> {
  const res = await api(gw, 'GET', 'api');
  assert.is(res.status, 200, `${context}: GET /api → ${res.status}`);
}

/** A raw HTTP/1.1 upgrade request with an arbitrary request target; returns the status line. */
function rawUpgrade(target: string): Promise<string> {
  return withTimeout(
    new Promise((resolve, reject) => {
      const socket = connect(gw.port, '127.0.0.1', () => {
        socket.write(
          `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${gw.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
        );
      });
      let text = '';
      socket.on('data', (d) => (text += d.toString('latin1')));
      socket.on('close', () => resolve(text.split('\r\n')[0]));
      socket.on('error', reject);
    }),
    10000,
    `upgrade ${target}`,
  );
}

test('an upgrade with an unparsable request target gets 400, and the gateway lives on', async () => {
  const status = await rawUpgrade('http://x:99999/api/kernels/a-b-c-d-e/channels');
  assert.match(status, /^HTTP\/1\.1 400 /, status);
  await stillServes('after the bad upgrade');
});

test('a path that starts with // is a path, not a host name', async () => {
  const res = await rawRequest(gw, 'GET', '//api/kernels', { Authorization: `token ${gw.token}` });
  assert.is(res.status, 200, res.body.toString());
  assert.ok(Array.isArray(JSON.parse(res.body.toString())));
  const upgrade = await rawUpgrade('//api/kernels/a-b-c-d-e/channels');
  assert.match(upgrade, /^HTTP\/1\.1 401 /, upgrade);
});

test('a session_id over 255 bytes is refused with 400, and the gateway lives on', async () => {
  const kernel = await startKernel(gw);
  const refused = await connectExpectingRefusal(gw, kernel.id, { sessionId: 'é'.repeat(128) });
  assert.is(refused.status, 400);
  await stillServes('after the long session_id');
  assert.is(await runInKernel(gw, kernel.id, 'print(6*7)'), '42\n');
  assert.is((await api(gw, 'DELETE', `api/kernels/${kernel.id}`)).status, 204);
});

test('malformed percent-encoding in a path gets 400 JSON', async () => {
  const res = await rawRequest(gw, 'GET', '/kernelspecs/python3/%E0', { Authorization: `token ${gw.token}` });
  assert.is(res.status, 400, res.body.toString());
  assert.is(typeof JSON.parse(res.body.toString()).message, 'string');
});

test('two restarts at once leave one working kernel process', async () => {
  const kernel = await startKernel(gw);
  const before = await kernelPid(gw, kernel.id);
  const [a, b] = await Promise.all([
    api(gw, 'POST', `api/kernels/${kernel.id}/restart`, { timeoutMs: 60000 }),
    api(gw, 'POST', `api/kernels/${kernel.id}/restart`, { timeoutMs: 60000 }),
  ]);
  assert.is(a.status, 200, a.text);
  assert.is(b.status, 200, b.text);
  await waitUntil(() => processGone(before), 10000, 'the first process to exit');
  assert.is(await runInKernel(gw, kernel.id, 'print("alive")', {}, 60000), 'alive\n');
  const processes = findProcesses(`kernel-${kernel.id}.json`);
  assert.is(processes.length, 1, `kernel processes: ${processes.join(', ')}`);
  assert.is((await api(gw, 'DELETE', `api/kernels/${kernel.id}`)).status, 204);
  await waitUntil(() => findProcesses(`kernel-${kernel.id}.json`).length === 0, 10000, 'no kernel process left');
});

test('a DELETE during a restart leaves no process and no connection file', async () => {
  const kernel = await startKernel(gw);
  const restart = api(gw, 'POST', `api/kernels/${kernel.id}/restart`, { timeoutMs: 60000 });
  await new Promise((r) => setTimeout(r, 50));
  const del = await api(gw, 'DELETE', `api/kernels/${kernel.id}`, { timeoutMs: 60000 });
  assert.is(del.status, 204, del.text);
  const restarted = await restart;
  assert.ok([200, 404, 500].includes(restarted.status), `restart → ${restarted.status} ${restarted.text}`);
  await waitUntil(() => findProcesses(`kernel-${kernel.id}.json`).length === 0, 15000, 'no kernel process left');
  assert.not.ok(existsSync(join(gw.runtimeDir, `kernel-${kernel.id}.json`)), 'connection file left behind');
  assert.is((await api(gw, 'GET', `api/kernels/${kernel.id}`)).status, 404);
  await stillServes('after the overlapping restart and delete');
});

shutdownTest(test, () => gw);
test.run();
