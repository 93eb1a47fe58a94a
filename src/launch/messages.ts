/**
 * The control messages of the launcher protocol (JSON objects on stream 0), and the checks each
 * side applies to what it receives: a malformed message is refused, never trusted.
 */
import { CHANNELS, type KernelPorts } from './ports.ts';

/** Gateway → launcher: start the kernel (again, after a restart: same ports unless new_ports). */
export interface StartMessage {
  type: 'start';
  /** The kernelspec's argv; `{connection_file}` is left for the launcher to fill in. */
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  key: string;
  signature_scheme: string;
  kernel_name: string;
  /** tunnel: the kernel listens on the node's loopback; direct: on the node's address. */
  transport: 'tunnel' | 'direct';
  new_ports: boolean;
}

/** Gateway → launcher. */
export type GatewayMessage = StartMessage | { type: 'signal'; signal: KernelSignal } | { type: 'stop' };

/** Launcher → gateway. */
export type LauncherMessage =
  | { type: 'hello'; node: string; address: string; pid: number }
  | { type: 'started'; pid: number; ip: string; ports: KernelPorts }
  | { type: 'start_failed'; message: string }
  | { type: 'exited'; pid: number; code: number | null; signal: string | null }
  /** The job is being ended from outside (scancel, wall time): the kernel goes, no restart is possible. */
  | { type: 'ending'; signal: string };

export const KERNEL_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGKILL', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2'] as const;
export type KernelSignal = (typeof KERNEL_SIGNALS)[number];

export const isKernelSignal = (value: unknown): value is KernelSignal => (KERNEL_SIGNALS as readonly unknown[]).includes(value);

const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every((item) => typeof item === 'string');

function isStringRecord(value: unknown): value is Record<string, string> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string');
}

/** The start message, or what is wrong with it. */
export function readStart(message: Record<string, unknown>): StartMessage | string {
  const m = message as Partial<StartMessage>;
  if (!isStringArray(m.argv) || m.argv.length === 0 || m.argv.some((a) => a.includes('\0'))) return 'argv must be a non-empty array of strings';
  if (!isStringRecord(m.env)) return 'env must be an object of strings';
  if (typeof m.cwd !== 'string') return 'cwd must be a string';
  if (typeof m.key !== 'string' || typeof m.signature_scheme !== 'string' || typeof m.kernel_name !== 'string') {
    return 'key, signature_scheme and kernel_name must be strings';
  }
  if (m.transport !== 'tunnel' && m.transport !== 'direct') return 'transport must be "tunnel" or "direct"';
  return { ...m, new_ports: m.new_ports === true } as StartMessage;
}

const isPort = (value: unknown): value is number => Number.isInteger(value) && (value as number) > 0 && (value as number) < 65536;

/** The launcher's report that the kernel listens, or undefined when it is malformed. */
export function readStarted(message: Record<string, unknown>): Extract<LauncherMessage, { type: 'started' }> | undefined {
  const { pid, ip, ports } = message;
  if (!Number.isInteger(pid) || typeof ip !== 'string' || ip.length > 255 || typeof ports !== 'object' || ports === null) return undefined;
  const all = CHANNELS.map((channel) => (ports as Record<string, unknown>)[`${channel}_port`]);
  if (!all.every(isPort)) return undefined;
  return { type: 'started', pid: pid as number, ip, ports: Object.fromEntries(CHANNELS.map((c, i) => [`${c}_port`, all[i]])) as KernelPorts };
}
