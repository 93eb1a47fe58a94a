/**
 * The real JupyterLab client library (@jupyterlab/services) against the gateway: kernelspecs,
 * start, kernel_info, execute, stdin, comms with buffers, interrupt, restart, shutdown.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelAPI, KernelManager, KernelSpecManager, ServerConnection, type Kernel, type KernelMessage } from '@jupyterlab/services';
import {
  kernelPid,
  processGone,
  shutdownTest,
  TEST_SPEC_NAME,
  waitUntil,
  withTimeout,
  type Gateway,
} from '../helpers/gateway.ts';
import { bytesEqual, ECHO_COMM_TARGET_CODE, testBytes } from '../helpers/kernel-ws.ts';
import { jupyterLabSuite, labExecute, stopPollsAndDispose } from '../helpers/jupyterlab.ts';

const test = suite('@jupyterlab/services client');
let gw: Gateway;
let settings: ServerConnection.ISettings;
let manager: KernelManager | undefined;
let specManager: KernelSpecManager | undefined;
let kernel: Kernel.IKernelConnection | undefined;

jupyterLabSuite(
  test,
  (g, s) => {
    gw = g;
    settings = s;
  },
  () => [kernel, manager, specManager],
);

function k(): Kernel.IKernelConnection {
  if (!kernel) throw new Error('no kernel (startNew failed)');
  return kernel;
}

/** stop_on_error is false there: after an error ipykernel aborts execute requests arriving in the next instants. */
const run = (code: string, timeoutMs = 30000, onStdin?: (msg: KernelMessage.IStdinMessage, future: Kernel.IShellFuture) => void) =>
  labExecute(k(), code, { timeoutMs, onStdin });

test('KernelSpecManager lists python3 (default) and the test kernelspec', async () => {
  specManager = new KernelSpecManager({ serverSettings: settings });
  await withTimeout(specManager.ready, 15000, 'KernelSpecManager.ready');
  await withTimeout(specManager.refreshSpecs(), 15000, 'refreshSpecs');
  const specs = specManager.specs;
  assert.ok(specs, 'no specs');
  assert.is(specs!.default, 'python3');
  assert.is(specs!.kernelspecs.python3?.display_name, 'Python 3 (ipykernel)');
  assert.is(specs!.kernelspecs.python3?.language, 'python');
  assert.ok(specs!.kernelspecs[TEST_SPEC_NAME], `JupyterLab dropped or did not get ${TEST_SPEC_NAME}: ${Object.keys(specs!.kernelspecs)}`);
});

test('KernelManager.startNew({name: "python3"}) connects; kernel.info and requestKernelInfo answer', async () => {
  manager = new KernelManager({ serverSettings: settings });
  await withTimeout(manager.ready, 15000, 'KernelManager.ready');
  kernel = await withTimeout(manager.startNew({ name: 'python3' }), 60000, 'startNew');
  assert.is(kernel.name, 'python3');
  const info = await withTimeout(kernel.info, 30000, 'kernel.info');
  assert.is(info.language_info.name, 'python');
  assert.is(info.status, 'ok');
  const reply = await withTimeout(kernel.requestKernelInfo(), 30000, 'requestKernelInfo');
  assert.is(reply?.content.status, 'ok');
  await waitUntil(() => kernel!.connectionStatus === 'connected', 10000, 'connectionStatus connected');
  // JupyterLab offers v1.kernel.websocket.jupyter.org; the gateway should have selected it.
  assert.is((kernel as unknown as { _selectedProtocol: string })._selectedProtocol, 'v1.kernel.websocket.jupyter.org');
  const running = [...manager.running()].map((m) => m.id);
  await waitUntil(async () => {
    await manager!.refreshRunning();
    return [...manager!.running()].some((m) => m.id === kernel!.id);
  }, 10000, 'the kernel in manager.running()');
  assert.ok(Array.isArray(running));
});

test('requestExecute: stream and execute_result via onIOPub; future.done resolves with ok', async () => {
  const r = await run("print('hello jl')\n1+1");
  assert.is(r.reply.content.status, 'ok');
  assert.is(r.stdout, 'hello jl\n');
  const result = r.iopub.find((m) => m.header.msg_type === 'execute_result');
  assert.ok(result, 'no execute_result');
  assert.is((result!.content as KernelMessage.IExecuteResultMsg['content']).data['text/plain'], '2');
  assert.ok(r.iopub.some((m) => m.header.msg_type === 'status'), 'no status messages');
});

test('errors arrive as error messages and an error execute_reply', async () => {
  const r = await run('1/0');
  assert.is(r.reply.content.status, 'error');
  const err = r.iopub.find((m) => m.header.msg_type === 'error');
  assert.is((err?.content as KernelMessage.IErrorMsg['content'] | undefined)?.ename, 'ZeroDivisionError');
});

test('stdin: onStdin gets input_request; sendInputReply answers it', async () => {
  let prompt = '';
  const r = await run("print('got', input('name? '))", 30000, (msg, future) => {
    if (msg.header.msg_type === 'input_request') {
      prompt = (msg.content as KernelMessage.IInputRequestMsg['content']).prompt;
      future.sendInputReply({ status: 'ok', value: 'Grace' }, msg.header as KernelMessage.IInputReplyMsg['parent_header']);
    }
  });
  assert.is(prompt, 'name? ');
  assert.is(r.reply.content.status, 'ok');
  assert.is(r.stdout, 'got Grace\n');
});

