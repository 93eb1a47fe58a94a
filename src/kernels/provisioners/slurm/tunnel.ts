/**
 * The gateway's end of a `tunnel` kernel: five local endpoints, one per channel, where the gateway's
 * own ZeroMQ sockets connect. Each connection accepted on one becomes a stream over the launcher's
 * connection, which the launcher joins to the kernel's port for that channel on the node's loopback.
 * The endpoints are Unix sockets in a private folder (0700), so no other user of the gateway's host
 * can reach them (on Windows, loopback TCP ports). They stay the same across restarts, as a local
 * kernel's ports do.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Link } from '../../../launch/link.ts';
import { CHANNELS, type Channel } from '../../../launch/ports.ts';
import { pipeSocket } from '../../../launch/streams.ts';
import type { ConnectionInfo } from '../../../messaging/message.ts';
import { processAlive } from '../local.ts';
import { choosePorts, releasePorts, type Ports } from '../ports.ts';

const LOOPBACK = '127.0.0.1';
const UNIX_SOCKETS = process.platform !== 'win32';
const FOLDER_PREFIX = 'kg-tunnel-';
let staleRemoved = false;

/** Folders a gateway of this user left behind when it was killed (SIGKILL): its pid is in their name. */
function removeStaleFolders(): void {
  if (staleRemoved) return;
  staleRemoved = true;
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(FOLDER_PREFIX)) continue;
    const pid = Number(/^\d+/.exec(name.slice(FOLDER_PREFIX.length))?.[0]);
    if (!pid || pid === process.pid || processAlive(pid)) continue;
    const folder = join(tmpdir(), name);
    try {
      if (statSync(folder).uid === process.getuid?.()) rmSync(folder, { recursive: true, force: true });
    } catch {
      /* gone meanwhile, or not ours */
    }
  }
}

export class GatewayTunnel {
  #link: Link | undefined;
  readonly #sockets = new Set<Socket>();
  #closed = false;

  private constructor(
    /** Where the gateway's sockets connect: ip (a path prefix for ipc), transport and ports. */
    readonly endpoint: Pick<ConnectionInfo, 'ip' | 'transport'> & Ports,
    private readonly servers: Server[],
    private readonly folder: string | undefined,
  ) {
    CHANNELS.forEach((channel, i) => servers[i].on('connection', (socket) => this.#accept(channel, socket)));
  }

  static async open(): Promise<GatewayTunnel> {
    if (UNIX_SOCKETS) {
      removeStaleFolders();
      const folder = mkdtempSync(join(tmpdir(), `${FOLDER_PREFIX}${process.pid}-`));
      const prefix = join(folder, 'k');
      // jupyter_client's ipc convention: <prefix>-<n>, the "port" numbering the channels.
      const ports = Object.fromEntries(CHANNELS.map((channel, i) => [`${channel}_port`, i + 1])) as Ports;
      const servers = await Promise.all(CHANNELS.map((channel) => listen({ path: `${prefix}-${ports[`${channel}_port`]}` })));
      if (servers.every((server): server is Server => server !== undefined)) return new GatewayTunnel({ ip: prefix, transport: 'ipc', ...ports }, servers, folder);
      for (const server of servers) server?.close();
      rmSync(folder, { recursive: true, force: true });
      throw new Error(`cannot listen on Unix sockets in ${folder} for the tunnel`);
    }
    for (let attempt = 1; ; attempt++) {
      const ports = await choosePorts(LOOPBACK);
      const servers = await Promise.all(CHANNELS.map((channel) => listen({ host: LOOPBACK, port: ports[`${channel}_port`], exclusive: true })));
      if (servers.every((server): server is Server => server !== undefined)) return new GatewayTunnel({ ip: LOOPBACK, transport: 'tcp', ...ports }, servers, undefined);
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
    if (this.#closed) return;
    this.#closed = true;
    this.#link = undefined;
    for (const server of this.servers) server.close();
    for (const socket of this.#sockets) socket.destroy();
    if (this.folder) rmSync(this.folder, { recursive: true, force: true });
    else releasePorts(this.endpoint);
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

function listen(options: { path: string } | { host: string; port: number; exclusive: boolean }): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(options, () => resolve(server));
  });
}
