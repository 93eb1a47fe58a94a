/**
 * The kernel's five ports on the node, below the ephemeral range (zmq/ports.ts): there, no TCP
 * client (the gateway's ZeroMQ sockets when gateway and job share a host, or the launcher's own
 * probe) can be handed one of them as its source port and connect to itself. They are reported
 * only once the kernel listens on all of them (waitListening).
 */
import { connect } from 'node:net';
import { freePorts } from '../zmq/ports.ts';

export const CHANNELS = ['shell', 'iopub', 'stdin', 'control', 'hb'] as const;
export type Channel = (typeof CHANNELS)[number];
export type KernelPorts = Record<`${Channel}_port`, number>;

/** Five distinct ports free on `ip` now. */
export async function choosePorts(ip: string): Promise<KernelPorts> {
  const ports = await freePorts(ip, CHANNELS.length);
  return Object.fromEntries(CHANNELS.map((channel, i) => [`${channel}_port`, ports[i]])) as KernelPorts;
}

/** True once something accepts a TCP connection on ip:port. */
function accepts(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: ip, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Resolves true once the kernel listens on every port, false when `stillStarting` says to give up
 * (the kernel exited, or another start replaced this one).
 */
export async function waitListening(ip: string, ports: KernelPorts, stillStarting: () => boolean): Promise<boolean> {
  const pending = new Set(Object.values(ports));
  for (let wait = 20; pending.size > 0; wait = Math.min(wait * 2, 200)) {
    if (!stillStarting()) return false;
    for (const port of [...pending]) if (await accepts(ip, port)) pending.delete(port);
    if (pending.size > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  return stillStarting();
}
