/**
 * Ports for kernels that run on this host, below the ephemeral range (see zmq/ports.ts), and never
 * two kernels of this gateway on the same port.
 */
import type { ConnectionInfo } from '../../messaging/message.ts';
import { freePorts } from '../../zmq/ports.ts';

export type Ports = Pick<ConnectionInfo, 'shell_port' | 'iopub_port' | 'stdin_port' | 'control_port' | 'hb_port'>;

/** Ports held by live kernels of this process, so two kernels are never given the same port. */
const reservedPorts = new Set<number>();

/** Five distinct free ports on `ip`, reserved for this process until `releasePorts`. */
export async function choosePorts(ip: string): Promise<Ports> {
  const ports = await freePorts(ip, 5, (port) => reservedPorts.has(port));
  for (const port of ports) reservedPorts.add(port);
  const [shell_port, iopub_port, stdin_port, control_port, hb_port] = ports;
  return { shell_port, iopub_port, stdin_port, control_port, hb_port };
}

export function releasePorts(ports: Ports): void {
  for (const port of Object.values(ports)) reservedPorts.delete(port);
}
