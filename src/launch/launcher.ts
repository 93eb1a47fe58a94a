/**
 * The launcher's work once it is connected to the gateway: start the kernel when asked (again on a
 * restart, on the same ports and key), report when it listens and when it exits, forward signals,
 * carry the tunnel's streams to the kernel's ports, and end everything, the job with it, when the
 * gateway says stop, when Slurm ends the job, or when the connection to the gateway is lost.
 */
import { existsSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { connect, isIPv4 } from 'node:net';
import { KernelProcess, PrivateDir } from './kernel-process.ts';
import type { ControlMessage, Link } from './link.ts';
import { isKernelSignal, readStart, type LauncherMessage, type StartMessage } from './messages.ts';
import { CHANNELS, choosePorts, waitListening, type Channel, type KernelPorts } from './ports.ts';
import { pipeReadable, pipeSocket } from './streams.ts';

/** The launcher's own variables: read once, never passed on. */
export const LAUNCH_VARIABLES = ['KG_LAUNCH_ADDRESS', 'KG_LAUNCH_KERNEL_ID', 'KG_LAUNCH_SECRET'] as const;
const STOP_GRACE_MS = 3000;

export class Launcher {
  /** Settles with the launcher's exit code once it is done. */
  readonly done: Promise<number>;
  readonly #link: Link;
  /** The address the gateway reached us from, where a direct kernel listens. */
  readonly #nodeAddress: string;
  readonly #dir = new PrivateDir();
  readonly #log: (line: string) => void;
  #finish!: (code: number) => void;
  #kernel: KernelProcess | undefined;
  #ip = '';
  #ports: KernelPorts | undefined;
  #generation = 0;
  #queue: Promise<void> = Promise.resolve();
  #ending = false;

  constructor(link: Link, log: (line: string) => void) {
    this.#link = link;
    this.#log = log;
    this.#nodeAddress = (link.localAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
    this.done = new Promise((resolve) => (this.#finish = resolve));
    link.onControl = (message) => this.#onControl(message);
    link.streams.onopen = (stream) => {
      const channel = stream.label as Channel;
      if (!this.#ports || !CHANNELS.includes(channel)) return false;
      pipeSocket(connect({ host: this.#ip, port: this.#ports[`${channel}_port`] }), stream);
      return true;
    };
    void link.closed.then((error) => {
      if (!this.#ending) void this.#end(1, `lost the connection to the gateway${error ? ` (${error.message})` : ''}`);
    });
    link.start();
    this.#send({ type: 'hello', node: hostname(), address: this.#nodeAddress, pid: process.pid });
  }

  /** Slurm ends the job (scancel, wall time): say so, so the gateway does not try a restart, then go. */
  terminatedBy(signal: string): void {
    if (this.#ending) return;
    this.#send({ type: 'ending', signal });
    void this.#end(128 + (signal === 'SIGTERM' ? 15 : 1), `${signal} received: the job is ending`);
  }

  #send(message: LauncherMessage): void {
    this.#link.send(message);
  }

  #onControl(message: ControlMessage): void {
    if (this.#ending) return;
    switch (message.type) {
      case 'start': {
        const start = readStart(message);
        if (typeof start === 'string') return this.#send({ type: 'start_failed', message: `bad start message: ${start}` });
        const generation = ++this.#generation;
        this.#queue = this.#queue.then(() => this.#start(start, generation)).catch((error: Error) => {
          this.#send({ type: 'start_failed', message: error.message });
        });
        return;
      }
      case 'signal':
        if (isKernelSignal(message.signal)) this.#kernel?.signal(message.signal);
        return;
      case 'stop':
        void this.#end(0, 'the gateway asked to stop');
        return;
      default:
        this.#log(`ignored a control message of type ${JSON.stringify(message.type).slice(0, 40)}`);
    }
  }

  async #start(start: StartMessage, generation: number): Promise<void> {
    if (generation !== this.#generation || this.#ending) return;
    if (this.#kernel && !this.#kernel.exited) await this.#kernel.stop(STOP_GRACE_MS);
    const ip = start.transport === 'direct' ? this.#nodeAddress : '127.0.0.1';
    // ZeroMQ endpoints here and in the gateway are written for IPv4.
    if (!isIPv4(ip)) throw new Error(`the direct transport needs an IPv4 address, and this node reached the gateway from ${ip}; use the tunnel transport`);
    if (!this.#ports || start.new_ports || ip !== this.#ip) this.#ports = await choosePorts(ip);
    this.#ip = ip;
    const ports = this.#ports;
    const file = this.#dir.writeFile(
      'kernel.json',
      JSON.stringify({ ...ports, ip, key: start.key, transport: 'tcp', signature_scheme: start.signature_scheme, kernel_name: start.kernel_name }, null, 2),
    );
    const argv = start.argv.map((arg) => arg.replaceAll('{connection_file}', file));
    const kernel = new KernelProcess(argv, kernelEnv(start.env), this.#workingDir(start.cwd));
    this.#kernel = kernel;
    try {
      await kernel.started();
    } catch (error) {
      throw new Error(`cannot start the kernel (${argv[0]}): ${(error as Error).message}`);
    }
    for (const name of ['stdout', 'stderr'] as const) {
      const stream = this.#link.streams.open(name);
      if (stream) pipeReadable(kernel[name], stream);
      else kernel[name].resume();
    }
    let listening = false;
    void kernel.ended.then((status) => {
      if (this.#ending) return;
      if (listening) this.#send({ type: 'exited', pid: kernel.pid!, code: status.code, signal: status.signal });
      else if (generation === this.#generation) {
        const how = status.signal ? `signal ${status.signal}` : `exit code ${status.code}`;
        this.#send({ type: 'start_failed', message: `the kernel exited (${how}) before it listened on its ports` });
      }
    });
    listening = await waitListening(ip, ports, () => !kernel.exited && generation === this.#generation && !this.#ending);
    if (listening) this.#send({ type: 'started', pid: kernel.pid!, ip, ports });
  }

  /** The requested folder when it exists on this node; else where the job started. */
  #workingDir(cwd: string): string {
    if (cwd && existsSync(cwd) && statSync(cwd).isDirectory()) return cwd;
    this.#log(`the kernel's folder ${JSON.stringify(cwd)} does not exist on this node; it starts in ${process.cwd()}`);
    return process.cwd();
  }

  async #end(code: number, why: string): Promise<void> {
    if (this.#ending) return;
    this.#ending = true;
    this.#log(`stopping: ${why}`);
    const kernel = this.#kernel;
    if (kernel) {
      // Without the gateway nobody waits for a polite end.
      const status = await kernel.stop(this.#link.isOpen ? STOP_GRACE_MS : 500);
      if (this.#link.isOpen && kernel.pid !== undefined) this.#send({ type: 'exited', pid: kernel.pid, code: status.code, signal: status.signal });
    }
    this.#dir.remove();
    this.#link.end();
    await Promise.race([this.#link.closed, new Promise((resolve) => setTimeout(resolve, 2000))]);
    this.#link.destroy();
    this.#finish(code);
  }
}

/**
 * The kernel's environment: what the gateway composed, the job's own SLURM_* variables (how many
 * CPUs it has, its id), and this launcher as the parent a kernel watches (JPY_PARENT_PID).
 */
export function kernelEnv(composed: Record<string, string>, own: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...composed };
  for (const [name, value] of Object.entries(own)) if (/^SLURMD?_/.test(name) && value !== undefined) env[name] = value;
  for (const name of LAUNCH_VARIABLES) delete env[name];
  env.JPY_PARENT_PID = String(process.pid);
  return env;
}
