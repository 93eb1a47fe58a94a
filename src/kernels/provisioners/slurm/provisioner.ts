/**
 * `slurm-provisioner`: the kernel runs in a Slurm batch job, beside a launcher (`kernelgateway
 * launch`, src/launch/) that connects back to the gateway. The first launch submits the job and
 * waits (up to launch_timeout) for the launcher and the kernel; a restart asks the launcher to start
 * the kernel again in the same allocation. A job ended from outside (scancel, wall time) ends the
 * kernel for good. Shutdown asks the launcher to stop, so the job ends COMPLETED, and cancels it if
 * it does not.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../../log.ts';
import type { ConnectionInfo } from '../../../messaging/message.ts';
import { composeKernelEnv, substituteArgv } from '../../kernel-command.ts';
import { KernelOutput } from '../output.ts';
import type { ExitStatus, KernelProvisioner, LaunchedProcess, LaunchRequest, ProvisionerContext } from '../provisioner.ts';
import type { SlurmCommands } from './commands.ts';
import { JobWatch } from './job.ts';
import type { LaunchListener } from './listener.ts';
import type { QueuePoller } from './queue.ts';
import { readSlurmConfig, requestedResources, SLURM_PROVISIONER, type SlurmKernelConfig } from './sbatch.ts';
import { LauncherSession, type ProcessEnd } from './session.ts';
import { GatewayTunnel } from './tunnel.ts';
import { SECRET_BYTES } from '../../../launch/protocol.ts';

/** What every Slurm kernel of a gateway shares. */
export interface SlurmServices {
  listener: LaunchListener;
  commands: SlurmCommands;
  /** One squeue for all jobs being waited on. */
  queue: QueuePoller;
  /** The address jobs connect back to, unless a kernelspec says otherwise. */
  callbackHost: string;
  /** `kernelgateway launch`, as this very program runs it. */
  defaultLauncher: string[];
  /** The gateway's environment (sbatch gets only a few of its variables). */
  env: NodeJS.ProcessEnv;
}

/** Time a restarted kernel has to listen on its ports. */
const RESTART_TIMEOUT_MS = 60_000;
/** Time the launcher has to stop the kernel and end after a shutdown. */
const STOP_WAIT_MS = 8000;

export class SlurmProvisioner implements KernelProvisioner {
  readonly name = SLURM_PROVISIONER;
  readonly #context: ProvisionerContext;
  readonly #services: SlurmServices;
  readonly #log: Logger;
  readonly #output: KernelOutput;
  #config: SlurmKernelConfig | undefined;
  #job: JobWatch | undefined;
  #session: LauncherSession | undefined;
  #tunnel: GatewayTunnel | undefined;
  #lastConnection: ConnectionInfo | undefined;
  #closed = false;

  constructor(context: ProvisionerContext, services: SlurmServices) {
    this.#context = context;
    this.#services = services;
    this.#log = context.log;
    this.#output = new KernelOutput(context.kernelId, context.log);
  }

