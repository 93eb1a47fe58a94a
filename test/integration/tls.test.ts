/**
 * TLS (--certfile/--keyfile) and client certificates (--client-ca): HTTPS and WSS with a test CA
 * made by openssl.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { checkKernelModel, guardSuite, shutdownTest, startGateway, withTimeout, type Gateway } from '../helpers/gateway.ts';
import { execute, KernelClient } from '../helpers/kernel-ws.ts';

const test = suite('TLS: --certfile/--keyfile, --client-ca');
let dir: string;
let ca: Buffer;
let clientCert: Buffer;
let clientKey: Buffer;
let otherCert: Buffer;
let otherKey: Buffer;
let tls: Gateway;
let mtls: Gateway;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A P-256 key and a certificate for it signed by `caName` (or self-signed when caName is undefined). */
function makeCert(name: string, subject: string, ext: string, caName?: string): void {
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`]);
  writeFileSync(join(dir, `${name}.ext`), ext);
  if (!caName) {
    openssl(['req', '-x509', '-new', '-key', `${name}.key`, '-subj', subject, '-days', '2', '-out', `${name}.pem`,
      '-extensions', 'v3', '-config', `${name}.ext`]);
    return;
  }
  openssl(['req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`]);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.pem`, '-CAkey', `${caName}.key`, '-CAcreateserial',
    '-days', '2', '-out', `${name}.pem`, '-extfile', `${name}.ext`]);
}

guardSuite(
  test,
  async () => {
    try {
      execFileSync('openssl', ['version'], { stdio: 'ignore' });
    } catch {
      throw new Error('openssl is not installed (apt-get install -y openssl)');
    }
    dir = mkdtempSync(join(tmpdir(), 'kg-it-tls-'));
    const caExt = '[req]\ndistinguished_name=dn\n[dn]\n[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n';
    makeCert('ca', '/CN=kernelgateway test CA', caExt);
    makeCert('server', '/CN=localhost', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n', 'ca');
    makeCert('client', '/CN=test client', 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n', 'ca');
    // A client certificate from a CA the gateway does not trust.
    makeCert('otherca', '/CN=other CA', caExt);
    makeCert('other', '/CN=other client', 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n', 'otherca');
    ca = readFileSync(join(dir, 'ca.pem'));
    clientCert = readFileSync(join(dir, 'client.pem'));
    clientKey = readFileSync(join(dir, 'client.key'));
    otherCert = readFileSync(join(dir, 'other.pem'));
    otherKey = readFileSync(join(dir, 'other.key'));
    const tlsArgs = ['--certfile', join(dir, 'server.pem'), '--keyfile', join(dir, 'server.key')];
    [tls, mtls] = await Promise.all([
      startGateway({ args: tlsArgs }),
      startGateway({ args: [...tlsArgs, '--client-ca', join(dir, 'ca.pem')] }),
    ]);
  },
  async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  },
);

interface TlsOpts {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  host?: string;
}

/** An HTTPS request with node:https (fetch cannot be given a CA). Rejects on any TLS or socket error. */
function httpsApi(gw: Gateway, method: string, path: string, tlsOpts: TlsOpts, json?: unknown): Promise<{ status: number; body: any; text: string }> {
  const body = json === undefined ? undefined : JSON.stringify(json);
  return withTimeout(
    new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: tlsOpts.host ?? '127.0.0.1',
          port: gw.port,
          method,
          path: `/${path}`,
          headers: { Authorization: `token ${gw.token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
          ca: tlsOpts.ca,
          cert: tlsOpts.cert,
          key: tlsOpts.key,
          agent: false,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (text += d));
          res.on('end', () => {
            let parsed: unknown;
            try {
              parsed = JSON.parse(text);
            } catch {
              parsed = undefined;
            }
            resolve({ status: res.statusCode ?? 0, body: parsed, text });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    }),
    30000,
    `https ${method} /${path}`,
  );
}

