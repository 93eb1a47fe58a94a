/** What reaches sbatch (src/kernels/provisioners/slurm/sbatch.ts): the kernelspec config, KERNEL_SLURM_* checks, the script, the environment. */
import { execFileSync } from 'node:child_process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ProvisionerRequestError } from '../src/kernels/provisioners/provisioner.ts';
import { batchScript, readSlurmConfig, requestedResources, sbatchArguments, sbatchEnvironment } from '../src/kernels/provisioners/slurm/sbatch.ts';

const test = suite('slurm: sbatch arguments and their checks');
const LAUNCHER = ['/opt/kg/kernelgateway', 'launch'];

test('config: defaults (tunnel, 300 s, this program as the launcher)', () => {
  assert.equal(readSlurmConfig({}, 'k', LAUNCHER), { sbatchArgs: [], launchTimeout: 300, launcher: LAUNCHER, transport: 'tunnel', callbackHost: undefined });
});

test('config: every key, and the launcher as a path or as a whole command', () => {
  const config = readSlurmConfig(
    { sbatch_args: ['--partition=gpu', '--time=02:00:00'], launch_timeout: 30, launcher: '/shared/kernelgateway', transport: 'direct', callback_host: 'login1' },
    'k',
    LAUNCHER,
  );
  assert.equal(config, { sbatchArgs: ['--partition=gpu', '--time=02:00:00'], launchTimeout: 30, launcher: ['/shared/kernelgateway', 'launch'], transport: 'direct', callbackHost: 'login1' });
  assert.equal(readSlurmConfig({ launcher: ['srun', '/x/kg', 'launch'] }, 'k', LAUNCHER).launcher, ['srun', '/x/kg', 'launch']);
});

test('config: a wrong value names the kernelspec and the key', () => {
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ sbatch_args: '--partition=debug' }, /kernelspec k: metadata\.kernel_provisioner\.config\.sbatch_args must be an array of strings/],
    [{ sbatch_args: ['ok', 3] }, /sbatch_args must be/],
    [{ launch_timeout: 0 }, /launch_timeout must be a number of seconds/],
    [{ launch_timeout: '60' }, /launch_timeout/],
    [{ transport: 'ssh' }, /transport must be "tunnel" or "direct"/],
    [{ launcher: [] }, /launcher must be/],
    [{ callback_host: 'a b' }, /callback_host must be a host name/],
    [{ sbatch_arg: [] }, /unknown slurm-provisioner config key\(s\) sbatch_arg/],
  ];
  for (const [config, message] of bad) assert.throws(() => readSlurmConfig(config, 'k', LAUNCHER), message, JSON.stringify(config));
});

test('KERNEL_SLURM_*: good values become sbatch options, empty ones are ignored', () => {
  const options = requestedResources({
    KERNEL_SLURM_PARTITION: 'gpu,debug',
    KERNEL_SLURM_TIME: '1-12:00:00',
    KERNEL_SLURM_CPUS: '8',
    KERNEL_SLURM_MEM: '16G',
    KERNEL_SLURM_GRES: 'gpu:a100:2',
    KERNEL_SLURM_ACCOUNT: 'proj_42',
    KERNEL_SLURM_QOS: '',
    KERNEL_OTHER: 'x',
  });
  assert.equal(options, ['--partition=gpu,debug', '--time=1-12:00:00', '--cpus-per-task=8', '--mem=16G', '--gres=gpu:a100:2', '--account=proj_42']);
  for (const time of ['90', '90:30', '1:30:00', '2-00', '2-00:30', '2-00:30:00']) assert.equal(requestedResources({ KERNEL_SLURM_TIME: time }), [`--time=${time}`]);
  assert.equal(requestedResources({}), []);
});

test('KERNEL_SLURM_*: a bad value is a ProvisionerRequestError naming the variable', () => {
  const bad: Record<string, string[]> = {
    KERNEL_SLURM_PARTITION: ['-p', 'a b', 'x;id', '$(id)', 'a'.repeat(65)],
    KERNEL_SLURM_TIME: ['1h', '10 --wrap=id', '-1', 'UNLIMITED'],
    KERNEL_SLURM_CPUS: ['0', '-4', '1.5', '999999'],
    KERNEL_SLURM_MEM: ['0', '1e9', '4 G', '4GB'],
    KERNEL_SLURM_GRES: ['gpu:1;id', ':1', 'gpu:1:2:3'],
    KERNEL_SLURM_ACCOUNT: ['a b', '--uid=0', "x'"],
    KERNEL_SLURM_QOS: ['\n', 'high\0'],
  };
  for (const [variable, values] of Object.entries(bad)) {
    for (const value of values) {
      try {
        requestedResources({ [variable]: value });
        assert.unreachable(`${variable}=${JSON.stringify(value)} was accepted`);
      } catch (error) {
        assert.instance(error, ProvisionerRequestError, `${variable}=${JSON.stringify(value)}`);
        assert.match((error as Error).message, variable);
      }
    }
  }
});

test('sbatch arguments: ours, the kernelspec\'s, the request\'s, and --export=ALL last', () => {
  const config = readSlurmConfig({ sbatch_args: ['--output=/tmp/%j.out', '--export=HOME'] }, 'k', LAUNCHER);
  assert.equal(sbatchArguments('0b7c1e4a-5f1d-4c55-9d8e-0123456789ab', config, ['--time=10']), [
    '--parsable',
    '--job-name=kg-0b7c1e4a',
    '--output=/dev/null',
    '--output=/tmp/%j.out',
    '--export=HOME',
    '--time=10',
    '--export=ALL',
  ]);
});

test('sbatch environment: PATH, HOME, USER, SLURM_CONF and the launcher\'s three variables, nothing else', () => {
  const env = sbatchEnvironment(
    { PATH: '/bin', HOME: '/root', USER: 'u', SLURM_CONF: '/etc/s.conf', KG_AUTH_TOKEN: 'secret', AWS_SECRET_ACCESS_KEY: 'x', SBATCH_PARTITION: 'p' },
    { KG_LAUNCH_ADDRESS: 'h:1', KG_LAUNCH_KERNEL_ID: 'k', KG_LAUNCH_SECRET: 'f'.repeat(64) },
  );
  assert.equal(Object.keys(env).sort(), ['HOME', 'KG_LAUNCH_ADDRESS', 'KG_LAUNCH_KERNEL_ID', 'KG_LAUNCH_SECRET', 'PATH', 'SLURM_CONF', 'USER']);
});

test('batch script: the launcher exec\'d with every word quoted for sh, whatever it holds', () => {
  const launcher = ["/opt/it's here/kg", 'launch', '$(touch /tmp/kg-pwned)', '`id`'];
  const script = batchScript('abc', launcher);
  assert.match(script, /^#!\/bin\/sh\n/);
  const words = execFileSync('/bin/sh', ['-c', `${script.split('\n').find((l) => l.startsWith('exec '))!.replace(/^exec /, 'printf "%s\\n" ')}`], { encoding: 'utf8' });
  assert.equal(words.trimEnd().split('\n'), launcher);
});

test.run();
