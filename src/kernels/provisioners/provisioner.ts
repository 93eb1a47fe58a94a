/**
 * The seam between "a kernel" and "how its process comes to exist", in the spirit of jupyter_client's
 * kernel provisioners. A `Kernel` supervises its process only through this interface: it asks for a
 * launch (and gets the connection info to use, which may be known only once the kernel runs, on
 * another host, after a wait in a queue), signals, stops and cleans up. A kernelspec chooses its
 * provisioner with `metadata.kernel_provisioner.provisioner_name` (default `local-provisioner`).
 */
import type { Logger } from '../../log.ts';
import type { ConnectionInfo } from '../../messaging/message.ts';
import type { KernelSpec } from '../specs.ts';

/** How one kernel process ended. */
export interface ExitStatus {
  code: number | null;
  signal: string | null;
  /**
   * Set when no new process can be launched (a batch job that was cancelled or ran out of time):
   * why. The kernel is then dead at once instead of restarted.
   */
  final?: string;
}

/** What a kernel asks of its provisioner for one launch. */
export interface LaunchRequest {
  /** The HMAC key and scheme the kernel must sign with; the gateway holds the same. */
  key: string;
  signatureScheme: string;
  /** Working directory and environment (before the kernelspec's own `env`). */
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** After a process that never answered: take new ports (another process may hold the old ones). */
  newPorts: boolean;
}

/** One running kernel process. */
export interface LaunchedProcess {
  /** Where the gateway's sockets connect: the kernel's own ports, or the local ends of a tunnel. */
  connection: ConnectionInfo;
  /** Settles once this process has exited. */
  exited: Promise<ExitStatus>;
  /** The local process id, when there is one (for logs). */
  pid?: number;
}

export interface KernelProvisioner {
  readonly name: string;
  /** Start a kernel process; a restart calls it again (keeping the ports unless `newPorts`). */
  launch(request: LaunchRequest): Promise<LaunchedProcess>;
  /** Deliver a signal to the kernel process and whatever it started (SIGINT interrupts). */
  signal(signal: NodeJS.Signals): Promise<void>;
  /** Everything the kernel was: files, ports, jobs. Called once, after the last process ended. */
  cleanup(): Promise<void>;
  /** Last resort when the gateway exits without a clean shutdown: synchronous and best effort. */
  killNow(): void;
  /** The last lines the kernel printed, to explain a failed start. */
  lastOutput(): string;
  /** Extra fields for the kernel's REST model (e.g. a batch job), if any. */
  model?(): Record<string, unknown>;
}

/** Everything a provisioner may need to know about the kernel it serves. */
export interface ProvisionerContext {
  kernelId: string;
  spec: KernelSpec;
  /** Where connection files go (private to the gateway's user). */
  runtimeDir: string;
  /** Interface kernels bind to, for provisioners that run them here. */
  ip: string;
  log: Logger;
  /** The kernelspec's `metadata.kernel_provisioner.config`. */
  config: Record<string, unknown>;
}

export type ProvisionerFactory = (context: ProvisionerContext) => KernelProvisioner;

export const DEFAULT_PROVISIONER = 'local-provisioner';

/** A kernelspec naming a provisioner this gateway does not have. */
export class UnknownProvisionerError extends Error {
  constructor(readonly requested: string, readonly known: string[], specName: string) {
    super(`kernelspec ${specName} asks for provisioner "${requested}", which this gateway does not have (known: ${known.join(', ')})`);
  }
}

/**
 * A start request the provisioner cannot honour as asked (e.g. a KERNEL_SLURM_* value that is not
 * valid): the client's mistake, answered 400. The message names what is wrong.
 */
export class ProvisionerRequestError extends Error {
  override name = 'ProvisionerRequestError';
}

/** The provisioners a gateway knows, by name. */
export class ProvisionerRegistry {
  readonly #factories = new Map<string, ProvisionerFactory>();

  register(name: string, factory: ProvisionerFactory): this {
    this.#factories.set(name, factory);
    return this;
  }

  get names(): string[] {
    return [...this.#factories.keys()];
  }

  /** The provisioner a kernelspec asks for; throws UnknownProvisionerError naming the known ones. */
  create(context: Omit<ProvisionerContext, 'config'>): KernelProvisioner {
    const { name, config } = provisionerOf(context.spec);
    const factory = this.#factories.get(name);
    if (!factory) throw new UnknownProvisionerError(name, this.names, context.spec.name);
    return factory({ ...context, config });
  }
}

/** jupyter_client's key: `metadata.kernel_provisioner = {provisioner_name, config}`. */
function provisionerOf(spec: KernelSpec): { name: string; config: Record<string, unknown> } {
  const entry = spec.spec.metadata.kernel_provisioner;
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) return { name: DEFAULT_PROVISIONER, config: {} };
  const { provisioner_name: name, config } = entry as { provisioner_name?: unknown; config?: unknown };
  return {
    name: typeof name === 'string' && name !== '' ? name : DEFAULT_PROVISIONER,
    config: typeof config === 'object' && config !== null && !Array.isArray(config) ? (config as Record<string, unknown>) : {},
  };
}
