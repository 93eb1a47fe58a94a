/**
 * Kernels as real Slurm jobs (the slurm-provisioner), in both transports side by side: start and
 * execute (ipykernel and the built-in JavaScript kernel), comms with large binary buffers and input(),
 * interrupt in signal and message mode, restart in the same job, a crash restarted in the same job,
 * shutdown ending the job COMPLETED, a job cancelled from outside, a job that reaches its time limit,
 * and the gateway's SIGTERM ending every job. Needs .ci/slurm-start.
 */
import { randomUUID } from 'node:crypto';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { api, checkKernelModel, deleteKernel, guardSuite, sleep, startGateway, startKernel, stopAndCheck, waitUntil, type Gateway } from '../helpers/gateway.ts';
import {
  bytesEqual,
  ECHO_COMM_TARGET_CODE,
  execute,
  executeContent,
  finishExecute,
  isReplyTo,
  isStatus,
  KernelClient,
  testBytes,
  waitForKernelInfo,
} from '../helpers/kernel-ws.ts';
import {
  JAVASCRIPT_ARGV,
  jobProcesses,
  jobQueued,
  jobRecord,
  processArgv,
  processEnvironment,
  requireSlurm,
  slurmModel,
  TRANSPORTS,
  waitJobEnded,
  writeSlurmSpec,
  type Transport,
} from '../helpers/slurm.ts';

const test = suite('slurm: kernels as Slurm jobs, tunnel and direct');
let gw: Gateway;
const open: KernelClient[] = [];

guardSuite(
  test,
  async () => {
    requireSlurm();
    gw = await startGateway({ env: { KG_IT_GATEWAY_ONLY: 'not-for-the-job' } });
    for (const transport of TRANSPORTS) {
      writeSlurmSpec(gw, `slurm-py-${transport}`, { transport });
      writeSlurmSpec(gw, `slurm-msg-${transport}`, { transport, interruptMode: 'message' });
      writeSlurmSpec(gw, `slurm-js-${transport}`, { transport, argv: JAVASCRIPT_ARGV, language: 'javascript' });
    }
  },
  async () => {
    for (const c of open) await c.closeAndWait();
  },
);

/** Runs `body` for both transports at once (each job takes seconds to start). */
const both = <T>(body: (transport: Transport) => Promise<T>): Promise<T[]> => Promise.all(TRANSPORTS.map(body));

/** Tunnel kernels are driven over the v1 protocol, direct ones over the legacy JSON one: both protocols are covered. */
async function connect(kernelId: string, transport: Transport): Promise<KernelClient> {
  const c = await KernelClient.connect(gw, kernelId, { protocol: transport === 'tunnel' ? 'v1' : 'legacy' });
  open.push(c);
  return c;
}

async function model(kernelId: string) {
  const res = await api(gw, 'GET', `api/kernels/${kernelId}`);
  assert.is(res.status, 200, res.text);
  return checkKernelModel(res.body, 'model');
}

async function value(c: KernelClient, expr: string): Promise<string> {
  const r = await execute(c, expr, 30000, false);
  const result = r.iopub.find((m) => m.header.msg_type === 'execute_result');
  if (!result) throw new Error(`no result for ${expr}: ${JSON.stringify(r.reply.content).slice(0, 300)}`);
  return result.content.data['text/plain'] as string;
}

interface Subject {
  id: string;
  job: string;
  client: KernelClient;
}
const py = {} as Record<Transport, Subject>;

test('ipykernel in a Slurm job: POST answers once it runs; the model names the job and its node; execute works', async () => {
  await both(async (transport) => {
    const started = await startKernel(gw, `slurm-py-${transport}`);
    const job = slurmModel(started);
    assert.is(job.state, 'RUNNING', JSON.stringify(job));
    assert.ok(job.node, `no node in ${JSON.stringify(job)}`);
    assert.is(jobRecord(job.job_id)?.JobState, 'RUNNING');
    assert.is(jobRecord(job.job_id)?.JobName, `kg-${started.id.slice(0, 8)}`);
    const client = await connect(started.id, transport);
    py[transport] = { id: started.id, job: job.job_id, client };
    assert.is(await value(client, '6*7'), '42');
    // The kernel runs in the job: it sees the job's variables and the launcher as its parent.
    const seen = await value(client, "import os; (os.environ.get('SLURM_JOB_ID'), os.getppid() == int(os.environ['JPY_PARENT_PID']), 'KG_LAUNCH_SECRET' in os.environ)");
    assert.is(seen, `('${job.job_id}', True, False)`, transport);
  });
});

