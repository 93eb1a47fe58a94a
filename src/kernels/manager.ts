/**
 * The registry of running kernels: start (with limits, environment rules, working directory, seeding
 * and the prespawned pool), look up, list, shut down, cull. Knows nothing of HTTP.
 */
import { randomUUID } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { errorMessage, type Logger } from '../log.ts';
import { KernelLimitError, KernelStartError, NoSuchKernelSpecError } from './errors.ts';
import { Kernel, type KernelModel } from './kernel.ts';
import type { ProvisionerRegistry } from './provisioners/provisioner.ts';
import { runSeed, seedApplies, type SeedNotebook } from './seed.ts';
import { defaultKernelName, type KernelSpecStore } from './specs.ts';
import { kernelBaseEnv, kernelWorkingDir } from './start-request.ts';
import { metrics } from '../metrics/gateway-metrics.ts';

export { InvalidPathError, KernelLimitError, KernelStartError, NoSuchKernelSpecError } from './errors.ts';

export interface StartRequest {
  name?: string;
  /** API path (relative to the root dir) used as the kernel's working directory. */
  path?: string;
  /** Variables from the client (see kernelBaseEnv for what passes). */
  env?: Record<string, string>;
  /** Variables the gateway itself adds on top of its full environment (sessions: JPY_SESSION_NAME). */
  extraEnv?: Record<string, string>;
  /** false: a kernel that dies is dead at once (its owner replaces it) instead of being restarted. */
  autoRestart?: boolean;
}

export interface ManagerOptions {
  specs: KernelSpecStore;
  /** How kernel processes come to exist, chosen per kernelspec. */
  provisioners: ProvisionerRegistry;
  /** '' = python3 if installed, else the first kernelspec. */
  defaultKernelName: string;
  /** When set, every start uses this kernelspec. */
  forceKernelName?: string;
  runtimeDir: string;
  /** Where kernels start by default, and what a request's `path` is relative to. */
  rootDir: string;
  /** The operator chose the root directory (--root-dir): paths outside it are refused. */
  rootDirExplicit?: boolean;
  kernelInfoTimeout: number;
  /** Seconds a new kernel has to answer kernel_info before its start fails. */
  kernelStartupTimeout?: number;
  /** 0: unbounded. */
  maxKernels?: number;
  /** Client variables (besides KERNEL_*) a start request may pass. */
  envWhitelist?: readonly string[];
  /** Gateway variables passed when a start request carries an env. */
  envProcessWhitelist?: readonly string[];
  seed?: SeedNotebook;
  /** Kernels of the default kernelspec kept ready for POST /api/kernels. */
  prespawnCount?: number;
  cull?: { idleTimeout: number; interval: number; connected: boolean; busy: boolean };
  log: Logger;
  /** The gateway's environment (kernels inherit it when a start request has no env). */
  env?: NodeJS.ProcessEnv;
}

export class KernelManager {
  readonly #kernels = new Map<string, Kernel>();
  /** Prespawned kernels, ready and seeded, not yet handed out (not listed; they count toward the limit). */
  readonly #pool: Kernel[] = [];
  #pending = 0;
  /** Kernels between spawn and hand-out (or pool), so a shutdown or an exit reaches them too. */
  readonly #starting = new Set<Kernel>();
  /** Pool kernels being started; a request may claim one when the limit leaves no room for another. */
  readonly #refills: Array<{ name: string; kernel: Promise<Kernel | undefined>; claimed: boolean }> = [];
  #closed = false;
  #culler: NodeJS.Timeout | undefined;
  readonly #options: ManagerOptions;
  readonly #rootDir: string;
  /** Called with each kernel as it is handed out; the bridge attaches here. */
  readonly addedListeners = new Set<(kernel: Kernel) => void>();

  constructor(options: ManagerOptions) {
    this.#options = options;
    this.#rootDir = realpathSync(resolve(options.rootDir));
    const cull = options.cull;
    if (cull && cull.idleTimeout > 0) {
      this.#culler = setInterval(() => void this.cull(), cull.interval * 1000);
      this.#culler.unref();
    }
  }

  get defaultKernelName(): string {
    return this.#options.forceKernelName || defaultKernelName(this.#options.specs, this.#options.defaultKernelName);
  }

  get(id: string): Kernel | undefined {
    return this.#kernels.get(id);
  }

