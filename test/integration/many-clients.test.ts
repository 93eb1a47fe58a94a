/**
 * Many clients on one gateway. A client costs one file descriptor (its own socket), not ZeroMQ
 * sockets of its own: hundreds of clients on one kernel all receive every iopub message, kernels
 * still start while they are connected, and when the process runs out of file descriptors anyway
 * the newcomer is refused with a clear 503 while everyone else carries on.
 */
import { readdirSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { api, guardSuite, shutdownTest, startGateway, startKernel, stopAndCheck, waitUntil, withTimeout, type Gateway } from '../helpers/gateway.ts';
import { connectExpectingRefusal, execute, isStatus, KernelClient, type Received } from '../helpers/kernel-ws.ts';

const test = suite('many clients: one descriptor per client, all of the iopub, clear refusals at the limit');
let gw: Gateway;

guardSuite(test, async () => {
  gw = await startGateway();
});

function openFiles(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

async function connectMany(g: Gateway, kernelId: string, count: number): Promise<KernelClient[]> {
  const clients: KernelClient[] = [];
  // In batches, so the test does not measure how fast one machine accepts 400 handshakes at once.
  for (let i = 0; i < count; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, count - i) }, (_, j) =>
        KernelClient.connect(g, kernelId, { protocol: (i + j) % 3 === 0 ? 'v1' : 'legacy', timeoutMs: 60000 }),
      ),
    );
    clients.push(...batch);
  }
  return clients;
}

test('400 clients on one kernel (more than 1,023 ZeroMQ sockets would allow at 3 per client): each receives every iopub message', async () => {
  const kernel = await startKernel(gw);
  const pid = gw.proc.pid!;
  const before = openFiles(pid);
  const clients = await connectMany(gw, kernel.id, 400);
  const grown = openFiles(pid) - before;
  assert.ok(grown <= 400 + 20, `400 clients cost ${grown} file descriptors in the gateway (expected about one each)`);
  await waitUntil(async () => (await api(gw, 'GET', `api/kernels/${kernel.id}`)).body?.connections === 400, 20000, 'connections == 400');

  // 40 of them run a cell each, concurrently; every client must see all 40 outputs and idle statuses.
  const runners = clients.filter((_, i) => i % 10 === 0);
  const replies = await Promise.all(runners.map((c, i) => withTimeout(execute(c, `print('out-${i}')`, 60000), 90000, `execute on client ${i}`)));
  for (const reply of replies) assert.is(reply.reply.content.status, 'ok');
  const parents = new Set(replies.map((r) => r.request.header.msg_id));
  for (const client of clients) {
    await waitUntil(
      () => client.messages.filter((m: Received) => isStatus(m, undefined, 'idle') && parents.has(m.parent_header.msg_id as string)).length === 40,
      30000,
      `${client.label}: the idle status of all 40 cells`,
    ).catch(() => undefined);
    // ipykernel may split one print into several stream messages: compare the text per cell.
    const printed = new Map<string, string>();
    for (const m of client.messages) {
      const parent = m.parent_header.msg_id as string;
      if (m.header.msg_type === 'stream' && parents.has(parent)) printed.set(parent, (printed.get(parent) ?? '') + (m.content.text as string));
    }
    const idles = client.messages.filter((m) => isStatus(m, undefined, 'idle') && parents.has(m.parent_header.msg_id as string));
    replies.forEach((r, i) => assert.is(printed.get(r.request.header.msg_id), `out-${i}\n`, `${client.label}: output of cell ${i}`));
    assert.is(idles.length, 40, `${client.label}: ${idles.length} of 40 idle statuses`);
    client.assertClean();
  }

  // A kernel still starts while they are connected (no descriptor exhaustion inside the gateway).
  const second = await api(gw, 'POST', 'api/kernels', { json: { name: 'python3' }, timeoutMs: 60000 });
  assert.is(second.status, 201, second.text);
  await Promise.all(clients.map((c) => c.closeAndWait()));
  await waitUntil(async () => (await api(gw, 'GET', `api/kernels/${kernel.id}`)).body?.connections === 0, 20000, 'connections back to 0');
  for (const id of [kernel.id, second.body.id]) assert.is((await api(gw, 'DELETE', `api/kernels/${id}`)).status, 204);
});

test('at the limit of open files the newcomer gets 503 with a JSON reason and a log line; the others carry on', async () => {
  const limited = await startGateway({ fileLimit: 320 });
  const kernel = await startKernel(limited);
  const clients: KernelClient[] = [];
  let refusal: { status: number; body: string } | undefined;
  for (let i = 0; i < 400 && !refusal; i++) {
    const attempt = await connectExpectingRefusalOrClient(limited, kernel.id);
    if (attempt instanceof KernelClient) clients.push(attempt);
    else refusal = attempt;
  }
  assert.ok(refusal, 'no refusal within 400 clients under a limit of 320 open files');
  assert.ok(clients.length >= 50, `only ${clients.length} clients before the refusal`);
  assert.is(refusal!.status, 503);
  const body = JSON.parse(refusal!.body) as { reason: string; message: string };
  assert.is(body.reason, 'Service Unavailable');
  assert.match(body.message, /limit of open files/);
  assert.match(limited.stderr(), /refused a WebSocket for kernel .*limit of open files/);
  // Nobody else noticed: the first and the last client still execute, and a kernel still starts.
  for (const client of [clients[0], clients[clients.length - 1]]) {
    const r = await execute(client, 'print(1 + 1)', 30000);
    assert.is(r.stdout, '2\n');
  }
  const another = await api(limited, 'POST', 'api/kernels', { json: { name: 'python3' }, timeoutMs: 60000 });
  assert.is(another.status, 201, another.text);
  await Promise.all(clients.map((c) => c.closeAndWait()));
  assert.equal(await stopAndCheck(limited), []);
});

async function connectExpectingRefusalOrClient(g: Gateway, kernelId: string): Promise<KernelClient | { status: number; body: string }> {
  try {
    return await KernelClient.connect(g, kernelId, { timeoutMs: 30000 });
  } catch (error) {
    if (!/503/.test((error as Error).message)) throw error;
    return connectExpectingRefusal(g, kernelId);
  }
}

shutdownTest(test, () => gw);
test.run();
