/**
 * `local-provisioner`: the kernel is a child process of the gateway, in its own process group,
 * with a private connection file in the runtime directory. A restart reuses the ports and the file.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Logger } from '../../log.ts';
import type { ConnectionInfo } from '../../messaging/message.ts';
import { composeKernelEnv, substituteArgv } from '../kernel-command.ts';
import { removeFile, signalGroup, spawnInGroup, writePrivateFile } from '../../process-group.ts';
import { KernelOutput } from './output.ts';
import { choosePorts, releasePorts, type Ports } from './ports.ts';
import { DEFAULT_PROVISIONER, type ExitStatus, type KernelProvisioner, type LaunchedProcess, type LaunchRequest, type ProvisionerContext } from './provisioner.ts';

/** The default provisioner's name, as jupyter_client spells it. */
export const LOCAL_PROVISIONER = DEFAULT_PROVISIONER;

export class LocalProvisioner implements KernelProvisioner {
  readonly name = LOCAL_PROVISIONER;
  readonly connectionFile: string;
  readonly #context: ProvisionerContext;
  readonly #files: ConnectionFileRegistry;
  readonly #log: Logger;
  #ports: Ports | undefined;
  #child: ChildProcess | undefined;
  readonly #output: KernelOutput;

  constructor(context: ProvisionerContext, files: ConnectionFileRegistry) {
    this.#context = context;
    this.#files = files;
    this.#log = context.log;
    this.#output = new KernelOutput(context.kernelId, context.log);
    this.connectionFile = join(context.runtimeDir, `kernel-${context.kernelId}.json`);
  }

  async launch(request: LaunchRequest): Promise<LaunchedProcess> {
    const { spec } = this.#context;
    if (!this.#ports || request.newPorts) {
      if (this.#ports) releasePorts(this.#ports);
      this.#ports = undefined;
      this.#ports = await choosePorts(this.#context.ip);
    }
    const connection: ConnectionInfo = {
      ...this.#ports,
      ip: this.#context.ip,
      key: request.key,
      transport: 'tcp',
      signature_scheme: request.signatureScheme,
      kernel_name: spec.name,
    };
    writePrivateFile(this.connectionFile, JSON.stringify(connection, null, 2));
    this.#files.add(this.connectionFile);
    const argv = substituteArgv(spec.spec.argv, {
      connection_file: realpathSync(this.connectionFile),
      resource_dir: spec.resourceDir,
      cwd: request.cwd,
    });
    const env = composeKernelEnv(request.env, spec.spec.env, spec.spec.language);
    const child = spawnInGroup(argv, env, request.cwd);
    this.#capture(child);
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (error) => reject(new Error(`cannot start kernel ${spec.name} (${argv[0]}): ${error.message}`)));
    });
    // Later errors (a signal that cannot be delivered) must not go unhandled.
    child.on('error', (error) => this.#log.warn(`kernel ${this.#context.kernelId}: process error: ${error.message}`));
    this.#child = child;
    const exited = new Promise<ExitStatus>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
      else child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    return { connection, exited, pid: child.pid };
  }

  async signal(signal: NodeJS.Signals): Promise<void> {
    if (this.#child) signalGroup(this.#child, signal);
  }

  async cleanup(): Promise<void> {
    if (this.#child) signalGroup(this.#child, 'SIGKILL');
    removeFile(this.connectionFile);
    this.#files.delete(this.connectionFile);
    if (this.#ports) releasePorts(this.#ports);
    this.#ports = undefined;
  }

  killNow(): void {
    if (this.#child) signalGroup(this.#child, 'SIGKILL');
    removeFile(this.connectionFile);
  }

  lastOutput(): string {
    return this.#output.tail;
  }

  /** The kernel's stdout and stderr go to the log line by line, escaped and collapsed when they repeat. */
  #capture(child: ChildProcess): void {
    this.#output.reset();
    for (const name of ['stdout', 'stderr'] as const) {
      const stream = child[name];
      if (!stream) continue;
      stream.on('data', (chunk: Buffer) => this.#output.push(name, chunk));
      stream.on('end', () => this.#output.end(name));
      stream.on('error', () => undefined);
    }
  }
}

/**
 * The connection files this gateway wrote, listed in `kernelgateway-<pid>.json` in the runtime
 * directory (kernels rewrite their connection files, so a mark inside them would not survive).
 * A gateway killed without a chance to clean up leaves the list behind; the next gateway on the
 * same runtime directory removes what it names (see removeStaleConnectionFiles).
 */
export class ConnectionFileRegistry {
  readonly #path: string;
  readonly #names = new Set<string>();

  constructor(readonly runtimeDir: string) {
    this.#path = join(runtimeDir, `${REGISTRY_PREFIX}${process.pid}.json`);
  }

  add(path: string): void {
    this.#names.add(basename(path));
    this.#save();
  }

  delete(path: string): void {
    if (this.#names.delete(basename(path))) this.#save();
  }

  /** The gateway is done with the runtime directory. */
  close(): void {
    this.#names.clear();
    removeFile(this.#path);
  }

  #save(): void {
    if (this.#names.size === 0) return removeFile(this.#path);
    const temp = `${this.#path}.tmp`;
    writeFileSync(temp, JSON.stringify({ pid: process.pid, connection_files: [...this.#names] }), { mode: 0o600 });
    renameSync(temp, this.#path);
  }
}

const REGISTRY_PREFIX = 'kernelgateway-';

/**
 * Connection files that an earlier gateway (killed without a chance to clean up) left for kernels
 * that no longer run. Only files such a gateway listed are touched: files of other Jupyter tools,
 * of a gateway still running, or of a kernel process still alive are left alone. Returns the names
 * removed.
 */
export function removeStaleConnectionFiles(runtimeDir: string, log?: Logger): string[] {
  let names: string[];
  try {
    names = readdirSync(runtimeDir).filter((name) => name.startsWith(REGISTRY_PREFIX) && name.endsWith('.json'));
  } catch {
    return [];
  }
  const removed: string[] = [];
  let referenced: Set<string> | undefined;
  for (const name of names) {
    const path = join(runtimeDir, name);
    let list: { pid?: unknown; connection_files?: unknown };
    try {
      list = JSON.parse(readFileSync(path, 'utf8')) as typeof list;
    } catch {
      continue;
    }
    const owner = list.pid;
    if (typeof owner !== 'number' || owner === process.pid) continue;
    if (processAlive(owner)) {
      log?.debug(`${name}: kept, the gateway that wrote it (pid ${owner}) still runs`);
      continue;
    }
    const files = Array.isArray(list.connection_files) ? list.connection_files.filter((f): f is string => typeof f === 'string') : [];
    for (const file of files) {
      // Only plain kernel-*.json names in this folder: the list is data, not a path to follow.
      if (!/^kernel-[^/\\]+\.json$/.test(file) || !existsSync(join(runtimeDir, file))) continue;
      referenced ??= filesInCommandLines();
      if (referenced.has(file)) {
        log?.debug(`${file}: kept, a running process still uses it`);
        continue;
      }
      removeFile(join(runtimeDir, file));
      removed.push(file);
    }
    removeFile(path);
  }
  return removed;
}

/** True while a process with this pid exists (whoever owns it). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Base names of kernel-*.json files named on any running process's command line (Linux; elsewhere none known). */
function filesInCommandLines(): Set<string> {
  const found = new Set<string>();
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      for (const match of readFileSync(`/proc/${entry}/cmdline`, 'utf8').matchAll(/kernel-[^/\0]+\.json/g)) found.add(match[0]);
    } catch {
      /* gone, or not ours to read */
    }
  }
  return found;
}

