/**
 * What operators watch: /metrics moves as a real session goes (start, execute, a client too slow to
 * read cut off, delete, memory given back after a burst), read with a Prometheus text parser; /api/status has Jupyter Server's shape;
 * --log-format json writes one JSON object per line, with the kernel and request fields, and never
 * the token.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { api, guardSuite, LAST_ACTIVITY_RE, shutdownTest, startGateway, startKernel, waitUntil, type Gateway } from '../helpers/gateway.ts';
import { execute, executeContent, KernelClient } from '../helpers/kernel-ws.ts';
import { scrape } from '../helpers/prometheus.ts';
import { onGlibc } from '../../src/memory-release.ts';

const test = suite('observability: /metrics, /api/status, JSON logs');
let gw: Gateway;
let open: Gateway;

guardSuite(test, async () => {
  [gw, open] = await Promise.all([
    startGateway({ args: ['--log-format', 'json', '--log-level', 'DEBUG', '--client-buffer-bytes', String(1024 * 1024)] }),
    startGateway({ args: ['--metrics-no-auth'] }),
  ]);
});

test('/metrics follows a session: start, execute, a client cut off for not reading, delete', async () => {
  const before = await scrape(gw);
  assert.is(before.type('kernelgateway_kernel_starts_total'), 'counter');
  assert.is(before.type('kernelgateway_kernel_start_seconds'), 'histogram');
  assert.ok(before.value('process_resident_memory_bytes') > 0);
  assert.ok(before.value('process_open_fds') > 0);

  const kernel = await startKernel(gw);
  let now = await scrape(gw);
  assert.is(now.value('kernelgateway_kernel_starts_total', { kernelspec: 'python3' }), 1);
  assert.is(now.value('kernelgateway_kernel_start_seconds_count', { kernelspec: 'python3' }), 1, 'one start observed in the histogram');
  assert.is(now.value('kernelgateway_kernels', { kernelspec: 'python3', state: 'idle' }), 1);
  assert.is(now.value('kernelgateway_http_requests_total', { method: 'POST', route: '/api/kernels', status: '201' }), 1);

  const client = await KernelClient.connect(gw, kernel.id, { protocol: 'v1' });
  const result = await execute(client, "print('metrics')");
  assert.is(result.stdout, 'metrics\n');
  now = await scrape(gw);
  assert.is(now.value('kernelgateway_websocket_connections', { protocol: 'v1' }), 1);
  assert.ok(now.value('kernelgateway_messages_total', { direction: 'from_client', channel: 'shell' }) >= 1);
  assert.ok(now.value('kernelgateway_messages_total', { direction: 'to_kernel', channel: 'shell' }) >= 1);
  assert.ok(now.value('kernelgateway_messages_total', { direction: 'from_kernel', channel: 'iopub' }) >= 4);
  assert.ok(now.value('kernelgateway_messages_total', { direction: 'to_client', channel: 'iopub' }) >= 4);
  assert.ok(now.value('kernelgateway_message_bytes_total', { direction: 'to_client', channel: 'shell' }) > 0);
  assert.is(now.value('kernelgateway_http_requests_total', { route: '/api/kernels/{id}/channels', status: '101' }), 1);

  await client.closeAndWait();
  // A client that asks for more output than --client-buffer-bytes and stops reading: cut off (4008).
  const slow = await KernelClient.connect(gw, kernel.id);
  slow.request('shell', 'execute_request', executeContent("for _ in range(8): print('x' * 1_000_000)"));
  (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
  await waitUntil(async () => (await scrape(gw)).value('kernelgateway_websocket_closes_total', { reason: 'not_reading' }) === 1, 30000, 'the slow client counted as cut off');
  slow.ws.terminate();
  // The kernel is fine and serves the next client.
  const next = await KernelClient.connect(gw, kernel.id);
  assert.is((await execute(next, 'print(1)', 30000)).stdout, '1\n');
  await next.closeAndWait();

  assert.is((await api(gw, 'DELETE', `api/kernels/${kernel.id}`)).status, 204);
  now = await scrape(gw);
  assert.is(now.value('kernelgateway_kernels'), 0);
  assert.is(now.value('kernelgateway_http_requests_total', { method: 'DELETE', route: '/api/kernels/{id}', status: '204' }), 1);
  assert.ok(now.value('kernelgateway_http_request_duration_seconds_count', { method: 'DELETE', route: '/api/kernels/{id}' }) >= 1);
});

test('memory is given back once a burst has passed: V8 collections and malloc_trim, counted in /metrics', async () => {
  const before = await scrape(open, false);
  assert.is(before.value('kernelgateway_memory_release_steps_total'), 0, 'no burst yet, no release');
  const kernel = await startKernel(open);
  const client = await KernelClient.connect(open, kernel.id);
  const result = await execute(client, "for _ in range(6): print('y' * 1_000_000)", 60000);
  assert.is(result.stdout.length, 6 * 1_000_001);
  // A major collection on the first quiet second, young-generation ones after it, each with malloc_trim.
  await waitUntil(async () => (await scrape(open, false)).value('kernelgateway_memory_release_steps_total') >= 2, 30000, 'release steps after the burst');
  await client.closeAndWait();
  const line = open.stderr().match(/Memory release after bursts: .*/)?.[0];
  // malloc_trim on glibc Linux only (dist/native/malloc-trim.node), where glibc keeps free heap memory.
  const expected = onGlibc() ? 'V8 collections and malloc_trim' : 'V8 collections';
  assert.is(line, `Memory release after bursts: ${expected}`);
  assert.is((await api(open, 'DELETE', `api/kernels/${kernel.id}`)).status, 204);
});

