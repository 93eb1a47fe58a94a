/**
 * Which kernelspec a start uses (--default-kernel-name, --force-kernel-name) and hiding the
 * kernelspec routes (--expose-kernelspecs false).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  api,
  checkKernelModel,
  errorBody,
  guardSuite,
  rawRequest,
  shutdownTest,
  startGateway,
  TEST_SPEC_NAME,
  type Gateway,
} from '../helpers/gateway.ts';
import { runInKernel } from '../helpers/kernel-ws.ts';

const test = suite('kernel selection: --default-kernel-name, --force-kernel-name, --expose-kernelspecs');
let withDefault: Gateway;
let forced: Gateway;
let hidden: Gateway;

guardSuite(test, async () => {
  [withDefault, forced, hidden] = await Promise.all([
    startGateway({ args: ['--default-kernel-name', TEST_SPEC_NAME] }),
    startGateway({ args: ['--force-kernel-name', TEST_SPEC_NAME] }),
    startGateway({ args: ['--expose-kernelspecs', 'false'] }),
  ]);
});

/** The kernelspec a kernel process really runs: the test spec sets KG_IT_MARKER=testpy in its env. */
async function marker(gw: Gateway, id: string): Promise<string> {
  return (await runInKernel(gw, id, "import os; print(os.environ.get('KG_IT_MARKER', '<unset>'))")).trim();
}

async function start(gw: Gateway, body: unknown): Promise<{ id: string; name: string }> {
  const res = await api(gw, 'POST', 'api/kernels', { json: body, timeoutMs: 60000 });
  assert.is(res.status, 201, `POST ${JSON.stringify(body)} → ${res.status} ${res.text}`);
  return checkKernelModel(res.body, 'started kernel');
}

test('--default-kernel-name testpy: /api/kernelspecs default is testpy; POST {} starts testpy', async () => {
  const specs = await api(withDefault, 'GET', 'api/kernelspecs');
  assert.is(specs.status, 200);
  assert.is(specs.body.default, TEST_SPEC_NAME);
  assert.ok(specs.body.kernelspecs.python3, 'python3 is still listed');
  const k = await start(withDefault, {});
  assert.is(k.name, TEST_SPEC_NAME);
  assert.is(await marker(withDefault, k.id), 'testpy');
});

test('--default-kernel-name: an explicit {"name": "python3"} still starts python3', async () => {
  const k = await start(withDefault, { name: 'python3' });
  assert.is(k.name, 'python3');
  assert.is(await marker(withDefault, k.id), '<unset>');
});

test('--force-kernel-name testpy: POST {"name": "python3"} starts testpy', async () => {
  const k = await start(forced, { name: 'python3' });
  assert.is(k.name, TEST_SPEC_NAME);
  assert.is(await marker(forced, k.id), 'testpy');
  const listed = await api(forced, 'GET', 'api/kernels');
  assert.equal(listed.body.map((m: { name: string }) => m.name), [TEST_SPEC_NAME]);
});

test('--expose-kernelspecs false: kernelspec list, model and resources all answer 404 JSON', async () => {
  for (const path of ['api/kernelspecs', 'api/kernelspecs/python3', `api/kernelspecs/${TEST_SPEC_NAME}`, `kernelspecs/${TEST_SPEC_NAME}/logo-64x64.png`, 'kernelspecs/python3/logo-64x64.png']) {
    const res = await api(hidden, 'GET', path);
    assert.is(res.status, 404, `GET ${path} → ${res.status} ${res.text.slice(0, 200)}`);
    errorBody(res, `GET ${path}`);
  }
  // The test spec's logo exists, so a 404 here is the option at work, not a missing file.
  const shown = await api(withDefault, 'GET', `kernelspecs/${TEST_SPEC_NAME}/logo-64x64.png`);
  assert.is(shown.status, 200);
  // HEAD is routed like GET: 404 too.
  const head = await rawRequest(hidden, 'HEAD', `/kernelspecs/${TEST_SPEC_NAME}/logo-64x64.png`, { Authorization: `token ${hidden.token}` });
  assert.is(head.status, 404);
});

test('--expose-kernelspecs false: kernels still start and run', async () => {
  const k = await start(hidden, { name: 'python3' });
  assert.is((await runInKernel(hidden, k.id, 'print(6 * 7)')).trim(), '42');
});

shutdownTest(test, () => withDefault, 'default-kernel-name');
shutdownTest(test, () => forced, 'force-kernel-name');
shutdownTest(test, () => hidden, 'expose-kernelspecs false');
test.run();
