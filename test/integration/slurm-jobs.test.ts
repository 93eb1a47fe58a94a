/**
 * The Slurm job around a kernel: KERNEL_SLURM_* from a start request reach sbatch (and a bad one is
 * refused with 400 before anything is submitted), a job held in the queue fails the start after
 * launch_timeout naming Slurm's reason and is cancelled, a kernel that cannot start fails the start
 * with its reason, and a gateway killed with SIGKILL leaves no job behind. Needs .ci/slurm-start.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { api, deleteKernel, errorBody, guardSuite, startGateway, stopAndCheck, waitUntil, type Gateway } from '../helpers/gateway.ts';
import { runInKernel } from '../helpers/kernel-ws.ts';
import { jobProcesses, jobQueued, jobRecord, queuedJobs, requireSlurm, slurmModel, TRANSPORTS, waitJobEnded, writeSlurmSpec } from '../helpers/slurm.ts';

const test = suite('slurm: jobs, requests, failures');
let gw: Gateway;

guardSuite(test, async () => {
  requireSlurm();
  gw = await startGateway();
  writeSlurmSpec(gw, 'slurm-py', {});
  writeSlurmSpec(gw, 'slurm-held', { sbatchArgs: ['--hold'], launchTimeout: 3 });
  writeSlurmSpec(gw, 'slurm-missing', { argv: ['/nonexistent/python3', '-f', '{connection_file}'] });
  writeSlurmSpec(gw, 'slurm-exits', { argv: ['/bin/sh', '-c', 'echo "no kernel here" >&2; exit 7', '{connection_file}'] });
});

const post = (name: string, env?: Record<string, string>) => api(gw, 'POST', 'api/kernels', { json: { name, env }, timeoutMs: 60000 });

test('KERNEL_SLURM_* in a start request reach sbatch: scontrol shows them on the job', async () => {
  const res = await post('slurm-py', {
    KERNEL_SLURM_PARTITION: 'debug',
    KERNEL_SLURM_TIME: '10',
    KERNEL_SLURM_CPUS: '1',
    KERNEL_SLURM_MEM: '200M',
    KERNEL_SLURM_ACCOUNT: 'kg-test',
    KERNEL_SLURM_QOS: 'normal',
  });
  assert.is(res.status, 201, res.text);
  const job = slurmModel(res.body).job_id;
  const record = jobRecord(job)!;
  assert.is(record.Partition, 'debug');
  assert.is(record.TimeLimit, '00:10:00');
  assert.is(record['CPUs/Task'], '1');
  assert.is(record.MinMemoryNode, '200M');
  assert.is(record.Account, 'kg-test');
  // Without accounting storage Slurm drops the QOS from the job: the submission shows it.
  assert.match(gw.stderr(), new RegExp(`submitted Slurm job ${job} \\(sbatch .*--qos=normal`));
  // The variables are the kernel's too, as any KERNEL_* a client sends.
  assert.is(await runInKernel(gw, res.body.id, "import os; print(os.environ['KERNEL_SLURM_TIME'])"), '10\n');
  assert.is((await deleteKernel(gw, res.body.id)).status, 204);
  assert.is((await waitJobEnded(job, 15000)).JobState, 'COMPLETED');
});

test('a bad KERNEL_SLURM_* value: 400 naming the variable, and no job is submitted', async () => {
  const before = queuedJobs().length;
  const cases: Record<string, string> = {
    KERNEL_SLURM_TIME: '10 --wrap=id',
    KERNEL_SLURM_PARTITION: '--uid=0',
    KERNEL_SLURM_MEM: '1e9',
    KERNEL_SLURM_CPUS: '0',
    KERNEL_SLURM_GRES: 'gpu:1;id',
    KERNEL_SLURM_ACCOUNT: 'a b',
    KERNEL_SLURM_QOS: "normal'",
  };
  for (const [name, value] of Object.entries(cases)) {
    const res = await post('slurm-py', { [name]: value });
    assert.is(res.status, 400, `${name}=${value}: ${res.status} ${res.text}`);
    assert.match(errorBody(res, name).message, name);
  }
  assert.is(queuedJobs().length, before, 'a job was submitted for a refused request');
});

test('an sbatch error (a resource this cluster lacks) fails the start with sbatch\'s message', async () => {
  const res = await post('slurm-py', { KERNEL_SLURM_GRES: 'gpu:1' });
  assert.is(res.status, 500, res.text);
  assert.match(errorBody(res, 'gres').message, /sbatch failed: .*generic resource/i);
});

test('while its job waits in the queue, the kernel is listed as starting with the job, its state and reason; DELETE cancels it', async () => {
  writeSlurmSpec(gw, 'slurm-held-long', { sbatchArgs: ['--hold'], launchTimeout: 120 });
  const start = post('slurm-held-long').catch((error: Error) => error);
  const waiting = await waitUntil(
    async () =>
      (await api(gw, 'GET', 'api/kernels')).body?.find(
        (k: { name: string; provisioner?: { state?: string; reason?: string } }) =>
          k.name === 'slurm-held-long' && k.provisioner?.state === 'PENDING' && k.provisioner.reason === 'JobHeldUser',
      ),
    20000,
    'the waiting kernel to be listed with its job, PENDING because it is held',
  );
  assert.is(waiting.execution_state, 'starting');
  assert.is(waiting.provisioner.name, 'slurm-provisioner');
  assert.is(waiting.provisioner.reason, 'JobHeldUser');
  const job = String(waiting.provisioner.job_id);
  assert.is((await api(gw, 'GET', `api/kernels/${waiting.id}`)).body?.provisioner?.job_id, waiting.provisioner.job_id);
  assert.is((await deleteKernel(gw, waiting.id)).status, 204);
  const res = await start;
  assert.ok(!(res instanceof Error), String(res));
  assert.is((res as Awaited<ReturnType<typeof post>>).status, 500, (res as Awaited<ReturnType<typeof post>>).text);
  await waitUntil(() => !jobQueued(job), 10000, 'the held job to be cancelled');
  assert.is((await api(gw, 'GET', `api/kernels/${waiting.id}`)).status, 404);
});

test('a job held in the queue: the start fails after launch_timeout naming the job and its reason; the job is cancelled', async () => {
  const t0 = Date.now();
  const res = await post('slurm-held');
  const took = Date.now() - t0;
  assert.is(res.status, 500, res.text);
  const { message } = errorBody(res, 'held job');
  const job = /Slurm job (\d+) did not start the kernel within 3 s \(launch_timeout\); it was PENDING \(reason: JobHeldUser\)/.exec(message)?.[1];
  assert.ok(job, message);
  assert.ok(took >= 3000 && took < 15000, `the start took ${took} ms`);
  await waitUntil(() => !jobQueued(job!), 5000, 'the held job to be cancelled');
  assert.is(jobRecord(job!)?.JobState, 'CANCELLED');
});

test('a kernel that cannot start: the start fails with the launcher\'s reason, and the job ends', async () => {
  const [missing, exits] = await Promise.all([post('slurm-missing'), post('slurm-exits')]);
  assert.is(missing.status, 500, missing.text);
  assert.match(errorBody(missing, 'missing').message, /cannot start the kernel \(\/nonexistent\/python3\): .*ENOENT/);
  assert.is(exits.status, 500, exits.text);
  const message = errorBody(exits, 'exits').message;
  assert.match(message, /the kernel exited \(exit code 7\) before it listened on its ports/);
  assert.match(message, /no kernel here/, 'the kernel\'s last output is in the message');
  await waitUntil(() => queuedJobs().length === 0, 10000, 'no job left');
});

test('a kernelspec with a bad slurm-provisioner config: 500 naming the spec and the key, nothing submitted', async () => {
  writeSlurmSpec(gw, 'slurm-bad', { transport: 'pigeon' as 'tunnel' });
  const res = await post('slurm-bad');
  assert.is(res.status, 500, res.text);
  assert.match(errorBody(res, 'bad config').message, /kernelspec slurm-bad: metadata\.kernel_provisioner\.config\.transport must be "tunnel" or "direct"/);
});

test('gateway SIGTERM while a job waits in the queue: the gateway exits 0 and the job is cancelled', async () => {
  const patient = await startGateway();
  writeSlurmSpec(patient, 'slurm-held', { sbatchArgs: ['--hold'], launchTimeout: 120 });
  const before = new Set(queuedJobs());
  const start = api(patient, 'POST', 'api/kernels', { json: { name: 'slurm-held' }, timeoutMs: 60000 }).catch((error: Error) => error);
  const job = (await waitUntil(() => queuedJobs().find((id) => !before.has(id)), 10000, 'the held job to be queued')) as string;
  const problems = await stopAndCheck(patient);
  assert.equal(problems, []);
  await start;
  await waitUntil(() => !jobQueued(job), 5000, 'the job to leave the queue');
  assert.is(jobRecord(job)?.JobState, 'CANCELLED');
});

test('gateway SIGKILL: each launcher loses its connection, kills its kernel and ends its job (no job after 30 s)', async () => {
  const victim = await startGateway();
  const jobs = await Promise.all(
    TRANSPORTS.map(async (transport) => {
      writeSlurmSpec(victim, `slurm-${transport}`, { transport });
      const res = await api(victim, 'POST', 'api/kernels', { json: { name: `slurm-${transport}` }, timeoutMs: 60000 });
      assert.is(res.status, 201, res.text);
      return slurmModel(res.body).job_id;
    }),
  );
  for (const job of jobs) assert.ok(jobProcesses(job).length >= 2, 'the launcher and the kernel run');
  const t0 = Date.now();
  victim.proc.kill('SIGKILL');
  for (const job of jobs) {
    await waitUntil(() => !jobQueued(job), 30000, `job ${job} to end after the gateway was killed`, 250);
    await waitUntil(() => jobProcesses(job).length === 0, 5000, `the processes of job ${job} to be gone`);
  }
  const took = Date.now() - t0;
  assert.ok(took < 30000, `took ${took} ms`);
  await stopAndCheck(victim); // removes its folder; its exit (SIGKILL) is no problem here
});

test.run();
