/**
 * REST API against a real gateway with a token: /api, kernelspecs and their files, the kernel
 * lifecycle, errors and their JSON bodies, and what happens to kernel processes and connection files.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  api,
  checkKernelModel,
  deleteKernel,
  errorBody,
  guardSuite,
  kernelPid,
  KERNEL_JS_TEXT,
  PNG_BYTES,
  processGone,
  rawRequest,
  shutdownTest,
  startGateway,
  startKernel,
  TEST_SPEC,
  TEST_SPEC_NAME,
  waitUntil,
  type Gateway,
} from '../helpers/gateway.ts';

const test = suite('REST');
let gw: Gateway;
const toDelete: string[] = [];

guardSuite(
  test,
  async () => {
    gw = await startGateway();
  },
  async () => {
    for (const id of toDelete) await deleteKernel(gw, id).catch(() => undefined);
  },
);

test('GET /api → 200 {"version": string}', async () => {
  const res = await api(gw, 'GET', 'api');
  assert.is(res.status, 200, res.text);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  assert.type(res.body?.version, 'string');
  assert.ok(res.body.version.length > 0, 'version is empty');
});

test('GET /api/kernelspecs → default python3, python3 model with spec and resources', async () => {
  const res = await api(gw, 'GET', 'api/kernelspecs');
  assert.is(res.status, 200, res.text);
  assert.is(res.body.default, 'python3');
  assert.type(res.body.kernelspecs, 'object');
  const py = res.body.kernelspecs.python3;
  assert.ok(py, `python3 missing from ${Object.keys(res.body.kernelspecs)}`);
  assert.is(py.name, 'python3');
  const spec = py.spec;
  for (const key of ['argv', 'env', 'display_name', 'language', 'interrupt_mode', 'metadata']) {
    assert.ok(key in spec, `spec lacks "${key}": ${JSON.stringify(spec)}`);
  }
  assert.ok(Array.isArray(spec.argv), 'argv is not an array');
  assert.ok(spec.argv.includes('ipykernel_launcher'), `argv ${JSON.stringify(spec.argv)}`);
  assert.equal(spec.env, {});
  assert.is(spec.display_name, 'Python 3 (ipykernel)');
  assert.is(spec.language, 'python');
  assert.is(spec.interrupt_mode, 'signal');
  assert.equal(spec.metadata, { debugger: true });
  assert.equal(py.resources, {
    'logo-32x32': '/kernelspecs/python3/logo-32x32.png',
    'logo-64x64': '/kernelspecs/python3/logo-64x64.png',
    'logo-svg': '/kernelspecs/python3/logo-svg.svg',
  });
});

test('GET /api/kernelspecs lists the test kernelspec from JUPYTER_PATH with its fields and resources', async () => {
  const res = await api(gw, 'GET', 'api/kernelspecs');
  assert.is(res.status, 200, res.text);
  const t = res.body.kernelspecs[TEST_SPEC_NAME];
  assert.ok(t, `${TEST_SPEC_NAME} missing from ${Object.keys(res.body.kernelspecs)}`);
  assert.is(t.name, TEST_SPEC_NAME);
  assert.equal(t.spec.argv, TEST_SPEC.argv);
  assert.equal(t.spec.env, TEST_SPEC.env);
  assert.is(t.spec.display_name, TEST_SPEC.display_name);
  assert.is(t.spec.language, TEST_SPEC.language);
  assert.is(t.spec.interrupt_mode, 'signal');
  assert.equal(t.spec.metadata, TEST_SPEC.metadata);
  assert.is(t.resources['logo-64x64'], `/kernelspecs/${TEST_SPEC_NAME}/logo-64x64.png`);
  assert.is(t.resources['kernel.js'], `/kernelspecs/${TEST_SPEC_NAME}/kernel.js`);
  assert.not.ok('kernel.css' in t.resources, 'kernel.css listed although the spec has none');
});

test('GET /api/kernelspecs/{name}: one model; case-insensitive, echoes the requested name; unknown → 404', async () => {
  const one = await api(gw, 'GET', 'api/kernelspecs/python3');
  assert.is(one.status, 200, one.text);
  assert.is(one.body.name, 'python3');
  assert.is(one.body.spec.language, 'python');
  assert.is(one.body.resources['logo-64x64'], '/kernelspecs/python3/logo-64x64.png');

  const mixed = await api(gw, 'GET', 'api/kernelspecs/TestPy');
  assert.is(mixed.status, 200, `case-insensitive lookup of TestPy: ${mixed.status} ${mixed.text}`);
  assert.is(mixed.body.name, 'TestPy', 'the model should echo the requested name');
  assert.is(mixed.body.spec.display_name, TEST_SPEC.display_name);

  const upper = await api(gw, 'GET', 'api/kernelspecs/PYTHON3');
  assert.is(upper.status, 200, upper.text);
  assert.is(upper.body.name, 'PYTHON3');

  const missing = await api(gw, 'GET', 'api/kernelspecs/no-such-spec');
  assert.is(missing.status, 404, missing.text);
  errorBody(missing, 'GET api/kernelspecs/no-such-spec');
});

test('GET /kernelspecs/{name}/{file} serves logo and kernel.js byte for byte', async () => {
  const logo = await api(gw, 'GET', `kernelspecs/${TEST_SPEC_NAME}/logo-64x64.png`);
  assert.is(logo.status, 200, logo.text);
  assert.match(logo.headers.get('content-type') ?? '', /^image\/png/);
  const logoBytes = Buffer.from(await (await fetch(new URL(`kernelspecs/${TEST_SPEC_NAME}/logo-64x64.png`, gw.url), {
    headers: { Authorization: `token ${gw.token}` },
    signal: AbortSignal.timeout(10000),
  })).arrayBuffer());
  assert.ok(logoBytes.equals(PNG_BYTES), `logo bytes differ (${logoBytes.length} vs ${PNG_BYTES.length})`);

  const js = await api(gw, 'GET', `kernelspecs/${TEST_SPEC_NAME}/kernel.js`);
  assert.is(js.status, 200, js.text);
  assert.is(js.text, KERNEL_JS_TEXT);

  const sysLogo = await rawRequest(gw, 'GET', '/kernelspecs/python3/logo-64x64.png', { Authorization: `token ${gw.token}` });
  assert.is(sysLogo.status, 200);
  assert.ok(sysLogo.body.equals(readFileSync('/usr/share/jupyter/kernels/python3/logo-64x64.png')), 'python3 logo differs from the file');
});

test('GET /kernelspecs/…: missing files, unknown specs and ../ escapes → 404', async () => {
  const auth = { Authorization: `token ${gw.token}` };
  const cases = [
    `/kernelspecs/${TEST_SPEC_NAME}/logo-32x32.png`,
    '/kernelspecs/no-such-spec/logo-64x64.png',
    `/kernelspecs/${TEST_SPEC_NAME}/../secret.txt`,
    `/kernelspecs/${TEST_SPEC_NAME}/../../secret.txt`,
    `/kernelspecs/${TEST_SPEC_NAME}/%2e%2e/secret.txt`,
    `/kernelspecs/${TEST_SPEC_NAME}/%2e%2e%2fsecret.txt`,
    `/kernelspecs/${TEST_SPEC_NAME}/..%2f..%2fsecret.txt`,
    `/kernelspecs/${TEST_SPEC_NAME}/%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd`,
    '/kernelspecs/python3/../../../../../../../../etc/passwd',
    '/kernelspecs/..%2f..%2f..%2f..%2f..%2f..%2fetc/passwd',
  ];
  for (const path of cases) {
    const res = await rawRequest(gw, 'GET', path, auth);
    const text = res.body.toString('utf8');
    assert.not.ok(text.includes('not for you') || text.includes('root:'), `${path} leaked a file outside the spec dir: ${text.slice(0, 100)}`);
    assert.is(res.status, 404, `${path} → ${res.status}`);
  }
});

test('POST /api/kernels {"name": "python3"} → 201, Location, model; connection file 0600; kernel process runs', async () => {
  const res = await api(gw, 'POST', 'api/kernels', { json: { name: 'python3' }, timeoutMs: 60000 });
  assert.is(res.status, 201, res.text);
  const model = checkKernelModel(res.body, 'POST api/kernels');
  toDelete.push(model.id);
  assert.is(model.name, 'python3');
  assert.is(model.connections, 0);
  assert.is(res.headers.get('location'), `/api/kernels/${model.id}`);
  for (const k of Object.keys(model)) {
    assert.ok(['id', 'name', 'last_activity', 'execution_state', 'connections', 'reason'].includes(k), `unexpected model key ${k}`);
  }

  const file = join(gw.runtimeDir, `kernel-${model.id}.json`);
  await waitUntil(() => existsSync(file), 10000, `connection file ${file}`);
  const mode = statSync(file).mode & 0o777;
  assert.is(mode.toString(8), '600', 'connection file mode');
  const conn = JSON.parse(readFileSync(file, 'utf8'));
  for (const k of ['shell_port', 'iopub_port', 'stdin_port', 'control_port', 'hb_port', 'key', 'signature_scheme', 'transport', 'ip']) {
    assert.ok(k in conn, `connection file lacks ${k}`);
  }
  const pid = await kernelPid(gw, model.id);
  assert.ok(pid > 0);

  const got = await api(gw, 'GET', `api/kernels/${model.id}`);
  assert.is(got.status, 200, got.text);
  checkKernelModel(got.body, 'GET api/kernels/{id}');
  assert.is(got.body.id, model.id);
  assert.is(got.body.name, 'python3');
});

test('POST /api/kernels with an empty body and with {} start the default kernel', async () => {
  for (const body of [undefined, '{}']) {
    const res = await api(gw, 'POST', 'api/kernels', {
      body,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      timeoutMs: 60000,
    });
    assert.is(res.status, 201, `body ${JSON.stringify(body)}: ${res.status} ${res.text}`);
    const model = checkKernelModel(res.body, `POST api/kernels body ${JSON.stringify(body)}`);
    assert.is(model.name, 'python3');
    const del = await deleteKernel(gw, model.id);
    assert.is(del.status, 204, del.text);
  }
});

test('POST /api/kernels with the test kernelspec works', async () => {
  const res = await api(gw, 'POST', 'api/kernels', { json: { name: TEST_SPEC_NAME }, timeoutMs: 60000 });
  assert.is(res.status, 201, res.text);
  const model = checkKernelModel(res.body, 'POST testpy');
  assert.is(model.name, TEST_SPEC_NAME);
  const pid = await kernelPid(gw, model.id);
  const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  assert.ok(environ.includes('KG_IT_MARKER=testpy'), "the kernelspec's env did not reach the kernel");
  const del = await deleteKernel(gw, model.id);
  assert.is(del.status, 204, del.text);
});

test('POST /api/kernels with an unknown name → 404 naming the spec and listing the available ones', async () => {
  const res = await api(gw, 'POST', 'api/kernels', { json: { name: 'nosuchspec' } });
  assert.is(res.status, 404, res.text);
  const body = errorBody(res, 'unknown kernelspec');
  assert.ok(body.message.includes('nosuchspec'), `message does not name the spec: ${body.message}`);
  assert.ok(body.message.includes('python3'), `message does not list python3: ${body.message}`);
  assert.ok(body.message.includes(TEST_SPEC_NAME), `message does not list ${TEST_SPEC_NAME}: ${body.message}`);
});

test('POST /api/kernels with bad bodies → 400 JSON', async () => {
  const cases: [string, string][] = [
    ['invalid JSON', '{"name": '],
    ['name is a number', '{"name": 5}'],
    ['env is a string', '{"env": "x"}'],
    ['path is a number', '{"path": 3}'],
  ];
  const before = gw.connectionFiles().length;
  for (const [label, body] of cases) {
    const res = await api(gw, 'POST', 'api/kernels', { body, headers: { 'Content-Type': 'application/json' } });
    assert.is(res.status, 400, `${label}: ${res.status} ${res.text}`);
    errorBody(res, label);
  }
  assert.is(gw.connectionFiles().length, before, 'a rejected POST started a kernel');
});

test('GET /api/kernels → 200 array containing the running kernel', async () => {
  const res = await api(gw, 'GET', 'api/kernels');
  assert.is(res.status, 200, res.text);
  assert.ok(Array.isArray(res.body), `not an array: ${res.text}`);
  const ids = (res.body as unknown[]).map((m, i) => checkKernelModel(m, `list[${i}]`).id);
  assert.ok(ids.includes(toDelete[0]), `kernel ${toDelete[0]} missing from ${ids}`);
});

test('GET/DELETE of an unknown (well-formed) kernel id → 404 JSON; malformed id → 404', async () => {
  const id = randomUUID();
  for (const [method, path] of [
    ['GET', `api/kernels/${id}`],
    ['DELETE', `api/kernels/${id}`],
    ['POST', `api/kernels/${id}/interrupt`],
    ['POST', `api/kernels/${id}/restart`],
    ['GET', 'api/kernels/not-a-kernel-id'],
  ]) {
    const res = await api(gw, method, path);
    assert.is(res.status, 404, `${method} ${path}: ${res.status} ${res.text}`);
    errorBody(res, `${method} ${path}`);
  }
});

test('POST interrupt → 204; POST restart → 200 with the same model id and a new process', async () => {
  const id = toDelete[0];
  const pidBefore = await kernelPid(gw, id);
  const intr = await api(gw, 'POST', `api/kernels/${id}/interrupt`);
  assert.is(intr.status, 204, intr.text);
  assert.is(intr.text, '');

  const rs = await api(gw, 'POST', `api/kernels/${id}/restart`, { timeoutMs: 60000 });
  assert.is(rs.status, 200, rs.text);
  const model = checkKernelModel(rs.body, 'restart');
  assert.is(model.id, id);
  assert.is(model.name, 'python3');
  await waitUntil(() => processGone(pidBefore), 10000, `old kernel process ${pidBefore} to exit after restart`);
  const pidAfter = await kernelPid(gw, id);
  assert.is.not(pidAfter, pidBefore);
  assert.ok(existsSync(join(gw.runtimeDir, `kernel-${id}.json`)), 'connection file missing after restart');
});

test('query strings like ?1619026858191 are ignored', async () => {
  const id = toDelete[0];
  for (const path of ['api?1619026858191', 'api/kernelspecs?1619026858191', 'api/kernelspecs/python3?x=1', `api/kernels/${id}?1619026858191`, 'api/kernels?1619026858191']) {
    const res = await api(gw, 'GET', path);
    assert.is(res.status, 200, `${path}: ${res.status} ${res.text}`);
  }
  const logo = await api(gw, 'GET', `kernelspecs/${TEST_SPEC_NAME}/logo-64x64.png?v=1619026858191`);
  assert.is(logo.status, 200, logo.text);
  const intr = await api(gw, 'POST', `api/kernels/${id}/interrupt?1619026858191`);
  assert.is(intr.status, 204, intr.text);
});

test('unknown routes → 404 JSON', async () => {
  for (const [method, path] of [
    ['GET', 'api/nope'],
    ['GET', 'nope'],
    ['GET', 'api/kernels/' + toDelete[0] + '/nope'],
    ['POST', 'api/kernelspecs/python3/nope'],
  ]) {
    const res = await api(gw, method, path);
    assert.is(res.status, 404, `${method} ${path}: ${res.status} ${res.text}`);
    errorBody(res, `${method} ${path}`);
  }
});

test('DELETE → 204 with empty body; process exits, connection file removed; GET and DELETE again → 404', async () => {
  const model = await startKernel(gw);
  const pid = await kernelPid(gw, model.id);
  const file = join(gw.runtimeDir, `kernel-${model.id}.json`);
  assert.ok(existsSync(file), 'connection file missing before delete');
  const del = await deleteKernel(gw, model.id);
  assert.is(del.status, 204, del.text);
  assert.is(del.text, '');
  assert.not.ok(existsSync(file), 'connection file still present after DELETE returned');
  await waitUntil(() => processGone(pid), 5000, `kernel process ${pid} to be gone after DELETE`);
  const get = await api(gw, 'GET', `api/kernels/${model.id}`);
  assert.is(get.status, 404, get.text);
  errorBody(get, 'GET after DELETE');
  const again = await deleteKernel(gw, model.id);
  assert.is(again.status, 404, again.text);
  errorBody(again, 'DELETE again');
  const list = await api(gw, 'GET', 'api/kernels');
  assert.not.ok((list.body as { id: string }[]).some((k) => k.id === model.id), 'deleted kernel still listed');
});

// The kernel in toDelete[0] is deliberately left running: SIGTERM must shut it down.
shutdownTest(test, () => gw);

test.run();
