/** The slurm-provisioner as the gateway registers it: one launcher listener and one set of Slurm commands for all its kernels. */
import { hostname } from 'node:os';
import type { Config } from '../../../config/options.ts';
import type { Logger } from '../../../log.ts';
import type { ProvisionerFactory } from '../provisioner.ts';
import { SlurmCommands } from './commands.ts';
import { LaunchListener } from './listener.ts';
import { QueuePoller } from './queue.ts';
import { SlurmProvisioner, type SlurmServices } from './provisioner.ts';
import { SLURM_PROVISIONER } from './sbatch.ts';

export function slurmProvisioner(
  config: Pick<Config, 'slurmCallbackHost' | 'slurmCallbackIp' | 'slurmCallbackPort'>,
  log: Logger,
  selfArgv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): { name: string; create: ProvisionerFactory; close: () => Promise<void> } {
  const commandEnv: Record<string, string> = {};
  for (const name of ['PATH', 'HOME', 'USER', 'SLURM_CONF', 'LANG']) if (env[name] !== undefined) commandEnv[name] = env[name]!;
  const commands = new SlurmCommands(commandEnv);
  const services: SlurmServices = {
    listener: new LaunchListener({ ip: config.slurmCallbackIp, port: config.slurmCallbackPort, log }),
    commands,
    queue: new QueuePoller(commands, (error) => log.warn(`cannot ask squeue about the Slurm kernels' jobs: ${error.message}`)),
    callbackHost: config.slurmCallbackHost || hostname(),
    defaultLauncher: [...selfArgv, 'launch'],
    env,
  };
  return {
    name: SLURM_PROVISIONER,
    create: (context) => new SlurmProvisioner(context, services),
    close: () => services.listener.close(),
  };
}
