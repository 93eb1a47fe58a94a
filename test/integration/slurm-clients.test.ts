/**
 * Slurm kernels with the clients around them: Jupyter Server in gateway mode (driven by
 * @jupyterlab/services) starts a Slurm kernel, runs a cell in it and shuts it down, and the
 * KERNEL_SLURM_* variables of its own environment reach sbatch; a client that reconnects with its
 * session id gets what the kernel published while it was away; a local kernel and a Slurm kernel run
 * at the same time on one gateway. Needs .ci/slurm-start.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelManager, type Kernel, type KernelMessage, type ServerConnection } from '@jupyterlab/services';
import { api, deleteKernel, guardSuite, kernelPid, startGateway, startKernel, waitUntil, withTimeout, type Gateway } from '../helpers/gateway.ts';
import { kernelInfoThroughServer, startJupyterServer, type JupyterServer } from '../helpers/jupyter-server.ts';
import { jupyterLabSettings, quietJupyterLabConsole, restoreConsole, stopPollsAndDispose } from '../helpers/jupyterlab.ts';
import { execute, executeContent, isReplyTo, isStatus, KernelClient, waitForKernelInfo, type ConnectOptions } from '../helpers/kernel-ws.ts';
import { jobProcesses, jobRecord, requireSlurm, slurmModel, TRANSPORTS, waitJobEnded, writeSlurmSpec, type Transport } from '../helpers/slurm.ts';

const test = suite('slurm: Jupyter Server in gateway mode, reconnecting clients, local and Slurm kernels side by side');
let gw: Gateway;
let js: JupyterServer | undefined;
let settings: ServerConnection.ISettings;
let manager: KernelManager | undefined;
let kernel: Kernel.IKernelConnection | undefined;
const open: KernelClient[] = [];

/** What Jupyter Server has in its own environment and must pass on in its start requests. */
const SERVER_ENV = { KERNEL_SLURM_TIME: '17', KERNEL_SLURM_MEM: '300M' };

guardSuite(
  test,
  async () => {
    requireSlurm();
    quietJupyterLabConsole();
    gw = await startGateway();
    for (const transport of TRANSPORTS) writeSlurmSpec(gw, `slurm-py-${transport}`, { transport });
    js = await startJupyterServer(gw, { env: SERVER_ENV });
    settings = jupyterLabSettings({ url: js.url, wsUrl: js.url.replace(/^http/, 'ws'), token: js.token });
  },
  async () => {
    try {
      for (const c of open) await c.closeAndWait();
      kernel?.dispose();
      await stopPollsAndDispose(manager);
    } finally {
      await js?.stop();
      restoreConsole();
    }
  },
);

/** Both servers' logs, for a failure in the gateway-mode tests. */
function logs(): string {
  return `\n--- Jupyter Server log (tail) ---\n${js?.log().slice(-3000) ?? ''}\n--- our gateway log (tail) ---\n${gw?.stderr().slice(-3000) ?? ''}`;
}

function k(): Kernel.IKernelConnection {
  if (!kernel) throw new Error('no kernel (startNew through Jupyter Server failed)');
  return kernel;
}

let job = '';

test('Jupyter Server in gateway mode: startNew of a Slurm kernelspec runs the kernel as a job, with the KERNEL_SLURM_* of its own environment', async () => {
  manager = new KernelManager({ serverSettings: settings });
  await withTimeout(manager.ready, 20000, 'KernelManager.ready (through Jupyter Server)');
  kernel = await withTimeout(manager.startNew({ name: 'slurm-py-tunnel' }), 60000, `startNew({name: "slurm-py-tunnel"}) through Jupyter Server${logs()}`);
  const ours = await api(gw, 'GET', `api/kernels/${k().id}`);
  assert.is(ours.status, 200, `the kernel Jupyter Server started is not on our gateway: ${ours.text}`);
  job = slurmModel(ours.body).job_id;
  const record = jobRecord(job);
  assert.is(record?.JobState, 'RUNNING', `job ${job}: ${JSON.stringify(record)}`);
  // Jupyter Server sends the KERNEL_* variables of its environment in the start request.
  assert.is(record?.TimeLimit, '00:17:00', `KERNEL_SLURM_TIME=${SERVER_ENV.KERNEL_SLURM_TIME} in Jupyter Server's environment did not reach sbatch`);
  assert.is(record?.MinMemoryNode, '300M', `KERNEL_SLURM_MEM=${SERVER_ENV.KERNEL_SLURM_MEM} in Jupyter Server's environment did not reach sbatch`);
  await waitUntil(() => k().connectionStatus === 'connected', 30000, `the kernel WebSocket through Jupyter Server to connect (status ${k().connectionStatus})`);
  const info = await kernelInfoThroughServer(k(), 30000);
  assert.is(info.language_info.name, 'python');
});