test('the job gets nothing of the gateway\'s environment but PATH, HOME and USER; the secret is in the launcher\'s only', async () => {
  for (const transport of TRANSPORTS) {
    const pids = jobProcesses(py[transport].job);
    const launcher = pids.find((pid) => processArgv(pid).at(-1) === 'launch');
    assert.ok(launcher, `no launcher among the job's processes ${pids.map((p) => processArgv(p).join(' ')).join(' | ')}`);
    const env = processEnvironment(launcher!);
    assert.not.ok('KG_IT_GATEWAY_ONLY' in env, 'a gateway variable reached the job');
    assert.match(env.KG_LAUNCH_SECRET ?? '', /^[0-9a-f]{64}$/);
    assert.not.ok(processArgv(launcher!).some((arg) => arg.includes(env.KG_LAUNCH_SECRET)), 'the secret is on a command line');
    // Slurm adds its own SLURM_* and a few more, the shell PWD; nothing else may be there.
    const foreign = Object.keys(env).filter((name) => !/^(PATH|HOME|USER|PWD|KG_LAUNCH_\w+|SLURMD?_\w+|ENVIRONMENT|HOSTNAME|TMPDIR)$/.test(name));
    assert.equal(foreign, [], 'variables in the job that the gateway did not pass');
    assert.is(env.PATH, process.env.PATH);
  }
});

test('comms with binary buffers (2 MB each way, beyond a stream window) and input() work through the job', async () => {
  await both(async (transport) => {
    const { client } = py[transport];
    assert.is((await execute(client, ECHO_COMM_TARGET_CODE)).reply.content.status, 'ok');
    const commId = randomUUID();
    const big = testBytes(2_000_000, transport.length);
    client.request('shell', 'comm_open', { comm_id: commId, target_name: 'echo', data: {} }, { buffers: [big] });
    const opened = await client.waitFor((m) => m.header.msg_type === 'comm_msg' && m.content.comm_id === commId, 30000, `the comm echo (${transport})`);
    assert.ok(bytesEqual(opened.buffers[0], big), `the 2 MB buffer came back changed (${transport})`);
    const req = client.request('shell', 'execute_request', executeContent("print('got', input('name? '))", true));
    const prompt = await client.waitFor((m) => m.channel === 'stdin' && m.header.msg_type === 'input_request', 15000, 'input_request');
    assert.is(prompt.content.prompt, 'name? ');
    client.request('stdin', 'input_reply', { value: 'Ada' }, { parent: prompt.header });
    const r = await finishExecute(client, req);
    assert.is(r.stdout, 'got Ada\n');
  });
});

