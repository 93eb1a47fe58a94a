/**
 * The registry of running kernels: start, look up, list, shut down. Knows nothing of HTTP.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import type { Logger } from '../log.ts';
import { Kernel } from './kernel.ts';
import { defaultKernelName, type KernelSpecStore } from './specs.ts';

export class NoSuchKernelSpecError extends Error {
  constructor(readonly requested: string, readonly available: string[]) {
    super(`No such kernelspec: "${requested}". Available kernelspecs: ${available.length ? available.join(', ') : '(none)'}`);
  }
}

export class InvalidPathError extends Error {}

export interface StartRequest {
  name?: string;
  /** API path (relative to the root dir) used as the kernel's working directory. */
  path?: string;
  /** Variables from the client; when given, the kernel gets PATH plus these KERNEL_* variables only. */
  env?: Record<string, string>;
}

export interface ManagerOptions {
  specs: KernelSpecStore;
  /** '' = python3 if installed, else the first kernelspec. */
  defaultKernelName: string;
  runtimeDir: string;
  /** Kernels' working directories must lie inside this folder. */
  rootDir: string;
  kernelInfoTimeout: number;
  log: Logger;
  /** The gateway's environment (kernels inherit it when a start request has no env). */
  env?: NodeJS.ProcessEnv;
}

export class KernelManager {
  readonly #kernels = new Map<string, Kernel>();
  readonly #options: ManagerOptions;
  /** Called with each kernel as it is added; the bridge attaches here. */
  readonly addedListeners = new Set<(kernel: Kernel) => void>();

  constructor(options: ManagerOptions) {
    this.#options = options;
  }

  get defaultKernelName(): string {
    return defaultKernelName(this.#options.specs, this.#options.defaultKernelName);
  }

  get(id: string): Kernel | undefined {
    return this.#kernels.get(id);
  }

  list(): Kernel[] {
    return [...this.#kernels.values()];
  }

  /** Launch a kernel; resolves once its process is spawned (it becomes ready in the background). */
  async start(request: StartRequest = {}): Promise<Kernel> {
    const name = request.name || this.defaultKernelName;
    const spec = this.#options.specs.get(name);
    if (!spec) throw new NoSuchKernelSpecError(name, this.#options.specs.names());
    const kernel = new Kernel({
      id: randomUUID(),
      spec,
      runtimeDir: this.#options.runtimeDir,
      cwd: this.#workingDir(request.path),
      env: this.#baseEnv(request.env),
      ip: '127.0.0.1',
      log: this.#options.log,
      kernelInfoTimeout: this.#options.kernelInfoTimeout,
    });
    kernel.lifecycleListeners.add((event) => {
      if (event === 'dead' || event === 'shutdown') this.#kernels.delete(kernel.id);
    });
    this.#kernels.set(kernel.id, kernel);
    try {
      await kernel.start();
    } catch (error) {
      this.#kernels.delete(kernel.id);
      throw error;
    }
    for (const listener of this.addedListeners) listener(kernel);
    return kernel;
  }

  async shutdown(id: string): Promise<boolean> {
    const kernel = this.#kernels.get(id);
    if (!kernel) return false;
    await kernel.shutdown();
    this.#kernels.delete(id);
    this.#options.log.info(`kernel ${id} shut down`);
    return true;
  }

  async shutdownAll(): Promise<void> {
    await Promise.all(this.list().map((kernel) => this.shutdown(kernel.id)));
  }

  /** The environment a kernel starts from (before its kernelspec's env; see composeKernelEnv). */
  #baseEnv(requested: Record<string, string> | undefined): NodeJS.ProcessEnv {
    const gatewayEnv = this.#options.env ?? process.env;
    if (!requested) return { ...gatewayEnv };
    // As the reference gateway: a client that sends env gets PATH plus its KERNEL_* variables, nothing else of ours.
    const env: NodeJS.ProcessEnv = {};
    if (gatewayEnv.PATH !== undefined) env.PATH = gatewayEnv.PATH;
    for (const [key, value] of Object.entries(requested)) {
      if (key.startsWith('KERNEL_')) env[key] = value;
    }
    return env;
  }

  /** `path` below the root dir, walked up to the nearest existing directory; never outside the root. */
  #workingDir(path: string | undefined): string {
    const root = resolve(this.#options.rootDir);
    if (!path) return root;
    const target = resolve(root, path.replace(/^\/+/, ''));
    const rel = relative(root, target);
    if (rel.startsWith('..') || isAbsolute(rel) || rel.split(sep).includes('..')) {
      throw new InvalidPathError(`path "${path}" lies outside the gateway's root directory`);
    }
    let dir = target;
    while (dir !== root && !(existsSync(dir) && statSync(dir).isDirectory())) dir = dirname(dir);
    return dir;
  }
}
