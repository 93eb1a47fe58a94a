/**
 * The gateway's end of one launcher's connection: ask it to start the kernel and wait for its answer,
 * know which kernel process runs and settle its end when the launcher reports it (or the connection
 * goes), pass signals on, and take the kernel's stdout and stderr into the log.
 */
import type { Logger } from '../../../log.ts';
import type { ControlMessage, Link } from '../../../launch/link.ts';
import { isKernelSignal, readStarted, type GatewayMessage, type StartMessage } from '../../../launch/messages.ts';
import type { KernelPorts } from '../../../launch/ports.ts';
import type { Stream } from '../../../launch/streams.ts';
import type { KernelOutput } from '../output.ts';

/** How a kernel process ended, as far as the launcher could tell. */
export interface ProcessEnd {
  code: number | null;
  signal: string | null;
  /** The job is ending (Slurm signalled the launcher), or the connection to the launcher was lost. */
  jobEnd?: 'ending' | 'lost';
}

export interface StartedKernel {
  pid: number;
  ip: string;
  ports: KernelPorts;
  ended: Promise<ProcessEnd>;
}

/** How long the end of a process's output is awaited once the launcher reported its exit. */
const OUTPUT_GRACE_MS = 1000;

export class LauncherSession {
  /** The node's name and the address the gateway reached it from, as the launcher said. */
  node = '';
  /** Set when Slurm is ending the job: the signal the launcher got. */
  ending: string | undefined;
  readonly #link: Link;
  readonly #output: KernelOutput;
  readonly #log: Logger;
  readonly #kernelId: string;
  #starting: { resolve: (started: StartedKernel) => void; reject: (error: Error) => void } | undefined;
  #current: { pid: number; settle: (end: ProcessEnd) => void } | undefined;
  readonly #outputs = new Set<Stream>();

  constructor(link: Link, kernelId: string, output: KernelOutput, log: Logger) {
    this.#link = link;
    this.#kernelId = kernelId;
    this.#output = output;
    this.#log = log;
    link.onControl = (message) => this.#onControl(message);
    link.streams.onopen = (stream) => this.#takeOutput(stream);
    void link.closed.then((error) => {
      const why = error ? `the connection to the launcher was lost (${error.message})` : 'the launcher closed its connection';
      this.#starting?.reject(new Error(why));
      this.#starting = undefined;
      this.#settle({ code: null, signal: null, jobEnd: this.ending ? 'ending' : 'lost' });
    });
    link.start();
  }

  get open(): boolean {
    return this.#link.isOpen;
  }

  /** Start the kernel (again); resolves once it listens on its ports. */
  start(message: StartMessage, timeoutMs: number): Promise<StartedKernel> {
    if (!this.open) return Promise.reject(new Error('the launcher is no longer connected'));
    this.#starting?.reject(new Error('superseded by another start'));
    return new Promise<StartedKernel>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#starting = undefined;
        reject(new Error(`the launcher did not report the kernel listening within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.#starting = {
        resolve: (started) => {
          clearTimeout(timer);
          resolve(started);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.#send(message);
    });
  }

  signal(signal: NodeJS.Signals): void {
    if (isKernelSignal(signal)) this.#send({ type: 'signal', signal });
  }

  /** Ask the launcher to stop the kernel and end; resolves once it is gone (or after `waitMs`). */
  async stop(waitMs: number): Promise<void> {
    if (!this.open) return;
    this.#send({ type: 'stop' });
    const timer = new Promise<void>((resolve) => setTimeout(resolve, waitMs).unref());
    await Promise.race([this.#link.closed, timer]);
    this.#link.destroy();
  }

  /** Last resort: drop the connection (the launcher then kills the kernel and ends the job). */
  drop(): void {
    this.#link.destroy();
  }

  #send(message: GatewayMessage): void {
    this.#link.send(message);
  }

  #onControl(message: ControlMessage): void {
    switch (message.type) {
      case 'hello':
        if (typeof message.node === 'string') this.node = message.node.slice(0, 255);
        return;
      case 'started': {
        const started = readStarted(message);
        if (!started || !this.#starting) return;
        const starting = this.#starting;
        this.#starting = undefined;
        this.#settle({ code: null, signal: null }); // a predecessor never reported is over by now
        const ended = new Promise<ProcessEnd>((settle) => (this.#current = { pid: started.pid, settle }));
        starting.resolve({ ...started, ended });
        return;
      }
      case 'start_failed': {
        const why = typeof message.message === 'string' ? message.message.slice(0, 2000) : 'no reason given';
        const starting = this.#starting;
        this.#starting = undefined;
        // Its last words may still be on their way.
        void this.#outputsDone().then(() => starting?.reject(new Error(why)));
        return;
      }
      case 'exited':
        if (message.pid !== this.#current?.pid) return;
        void this.#outputsDone().then(() =>
          this.#settle({
            code: typeof message.code === 'number' ? message.code : null,
            signal: typeof message.signal === 'string' ? message.signal : null,
            jobEnd: this.ending ? 'ending' : undefined,
          }),
        );
        return;
      case 'ending':
        this.ending = typeof message.signal === 'string' ? message.signal.slice(0, 20) : 'a signal';
        this.#log.warn(`kernel ${this.#kernelId}: its Slurm job is being ended (the launcher got ${this.ending})`);
        return;
      default:
        this.#log.debug(`kernel ${this.#kernelId}: ignored a launcher message of type ${JSON.stringify(message.type).slice(0, 40)}`);
    }
  }

  #settle(end: ProcessEnd): void {
    const current = this.#current;
    this.#current = undefined;
    current?.settle(end);
  }

  #takeOutput(stream: Stream): boolean {
    const name = stream.label;
    if (name !== 'stdout' && name !== 'stderr') return false;
    this.#outputs.add(stream);
    stream.ondata = (chunk, consumed) => {
      this.#output.push(name, chunk);
      consumed();
    };
    stream.onclose = () => {
      this.#outputs.delete(stream);
      this.#output.end(name);
    };
    return true;
  }

  /** Resolves once the output streams open now have ended (or after a short grace). */
  async #outputsDone(): Promise<void> {
    const deadline = Date.now() + OUTPUT_GRACE_MS;
    while (this.#outputs.size > 0 && Date.now() < deadline && this.open) await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
