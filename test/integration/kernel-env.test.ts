/**
 * The environment a kernel gets: KERNEL_* and --env-whitelist variables from the start request,
 * --env-process-whitelist variables of the gateway, PATH, KERNEL_GATEWAY=1, never the gateway's
 * token (KG_AUTH_TOKEN); and bad env in a start request is refused with 400.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { api, errorBody, guardSuite, shutdownTest, sleep, startGateway, type Gateway } from '../helpers/gateway.ts';
import { runInKernel } from '../helpers/kernel-ws.ts';

const test = suite('kernel environment');
const TOKEN = `envtok-${Math.random().toString(36).slice(2)}`;
let gw: Gateway;

guardSuite(test, async () => {
  gw = await startGateway({
    token: null,
    knownToken: TOKEN,
    env: { KG_AUTH_TOKEN: TOKEN, TEST_MARKER: 'm1', GW_ONLY: 'gateway-private', WL2: 'from-gateway' },
    args: ['--env-whitelist', 'WL1,WL2', '--env-process-whitelist', 'TEST_MARKER'],
  });
});

const ENV_CODE = 'import os, json; print(json.dumps(dict(os.environ)))';

async function kernelEnv(body: unknown): Promise<Record<string, string>> {
  const res = await api(gw, 'POST', 'api/kernels', { json: body, timeoutMs: 60000 });
  assert.is(res.status, 201, `POST ${JSON.stringify(body)} → ${res.status} ${res.text}`);
  return JSON.parse(await runInKernel(gw, res.body.id, ENV_CODE)) as Record<string, string>;
}

function assertNoToken(env: Record<string, string>, context: string): void {
  assert.not.ok('KG_AUTH_TOKEN' in env, `${context}: KG_AUTH_TOKEN is in the kernel's environment`);
  const leaks = Object.entries(env).filter(([, v]) => v.includes(TOKEN)).map(([k]) => k);
  assert.equal(leaks, [], `${context}: the token's value appears in ${leaks.join(', ')}`);
}

test('KG_AUTH_TOKEN (no --auth-token flag) is the token: no token → 401, with it → 200', async () => {
  assert.is((await api(gw, 'GET', 'api/kernels', { token: false })).status, 401);
  assert.is((await api(gw, 'GET', 'api/kernels', { token: 'wrong' })).status, 401);
  assert.is((await api(gw, 'GET', 'api/kernels')).status, 200);
  assert.not.match(gw.stderr(), new RegExp(TOKEN), 'the token was logged');
});

test('start with env: KERNEL_*, whitelisted, process-whitelisted and PATH pass; nothing else; KERNEL_GATEWAY=1', async () => {
  const env = await kernelEnv({ name: 'python3', env: { KERNEL_FOO: 'f', WL1: 'w', OTHER: 'o', KERNEL_GATEWAY: '0' } });
  assert.is(env.KERNEL_FOO, 'f');
  assert.is(env.WL1, 'w');
  assert.is(env.TEST_MARKER, 'm1');
  assert.ok(env.PATH, 'PATH is not set');
  assert.is(env.PATH, process.env.PATH, 'PATH is not the gateway\'s');
  assert.not.ok('OTHER' in env, 'a non-whitelisted client variable (OTHER) reached the kernel');
  assert.is(env.KERNEL_GATEWAY, '1');
  // Gateway variables that are not process-whitelisted stay out, even a whitelisted *client* name (WL2).
  assert.not.ok('GW_ONLY' in env, 'a gateway variable outside --env-process-whitelist reached the kernel');
  assert.not.ok('WL2' in env, 'WL2 (client-whitelisted, not sent) came from the gateway environment');
  assertNoToken(env, 'start with env');
});

test('start without env: the full gateway environment (TEST_MARKER, GW_ONLY, …) but still no token; KERNEL_GATEWAY=1', async () => {
  const env = await kernelEnv({ name: 'python3' });
  assert.is(env.TEST_MARKER, 'm1');
  assert.is(env.GW_ONLY, 'gateway-private');
  assert.is(env.PYDEVD_DISABLE_FILE_VALIDATION, '1');
  assert.is(env.KERNEL_GATEWAY, '1');
  assert.not.ok('KERNEL_FOO' in env);
  assertNoToken(env, 'start without env');
});

test('bad env → 400 JSON and no kernel: an invalid name ("A B"), a NUL in a value, a non-string value', async () => {
  const before = gw.kernelPids().length;
  const cases: Array<[string, unknown]> = [
    ['name with a space', { name: 'python3', env: { 'A B': 'x' } }],
    ['value with NUL', { name: 'python3', env: { KERNEL_X: 'a\u0000b' } }],
    ['non-string value', { name: 'python3', env: { KERNEL_X: 1 } }],
    ['env not an object', { name: 'python3', env: ['KERNEL_X=1'] }],
  ];
  for (const [what, body] of cases) {
    const res = await api(gw, 'POST', 'api/kernels', { json: body });
    assert.is(res.status, 400, `${what}: ${res.status} ${res.text}`);
    assert.match(errorBody(res, what).message, /env/, `${what}: the message does not mention env`);
  }
  await sleep(300);
  assert.is(gw.kernelPids().length, before, 'a kernel process was spawned for a refused request');
  assert.is((await api(gw, 'GET', 'api/kernels')).body.length, 2);
});

shutdownTest(test, () => gw);
test.run();