test('interrupt in signal mode stops time.sleep in the job: KeyboardInterrupt within seconds', async () => {
  await both(async (transport) => {
    const { id, client } = py[transport];
    const req = client.request('shell', 'execute_request', executeContent("import time; print('sleeping', flush=True); time.sleep(30)", false, false));
    await client.waitFor((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === req.header.msg_id, 15000, 'the sleep to start');
    await sleep(200);
    const t0 = Date.now();
    assert.is((await api(gw, 'POST', `api/kernels/${id}/interrupt`)).status, 204);
    const reply = await client.waitFor((m) => isReplyTo(m, req, 'execute_reply'), 10000, `execute_reply after the interrupt (${transport})`);
    assert.is(reply.content.ename, 'KeyboardInterrupt');
    assert.ok(Date.now() - t0 < 10000);
    await client.waitFor((m) => isStatus(m, req, 'idle'), 10000, 'idle');
  });
});

test('interrupt in message mode (interrupt_request on control) stops time.sleep in the job', async () => {
  await both(async (transport) => {
    const started = await startKernel(gw, `slurm-msg-${transport}`);
    const client = await connect(started.id, transport);
    const req = client.request('shell', 'execute_request', executeContent("import time; print('sleeping', flush=True); time.sleep(30)", false, false));
    await client.waitFor((m) => m.header.msg_type === 'stream' && m.parent_header.msg_id === req.header.msg_id, 15000, 'the sleep to start');
    await sleep(200);
    assert.is((await api(gw, 'POST', `api/kernels/${started.id}/interrupt`)).status, 204);
    const reply = await client.waitFor((m) => isReplyTo(m, req, 'execute_reply'), 10000, `execute_reply after the interrupt (${transport})`);
    assert.is(reply.content.ename, 'KeyboardInterrupt');
    msg[transport] = { id: started.id, job: slurmModel(started).job_id, client };
  });
});
const msg = {} as Record<Transport, Subject>;

test('restart keeps the kernel id and the job, clears variables, and the same connection goes on', async () => {
  await both(async (transport) => {
    const { id, job, client } = py[transport];
    await execute(client, 'x = 1');
    const oldPids = jobProcesses(job).filter((pid) => processArgv(pid).includes('ipykernel_launcher'));
    const res = await api(gw, 'POST', `api/kernels/${id}/restart`, { timeoutMs: 60000 });
    assert.is(res.status, 200, res.text);
    assert.is(slurmModel(res.body).job_id, job, 'a restart must not submit a new job');
    await waitForKernelInfo(client, 30000);
    const r = await execute(client, 'x', 20000, false);
    assert.is(r.reply.content.ename, 'NameError', `x survived the restart (${transport})`);
    assert.ok(oldPids.every((pid) => !jobProcesses(job).includes(pid)), 'the old kernel process is gone');
    assert.is(jobRecord(job)?.JobState, 'RUNNING');
  });
});

test('os._exit(3) in the kernel: clients see restarting, and the kernel is restarted in the same job', async () => {
  await both(async (transport) => {
    const { id, job, client } = py[transport];
    client.request('shell', 'execute_request', executeContent('import os; os._exit(3)', false, false));
    await client.waitFor((m) => isStatus(m, undefined, 'restarting'), 20000, `status restarting (${transport})`);
    await waitForKernelInfo(client, 30000);
    assert.is(await value(client, '1+1'), '2');
    const now = slurmModel(await model(id));
    assert.is(now.job_id, job);
    assert.is(now.state, 'RUNNING');
  });
  assert.match(gw.stderr(), /died \(exit code 3\)/);
});

test('the built-in JavaScript kernel runs as a Slurm job (nothing but this program on the node)', async () => {
  await both(async (transport) => {
    const started = await startKernel(gw, `slurm-js-${transport}`);
    const client = await connect(started.id, transport);
    assert.is(await value(client, '[1, 2, 3].map((n) => n * 2).join()'), "'2,4,6'");
    js[transport] = { id: started.id, job: slurmModel(started).job_id, client };
  });
});
const js = {} as Record<Transport, Subject>;

test('shutdown: shutdown_request, the launcher ends, and the job is COMPLETED', async () => {
  await both(async (transport) => {
    const { id, job } = py[transport];
    const res = await deleteKernel(gw, id);
    assert.is(res.status, 204, res.text);
    const record = await waitJobEnded(job, 15000);
    assert.is(record.JobState, 'COMPLETED', `job ${job}: ${JSON.stringify(record)}`);
    assert.is(record.ExitCode, '0:0');
    assert.equal(jobProcesses(job), [], 'processes of the job are left');
    assert.is((await api(gw, 'GET', `api/kernels/${id}`)).status, 404);
  });
});

test('scancel from outside: clients get status dead, the kernel is removed, its reason names the job', async () => {
  await both(async (transport) => {
    const { id, job, client } = msg[transport];
    const { execFileSync } = await import('node:child_process');
    execFileSync('scancel', [job]);
    const dead = await client.waitFor((m) => isStatus(m, undefined, 'dead'), 20000, `status dead (${transport})`);
    assert.ok(dead);
    await waitUntil(async () => (await api(gw, 'GET', `api/kernels/${id}`)).status === 404, 10000, 'the kernel to be removed');
    assert.match(gw.stderr(), new RegExp(`Slurm job ${job} was cancelled`));
    await waitUntil(() => !jobQueued(job), 10000, 'the job to leave the queue');
  });
});

test('wall time: a job that reaches its time limit: clients get status dead (no restart), the kernel is removed, the log says the job timed out', async () => {
  // KERNEL_SLURM_TIME=1: Slurm's smallest limit, one minute. slurmctld looks for jobs over their
  // limit every 30 s, so the job ends 60 to 90 s after it started.
  await both(async (transport) => {
    const res = await api(gw, 'POST', 'api/kernels', { json: { name: `slurm-py-${transport}`, env: { KERNEL_SLURM_TIME: '1' } }, timeoutMs: 60000 });
    assert.is(res.status, 201, res.text);
    const { id } = res.body as { id: string };
    const job = slurmModel(res.body).job_id;
    assert.is(jobRecord(job)?.TimeLimit, '00:01:00', `job ${job}'s time limit`);
    const client = await connect(id, transport);
    assert.is(await value(client, '1+1'), '2');
    await client.waitFor((m) => isStatus(m, undefined, 'dead'), 150_000, `status dead once job ${job} reached its one-minute limit (${transport})`);
    assert.not.ok(client.messages.some((m) => isStatus(m, undefined, 'restarting')), `a restart was tried after the job timed out (${transport})`);
    await waitUntil(async () => (await api(gw, 'GET', `api/kernels/${id}`)).status === 404, 10000, `kernel ${id} to be removed`);
    assert.not.ok(((await api(gw, 'GET', 'api/kernels')).body as { id: string }[]).some((k) => k.id === id), 'GET /api/kernels still lists it');
    assert.match(gw.stderr(), new RegExp(`kernel ${id} .*is dead: Slurm job ${job} reached its time limit \\(TIMEOUT`));
    const record = await waitJobEnded(job, 15000);
    assert.is(record.JobState, 'TIMEOUT', `job ${job}: ${JSON.stringify(record)}`);
    assert.equal(jobProcesses(job), [], 'processes of the job are left');
  });
});

test('SIGTERM: the gateway exits 0 and ends every job it started', async () => {
  const jobs = TRANSPORTS.map((t) => js[t].job);
  assert.ok(jobs.every(jobQueued), 'the JavaScript kernels\' jobs run');
  const problems = await stopAndCheck(gw);
  assert.equal(problems, []);
  for (const job of jobs) {
    const record = await waitJobEnded(job, 15000);
    assert.ok(['COMPLETED', 'CANCELLED'].includes(record.JobState), `job ${job} ended ${record.JobState}`);
    assert.equal(jobProcesses(job), []);
  }
});

test.run();
