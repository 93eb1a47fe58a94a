/**
 * What a client sends towards a kernel that does not read is bounded: the gateway stops reading the
 * client (TCP pushes back on it) instead of holding everything in memory, a client past
 * --kernel-buffer-bytes is disconnected with 4009 and a reason, and other clients notice nothing.
 * Nothing is lost on the way: once the kernel reads again, every accepted request is answered.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { guardSuite, kernelPid, shutdownTest, sleep, startGateway, startKernel, waitUntil, type Gateway } from '../helpers/gateway.ts';
import { execute, executeContent, finishExecute, isReplyTo, KernelClient, type Msg } from '../helpers/kernel-ws.ts';

const test = suite('backpressure towards the kernel: pause, bound, nothing lost');
let gw: Gateway;
let tight: Gateway;

guardSuite(test, async () => {
  [gw, tight] = await Promise.all([startGateway(), startGateway({ args: ['--kernel-buffer-bytes', String(2 * 1024 * 1024)] })]);
});

const MB = 1024 * 1024;

/** A cell of about `bytes` that prints its index. */
function bigCell(index: number, bytes: number): string {
  return `_pad = '${'a'.repeat(bytes)}'\nprint(${index}, len(_pad))`;
}

async function withStoppedKernel<T>(pid: number, body: () => Promise<T>): Promise<T> {
  process.kill(pid, 'SIGSTOP');
  try {
    return await body();
  } finally {
    process.kill(pid, 'SIGCONT');
  }
}

test('a kernel that does not read: the gateway stops reading the client, and every request is answered once it reads again', async () => {
  const kernel = await startKernel(gw);
  const pid = await kernelPid(gw, kernel.id);
  const flooder = await KernelClient.connect(gw, kernel.id);
  const bystander = await KernelClient.connect(gw, kernel.id, { protocol: 'v1' });
  const requests: Msg[] = [];
  const small = await withStoppedKernel(pid, async () => {
    for (let i = 0; i < 20; i++) requests.push(flooder.request('shell', 'execute_request', executeContent(bigCell(i, 4 * MB))));
    // The gateway takes what the kernel's socket takes and a little more, then stops reading:
    // most of the 80 MB stays in the client's own send buffer.
    await sleep(2000);
    const waiting = flooder.ws.bufferedAmount;
    await sleep(1000);
    assert.ok(flooder.ws.bufferedAmount > 40 * MB, `the gateway kept reading: only ${flooder.ws.bufferedAmount} bytes wait in the client`);
    assert.is(flooder.ws.bufferedAmount, waiting, 'the client could still send while the kernel was stopped');
    assert.ok(flooder.isOpen, 'the flooding client was disconnected although it stayed under the bound');
    // Another client's request waits its turn beside the flooder's backlog, not behind all of it.
    return bystander.request('shell', 'execute_request', executeContent("print('bystander')"));
  });
  for (const [i, request] of requests.entries()) {
    const r = await finishExecute(flooder, request, 120000);
    assert.is(r.reply.content.status, 'ok', JSON.stringify(r.reply.content));
    assert.is(r.stdout, `${i} ${4 * MB}\n`);
  }
  const b = await finishExecute(bystander, small, 60000);
  assert.is(b.stdout, 'bystander\n');
  const counts = await Promise.all(requests.map((request) => finishExecute(flooder, request).then((r) => r.reply.content.execution_count as number)));
  const mine = b.reply.content.execution_count as number;
  assert.ok(mine < counts[10], `the bystander's cell ran as number ${mine}, after the flooder's 11th (${counts[10]})`);
  // Replies went to their senders only.
  assert.not.ok(bystander.messages.some((m) => requests.some((r) => isReplyTo(m, r, 'execute_reply'))), 'the bystander got the flooder\'s replies');
  await flooder.closeAndWait();
  await bystander.closeAndWait();
});

test('past --kernel-buffer-bytes the client is disconnected with 4009 and a reason; other clients carry on', async () => {
  const kernel = await startKernel(tight);
  const pid = await kernelPid(tight, kernel.id);
  const flooder = await KernelClient.connect(tight, kernel.id);
  const bystander = await KernelClient.connect(tight, kernel.id);
  const pending = await withStoppedKernel(pid, async () => {
    for (let i = 0; i < 12 && flooder.isOpen; i++) {
      flooder.request('shell', 'execute_request', executeContent(bigCell(i, 3 * MB)));
      await sleep(100);
    }
    const closed = await flooder.waitForClose(30000);
    assert.is(closed.code, 4009);
    assert.match(closed.reason, /kernel not reading/);
    assert.match(tight.stderr(), /the kernel is not reading and \d+ bytes from this client wait for it \(limit 2097152, --kernel-buffer-bytes\)/);
    assert.ok(bystander.isOpen, 'the other client was disconnected too');
    return bystander.request('shell', 'execute_request', executeContent("print('still here')"));
  });
  const r = await finishExecute(bystander, pending, 120000);
  assert.is(r.stdout, 'still here\n');
  await waitUntil(() => /session .* left; dropped \d+ of its messages/.test(tight.stderr()), 10000, 'a log line for the dropped messages');
  // The kernel serves new clients as before.
  const again = await KernelClient.connect(tight, kernel.id);
  assert.is((await execute(again, 'print(6 * 7)', 60000)).stdout, '42\n');
  await again.closeAndWait();
  await bystander.closeAndWait();
});

shutdownTest(test, () => gw, 'default bound');
shutdownTest(test, () => tight, 'tight bound');
test.run();
