/**
 * Free TCP ports for a kernel's ZeroMQ sockets, taken below the operating system's ephemeral range:
 * a ZeroMQ socket that retries a port in that range before the kernel has bound it can be given
 * that very port as its own source port and connect to itself (TCP simultaneous open), and the
 * kernel then dies with "Address already in use". Used for kernels the gateway runs and by the
 * launcher on a cluster node.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';

const LOWEST_PORT = 10_000;

/** The first port of the ephemeral range: Linux says it; elsewhere IANA's 49152 (macOS, Windows). */
function ephemeralFloor(): number {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && low > 1024) return low;
  } catch {
    /* not Linux */
  }
  return 49152;
}

function listenOn(ip: string, port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen({ host: ip, port, exclusive: true }, () => resolve(server));
  });
}

/**
 * `count` distinct ports free on `ip` now, none of which `taken` claims. Each is proven free by
 * binding it; all stay bound until the last is found, so none is handed out twice.
 */
export async function freePorts(ip: string, count: number, taken: (port: number) => boolean = () => false): Promise<number[]> {
  const ceiling = ephemeralFloor() - 1;
  const span = ceiling - LOWEST_PORT;
  const servers: Server[] = [];
  const ports: number[] = [];
  try {
    for (let attempt = 0; ports.length < count; attempt++) {
      if (attempt > 400) throw new Error(`cannot find ${count} free ports on ${ip}`);
      // A system whose ephemeral range starts low, or a crowded one: let the system choose.
      const port = span < 1000 || attempt > 200 ? 0 : LOWEST_PORT + Math.floor(Math.random() * span);
      if (port !== 0 && (taken(port) || ports.includes(port))) continue;
      const server = await listenOn(ip, port);
      if (!server) continue;
      servers.push(server);
      const bound = (server.address() as { port: number }).port;
      if (!taken(bound) && !ports.includes(bound)) ports.push(bound);
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
  return ports;
}
