/**
 * CORS headers, preflight without a token, and the WebSocket origin check.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { api, guardSuite, rawRequest, shutdownTest, startGateway, startKernel, type Gateway } from '../helpers/gateway.ts';
import { connectExpectingRefusal, KernelClient, waitForKernelInfo } from '../helpers/kernel-ws.ts';

const ALLOWED = 'https://a.example';
const EVIL = 'https://evil.example';
const CORS_ARGS = [
  '--allow-origin', ALLOWED,
  '--allow-headers', 'Content-Type,Authorization',
  '--allow-methods', 'GET,POST,DELETE',
  '--allow-credentials', 'true',
  '--expose-headers', 'X-Foo',
  '--max-age', '600',
];
const EXPECTED_CORS: Record<string, string> = {
  'access-control-allow-origin': ALLOWED,
  'access-control-allow-headers': 'Content-Type,Authorization',
  'access-control-allow-methods': 'GET,POST,DELETE',
  'access-control-allow-credentials': 'true',
  'access-control-expose-headers': 'X-Foo',
  'access-control-max-age': '600',
};

function checkHeaders(get: (name: string) => string | null | undefined, names: string[], context: string): void {
  for (const name of names) {
    assert.is(get(name), EXPECTED_CORS[name], `${context}: ${name}`);
  }
}

/** Opens a channels WebSocket with an Origin header and checks it answers kernel_info. */
async function wsWorksWithOrigin(gw: Gateway, kernelId: string, origin: string): Promise<void> {
  const c = await KernelClient.connect(gw, kernelId, { headers: { Origin: origin } });
  try {
    const reply = await waitForKernelInfo(c, 30000);
    assert.is(reply.content.status, 'ok');
  } finally {
    await c.closeAndWait();
  }
}

// ---------------------------------------------------------------------------------------------
const cors = suite('CORS: --allow-origin https://a.example and friends');
let gw: Gateway;
let kernelId: string;

guardSuite(cors, async () => {
  gw = await startGateway({ args: CORS_ARGS });
  kernelId = (await startKernel(gw)).id;
});

cors('responses carry the configured Access-Control-* values', async () => {
  const res = await api(gw, 'GET', 'api', { headers: { Origin: ALLOWED } });
  assert.is(res.status, 200, res.text);
  checkHeaders((n) => res.headers.get(n), ['access-control-allow-origin', 'access-control-allow-credentials', 'access-control-expose-headers'], 'GET /api');
  const model = await api(gw, 'GET', `api/kernels/${kernelId}`, { headers: { Origin: ALLOWED } });
  assert.is(model.status, 200, model.text);
  checkHeaders((n) => model.headers.get(n), ['access-control-allow-origin', 'access-control-allow-credentials', 'access-control-expose-headers'], 'GET /api/kernels/{id}');
});

cors('an error response (401) also carries Access-Control-Allow-Origin, so browsers can read it', async () => {
  const res = await api(gw, 'GET', 'api/kernels', { token: false, headers: { Origin: ALLOWED } });
  assert.is(res.status, 401, res.text);
  assert.is(res.headers.get('access-control-allow-origin'), ALLOWED);
});

cors('OPTIONS preflight on path-parameter routes without a token → 200/204 with all configured headers', async () => {
  for (const path of [`/api/kernels/${kernelId}/interrupt`, `/api/kernels/${kernelId}/restart`, `/api/kernels/${kernelId}`, '/api/kernels', '/api/kernelspecs']) {
    const res = await rawRequest(gw, 'OPTIONS', path, {
      Origin: ALLOWED,
      'Access-Control-Request-Method': 'POST',
      'Access-Control-Request-Headers': 'authorization,content-type',
    });
    assert.ok(res.status === 200 || res.status === 204, `OPTIONS ${path} → ${res.status} ${res.body.toString()}`);
    checkHeaders((n) => res.headers[n] as string | undefined, Object.keys(EXPECTED_CORS), `OPTIONS ${path}`);
  }
  // The preflight must not have interrupted or otherwise touched the kernel: it still exists.
  const model = await api(gw, 'GET', `api/kernels/${kernelId}`);
  assert.is(model.status, 200);
});

