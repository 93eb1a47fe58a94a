/**
 * What goes to `sbatch`: the kernelspec's provisioner config (operator-controlled, taken as written),
 * the job resources a start request may set through KERNEL_SLURM_* (each checked against a strict
 * pattern: nothing else from a request reaches sbatch's command line), the small batch script that
 * runs the launcher, and the few variables the job is given. The kernel's own environment never
 * passes through here: it travels over the launcher's encrypted connection.
 */
import { ProvisionerRequestError } from '../provisioner.ts';

export const SLURM_PROVISIONER = 'slurm-provisioner';

export type Transport = 'tunnel' | 'direct';

/** `metadata.kernel_provisioner.config` of a Slurm kernelspec, checked. */
export interface SlurmKernelConfig {
  sbatchArgs: string[];
  /** Seconds from submission until the kernel listens; past it the job is cancelled. */
  launchTimeout: number;
  /** The command that runs `kernelgateway launch` on the node. */
  launcher: string[];
  transport: Transport;
  /** The address the job connects back to; undefined: the gateway-wide one. */
  callbackHost?: string;
}

const DEFAULT_LAUNCH_TIMEOUT = 300;
const CONFIG_KEYS = ['sbatch_args', 'launch_timeout', 'launcher', 'transport', 'callback_host'];

const isStrings = (value: unknown): value is string[] => Array.isArray(value) && value.every((v) => typeof v === 'string' && !v.includes('\0'));

/** Reads a kernelspec's Slurm config; throws an Error naming the kernelspec and the key that is wrong. */
export function readSlurmConfig(config: Record<string, unknown>, specName: string, defaultLauncher: readonly string[]): SlurmKernelConfig {
  const wrong = (key: string, expected: string) =>
    new Error(`kernelspec ${specName}: metadata.kernel_provisioner.config.${key} must be ${expected} (it is ${JSON.stringify(config[key])})`);
  const unknown = Object.keys(config).filter((key) => !CONFIG_KEYS.includes(key));
  if (unknown.length > 0) throw new Error(`kernelspec ${specName}: unknown slurm-provisioner config key(s) ${unknown.join(', ')} (known: ${CONFIG_KEYS.join(', ')})`);
  const { sbatch_args: sbatchArgs = [], launch_timeout: launchTimeout = DEFAULT_LAUNCH_TIMEOUT, launcher, transport = 'tunnel', callback_host: callbackHost } = config;
  if (!isStrings(sbatchArgs)) throw wrong('sbatch_args', 'an array of strings such as ["--partition=debug", "--time=02:00:00"]');
  if (typeof launchTimeout !== 'number' || !(launchTimeout > 0) || launchTimeout > 2_000_000) throw wrong('launch_timeout', 'a number of seconds');
  if (transport !== 'tunnel' && transport !== 'direct') throw wrong('transport', '"tunnel" or "direct"');
  if (callbackHost !== undefined && (typeof callbackHost !== 'string' || !/^[A-Za-z0-9_.:-]+$/.test(callbackHost))) {
    throw wrong('callback_host', 'a host name or address');
  }
  let command: string[];
  if (launcher === undefined) command = [...defaultLauncher];
  else if (typeof launcher === 'string' && launcher !== '') command = [launcher, 'launch'];
  else if (isStrings(launcher) && launcher.length > 0) command = launcher;
  else throw wrong('launcher', 'the kernelgateway executable (a path) or a whole command (an array of strings)');
  return { sbatchArgs, launchTimeout, launcher: command, transport, callbackHost };
}