  async launch(request: LaunchRequest): Promise<LaunchedProcess> {
    if (this.#closed) throw new Error(`kernel ${this.#context.kernelId} is shut down`);
    const job = this.#job;
    if (job?.ended) return this.#gone(job.endReason);
    const first = !this.#session;
    const deadline = Date.now() + (first ? this.#configure().launchTimeout * 1000 : RESTART_TIMEOUT_MS);
    if (first) this.#session = await this.#submitAndConnect(request, deadline);
    await this.#abandonIfClosed();
    const session = this.#session!;
    const config = this.#config!;
    const { spec } = this.#context;
    this.#output.reset();
    let started;
    try {
      started = await session.start(
        {
          type: 'start',
          // {connection_file} is the node's to fill in.
          argv: substituteArgv(spec.spec.argv, { resource_dir: spec.resourceDir, cwd: request.cwd }),
          env: stringsOnly(composeKernelEnv(request.env, spec.spec.env, spec.spec.language)),
          cwd: request.cwd,
          key: request.key,
          signature_scheme: request.signatureScheme,
          kernel_name: spec.name,
          transport: config.transport,
          new_ports: request.newPorts,
        },
        Math.max(1000, deadline - Date.now()),
      );
    } catch (error) {
      const tail = this.#output.tail.trim().split('\n').slice(-5).join('\n');
      const where = `in Slurm job ${this.#job?.id}${session.node ? ` on ${session.node}` : ''}`;
      if (first) await this.#job?.cancel();
      throw new Error(`the kernel did not start ${where}: ${(error as Error).message}${tail ? `; its last output:\n${tail}` : ''}`);
    }
    await this.#abandonIfClosed();
    const endpoint = config.transport === 'tunnel' ? this.#tunnel!.endpoint : { ...started.ports, ip: started.ip, transport: 'tcp' as const };
    const connection: ConnectionInfo = { ...endpoint, key: request.key, signature_scheme: request.signatureScheme, kernel_name: spec.name };
    this.#lastConnection = connection;
    this.#log.info(`kernel ${this.#context.kernelId}: running in Slurm job ${this.#job?.id} on ${session.node || 'its node'} (pid ${started.pid} there, ${config.transport})`);
    return { connection, exited: started.ended.then((end) => this.#exitStatus(end)) };
  }

  async signal(signal: NodeJS.Signals): Promise<void> {
    this.#session?.signal(signal);
  }

  async cleanup(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#job?.stopWaiting();
    await this.#teardown();
  }

  /** Stop the launcher (so the job ends COMPLETED), cancel whatever is still there, close the tunnel. */
  async #teardown(): Promise<void> {
    await this.#session?.stop(STOP_WAIT_MS);
    await this.#job?.finish();
    this.#tunnel?.close();
  }

  /** A shutdown came while a launch was under way: what the launch made meanwhile goes too. */
  async #abandonIfClosed(): Promise<void> {
    if (!this.#closed) return;
    await this.#teardown();
    throw new Error(`kernel ${this.#context.kernelId} was shut down while it started`);
  }

  killNow(): void {
    this.#session?.drop();
    this.#job?.cancelNow();
    this.#tunnel?.close();
  }

  lastOutput(): string {
    return this.#output.tail;
  }

  model(): Record<string, unknown> {
    const job = this.#job;
    return {
      name: this.name,
      job_id: job?.id ?? null,
      state: job?.state ?? 'SUBMITTING',
      node: job?.node || this.#session?.node || null,
      reason: job?.reason ?? null,
    };
  }

  #configure(): SlurmKernelConfig {
    this.#config ??= readSlurmConfig(this.#context.config, this.#context.spec.name, this.#services.defaultLauncher);
    return this.#config;
  }

  /** Submit the job and wait until its launcher has connected and proved itself. */
  async #submitAndConnect(request: LaunchRequest, deadline: number): Promise<LauncherSession> {
    const config = this.#configure();
    const resources = requestedResources(request.env);
    const { kernelId } = this.#context;
    const secret = randomBytes(SECRET_BYTES);
    const { listener, commands } = this.#services;
    const port = await listener.port();
    const waiting = listener.expect(kernelId, secret);
    const job = new JobWatch(commands, this.#services.queue, kernelId, this.#log);
    this.#job = job;
    try {
      await job.submit({
        config,
        resources,
        cwd: request.cwd,
        gatewayEnv: this.#services.env,
        launch: {
          KG_LAUNCH_ADDRESS: `${hostForUrl(config.callbackHost ?? this.#services.callbackHost)}:${port}`,
          KG_LAUNCH_KERNEL_ID: kernelId,
          KG_LAUNCH_SECRET: secret.toString('hex'),
        },
      });
      if (this.#closed) throw new Error('the kernel was shut down while its job was submitted');
      const link = await job.waitFor(waiting.link, deadline, config.launchTimeout);
      if (config.transport === 'tunnel') {
        this.#tunnel = await GatewayTunnel.open();
        this.#tunnel.attach(link);
      }
      return new LauncherSession(link, kernelId, this.#output, this.#log);
    } catch (error) {
      await job.cancel();
      throw error;
    } finally {
      waiting.cancel();
    }
  }

  /** The kernel process ended; when its job went with it, no restart is possible. */
  async #exitStatus(end: ProcessEnd): Promise<ExitStatus> {
    const status: ExitStatus = { code: end.code, signal: end.signal };
    if (!end.jobEnd || this.#closed) return status;
    const job = this.#job!;
    await job.markEnded(end.jobEnd === 'ending' ? 'was ended by Slurm' : 'lost its launcher');
    return { ...status, final: job.endReason };
  }

  /** A restart after the job ended: a process that is over at once, for good, so the kernel goes. */
  #gone(reason: string): LaunchedProcess {
    if (!this.#lastConnection) throw new Error(reason);
    return { connection: this.#lastConnection, exited: Promise.resolve({ code: null, signal: null, final: reason }) };
  }
}

function stringsOnly(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) if (value !== undefined) out[name] = value;
  return out;
}

/** An IPv6 address goes in brackets before a port. */
function hostForUrl(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
