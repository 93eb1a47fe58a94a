/**
 * Operator options: --port/--port-retries, --trust-xheaders (client address in the log),
 * --ws-ping-interval, --kernel-startup-timeout, and a kernel that exits at once.
 */
import { createServer, type Server } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  api,
  errorBody,
  findProcesses,
  guardSuite,
  processGone,
  runGatewayToExit,
  shutdownTest,
  sleep,
  startGateway,
  stopAndCheck,
  waitUntil,
  withTimeout,
  writeKernelspec,
  type Gateway,
} from '../helpers/gateway.ts';
import { KernelClient } from '../helpers/kernel-ws.ts';

const test = suite('operations: ports, X-Forwarded-For, WebSocket pings, kernel start-up failures');
let trusting: Gateway;
let untrusting: Gateway;
let startup: Gateway;
const open: KernelClient[] = [];
const blockers: Server[] = [];

guardSuite(
  test,
  async () => {
    [trusting, untrusting, startup] = await Promise.all([
      startGateway({ args: ['--trust-xheaders', '--log-level', 'DEBUG', '--ws-ping-interval', '1'] }),
      startGateway({ args: ['--log-level', 'DEBUG', '--ws-ping-interval', '0'] }),
      startGateway({ args: ['--kernel-startup-timeout', '2'] }),
    ]);
    // Kernelspecs are rescanned on every start, so they can be added now.
    writeKernelspec(startup.jupyterPath, 'sleeper', {
      argv: ['/usr/bin/python3', '-c', 'import time; time.sleep(60)', '{connection_file}'],
      display_name: 'never answers',
      language: 'python',
    });
    writeKernelspec(startup.jupyterPath, 'crasher', {
      argv: ['/usr/bin/python3', '-c', "import sys; sys.stderr.write('boom-marker\\n'); sys.exit(3)"],
      display_name: 'exits at once',
      language: 'python',
    });
  },
  async () => {
    for (const c of open) await c.closeAndWait();
    for (const s of blockers) s.close();
  },
);

