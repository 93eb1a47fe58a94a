/**
 * The built-in JavaScript kernel driven by JupyterLab's client library, exactly as a Python kernel is:
 * kernelspec listing, start, execute (stream, result, display, error), stdin, interrupt, restart, shutdown.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelAPI, KernelManager, KernelSpecManager, type Kernel, type KernelMessage, type ServerConnection } from '@jupyterlab/services';
import { kernelPid, processGone, shutdownTest, waitUntil, withTimeout, type Gateway } from '../helpers/gateway.ts';
import { jupyterLabSuite, labExecute } from '../helpers/jupyterlab.ts';

const test = suite('@jupyterlab/services with the built-in JavaScript kernel');
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

const run = (code: string, onStdin?: (msg: KernelMessage.IStdinMessage, future: Kernel.IShellFuture) => void) => labExecute(k(), code, { onStdin });

test('KernelSpecManager lists the built-in javascript kernel with its logo', async () => {
  specManager = new KernelSpecManager({ serverSettings: settings });
  await withTimeout(specManager.ready, 15000, 'KernelSpecManager.ready');
  const spec = specManager.specs?.kernelspecs.javascript;
  assert.ok(spec, `no javascript kernelspec: ${Object.keys(specManager.specs?.kernelspecs ?? {})}`);
  assert.is(spec!.language, 'javascript');
  assert.ok(spec!.resources['logo-svg'], 'no logo');
  const logo = await fetch(new URL(spec!.resources['logo-svg'], gw.url), { headers: { Authorization: `token ${gw.token}` } });
  assert.is(logo.status, 200);
  assert.match(await logo.text(), /<svg/);
  // python3 is installed here, so it stays the default.
  assert.is(specManager.specs?.default, 'python3');
});

test('startNew({name: "javascript"}) connects and kernel_info says javascript', async () => {
  manager = new KernelManager({ serverSettings: settings });
  await withTimeout(manager.ready, 15000, 'KernelManager.ready');
  kernel = await withTimeout(manager.startNew({ name: 'javascript' }), 60000, 'startNew');
  const info = await withTimeout(k().info, 30000, 'kernel.info');
  assert.is(info.language_info.name, 'javascript');
  assert.is(info.status, 'ok');
});

test('execute: console.log as stream, the last expression as execute_result, state across cells', async () => {
  const first = await run("let greeting = 'hello'; console.log(greeting, 'jl'); console.error('warned'); 6 * 7");
  assert.is(first.reply.content.status, 'ok');
  assert.is(first.stdout, 'hello jl\n');
  assert.is(first.stderr, 'warned\n');
  const result = first.iopub.find((m) => m.header.msg_type === 'execute_result');
  assert.is((result?.content as KernelMessage.IExecuteResultMsg['content'] | undefined)?.data['text/plain'], '42');
  const second = await run('greeting.toUpperCase()');
  const again = second.iopub.find((m) => m.header.msg_type === 'execute_result');
  assert.is((again?.content as KernelMessage.IExecuteResultMsg['content'] | undefined)?.data['text/plain'], "'HELLO'");
});

test('display.html gives display_data; a thrown error gives an error message and reply', async () => {
  const shown = await run("display.html('<b>bold</b>')");
  const data = shown.iopub.find((m) => m.header.msg_type === 'display_data');
  assert.is((data?.content as KernelMessage.IDisplayDataMsg['content'] | undefined)?.data['text/html'], '<b>bold</b>');
  const failed = await run("throw new Error('boom')");
  assert.is(failed.reply.content.status, 'error');
  const error = failed.iopub.find((m) => m.header.msg_type === 'error')?.content as KernelMessage.IErrorMsg['content'] | undefined;
  assert.is(error?.ename, 'Error');
  assert.is(error?.evalue, 'boom');
  assert.ok(error!.traceback.length > 0, 'no traceback');
});

test('stdin: await input() reaches onStdin; sendInputReply answers it', async () => {
  let prompt = '';
  const r = await run("const who = await input('who? '); console.log('hi', who)", (msg, future) => {
    if (msg.header.msg_type !== 'input_request') return;
    prompt = (msg.content as KernelMessage.IInputRequestMsg['content']).prompt;
    future.sendInputReply({ status: 'ok', value: 'Ada' }, msg.header as KernelMessage.IInputReplyMsg['parent_header']);
  });
  assert.is(prompt, 'who? ');
  assert.is(r.reply.content.status, 'ok');
  assert.is(r.stdout, 'hi Ada\n');
});

test('kernel.interrupt() stops while(true){} and the kernel works afterwards', async () => {
  const iopub: KernelMessage.IIOPubMessage[] = [];
  const future = k().requestExecute({ code: "console.log('spinning'); while (true) {}", stop_on_error: false });
  future.onIOPub = (msg) => void iopub.push(msg);
  await waitUntil(() => iopub.some((m) => m.header.msg_type === 'stream'), 15000, 'the loop to start');
  await withTimeout(k().interrupt(), 15000, 'kernel.interrupt()');
  const reply = (await withTimeout(future.done, 15000, 'reply after interrupt')) as KernelMessage.IExecuteReplyMsg;
  assert.is(reply.content.status, 'error');
  const after = await run('1 + 1');
  assert.is(after.reply.content.status, 'ok');
});

test('kernel.restart() clears the state; shutdown() removes the kernel and its process', async () => {
  await run('var kept = 1');
  const pidBefore = await kernelPid(gw, k().id);
  await withTimeout(k().restart(), 60000, 'kernel.restart()');
  await waitUntil(() => processGone(pidBefore), 10000, 'the old kernel process to exit');
  await waitUntil(() => k().connectionStatus === 'connected', 30000, 'reconnected after restart');
  const r = await run('typeof kept');
  const result = r.iopub.find((m) => m.header.msg_type === 'execute_result');
  assert.is((result?.content as KernelMessage.IExecuteResultMsg['content'] | undefined)?.data['text/plain'], "'undefined'");
  const id = k().id;
  const pid = await kernelPid(gw, id);
  await withTimeout(k().shutdown(), 30000, 'kernel.shutdown()');
  assert.is(await withTimeout(KernelAPI.getKernelModel(id, settings), 10000, 'getKernelModel'), undefined);
  await waitUntil(() => processGone(pid), 10000, 'the kernel process to exit');
  k().dispose();
  kernel = undefined;
});

shutdownTest(test, () => gw);
test.run();
