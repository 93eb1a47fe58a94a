/**
 * Token authentication: the accepted forms, 401s for REST and WebSocket, the generated token, and
 * auth switched off (with and without --list-kernels).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { api, errorBody, guardSuite, shutdownTest, startGateway, startKernel, stopAndCheck, type Gateway } from '../helpers/gateway.ts';
import { connectExpectingRefusal, KernelClient, waitForKernelInfo } from '../helpers/kernel-ws.ts';

// ---------------------------------------------------------------------------------------------
const withToken = suite('auth: --auth-token <secret>');
let gw: Gateway;
let kernelId: string;

guardSuite(withToken, async () => {
  gw = await startGateway({ token: 'sekrit-token-123' });
  kernelId = (await startKernel(gw)).id;
});

withToken('no token or a wrong token → 401 JSON {reason, message}', async () => {
  const cases: [string, string, Record<string, string>][] = [
    ['no token', 'api', {}],
    ['wrong token header', 'api', { Authorization: 'token nope' }],
    ['wrong bearer', 'api', { Authorization: 'Bearer nope' }],
    ['unknown scheme', 'api', { Authorization: `Basic ${gw.token}` }],
    ['wrong query token', 'api?token=nope', {}],
    ['kernel list without token', 'api/kernels', {}],
    ['kernel model without token', `api/kernels/${kernelId}`, {}],
    ['kernelspecs without token', 'api/kernelspecs', {}],
  ];
  for (const [label, path, headers] of cases) {
    const res = await api(gw, 'GET', path, { token: false, headers });
    assert.is(res.status, 401, `${label}: ${res.status} ${res.text}`);
    errorBody(res, label);
  }
  const post = await api(gw, 'POST', 'api/kernels', { token: false, json: { name: 'python3' } });
  assert.is(post.status, 401, post.text);
  const del = await api(gw, 'DELETE', `api/kernels/${kernelId}`, { token: false });
  assert.is(del.status, 401, del.text);
  const still = await api(gw, 'GET', `api/kernels/${kernelId}`);
  assert.is(still.status, 200, 'an unauthenticated DELETE removed the kernel');
  assert.is(gw.connectionFiles().length, 1, 'an unauthenticated POST started a kernel');
});

withToken('"Authorization: token X", "Authorization: Bearer X" and ?token=X are accepted', async () => {
  const a = await api(gw, 'GET', 'api', { token: false, headers: { Authorization: `token ${gw.token}` } });
  assert.is(a.status, 200, a.text);
  const b = await api(gw, 'GET', 'api', { token: false, headers: { Authorization: `Bearer ${gw.token}` } });
  assert.is(b.status, 200, b.text);
  const c = await api(gw, 'GET', `api?token=${gw.token}`, { token: false });
  assert.is(c.status, 200, c.text);
  const d = await api(gw, 'GET', `api/kernels/${kernelId}?token=${gw.token}`, { token: false });
  assert.is(d.status, 200, d.text);
});

withToken('WebSocket upgrade without a token or with a wrong one → 401', async () => {
  const none = await connectExpectingRefusal(gw, kernelId, { auth: 'none' });
  assert.is(none.status, 401, `no token: ${none.status}`);
  const wrong = await connectExpectingRefusal(gw, kernelId, { token: 'nope' });
  assert.is(wrong.status, 401, `wrong token: ${wrong.status}`);
  const wrongV1 = await connectExpectingRefusal(gw, kernelId, { token: 'nope', protocol: 'v1' });
  assert.is(wrongV1.status, 401, `wrong token (v1 offered): ${wrongV1.status}`);
});

withToken('WebSocket with ?token= and with the Authorization header works', async () => {
  const q = await KernelClient.connect(gw, kernelId, { auth: 'query' });
  try {
    const reply = await waitForKernelInfo(q, 30000);
    assert.is(reply.content.status, 'ok');
  } finally {
    await q.closeAndWait();
  }
  const h = await KernelClient.connect(gw, kernelId, { auth: 'header', protocol: 'v1' });
  try {
    const reply = await waitForKernelInfo(h, 30000);
    assert.is(reply.content.status, 'ok');
  } finally {
    await h.closeAndWait();
  }
});

shutdownTest(withToken, () => gw);
withToken.run();

// ---------------------------------------------------------------------------------------------
const generated = suite('auth: no --auth-token (generated token)');
let gen: Gateway;

guardSuite(generated, async () => {
  gen = await startGateway({ token: null });
});

generated('the logged URL carries ?token=<generated token>; without it → 401, with it → 200', async () => {
  const m = /[?&]token=([^&\s]+)/.exec(gen.tokenUrl ?? '');
  assert.ok(m, `no logged URL has ?token=; stderr: ${gen.stderr()}`);
  assert.ok(gen.tokenUrl!.startsWith(gen.url), `token URL ${gen.tokenUrl} does not start with ${gen.url}`);
  assert.ok(m![1].length >= 16, `generated token is short: ${m![1]}`);
  assert.is(gen.token, m![1]);
  const none = await api(gen, 'GET', 'api', { token: false });
  assert.is(none.status, 401, none.text);
  errorBody(none, 'no token');
  const empty = await api(gen, 'GET', 'api?token=', { token: false });
  assert.is(empty.status, 401, `empty token: ${empty.text}`);
  const ok = await api(gen, 'GET', 'api');
  assert.is(ok.status, 200, ok.text);
  const q = await api(gen, 'GET', `api/kernelspecs?token=${encodeURIComponent(gen.token)}`, { token: false });
  assert.is(q.status, 200, q.text);
});

generated('two gateways generate different tokens', async () => {
  const other = await startGateway({ token: null });
  try {
    assert.ok(other.token.length > 0, 'no generated token found in the log');
    assert.is.not(other.token, gen.token);
    const cross = await api(other, 'GET', 'api', { token: gen.token });
    assert.is(cross.status, 401, 'one gateway accepted the other gateway\'s token');
  } finally {
    const problems = await stopAndCheck(other);
    assert.equal(problems, [], problems.join('\n'));
  }
});

shutdownTest(generated, () => gen);
generated.run();

// ---------------------------------------------------------------------------------------------
const open = suite("auth: --auth-token '' (auth off)");
let off: Gateway;
let offList: Gateway;

guardSuite(open, async () => {
  off = await startGateway({ token: '' });
  offList = await startGateway({ token: '', args: ['--list-kernels'] });
});

open('a warning about running without authentication is logged', async () => {
  assert.match(off.stderr(), /^\[W [^\n]*(token|auth)/im);
  assert.not.match(off.loggedUrl, /token=/);
  assert.is(off.tokenUrl, undefined, 'a token URL was logged although auth is off');
});

open('REST and WebSocket work without a token', async () => {
  const res = await api(off, 'GET', 'api', { token: false });
  assert.is(res.status, 200, res.text);
  const specs = await api(off, 'GET', 'api/kernelspecs', { token: false });
  assert.is(specs.status, 200, specs.text);
  const k = await api(off, 'POST', 'api/kernels', { token: false, json: { name: 'python3' }, timeoutMs: 60000 });
  assert.is(k.status, 201, k.text);
  const c = await KernelClient.connect(off, k.body.id, { auth: 'none' });
  try {
    const reply = await waitForKernelInfo(c, 30000);
    assert.is(reply.content.status, 'ok');
  } finally {
    await c.closeAndWait();
  }
  const get = await api(off, 'GET', `api/kernels/${k.body.id}`, { token: false });
  assert.is(get.status, 200, get.text);
  const del = await api(off, 'DELETE', `api/kernels/${k.body.id}`, { token: false });
  assert.is(del.status, 204, del.text);
});

open('GET /api/kernels → 403 JSON without --list-kernels', async () => {
  const res = await api(off, 'GET', 'api/kernels', { token: false });
  assert.is(res.status, 403, res.text);
  errorBody(res, 'list with auth off');
  const q = await api(off, 'GET', 'api/kernels?1619026858191', { token: false });
  assert.is(q.status, 403, q.text);
});

open('GET /api/kernels → 200 with --list-kernels', async () => {
  const res = await api(offList, 'GET', 'api/kernels', { token: false });
  assert.is(res.status, 200, res.text);
  assert.ok(Array.isArray(res.body), res.text);
});

shutdownTest(open, () => off, 'auth off');
shutdownTest(open, () => offList, 'auth off + --list-kernels');
open.run();