  list(): Kernel[] {
    return [...this.#kernels.values()];
  }

  /** A kernel's REST model, with its number of client connections. */
  modelOf(kernel: Kernel): KernelModel {
    return kernel.model(this.connectionsOf(kernel.id));
  }

  /** How many clients a kernel has: the bridge knows, and sets this when it is wired. */
  connectionsOf: (kernelId: string) => number = () => 0;

  /** Prespawned kernels ready to be handed out. */
  get poolSize(): number {
    return this.#pool.length;
  }

  /** Kernels running or starting, the pool included: what max_kernels limits. */
  get count(): number {
    return this.#kernels.size + this.#pool.length + this.#pending;
  }

  /** Start a kernel, or hand out a prespawned one; resolves once it is ready (and seeded). */
  async start(request: StartRequest = {}): Promise<Kernel> {
    const name = (this.#options.forceKernelName || request.name || this.defaultKernelName).toLowerCase();
    const spec = this.#options.specs.get(name);
    if (!spec) throw new NoSuchKernelSpecError(request.name || name, this.#options.specs.names());
    const pooled = await this.#fromPool(spec.name, request);
    if (pooled) return pooled;
    this.#checkLimit();
    const cwd = kernelWorkingDir(request, this.#rootDir, this.#options.rootDirExplicit ?? false, this.#options.log);
    const env = {
      ...kernelBaseEnv(request.env, this.#options.env ?? process.env, this.#options.envWhitelist, this.#options.envProcessWhitelist),
      ...request.extraEnv,
    };
    this.#pending++;
    let counted = true;
    try {
      // Listed (and reachable) from the moment it exists, as Jupyter Server does: a kernel waiting in a
      // batch queue shows as starting, with why it waits, to every client that lists kernels.
      return await this.#launch(spec.name, cwd, env, request.autoRestart, (kernel) => {
        this.#pending--;
        counted = false;
        this.#register(kernel);
      });
    } finally {
      if (counted) this.#pending--;
    }
  }

  async shutdown(id: string): Promise<boolean> {
    const kernel = this.#kernels.get(id);
    if (!kernel) return false;
    await kernel.shutdown();
    this.#kernels.delete(id);
    this.#options.log.info(`kernel ${id} shut down`);
    return true;
  }

  /** Stop everything: the culler, the pool, every kernel. */
  async shutdownAll(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#culler);
    const all = [...this.list(), ...this.#pool.splice(0), ...this.#starting];
    await Promise.all(all.map((kernel) => kernel.shutdown()));
    this.#kernels.clear();
  }

  /** Last resort on process exit: kill every kernel process group now. */
  killAll(): void {
    for (const kernel of [...this.#kernels.values(), ...this.#pool, ...this.#starting]) kernel.killNow();
  }

  /** Start prespawned kernels until the pool holds prespawn_count (within max_kernels). */
  fillPool(): void {
    const target = this.#options.prespawnCount ?? 0;
    while (!this.#closed && this.#pool.length + this.#refills.length < target && this.#hasRoom()) {
      this.#pending++;
      const name = this.defaultKernelName;
      const refill = { name, kernel: Promise.resolve<Kernel | undefined>(undefined), claimed: false };
      refill.kernel = this.#launch(name, this.#rootDir, { ...(this.#options.env ?? process.env) })
        .then((kernel) => {
          if (this.#closed) return void kernel.shutdown();
          this.#pool.push(kernel);
          kernel.lifecycleListeners.add((event) => {
            if (event !== 'dead' && event !== 'shutdown') return;
            const at = this.#pool.indexOf(kernel);
            if (at >= 0) {
              this.#pool.splice(at, 1);
              this.fillPool();
            }
          });
          this.#options.log.info(`prespawned kernel ${kernel.id} (${name}) is ready`);
          return kernel;
        })
        .catch((error: Error) => {
          this.#options.log.error(`could not prespawn a ${name} kernel: ${error.message}`);
          return undefined;
        })
        .finally(() => {
          this.#refills.splice(this.#refills.indexOf(refill), 1);
          this.#pending--;
        });
      this.#refills.push(refill);
    }
  }

  /** One culling sweep (Jupyter Server's rules); returns the ids shut down. */
  async cull(now = Date.now()): Promise<string[]> {
    const cull = this.#options.cull;
    if (!cull) return [];
    const culled: string[] = [];
    for (const kernel of this.list()) {
      const override = kernel.spec.spec.metadata.cull_idle_timeout;
      const timeout = typeof override === 'number' ? override : cull.idleTimeout;
      const idleSeconds = (now - kernel.lastActivity.getTime()) / 1000;
      if (kernel.executionState === 'dead') {
        culled.push(kernel.id);
      } else if (
        timeout > 0 &&
        idleSeconds > timeout &&
        (cull.busy || kernel.executionState !== 'busy') &&
        (cull.connected || this.connectionsOf(kernel.id) === 0)
      ) {
        this.#options.log.info(
          `culling kernel ${kernel.id} (${kernel.name}): idle for ${Math.round(idleSeconds)} s (timeout ${timeout} s), ` +
            `state ${kernel.executionState}, ${this.connectionsOf(kernel.id)} connection(s)`,
        );
        culled.push(kernel.id);
      }
    }
    await Promise.all(culled.map((id) => this.shutdown(id)));
    return culled;
  }

  #hasRoom(): boolean {
    const max = this.#options.maxKernels ?? 0;
    return max <= 0 || this.count < max;
  }

  #checkLimit(): void {
    if (!this.#hasRoom()) {
      const max = this.#options.maxKernels;
      throw new KernelLimitError(`Kernel limit reached: ${max} kernels are running or starting (--max-kernels ${max})`);
    }
  }

  /**
   * A pooled kernel for a request that asks for nothing it lacks: its kernelspec, no path and no env
   * (a request with env gets a different environment, see kernelBaseEnv). One still starting is waited for,
   * rather than refusing the request because the refill holds the last place under max_kernels.
   */
  async #fromPool(name: string, request: StartRequest): Promise<Kernel | undefined> {
    if (request.path || request.env || request.extraEnv) return undefined;
    let kernel = this.#pool.find((candidate) => candidate.name === name && candidate.ready);
    if (!kernel && !this.#hasRoom()) {
      const refill = this.#refills.find((candidate) => candidate.name === name && !candidate.claimed);
      if (refill) {
        refill.claimed = true;
        kernel = await refill.kernel;
      }
    }
    if (!kernel || !this.#pool.includes(kernel)) return undefined;
    this.#pool.splice(this.#pool.indexOf(kernel), 1);
    // Its idle time in the pool is not the client's: culling counts from the hand-out.
    kernel.lastActivity = new Date();
    this.#register(kernel);
    this.fillPool();
    return kernel;
  }

  #register(kernel: Kernel): void {
    kernel.lifecycleListeners.add((event) => {
      if (event !== 'dead' && event !== 'shutdown') return;
      if (this.#kernels.delete(kernel.id)) metrics.kernelEnds.labels({ kernelspec: kernel.name, how: event }).inc();
      // Its place under max_kernels may be what the pool was waiting for.
      this.fillPool();
    });
    this.#kernels.set(kernel.id, kernel);
    for (const listener of this.addedListeners) listener(kernel);
  }

  /** Spawn, wait until it answers kernel_info, seed it; on any failure shut it down and throw. */
  async #launch(
    name: string,
    cwd: string,
    env: NodeJS.ProcessEnv,
    autoRestart = true,
    onCreated?: (kernel: Kernel) => void,
  ): Promise<Kernel> {
    const spec = this.#options.specs.get(name);
    if (!spec) throw new NoSuchKernelSpecError(name, this.#options.specs.names());
    const id = randomUUID();
    const provisioner = this.#options.provisioners.create({
      kernelId: id,
      spec,
      runtimeDir: this.#options.runtimeDir,
      ip: '127.0.0.1',
      log: this.#options.log,
    });
    const kernel = new Kernel({
      id,
      spec,
      provisioner,
      cwd,
      env,
      log: this.#options.log,
      kernelInfoTimeout: this.#options.kernelInfoTimeout,
      autoRestart,
    });
    this.#starting.add(kernel);
    onCreated?.(kernel);
    const started = performance.now();
    let ok = false;
    try {
      await kernel.start();
      const timeout = this.#options.kernelStartupTimeout ?? 60;
      if (!(await kernel.whenReady(timeout * 1000))) {
        const why = this.#closed
          ? 'the gateway is shutting down'
          : kernel.reason || `it did not answer kernel_info within ${timeout} s (--kernel-startup-timeout)`;
        await kernel.shutdown();
        throw new KernelStartError(`kernel ${name} did not start: ${why}`);
      }
      if (seedApplies(this.#options.seed, kernel)) {
        try {
          await runSeed(kernel, this.#options.seed);
        } catch (error) {
          await kernel.shutdown();
          throw new KernelStartError(errorMessage(error));
        }
      }
      ok = true;
      metrics.kernelStarts.labels({ kernelspec: name }).inc();
      metrics.kernelStartSeconds.labels({ kernelspec: name }).observe((performance.now() - started) / 1000);
      return kernel;
    } finally {
      if (!ok) metrics.kernelStartFailures.labels({ kernelspec: name }).inc();
      this.#starting.delete(kernel);
    }
  }
}