/** Job resources a start request may ask for, the sbatch option each becomes, and what a value must look like. */
export const REQUEST_RESOURCES: readonly { variable: string; option: string; pattern: RegExp; expected: string }[] = [
  { variable: 'KERNEL_SLURM_PARTITION', option: '--partition', pattern: /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}(,[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}){0,7}$/, expected: 'partition names (letters, digits, _ . -), comma-separated' },
  { variable: 'KERNEL_SLURM_TIME', option: '--time', pattern: /^(\d{1,6}(:\d{1,2}){0,2}|\d{1,4}-\d{1,2}(:\d{1,2}){0,2})$/, expected: 'a time limit such as 90, 1:30:00 or 2-00:00:00' },
  { variable: 'KERNEL_SLURM_CPUS', option: '--cpus-per-task', pattern: /^[1-9]\d{0,4}$/, expected: 'a number of CPUs' },
  { variable: 'KERNEL_SLURM_MEM', option: '--mem', pattern: /^[1-9]\d{0,9}[KMGT]?$/, expected: 'memory such as 4096, 500M or 16G' },
  { variable: 'KERNEL_SLURM_GRES', option: '--gres', pattern: /^[A-Za-z][A-Za-z0-9_]{0,31}(:[A-Za-z0-9_.-]{1,32}){0,2}(,[A-Za-z][A-Za-z0-9_]{0,31}(:[A-Za-z0-9_.-]{1,32}){0,2}){0,7}$/, expected: 'generic resources such as gpu:1 or gpu:a100:2' },
  { variable: 'KERNEL_SLURM_ACCOUNT', option: '--account', pattern: /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/, expected: 'an account name (letters, digits, _ . -)' },
  { variable: 'KERNEL_SLURM_QOS', option: '--qos', pattern: /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/, expected: 'a QOS name (letters, digits, _ . -)' },
];

/**
 * The sbatch options the start request's KERNEL_SLURM_* variables ask for (empty ones are ignored).
 * A bad value is a ProvisionerRequestError (400) naming the variable.
 */
export function requestedResources(env: NodeJS.ProcessEnv): string[] {
  const options: string[] = [];
  for (const { variable, option, pattern, expected } of REQUEST_RESOURCES) {
    const value = env[variable];
    if (value === undefined || value === '') continue;
    if (!pattern.test(value)) {
      throw new ProvisionerRequestError(`${variable}=${JSON.stringify(value.slice(0, 100))} is not valid: expected ${expected}`);
    }
    options.push(`${option}=${value}`);
  }
  return options;
}

/** The three variables that let the launcher find and prove itself to the gateway. */
export interface LaunchVariables {
  KG_LAUNCH_ADDRESS: string;
  KG_LAUNCH_KERNEL_ID: string;
  KG_LAUNCH_SECRET: string;
}

/** The gateway's variables sbatch runs with, and so the job gets; nothing else of the gateway's. */
const PASSED_VARIABLES = ['PATH', 'HOME', 'USER', 'SLURM_CONF'];

/** sbatch's own environment: a few of the gateway's variables, and the launcher's three. */
export function sbatchEnvironment(gateway: NodeJS.ProcessEnv, launch: LaunchVariables): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of PASSED_VARIABLES) if (gateway[name] !== undefined) env[name] = gateway[name]!;
  return { ...env, ...launch };
}

/**
 * sbatch's arguments: ours, then the kernelspec's (which may override the job name and output), then
 * the request's resources, and last `--export=ALL`: all of sbatch's own environment, which is the
 * minimal one of sbatchEnvironment. (A list of names would also make Slurm load the user's login
 * environment on the node, as --get-user-env does.)
 */
export function sbatchArguments(kernelId: string, config: SlurmKernelConfig, resources: readonly string[]): string[] {
  return [
    '--parsable',
    `--job-name=kg-${kernelId.slice(0, 8)}`,
    // The launcher's own messages; the kernel's output reaches the gateway's log over the connection.
    '--output=/dev/null',
    ...config.sbatchArgs,
    ...resources,
    '--export=ALL',
  ];
}

/** The batch script: it only replaces itself with the launcher, so the launcher's exit is the job's. */
export function batchScript(kernelId: string, launcher: readonly string[]): string {
  const quoted = launcher.map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`).join(' ');
  return `#!/bin/sh\n# kernelgateway: the launcher of kernel ${kernelId}\nexec ${quoted}\n`;
}
