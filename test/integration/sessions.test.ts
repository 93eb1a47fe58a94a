/**
 * /api/sessions as Jupyter Server serves it: create (and reuse by path), list, get, PATCH (rename,
 * change kernel), DELETE, validation, the legacy body; and JupyterLab's own SessionManager.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelManager, SessionManager, type KernelMessage, type Session } from '@jupyterlab/services';
import { validateModel as jlValidateSession } from '@jupyterlab/services/lib/session/validate.js';
import {
  api,
  checkKernelModel,
  errorBody,
  getKernel,
  guardSuite,
  kernelPid,
  processGone,
  shutdownTest,
  sleep,
  startGateway,
  TEST_SPEC_NAME,
  UUID_RE,
  waitUntil,
  withTimeout,
  type Gateway,
} from '../helpers/gateway.ts';
import { jupyterLabSettings, quietJupyterLabConsole, restoreConsole, stopPollsAndDispose } from '../helpers/jupyterlab.ts';
import { runInKernel } from '../helpers/kernel-ws.ts';

const test = suite('sessions API (/api/sessions) and JupyterLab\'s SessionManager');
let gw: Gateway;
let noAuth: Gateway;
let noAuthListing: Gateway;
let jlKernels: KernelManager | undefined;
let jlSessions: SessionManager | undefined;
let jlSession: Session.ISessionConnection | undefined;

guardSuite(
  test,
  async () => {
    [gw, noAuth, noAuthListing] = await Promise.all([
      startGateway(),
      startGateway({ token: '' }),
      startGateway({ token: '', args: ['--list-kernels'] }),
    ]);
  },
  async () => {
    jlSession?.dispose();
    await stopPollsAndDispose(jlSessions);
    await stopPollsAndDispose(jlKernels);
    restoreConsole();
  },
);


interface SessionModel {
  id: string;
  path: string;
  name: string;
  type: string;
  kernel: { id: string; name: string; last_activity: string; execution_state: string; connections: number };
  notebook?: { path: string; name: string };
}

function checkSession(m: unknown, context: string): SessionModel {
  try {
    jlValidateSession(JSON.parse(JSON.stringify(m)));
  } catch (err) {
    throw new Error(`${context}: JupyterLab rejects the session model (${(err as Error).message}): ${JSON.stringify(m)}`);
  }
  const s = m as SessionModel;
  assert.match(s.id, UUID_RE, `${context}: id`);
  checkKernelModel(s.kernel, `${context}: kernel`);
  return s;
}

const post = (body: unknown) => api(gw, 'POST', 'api/sessions', { json: body, timeoutMs: 60000 });

let s1: SessionModel;

test('POST {path, type, name, kernel:{name}} → 201, Location, Jupyter Server\'s model with notebook {path, name}', async () => {
  const res = await post({ path: 'a/b.ipynb', type: 'notebook', name: 'b.ipynb', kernel: { name: 'python3' } });
  assert.is(res.status, 201, res.text);
  s1 = checkSession(res.body, 'created session');
  assert.is(res.headers.get('location'), `/api/sessions/${s1.id}`);
  assert.is(s1.path, 'a/b.ipynb');
  assert.is(s1.name, 'b.ipynb');
  assert.is(s1.type, 'notebook');
  assert.is(s1.kernel.name, 'python3');
  assert.equal(s1.notebook, { path: 'a/b.ipynb', name: 'b.ipynb' });
  const k = await getKernel(gw, s1.kernel.id);
  assert.is(k.status, 200, 'the session\'s kernel is not in /api/kernels');
});

test('the session\'s kernel has JPY_SESSION_NAME = the path', async () => {
  const out = await runInKernel(gw, s1.kernel.id, "import os; print(os.environ.get('JPY_SESSION_NAME'))");
  assert.is(out.trim(), 'a/b.ipynb');
});

test('POST the same path again → the same session (and kernel), no new kernel', async () => {
  const kernelsBefore = gw.kernelPids().length;
  const res = await post({ path: 'a/b.ipynb', type: 'notebook', name: 'b.ipynb', kernel: { name: 'python3' } });
  assert.ok(res.status === 201 || res.status === 200, `${res.status} ${res.text}`);
  const again = checkSession(res.body, 'reposted session');
  assert.is(again.id, s1.id);
  assert.is(again.kernel.id, s1.kernel.id);
  await sleep(200);
  assert.is(gw.kernelPids().length, kernelsBefore);
});

test('GET /api/sessions lists it (a token is configured)', async () => {
  const res = await api(gw, 'GET', 'api/sessions');
  assert.is(res.status, 200, res.text);
  assert.ok(Array.isArray(res.body));
  const ids = (res.body as unknown[]).map((m, i) => checkSession(m, `listed session ${i}`).id);
  assert.equal(ids, [s1.id]);
});

test('--auth-token \'\': GET /api/sessions → 403 JSON; with --list-kernels → 200', async () => {
  const res = await api(noAuth, 'GET', 'api/sessions');
  assert.is(res.status, 403, res.text);
  errorBody(res, 'GET /api/sessions without auth');
  const ok = await api(noAuthListing, 'GET', 'api/sessions');
  assert.is(ok.status, 200, ok.text);
  assert.equal(ok.body, []);
});

test('GET by id → 200 with the model; an unknown id → 404 JSON', async () => {
  const res = await api(gw, 'GET', `api/sessions/${s1.id}`);
  assert.is(res.status, 200, res.text);
  assert.is(checkSession(res.body, 'GET by id').id, s1.id);
  const unknown = await api(gw, 'GET', 'api/sessions/00000000-0000-4000-8000-000000000000');
  assert.is(unknown.status, 404, unknown.text);
  errorBody(unknown, 'unknown session');
});

test('PATCH {name} → 200 with the new name (kernel unchanged)', async () => {
  const res = await api(gw, 'PATCH', `api/sessions/${s1.id}`, { json: { name: 'c.ipynb' } });
  assert.is(res.status, 200, res.text);
  const s = checkSession(res.body, 'renamed');
  assert.is(s.name, 'c.ipynb');
  assert.is(s.path, 'a/b.ipynb');
  assert.is(s.kernel.id, s1.kernel.id);
  assert.is((await api(gw, 'GET', `api/sessions/${s1.id}`)).body.name, 'c.ipynb');
});

test('PATCH {kernel:{name: testpy}} → a new kernel; the old one is gone (404) and its process exited', async () => {
  const oldId = s1.kernel.id;
  const oldPid = await kernelPid(gw, oldId);
  const res = await api(gw, 'PATCH', `api/sessions/${s1.id}`, { json: { kernel: { name: TEST_SPEC_NAME } }, timeoutMs: 60000 });
  assert.is(res.status, 200, res.text);
  const s = checkSession(res.body, 'kernel changed');
  assert.is.not(s.kernel.id, oldId);
  assert.is(s.kernel.name, TEST_SPEC_NAME);
  assert.is((await getKernel(gw, oldId)).status, 404);
  await waitUntil(() => processGone(oldPid), 10000, 'the old kernel process to exit');
  assert.not.ok(existsSync(join(gw.runtimeDir, `kernel-${oldId}.json`)), 'the old connection file is still there');
  assert.is((await getKernel(gw, s.kernel.id)).status, 200);
  s1 = s;
});

test('PATCH {kernel:{id: <unknown uuid>}} → 400 JSON; the session keeps its kernel', async () => {
  const res = await api(gw, 'PATCH', `api/sessions/${s1.id}`, { json: { kernel: { id: '11111111-2222-4333-8444-555555555555' } } });
  assert.is(res.status, 400, res.text);
  errorBody(res, 'PATCH unknown kernel id');
  assert.is((await api(gw, 'GET', `api/sessions/${s1.id}`)).body.kernel.id, s1.kernel.id);
});

test('DELETE → 204 and the kernel is gone; DELETE again → 404', async () => {
  const pid = await kernelPid(gw, s1.kernel.id);
  const res = await api(gw, 'DELETE', `api/sessions/${s1.id}`, { timeoutMs: 30000 });
  assert.is(res.status, 204, res.text);
  assert.is((await getKernel(gw, s1.kernel.id)).status, 404);
  await waitUntil(() => processGone(pid), 10000, 'the session\'s kernel process to exit');
  const again = await api(gw, 'DELETE', `api/sessions/${s1.id}`);
  assert.is(again.status, 404, again.text);
  assert.equal((await api(gw, 'GET', 'api/sessions')).body, []);
});

test('missing path or type → 400 JSON, no kernel started', async () => {
  const before = gw.kernelPids().length;
  for (const [what, body] of [
    ['no path', { type: 'notebook', name: 'x.ipynb', kernel: { name: 'python3' } }],
    ['no type', { path: 'x.ipynb', name: 'x.ipynb', kernel: { name: 'python3' } }],
  ] as const) {
    const res = await post(body);
    assert.is(res.status, 400, `${what}: ${res.status} ${res.text}`);
    assert.match(errorBody(res, what).message, what === 'no path' ? /path/ : /type/);
  }
  await sleep(300);
  assert.is(gw.kernelPids().length, before);
});

test('legacy body {notebook:{path}} → a notebook session with the default kernel', async () => {
  const res = await post({ notebook: { path: 'x.ipynb' } });
  assert.is(res.status, 201, res.text);
  const s = checkSession(res.body, 'legacy session');
  assert.is(s.path, 'x.ipynb');
  assert.is(s.type, 'notebook');
  assert.is(s.kernel.name, 'python3');
  assert.is((await api(gw, 'DELETE', `api/sessions/${s.id}`, { timeoutMs: 30000 })).status, 204);
});

test('JupyterLab SessionManager.startNew → session.kernel.requestExecute works → shutdown removes session and kernel', async () => {
  quietJupyterLabConsole();
  const settings = jupyterLabSettings(gw);
  jlKernels = new KernelManager({ serverSettings: settings });
  jlSessions = new SessionManager({ serverSettings: settings, kernelManager: jlKernels });
  await withTimeout(jlSessions.ready, 15000, 'SessionManager.ready');
  const session = await withTimeout(
    jlSessions.startNew({ path: 'lab/nb.ipynb', type: 'notebook', name: 'nb.ipynb', kernel: { name: 'python3' } }),
    60000,
    'SessionManager.startNew',
  );
  jlSession = session;
  assert.is(session.path, 'lab/nb.ipynb');
  assert.is(session.type, 'notebook');
  assert.ok(session.kernel, 'the session has no kernel connection');
  const kernelId = session.kernel!.id;
  const iopub: KernelMessage.IIOPubMessage[] = [];
  const future = session.kernel!.requestExecute({ code: "import os; print(os.environ['JPY_SESSION_NAME'], 6 * 7)" });
  future.onIOPub = (m) => {
    iopub.push(m);
  };
  const reply = (await withTimeout(future.done, 30000, 'future.done')) as KernelMessage.IExecuteReplyMsg;
  assert.is(reply.content.status, 'ok');
  const stdout = iopub
    .filter((m) => m.header.msg_type === 'stream')
    .map((m) => (m.content as KernelMessage.IStreamMsg['content']).text)
    .join('');
  assert.is(stdout, 'lab/nb.ipynb 42\n');
  await withTimeout(jlSessions.refreshRunning(), 10000, 'refreshRunning');
  assert.ok([...jlSessions.running()].some((m) => m.id === session.id), 'SessionManager does not list the session');
  const pid = await kernelPid(gw, kernelId);
  await withTimeout(session.shutdown(), 30000, 'session.shutdown()');
  assert.is((await api(gw, 'GET', `api/sessions/${session.id}`)).status, 404);
  assert.is((await getKernel(gw, kernelId)).status, 404);
  await waitUntil(() => processGone(pid), 10000, 'the kernel process to exit');
  session.dispose();
  jlSession = undefined;
  await stopPollsAndDispose(jlSessions);
  await stopPollsAndDispose(jlKernels);
  assert.ok(jlSessions.isDisposed && jlKernels.isDisposed);
  restoreConsole();
});

shutdownTest(test, () => gw);
shutdownTest(test, () => noAuth, 'no auth');
shutdownTest(test, () => noAuthListing, 'no auth, --list-kernels');
test.run();