test('memory is given back after kernels end too, with no burst; the ends are counted by kernelspec and how', async () => {
  // Wait for any release under way to end, and for one still due: its steps come once a second while it
  // lasts, and a release for kernels that ended (the test before deleted one) waits up to 10 s after the
  // previous release began. No step for 12.5 s means neither is left.
  const steps = async () => (await scrape(open, false)).value('kernelgateway_memory_release_steps_total');
  let settled = await steps();
  await waitUntil(
    async () => {
      await new Promise((resolve) => setTimeout(resolve, 12_500));
      const now = await steps();
      const same = now === settled;
      settled = now;
      return same;
    },
    90000,
    'the earlier release to end',
  );
  const endsBefore = (await scrape(open, false)).value('kernelgateway_kernel_ends_total', { kernelspec: 'python3', how: 'shutdown' });
  const kernel = await startKernel(open);
  const client = await KernelClient.connect(open, kernel.id);
  assert.is((await execute(client, 'print(2)', 30000)).stdout, '2\n');
  await client.closeAndWait();
  assert.is(await steps(), settled, 'a small cell is no burst');
  assert.is((await api(open, 'DELETE', `api/kernels/${kernel.id}`)).status, 204);
  assert.is((await scrape(open, false)).value('kernelgateway_kernel_ends_total', { kernelspec: 'python3', how: 'shutdown' }), endsBefore + 1);
  await waitUntil(async () => (await steps()) > settled, 30000, 'a release step after the kernel ended');
});

test('/metrics needs the token unless --metrics-no-auth', async () => {
  assert.is((await api(gw, 'GET', 'metrics', { token: false })).status, 401);
  const scraped = await scrape(open, false);
  assert.ok(scraped.value('process_start_time_seconds') > 1_600_000_000);
  // Only /metrics is open: the rest still needs the token.
  assert.is((await api(open, 'GET', 'api/kernels', { token: false })).status, 401);
});

test("/api/status has Jupyter Server's shape", async () => {
  const kernel = await startKernel(gw);
  const client = await KernelClient.connect(gw, kernel.id);
  const res = await api(gw, 'GET', 'api/status');
  assert.is(res.status, 200);
  assert.equal(Object.keys(res.body).sort(), ['connections', 'kernels', 'last_activity', 'started']);
  assert.match(res.body.started, LAST_ACTIVITY_RE);
  assert.match(res.body.last_activity, LAST_ACTIVITY_RE);
  assert.is(res.body.kernels, 1);
  assert.is(res.body.connections, 1);
  assert.ok(Date.parse(res.body.last_activity) >= Date.parse(res.body.started));
  await client.closeAndWait();
  assert.is((await api(gw, 'DELETE', `api/kernels/${kernel.id}`)).status, 204);
  assert.is((await api(gw, 'GET', 'api/status', { token: false })).status, 401);
});

test('--log-format json: every line is one JSON object with time, level and message; kernel and request fields; no token', () => {
  const lines = gw.stderr().split('\n').filter((line) => line !== '');
  assert.ok(lines.length > 10, `only ${lines.length} log lines`);
  const records = lines.map((line, i) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      throw new Error(`log line ${i + 1} is not JSON: ${line}`);
    }
  });
  for (const record of records) {
    assert.type(record.time, 'string');
    assert.ok(['DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL'].includes(record.level as string), JSON.stringify(record));
    assert.type(record.message, 'string');
  }
  const started = records.find((r) => /started, pid/.test(r.message as string));
  assert.ok(started?.kernel_id, 'the kernel start line has no kernel_id');
  assert.is(started!.kernelspec, 'python3');
  const access = records.find((r) => r.route === '/api/kernels/{id}' && r.method === 'DELETE');
  assert.ok(access, 'no access line with its route');
  assert.is(access!.status, 204);
  assert.type(access!.duration_ms, 'number');
  const cutOff = records.find((r) => /client is not reading/.test(r.message as string));
  assert.ok(cutOff?.session_id, 'the cut-off line has no session_id');
  assert.not.ok(gw.stderr().includes(gw.token), 'the token is in the log');
});

shutdownTest(test, () => gw, 'json logs');
shutdownTest(test, () => open, 'metrics without auth');
test.run();