async function expectFailure(p: Promise<unknown>, what: string): Promise<string> {
  try {
    const r = await p;
    throw new Error(`${what}: expected a TLS failure, got ${JSON.stringify(r).slice(0, 200)}`);
  } catch (err) {
    const message = (err as Error).message;
    if (message.startsWith(`${what}: expected`)) throw err;
    return message;
  }
}

async function executeOverWss(gw: Gateway, tlsOpts: TlsOpts): Promise<void> {
  const started = await httpsApi(gw, 'POST', 'api/kernels', tlsOpts, { name: 'python3' });
  assert.is(started.status, 201, started.text);
  const { id } = checkKernelModel(started.body, 'kernel over https');
  assert.match(gw.wsUrl, /^wss:\/\//);
  const c = await KernelClient.connect(gw, id, { tls: tlsOpts });
  try {
    const r = await execute(c, 'print(6 * 7)');
    assert.is(r.reply.content.status, 'ok');
    assert.is(r.stdout, '42\n');
  } finally {
    await c.closeAndWait();
  }
}

test('--certfile/--keyfile: the startup log says https://', async () => {
  assert.match(tls.loggedUrl, /^https:\/\/127\.0\.0\.1:\d+\/$/);
  assert.match(mtls.loggedUrl, /^https:\/\//);
});

test('HTTPS GET /api works with the CA trusted (also by the name localhost); untrusted → certificate error', async () => {
  const res = await httpsApi(tls, 'GET', 'api', { ca });
  assert.is(res.status, 200, res.text);
  assert.type(res.body.version, 'string');
  const byName = await httpsApi(tls, 'GET', 'api', { ca, host: 'localhost' });
  assert.is(byName.status, 200);
  const msg = await expectFailure(httpsApi(tls, 'GET', 'api', {}), 'untrusted CA');
  assert.match(msg, /self.signed|unable to (get|verify)|certificate/i);
});

test('plain HTTP to the TLS port does not get the API', async () => {
  let answer = '';
  try {
    const res = await fetch(`http://127.0.0.1:${tls.port}/api`, { headers: { Authorization: `token ${tls.token}` }, signal: AbortSignal.timeout(5000) });
    answer = `${res.status} ${await res.text()}`;
  } catch {
    answer = 'connection failed';
  }
  assert.not.match(answer, /"version"/);
});

test('a wss:// channels WebSocket executes code (CA trusted)', async () => {
  await executeOverWss(tls, { ca });
});

test('--client-ca: without a client certificate a request fails; with one from another CA too', async () => {
  const noCert = await expectFailure(httpsApi(mtls, 'GET', 'api', { ca }), 'no client cert');
  assert.match(noCert, /certificate|handshake|socket hang up|ECONNRESET|alert/i);
  const wrong = await expectFailure(httpsApi(mtls, 'GET', 'api', { ca, cert: otherCert, key: otherKey }), 'untrusted client cert');
  assert.match(wrong, /certificate|handshake|socket hang up|ECONNRESET|alert|unknown ca/i);
  // Nor does a WebSocket without a certificate get in.
  const ws = await expectFailure(KernelClient.connect(mtls, '00000000-0000-4000-8000-000000000000', { tls: { ca }, timeoutMs: 10000 }), 'wss without client cert');
  assert.not.match(ws, /Unexpected server response/, `the upgrade reached HTTP: ${ws}`);
});

test('--client-ca: with the client certificate HTTPS works, and a wss:// WebSocket executes code', async () => {
  const res = await httpsApi(mtls, 'GET', 'api', { ca, cert: clientCert, key: clientKey });
  assert.is(res.status, 200, res.text);
  await executeOverWss(mtls, { ca, cert: clientCert, key: clientKey });
});

shutdownTest(test, () => tls, 'TLS');
shutdownTest(test, () => mtls, 'mutual TLS');
test.run();
