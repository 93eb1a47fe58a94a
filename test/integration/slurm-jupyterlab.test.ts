/**
 * JupyterLab's client library (@jupyterlab/services) drives a kernel that runs as a Slurm job,
 * unchanged: start, execute, input(), interrupt, restart (same job), shutdown (job COMPLETED).
 * Needs .ci/slurm-start.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelAPI, KernelManager, type Kernel, type KernelMessage, type ServerConnection } from '@jupyterlab/services';
import { shutdownTest, waitUntil, withTimeout, type Gateway } from '../helpers/gateway.ts';
import { jupyterLabSuite, labExecute } from '../helpers/jupyterlab.ts';
import { jobRecord, requireSlurm, slurmModel, waitJobEnded, writeSlurmSpec } from '../helpers/slurm.ts';

const test = suite('@jupyterlab/services client with a Slurm kernel');
let gw: Gateway;
let settings: ServerConnection.ISettings;
let manager: KernelManager | undefined;
let kernel: Kernel.IKernelConnection | undefined;
let job = '';

jupyterLabSuite(
  test,
  (g, s) => {
    requireSlurm();
    gw = g;
    settings = s;
    writeSlurmSpec(gw, 'slurm-py', {});
  },
  () => [kernel, manager],
);

function k(): Kernel.IKernelConnection {
  if (!kernel) throw new Error('no kernel (startNew failed)');
  return kernel;
}

const run = (code: string, onStdin?: (msg: KernelMessage.IStdinMessage, future: Kernel.IShellFuture) => void) => labExecute(k(), code, { onStdin });

test('startNew({name: "slurm-py"}) returns once the job runs the kernel; kernel.info answers', async () => {
  manager = new KernelManager({ serverSettings: settings });
  await withTimeout(manager.ready, 15000, 'KernelManager.ready');
  kernel = await withTimeout(manager.startNew({ name: 'slurm-py' }), 60000, 'startNew');
  const info = await withTimeout(k().info, 30000, 'kernel.info');
  assert.is(info.language_info.name, 'python');
  const model = await KernelAPI.getKernelModel(k().id, settings);
  job = slurmModel(model as { provisioner?: Record<string, unknown> }).job_id;
  assert.is(jobRecord(job)?.JobState, 'RUNNING');
});

test('execute: stdout and the result come back', async () => {
  const r = await run("print('hello from the job')\n6*7");
  assert.is(r.reply.content.status, 'ok');
  assert.is(r.stdout, 'hello from the job\n');
  assert.is(r.result, '42');
});

test('input(): onStdin gets the prompt, sendInputReply answers it', async () => {
  let prompt = '';
  const r = await run("print('got', input('name? '))", (msg, future) => {
    if (msg.header.msg_type !== 'input_request') return;
    prompt = (msg.content as KernelMessage.IInputRequestMsg['content']).prompt;
    future.sendInputReply({ status: 'ok', value: 'Ada' }, msg.header as KernelMessage.IInputReplyMsg['parent_header']);
  });
  assert.is(prompt, 'name? ');
  assert.is(r.stdout, 'got Ada\n');
});

test('kernel.interrupt() stops time.sleep(30) with KeyboardInterrupt', async () => {
  const iopub: KernelMessage.IIOPubMessage[] = [];
  const future = k().requestExecute({ code: "import time; print('sleeping', flush=True); time.sleep(30)", stop_on_error: false });
  future.onIOPub = (msg) => {
    iopub.push(msg);
  };
  await waitUntil(() => iopub.some((m) => m.header.msg_type === 'stream'), 15000, 'the sleep to start');
  await new Promise((r) => setTimeout(r, 200));
  await withTimeout(k().interrupt(), 15000, 'kernel.interrupt()');
  const reply = (await withTimeout(future.done, 10000, 'the reply after the interrupt')) as KernelMessage.IExecuteReplyMsg;
  assert.is((reply.content as KernelMessage.IReplyErrorContent).ename, 'KeyboardInterrupt');
});

test('kernel.restart(): same job, variables gone, the kernel works', async () => {
  assert.is((await run('x = 1')).reply.content.status, 'ok');
  await withTimeout(k().restart(), 60000, 'kernel.restart()');
  await waitUntil(() => k().connectionStatus === 'connected', 30000, 'connected after the restart');
  const r = await run('x');
  assert.is((r.reply.content as KernelMessage.IReplyErrorContent).ename, 'NameError');
  assert.is((await run('1+1')).result, '2');
  const model = await KernelAPI.getKernelModel(k().id, settings);
  assert.is(slurmModel(model as { provisioner?: Record<string, unknown> }).job_id, job);
});

test('kernel.shutdown(): the model is gone and the job ends COMPLETED', async () => {
  const id = k().id;
  await withTimeout(k().shutdown(), 30000, 'kernel.shutdown()');
  assert.is(await KernelAPI.getKernelModel(id, settings), undefined);
  assert.is((await waitJobEnded(job, 15000)).JobState, 'COMPLETED');
  kernel!.dispose();
  kernel = undefined;
});

shutdownTest(test, () => gw);
test.run();