/** Binds a TCP server on 127.0.0.1 (port 0: any) and returns its port. */
async function block(port = 0): Promise<number> {
  const server = createServer();
  blockers.push(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return (server.address() as { port: number }).port;
}

test('--port P --port-retries 0 with P taken → exit non-zero with a message naming the port', async () => {
  const port = await block();
  const r = await runGatewayToExit({ args: ['--port', String(port), '--port-retries', '0'] });
  assert.not.ok(r.timedOut, `the gateway kept running:\n${r.stderr}`);
  assert.ok(r.code !== 0 && r.code !== null, `exit code ${r.code} (signal ${r.signal})`);
  assert.match(r.stderr, new RegExp(`\\b${port}\\b`), `stderr does not name port ${port}:\n${r.stderr}`);
  assert.not.match(r.stderr, /is available at/);
});

test('--port P --port-retries 3 with P taken → listens on a higher port (P+1..P+3), logged in its URL', async () => {
  const port = await block();
  const gw = await startGateway({ args: ['--port', String(port), '--port-retries', '3'] });
  try {
    assert.ok(gw.port > port && gw.port <= port + 3, `listening on ${gw.port}, blocked ${port}`);
    assert.match(gw.loggedUrl, new RegExp(`^http://127\\.0\\.0\\.1:${gw.port}/`));
    assert.is((await api(gw, 'GET', 'api')).status, 200);
  } finally {
    const problems = await stopAndCheck(gw);
    assert.equal(problems, [], problems.join('\n'));
  }
});

test('--trust-xheaders: the log line of GET /api says client 10.9.8.7 (first X-Forwarded-For entry)', async () => {
  const res = await api(trusting, 'GET', 'api?xff-probe=1', { headers: { 'X-Forwarded-For': '10.9.8.7, 1.2.3.4' } });
  assert.is(res.status, 200);
  const line = await waitUntil(() => trusting.stderr().split('\n').find((l) => l.includes('/api?xff-probe=1')), 5000, 'the request log line') as string;
  assert.match(line, /client 10\.9\.8\.7\b/, line);
});

test('without --trust-xheaders the same request is logged as client 127.0.0.1', async () => {
  const res = await api(untrusting, 'GET', 'api?xff-probe=2', { headers: { 'X-Forwarded-For': '10.9.8.7, 1.2.3.4' } });
  assert.is(res.status, 200);
  const line = await waitUntil(() => untrusting.stderr().split('\n').find((l) => l.includes('/api?xff-probe=2')), 5000, 'the request log line') as string;
  assert.match(line, /client 127\.0\.0\.1\b/, line);
  assert.not.match(line, /10\.9\.8\.7/);
});

/** Connects to a new kernel and counts the pings received in `ms`. */
async function pingsWithin(gw: Gateway, ms: number): Promise<{ count: number; firstAfter?: number }> {
  const res = await api(gw, 'POST', 'api/kernels', { json: { name: 'python3' }, timeoutMs: 60000 });
  assert.is(res.status, 201, res.text);
  const c = await KernelClient.connect(gw, res.body.id);
  open.push(c);
  const t0 = Date.now();
  let count = 0;
  let firstAfter: number | undefined;
  c.ws.on('ping', () => {
    count++;
    firstAfter ??= Date.now() - t0;
  });
  await sleep(ms);
  assert.ok(c.isOpen, 'the WebSocket closed');
  await c.closeAndWait();
  return { count, firstAfter };
}

test('--ws-ping-interval 1: a ping within 2.5 s; --ws-ping-interval 0: none within 2.5 s', async () => {
  const [on, off] = await Promise.all([pingsWithin(trusting, 2500), pingsWithin(untrusting, 2500)]);
  assert.ok(on.count >= 1, 'no ping within 2.5 s with --ws-ping-interval 1');
  assert.is(off.count, 0, `${off.count} ping(s) with --ws-ping-interval 0`);
});

test('--kernel-startup-timeout 2: a kernel that never answers → 500 within ~5 s naming kernel_info and the option; its process is gone', async () => {
  const pids = new Set<number>();
  const watcher = setInterval(() => findProcesses('time.sleep(60)').forEach((p) => pids.add(p)), 20);
  const t0 = Date.now();
  let res;
  try {
    res = await api(startup, 'POST', 'api/kernels', { json: { name: 'sleeper' }, timeoutMs: 20000 });
  } finally {
    clearInterval(watcher);
  }
  const elapsed = Date.now() - t0;
  assert.is(res.status, 500, res.text);
  const { message } = errorBody(res, 'startup timeout');
  assert.match(message, /kernel_info/, message);
  assert.match(message, /--kernel-startup-timeout|kernel_startup_timeout/, message);
  assert.ok(pids.size > 0, 'the sleeping kernel process was never seen');
  await waitUntil(() => [...pids].every(processGone), 5000, 'the sleeping process to be gone');
  assert.equal(startup.connectionFiles(), []);
  assert.equal((await api(startup, 'GET', 'api/kernels')).body, []);
  console.log(`    --kernel-startup-timeout 2: POST answered 500 after ${elapsed} ms`);
  assert.ok(elapsed >= 1900, `answered after ${elapsed} ms, before the timeout`);
  assert.ok(elapsed <= 6000, `answered after ${elapsed} ms, expected within ~5 s (timeout 2 s)`);
});

test('a kernel that exits at once → 500 after the restart attempts, with its stderr (boom-marker) in the message', async () => {
  const res = await withTimeout(api(startup, 'POST', 'api/kernels', { json: { name: 'crasher' }, timeoutMs: 20000 }), 20000, 'POST crasher');
  assert.is(res.status, 500, res.text);
  const { message } = errorBody(res, 'crasher');
  assert.match(message, /boom-marker/, message);
  assert.match(startup.stderr(), /restarting \(attempt \d+ of \d+\)/, 'no restart attempts were logged');
  assert.equal(startup.connectionFiles(), []);
  assert.equal((await api(startup, 'GET', 'api/kernels')).body, []);
  // The gateway still starts working kernels afterwards.
  const ok = await api(startup, 'POST', 'api/kernels', { json: { name: 'python3' }, timeoutMs: 60000 });
  assert.is(ok.status, 201, ok.text);
});

shutdownTest(test, () => trusting, 'trust-xheaders, ping 1');
shutdownTest(test, () => untrusting, 'ping 0');
shutdownTest(test, () => startup, 'kernel-startup-timeout');
test.run();