test('a cell executed through Jupyter Server runs in the job; its output and result come back', async () => {
  const iopub: KernelMessage.IIOPubMessage[] = [];
  const future = k().requestExecute({ code: "import os\nprint('hello from job', os.environ.get('SLURM_JOB_ID'))\n6*7" });
  future.onIOPub = (msg) => void iopub.push(msg);
  const reply = (await withTimeout(future.done, 30000, `execute_reply and idle through Jupyter Server${logs()}`)) as KernelMessage.IExecuteReplyMsg;
  assert.is(reply.content.status, 'ok', JSON.stringify(reply.content));
  const of = (type: string) => iopub.filter((m) => m.header.msg_type === type).map((m) => m.content as Record<string, any>);
  assert.is(of('stream').map((c) => c.text).join(''), `hello from job ${job}\n`);
  assert.is(of('execute_result').map((c) => c.data['text/plain']).join(''), '42');
});

test('shutdown through Jupyter Server: our gateway no longer lists the kernel and its job ends COMPLETED', async () => {
  const id = k().id;
  await withTimeout(k().shutdown(), 30000, `kernel.shutdown() through Jupyter Server${logs()}`);
  assert.is((await api(gw, 'GET', `api/kernels/${id}`)).status, 404, 'our gateway still has the kernel');
  const record = await waitJobEnded(job, 15000);
  assert.is(record.JobState, 'COMPLETED', `job ${job}: ${JSON.stringify(record)}`);
  assert.equal(jobProcesses(job), [], 'processes of the job are left');
  kernel!.dispose();
  kernel = undefined;
});

async function connect(kernelId: string, opts: ConnectOptions): Promise<KernelClient> {
  const c = await KernelClient.connect(gw, kernelId, opts);
  open.push(c);
  return c;
}

/** Shuts a Slurm kernel down and checks that its job ends COMPLETED. */
async function shutDown(kernelId: string, jobId: string): Promise<void> {
  const res = await deleteKernel(gw, kernelId);
  assert.is(res.status, 204, res.text);
  assert.is((await waitJobEnded(jobId, 15000)).JobState, 'COMPLETED', `job ${jobId}`);
}