cors('WebSocket from a foreign Origin → 403; from the allowed Origin → accepted', async () => {
  const evil = await connectExpectingRefusal(gw, kernelId, { headers: { Origin: EVIL } });
  assert.is(evil.status, 403, `Origin ${EVIL}: ${evil.status}`);
  const evilV1 = await connectExpectingRefusal(gw, kernelId, { headers: { Origin: EVIL }, protocol: 'v1' });
  assert.is(evilV1.status, 403, `Origin ${EVIL} (v1): ${evilV1.status}`);
  // A prefix of the allowed origin is not the allowed origin.
  const prefix = await connectExpectingRefusal(gw, kernelId, { headers: { Origin: `${ALLOWED}.evil.example` } });
  assert.is(prefix.status, 403, `Origin ${ALLOWED}.evil.example: ${prefix.status}`);
  await wsWorksWithOrigin(gw, kernelId, ALLOWED);
});

shutdownTest(cors, () => gw);
cors.run();

// ---------------------------------------------------------------------------------------------
const star = suite("CORS: --allow-origin '*'");
let starGw: Gateway;
let starKernel: string;

guardSuite(star, async () => {
  starGw = await startGateway({ args: ['--allow-origin', '*'] });
  starKernel = (await startKernel(starGw)).id;
});

star('Access-Control-Allow-Origin is *', async () => {
  const res = await api(starGw, 'GET', 'api', { headers: { Origin: EVIL } });
  assert.is(res.status, 200, res.text);
  assert.is(res.headers.get('access-control-allow-origin'), '*');
});

star('WebSocket from any Origin is accepted', async () => {
  await wsWorksWithOrigin(starGw, starKernel, EVIL);
});

shutdownTest(star, () => starGw);
star.run();

// ---------------------------------------------------------------------------------------------
const same = suite('CORS: no --allow-origin');
let sameGw: Gateway;
let sameKernel: string;

guardSuite(same, async () => {
  sameGw = await startGateway();
  sameKernel = (await startKernel(sameGw)).id;
});

same('no Access-Control-Allow-Origin header is sent (a foreign Origin may also be refused)', async () => {
  const plain = await api(sameGw, 'GET', 'api');
  assert.is(plain.status, 200, plain.text);
  assert.is(plain.headers.get('access-control-allow-origin'), null);
  const foreign = await api(sameGw, 'GET', 'api', { headers: { Origin: EVIL } });
  assert.ok(foreign.status === 200 || foreign.status === 403, `foreign Origin: ${foreign.status} ${foreign.text}`);
  assert.is(foreign.headers.get('access-control-allow-origin'), null);
  const sameOrigin = await api(sameGw, 'GET', 'api', { headers: { Origin: sameGw.origin } });
  assert.is(sameOrigin.status, 200, `same-origin request: ${sameOrigin.text}`);
});

same('WebSocket whose Origin host equals the Host header is accepted; no Origin is accepted', async () => {
  await wsWorksWithOrigin(sameGw, sameKernel, sameGw.origin);
  const noOrigin = await KernelClient.connect(sameGw, sameKernel);
  await noOrigin.closeAndWait();
});

same('WebSocket from a foreign Origin → 403', async () => {
  const evil = await connectExpectingRefusal(sameGw, sameKernel, { headers: { Origin: EVIL } });
  assert.is(evil.status, 403, `Origin ${EVIL}: ${evil.status}`);
  const otherPort = await connectExpectingRefusal(sameGw, sameKernel, { headers: { Origin: `http://127.0.0.1:${sameGw.port + 1}` } });
  assert.is(otherPort.status, 403, `Origin on another port: ${otherPort.status}`);
});

shutdownTest(same, () => sameGw);
same.run();
