/**
 * Ports for kernels that run on this host. They are taken below the operating system's ephemeral
 * range: a ZeroMQ socket that retries a port in that range before the kernel has bound it can be
 * given that very port as its own source port and connect to itself (TCP simultaneous open), and
 * the kernel then dies with "Address already in use".
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import type { ConnectionInfo } from '../../messaging/message.ts';

export type Ports = Pick<ConnectionInfo, 'shell_port' | 'iopub_port' | 'stdin_port' | 'control_port' | 'hb_port'>;

/** Ports held by live kernels of this process, so two kernels are never given the same port. */
const reservedPorts = new Set<number>();

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
 * Five distinct free ports on `ip`, reserved for this process until `releasePorts`. Each is proven
 * free by binding it; all five stay bound until the last is found, so none is handed out twice.
 */
export async function choosePorts(ip: string): Promise<Ports> {
  const ceiling = ephemeralFloor() - 1;
  const span = ceiling - LOWEST_PORT;
  const servers: Server[] = [];
  const ports: number[] = [];
  try {
    for (let attempt = 0; ports.length < 5; attempt++) {
      if (attempt > 400) throw new Error(`cannot find five free ports on ${ip}`);
      // A system whose ephemeral range starts low, or a crowded one: let the system choose.
      const port = span < 1000 || attempt > 200 ? 0 : LOWEST_PORT + Math.floor(Math.random() * span);
      if (port !== 0 && (reservedPorts.has(port) || ports.includes(port))) continue;
      const server = await listenOn(ip, port);
      if (!server) continue;
      servers.push(server);
      const bound = (server.address() as { port: number }).port;
      if (!reservedPorts.has(bound) && !ports.includes(bound)) ports.push(bound);
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
  for (const port of ports) reservedPorts.add(port);
  const [shell_port, iopub_port, stdin_port, control_port, hb_port] = ports;
  return { shell_port, iopub_port, stdin_port, control_port, hb_port };
}

export function releasePorts(ports: Ports): void {
  for (const port of Object.values(ports)) reservedPorts.delete(port);
}
