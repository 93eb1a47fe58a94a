/**
 * --base-url /gw/: every route moves under it, and URLs the gateway hands out carry it.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { api, checkKernelModel, errorBody, guardSuite, PNG_BYTES, shutdownTest, startGateway, TEST_SPEC_NAME, type Gateway } from '../helpers/gateway.ts';
import { execute, KernelClient, waitForKernelInfo } from '../helpers/kernel-ws.ts';

const test = suite('base_url: --base-url /gw/');
let gw: Gateway;
let kernelId: string | undefined;

guardSuite(test, async () => {
  gw = await startGateway({ args: ['--base-url', '/gw/'] });
});

test('the logged URL ends with /gw/', async () => {
  assert.match(gw.loggedUrl, /^http:\/\/127\.0\.0\.1:\d+\/gw\/?$/);
  assert.is(new URL(gw.url).pathname, '/gw/');
});

test('/gw/api and /gw/api/kernels work; /api/kernels and /api → 404', async () => {
  const root = await api(gw, 'GET', '/gw/api');
  assert.is(root.status, 200, root.text);
  assert.type(root.body.version, 'string');
  const list = await api(gw, 'GET', '/gw/api/kernels');
  assert.is(list.status, 200, list.text);
  assert.ok(Array.isArray(list.body));
  for (const path of ['/api/kernels', '/api', '/api/kernelspecs', '/kernelspecs/python3/logo-64x64.png']) {
    const res = await api(gw, 'GET', path);
    assert.is(res.status, 404, `${path} outside the base URL: ${res.status} ${res.text}`);
  }
  errorBody(await api(gw, 'GET', '/api/kernels'), 'GET /api/kernels outside base URL');
});

test('kernelspec resource URLs carry /gw/ and are served there', async () => {
  const res = await api(gw, 'GET', '/gw/api/kernelspecs');
  assert.is(res.status, 200, res.text);
  assert.is(res.body.kernelspecs.python3.resources['logo-64x64'], '/gw/kernelspecs/python3/logo-64x64.png');
  assert.is(res.body.kernelspecs[TEST_SPEC_NAME].resources['logo-64x64'], `/gw/kernelspecs/${TEST_SPEC_NAME}/logo-64x64.png`);
  assert.is(res.body.kernelspecs[TEST_SPEC_NAME].resources['kernel.js'], `/gw/kernelspecs/${TEST_SPEC_NAME}/kernel.js`);
  const one = await api(gw, 'GET', '/gw/api/kernelspecs/python3');
  assert.is(one.status, 200, one.text);
  assert.is(one.body.resources['logo-64x64'], '/gw/kernelspecs/python3/logo-64x64.png');
  const logo = await fetch(new URL(res.body.kernelspecs[TEST_SPEC_NAME].resources['logo-64x64'], gw.url), {
    headers: { Authorization: `token ${gw.token}` },
    signal: AbortSignal.timeout(10000),
  });
  assert.is(logo.status, 200);
  assert.ok(Buffer.from(await logo.arrayBuffer()).equals(PNG_BYTES), 'logo bytes differ');
});

test('POST /gw/api/kernels → 201 with Location /gw/api/kernels/<id>; the kernel is reachable under /gw/', async () => {
  const res = await api(gw, 'POST', '/gw/api/kernels', { json: { name: 'python3' }, timeoutMs: 60000 });
  assert.is(res.status, 201, res.text);
  const model = checkKernelModel(res.body, 'POST /gw/api/kernels');
  kernelId = model.id;
  assert.is(res.headers.get('location'), `/gw/api/kernels/${model.id}`);
  const get = await api(gw, 'GET', `/gw/api/kernels/${model.id}`);
  assert.is(get.status, 200, get.text);
  const outside = await api(gw, 'GET', `/api/kernels/${model.id}`);
  assert.is(outside.status, 404, outside.text);
  const intr = await api(gw, 'POST', `/gw/api/kernels/${model.id}/interrupt`);
  assert.is(intr.status, 204, intr.text);
});

test('WebSocket /gw/api/kernels/{id}/channels works (both protocols)', async () => {
  assert.ok(kernelId, 'no kernel from the previous test');
  for (const protocol of ['legacy', 'v1'] as const) {
    const c = await KernelClient.connect(gw, kernelId!, { protocol });
    try {
      await waitForKernelInfo(c, 30000);
      const r = await execute(c, '6*7');
      assert.is(r.reply.content.status, 'ok');
      const result = r.iopub.find((m) => m.header.msg_type === 'execute_result');
      assert.is(result?.content.data['text/plain'], '42', `${protocol}: ${c.summary()}`);
    } finally {
      await c.closeAndWait();
    }
  }
});

test('DELETE /gw/api/kernels/{id} → 204', async () => {
  assert.ok(kernelId, 'no kernel');
  const del = await api(gw, 'DELETE', `/gw/api/kernels/${kernelId}`, { timeoutMs: 30000 });
  assert.is(del.status, 204, del.text);
  assert.equal(gw.connectionFiles(), []);
});

shutdownTest(test, () => gw);
test.run();
