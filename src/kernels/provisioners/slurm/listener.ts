/**
 * The one listener where the launchers of every Slurm kernel connect back to the gateway. It starts
 * with the first Slurm kernel. A connection is handed to its kernel only after the launcher proved
 * it holds that kernel's secret; each secret lets one launcher in, once. Before that, a connection
 * costs little and not for long: a bounded number may be in their handshake at once, each for at
 * most ten seconds and a few hundred bytes.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from '../../../log.ts';
import { acceptLauncher } from '../../../launch/handshake.ts';
import type { Link } from '../../../launch/link.ts';

/** Connections allowed in their handshake at once; more are closed at once. */
const MAX_HANDSHAKES = 64;

export interface ListenerOptions {
  /** Interface to listen on ('': every interface). */
  ip: string;
  /** 0: any free port. */
  port: number;
  log: Logger;
}

interface Waiter {
  secret: Buffer;
  deliver: (link: Link) => void;
}

export class LaunchListener {
  readonly #options: ListenerOptions;
  readonly #waiting = new Map<string, Waiter>();
  #server: Promise<Server> | undefined;
  #handshakes = 0;

  constructor(options: ListenerOptions) {
    this.#options = options;
  }

  /** The port launchers connect to (the listener starts on the first call). */
  async port(): Promise<number> {
    const server = await (this.#server ??= this.#listen());
    return (server.address() as { port: number }).port;
  }

  /**
   * Wait for the launcher of `kernelId`, which must prove it holds `secret`. `link` settles with its
   * connection; `cancel` stops waiting (the secret is then worthless).
   */
  expect(kernelId: string, secret: Buffer): { link: Promise<Link>; cancel: () => void } {
    let deliver!: (link: Link) => void;
    const link = new Promise<Link>((resolve) => (deliver = resolve));
    this.#waiting.set(kernelId, { secret, deliver });
    return { link, cancel: () => this.#waiting.delete(kernelId) };
  }

  async close(): Promise<void> {
    this.#waiting.clear();
    const server = await this.#server?.catch(() => undefined);
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #listen(): Promise<Server> {
    const server = createServer((socket) => this.#accept(socket));
    return new Promise((resolve, reject) => {
      server.once('error', (error) => {
        this.#server = undefined;
        reject(new Error(`cannot listen for Slurm launchers on ${this.#options.ip || '*'}:${this.#options.port}: ${error.message}`));
      });
      server.listen({ host: this.#options.ip || undefined, port: this.#options.port }, () => {
        const address = server.address() as { address: string; port: number };
        this.#options.log.info(`listening for Slurm kernel launchers on ${address.address}:${address.port}`);
        resolve(server);
      });
    });
  }

  #accept(socket: Socket): void {
    socket.on('error', () => undefined);
    if (this.#handshakes >= MAX_HANDSHAKES) {
      socket.destroy();
      return;
    }
    this.#handshakes++;
    const from = `${socket.remoteAddress}:${socket.remotePort}`;
    acceptLauncher(socket, (kernelId) => this.#waiting.get(kernelId)?.secret).then(
      ({ kernelId, link }) => {
        this.#handshakes--;
        const waiter = this.#waiting.get(kernelId);
        // Another launcher of the same kernel got in first, or the kernel stopped waiting meanwhile.
        if (!waiter) return link.destroy();
        this.#waiting.delete(kernelId);
        waiter.deliver(link);
      },
      (error: Error) => {
        this.#handshakes--;
        this.#options.log.warn(`refused a launcher connection from ${from}: ${error.message}`);
      },
    );
  }
}
