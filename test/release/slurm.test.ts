/**
 * The linux-x64 executable as a whole Slurm setup: the gateway, the launcher in the job
 * (`kernelgateway launch`) and the built-in JavaScript kernel, all the one file, with a PATH that
 * holds nothing but the Slurm commands (so neither the job nor the kernel can find a node or a
 * python). Needs the one-node Slurm of .ci/slurm-start; fails saying so when it is not running.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import {
  Channels, RELEASE_DIR, api, archiveName, cleanupTempDirs, ensureRelease, launchGateway, processGone, run, stopAll, tempDir, topDir, waitUntil, which,
  type RunningGateway,
} from './harness.ts';

const test = suite('release: the executable runs a Slurm kernel (launcher and JavaScript kernel included)');
const SLURM_COMMANDS = ['sbatch', 'squeue', 'scontrol', 'scancel'];
let gw: RunningGateway | undefined;
let kernelId = '';
let job = '';

test.after(async () => {
  await stopAll();
  cleanupTempDirs();
});

function jobState(id: string): string {
  return /JobState=(\S+)/.exec(execFileSync('scontrol', ['-o', 'show', 'job', id], { encoding: 'utf8' }))?.[1] ?? '';
}

test('start: the gateway from the archive, a PATH with the Slurm commands only, a JavaScript kernelspec on the slurm-provisioner', async () => {
  try {
    execFileSync('sinfo', ['-h', '-o', '%T'], { stdio: 'ignore', timeout: 15000 });
  } catch {
    throw new Error('Slurm is not running on this machine: start it with .ci/slurm-start (as root), then run the tests again');
  }
  process.stdout.write(`  ${ensureRelease()}\n`);
  const dir = tempDir('kg-release-slurm-');
  run('tar', ['-xzf', join(RELEASE_DIR, archiveName('linux-x64')), '-C', dir]);
  const exe = join(dir, topDir('linux-x64'), 'kernelgateway');
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  for (const command of SLURM_COMMANDS) symlinkSync(which(command)!, join(bin, command));
  const spec = join(dir, 'jupyter', 'kernels', 'slurm-js');
  mkdirSync(spec, { recursive: true });
  writeFileSync(
    join(spec, 'kernel.json'),
    JSON.stringify({
      argv: [exe, 'kernel', '-f', '{connection_file}'],
      display_name: 'JavaScript in a Slurm job',
      language: 'javascript',
      metadata: { kernel_provisioner: { provisioner_name: 'slurm-provisioner', config: { launch_timeout: 60 } } },
    }),
  );
  gw = await launchGateway({ command: [exe], cwd: dir, env: { PATH: bin, HOME: dir, LANG: 'C.UTF-8', JUPYTER_PATH: join(dir, 'jupyter') } });
  const res = await api(gw, 'POST', 'api/kernels', { name: 'slurm-js' }, 120_000);
  if (res.status !== 201) throw new Error(`POST /api/kernels → ${res.status} ${res.text}\n${gw.stderr().slice(-2000)}`);
  kernelId = res.body.id;
  job = res.body.provisioner.job_id;
  if (jobState(job) !== 'RUNNING') throw new Error(`job ${job} is ${jobState(job)}`);
});

test('execute: the kernel in the job answers over the tunnel; its launcher is the executable', async () => {
  if (!gw || !kernelId) throw new Error('no kernel (the start failed)');
  const channels = await Channels.open(gw, kernelId, 60_000);
  const { reply, result } = await channels.execute('process.env.SLURM_JOB_ID + " " + typeof process.env.KG_LAUNCH_SECRET', 60_000);
  channels.close();
  if (reply.content.status !== 'ok' || result !== `'${job} undefined'`) throw new Error(`execute: ${JSON.stringify(reply.content)} result ${result}`);
});

test('DELETE ends the job COMPLETED; SIGTERM: the gateway exits 0', async () => {
  if (!gw || !kernelId) throw new Error('no kernel (the start failed)');
  const res = await api(gw, 'DELETE', `api/kernels/${kernelId}`);
  if (res.status !== 204) throw new Error(`DELETE → ${res.status} ${res.text}`);
  await waitUntil(() => ['COMPLETED', 'CANCELLED', 'FAILED'].includes(jobState(job)), 15_000, `job ${job} to end`);
  if (jobState(job) !== 'COMPLETED') throw new Error(`job ${job} ended ${jobState(job)}`);
  const result = await gw.stop(30_000);
  if (result.killed || result.code !== 0) throw new Error(`gateway exit ${JSON.stringify(result)}`);
  if (!processGone(gw.proc.pid!)) throw new Error('the gateway is still there');
});

test.run();
