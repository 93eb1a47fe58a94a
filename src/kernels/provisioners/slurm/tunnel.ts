/**
 * The gateway's end of a `tunnel` kernel: five loopback ports here, one per channel, where the
 * gateway's own ZeroMQ sockets connect. Each TCP connection accepted on one becomes a stream over
 * the launcher's connection, which the launcher joins to the kernel's port for that channel on the
 * node's loopback. The ports stay the same across restarts, as a local kernel's do.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Link } from '../../../launch/link.ts';
import { CHANNELS, type Channel } from '../../../launch/ports.ts';
import { pipeSocket } from '../../../launch/streams.ts';
import { choosePorts, releasePorts, type Ports } from '../ports.ts';

const LOOPBACK = '127.0.0.1';

export class GatewayTunnel {
  #link: Link | undefined;
  readonly #sockets = new Set<Socket>();

  private constructor(
    readonly ports: Ports,
    private readonly servers: Server[],
  ) {
    CHANNELS.forEach((channel, i) => servers[i].on('connection', (socket) => this.#accept(channel, socket)));
  }

  /** Listen on five free loopback ports (new ones are chosen if one was taken meanwhile). */
  static async open(): Promise<GatewayTunnel> {
    for (let attempt = 1; ; attempt++) {
      const ports = await choosePorts(LOOPBACK);
      const servers = await Promise.all(CHANNELS.map((channel) => listen(ports[`${channel}_port`])));
      if (servers.every((server): server is Server => server !== undefined)) return new GatewayTunnel(ports, servers);
      for (const server of servers) server?.close();
      releasePorts(ports);
      if (attempt >= 5) throw new Error('cannot listen on five loopback ports for the tunnel');
    }
  }

  /** Connections accepted from now on go over `link` (the launcher's connection). */
  attach(link: Link): void {
    this.#link = link;
  }

  close(): void {
    this.#link = undefined;
    for (const server of this.servers) server.close();
    for (const socket of this.#sockets) socket.destroy();
    releasePorts(this.ports);
  }

  #accept(channel: Channel, socket: Socket): void {
    socket.on('error', () => undefined);
    const stream = this.#link?.isOpen ? this.#link.streams.open(channel) : undefined;
    if (!stream) {
      socket.destroy();
      return;
    }
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    pipeSocket(socket, stream);
  }
}

function listen(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen({ host: LOOPBACK, port, exclusive: true }, () => resolve(server));
  });
}