test('comms with binary buffers round-trip through JupyterLab\'s codec', async () => {
  const reg = await run(ECHO_COMM_TARGET_CODE);
  assert.is(reg.reply.content.status, 'ok');
  const received: KernelMessage.ICommMsgMsg[] = [];
  const comm = k().createComm('echo');
  comm.onMsg = (msg) => {
    received.push(msg);
  };
  const b1 = testBytes(257, 4);
  const b1ab = b1.buffer.slice(0) as ArrayBuffer;
  await withTimeout(comm.open({}, {}, [b1ab]).done, 15000, 'comm.open done');
  await waitUntil(() => received.length >= 1, 15000, 'the opened echo');
  const first = received[0];
  assert.equal(first.content.data, { opened: true });
  const buf0 = first.buffers?.[0] as DataView | ArrayBuffer | undefined;
  assert.ok(buf0, 'no buffer on the open echo');
  const bytes0 = buf0 instanceof DataView ? new Uint8Array(buf0.buffer, buf0.byteOffset, buf0.byteLength) : new Uint8Array(buf0 as ArrayBuffer);
  assert.ok(bytesEqual(bytes0, b1), 'buffer differs');

  const b2 = testBytes(5000, 6);
  await withTimeout(comm.send({ again: 1 }, {}, [b2.buffer.slice(0) as ArrayBuffer], false).done, 15000, 'comm.send done');
  await waitUntil(() => received.length >= 2, 15000, 'the echoed comm_msg');
  const second = received[1];
  assert.equal(second.content.data, { again: 1 });
  const buf1 = second.buffers?.[0] as DataView | ArrayBuffer;
  const bytes1 = buf1 instanceof DataView ? new Uint8Array(buf1.buffer, buf1.byteOffset, buf1.byteLength) : new Uint8Array(buf1);
  assert.ok(bytesEqual(bytes1, b2), 'echoed buffer differs');
  comm.close();
});

test('kernel.interrupt() during time.sleep(30) → KeyboardInterrupt reply within seconds', async () => {
  const iopub: KernelMessage.IIOPubMessage[] = [];
  // Interrupt only once user code runs: ipykernel 6.17 loses the execute_reply when SIGINT lands
  // between execute_input and the start of user code.
  const future = k().requestExecute({ code: "import time; print('sleeping', flush=True); time.sleep(30)", stop_on_error: false });
  future.onIOPub = (msg) => {
    iopub.push(msg);
  };
  await waitUntil(() => iopub.some((m) => m.header.msg_type === 'stream'), 15000, 'the sleep to start');
  await new Promise((r) => setTimeout(r, 100));
  const t0 = Date.now();
  await withTimeout(k().interrupt(), 15000, 'kernel.interrupt()');
  const reply = (await withTimeout(future.done, 10000, 'reply after interrupt')) as KernelMessage.IExecuteReplyMsg;
  assert.ok(Date.now() - t0 < 10000);
  assert.is(reply.content.status, 'error');
  assert.is((reply.content as KernelMessage.IReplyErrorContent).ename, 'KeyboardInterrupt');
});

test('kernel.restart(): the kernel works afterwards and the old variable is gone', async () => {
  const set = await run('x = 1');
  assert.is(set.reply.content.status, 'ok');
  const pidBefore = await kernelPid(gw, k().id);
  await withTimeout(k().restart(), 60000, 'kernel.restart()');
  await waitUntil(() => processGone(pidBefore), 10000, 'the old kernel process to exit');
  await waitUntil(() => k().connectionStatus === 'connected', 30000, 'reconnected after restart');
  const r = await run('x', 60000);
  assert.is(r.reply.content.status, 'error');
  assert.is((r.reply.content as KernelMessage.IReplyErrorContent).ename, 'NameError');
  const ok = await run('1+1');
  assert.is(ok.reply.content.status, 'ok');
});

test('kernel.shutdown() deletes the kernel: model gone, process exited, connection file removed', async () => {
  const id = k().id;
  const pid = await kernelPid(gw, id);
  await withTimeout(k().shutdown(), 30000, 'kernel.shutdown()');
  const model = await withTimeout(KernelAPI.getKernelModel(id, settings), 10000, 'KernelAPI.getKernelModel');
  assert.is(model, undefined, 'the model still exists after shutdown');
  await waitUntil(() => processGone(pid), 5000, 'the kernel process to exit');
  assert.not.ok(existsSync(join(gw.runtimeDir, `kernel-${id}.json`)), 'connection file still present');
  kernel!.dispose();
  kernel = undefined;
  await withTimeout(manager!.refreshRunning(), 10000, 'refreshRunning');
  assert.not.ok([...manager!.running()].some((m) => m.id === id), 'the manager still lists the kernel');
});

test('dispose the managers (no lingering polls)', async () => {
  await stopPollsAndDispose(manager);
  await stopPollsAndDispose(specManager);
  assert.ok(manager?.isDisposed);
  assert.ok(specManager?.isDisposed);
});

shutdownTest(test, () => gw);
test.run();