test('reconnect with the same session_id to a Slurm kernel: what it published while the client was away is replayed, none missing or twice', async () => {
  await Promise.all(
    TRANSPORTS.map(async (transport: Transport) => {
      const started = await startKernel(gw, `slurm-py-${transport}`);
      const jobId = slurmModel(started).job_id;
      const opts: ConnectOptions = { protocol: transport === 'tunnel' ? 'v1' : 'legacy', sessionId: `reconnect-${transport}-${randomUUID()}` };
      const a = await connect(started.id, opts);
      await waitForKernelInfo(a);
      const req = a.request('shell', 'execute_request', executeContent('import time\nfor i in range(8): print(i, flush=True); time.sleep(0.3)'));
      await a.waitFor((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === req.header.msg_id, 15000, `the first line of output (${transport})`);
      await a.closeAndWait();
      // The cell goes on with no client; the model's state follows the kernel's status messages.
      await waitUntil(
        async () => (await api(gw, 'GET', `api/kernels/${started.id}`)).body?.execution_state === 'idle',
        20000,
        `the cell to finish while its client is away (${transport})`,
      );
      const b = await connect(started.id, opts);
      await b.waitFor((m) => isReplyTo(m, req, 'execute_reply'), 15000, `execute_reply replayed after the reconnect (${transport})`);
      await b.waitFor((m) => isStatus(m, req, 'idle'), 15000, `idle replayed after the reconnect (${transport})`);
      const streamText = (c: KernelClient) =>
        c.messages.filter((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === req.header.msg_id).map((m) => m.content.text as string).join('');
      const lines = (streamText(a) + streamText(b)).split('\n').filter((l) => l !== '');
      const got = `first connection got ${JSON.stringify(streamText(a))}, second got ${JSON.stringify(streamText(b))} (${transport})`;
      for (let n = 0; n < 8; n++) assert.is(lines.filter((l) => l === String(n)).length, 1, `line ${n} must arrive exactly once: ${got}`);
      assert.ok(streamText(b).length > 0, `nothing was replayed to the reconnected client: ${got}`);
      // The log line comes over the gateway's stderr, which may arrive after the replayed messages.
      const replayed = new RegExp(`kernel ${started.id}: replaying \\d+ messages to session ${opts.sessionId}`);
      await waitUntil(() => replayed.test(gw.stderr()), 5000, `the gateway to log the replay (${transport})`);
      // The reconnected client goes on as before.
      const r = await execute(b, 'print(40 + 2)', 20000);
      assert.is(r.stdout, '42\n');
      a.assertClean();
      b.assertClean();
      await b.closeAndWait();
      await shutDown(started.id, jobId);
    }),
  );
});

test('a local python3 kernel and a Slurm kernel on one gateway execute at the same time; only the Slurm one has a job', async () => {
  const [local, slurm] = await Promise.all([startKernel(gw, 'python3'), startKernel(gw, 'slurm-py-tunnel')]);
  const jobId = slurmModel(slurm).job_id;
  assert.is(local.provisioner, undefined, `the local kernel's model names a provisioner: ${JSON.stringify(local)}`);
  const listed = (await api(gw, 'GET', 'api/kernels')).body as { id: string; provisioner?: { job_id?: string } }[];
  assert.is(listed.find((m) => m.id === local.id)?.provisioner, undefined, 'GET /api/kernels shows a job for the local kernel');
  assert.is(listed.find((m) => m.id === slurm.id)?.provisioner?.job_id, jobId, 'GET /api/kernels does not show the Slurm kernel\'s job');
  const [lc, sc] = await Promise.all([connect(local.id, {}), connect(slurm.id, {})]);
  // Each cell leaves a mark and waits (up to 30 s) for the other's: both print True only if they ran at once.
  const dir = mkdtempSync(join(tmpdir(), 'kg-it-side-by-side-'));
  try {
    const cell = (mine: string, other: string) =>
      [
        'import os, time',
        `open(${JSON.stringify(join(dir, mine))}, 'w').close()`,
        'deadline = time.time() + 30',
        `while not os.path.exists(${JSON.stringify(join(dir, other))}) and time.time() < deadline: time.sleep(0.05)`,
        `print(os.path.exists(${JSON.stringify(join(dir, other))}), os.environ.get('SLURM_JOB_ID'))`,
      ].join('\n');
    const [l, s] = await Promise.all([execute(lc, cell('local', 'slurm'), 45000), execute(sc, cell('slurm', 'local'), 45000)]);
    assert.is(l.stdout, 'True None\n', 'the local kernel: saw the Slurm kernel\'s mark while running, and no job');
    assert.is(s.stdout, `True ${jobId}\n`, 'the Slurm kernel: saw the local kernel\'s mark while running, in its job');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // The local kernel is the gateway's own child, not a process of the job.
  const pid = await kernelPid(gw, local.id);
  assert.not.ok(jobProcesses(jobId).includes(pid), 'the local kernel runs inside the Slurm job');
  await lc.closeAndWait();
  await sc.closeAndWait();
  assert.is((await deleteKernel(gw, local.id)).status, 204);
  await shutDown(slurm.id, jobId);
});

test.run();
