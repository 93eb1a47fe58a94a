/**
 * `kernelgateway launch`: the program a Slurm job runs. Everything it needs to find and prove itself
 * to the gateway comes in its environment (never on a command line others can read): the gateway's
 * address, the kernel id and the kernel's secret. Everything else (the kernel's argv, environment,
 * folder, key) arrives over the authenticated connection. Its exit ends the job.
 */
import { connect, type Socket } from 'node:net';
import { connectAsLauncher } from './handshake.ts';
import { LAUNCH_VARIABLES, Launcher } from './launcher.ts';
import { parseSecret } from './protocol.ts';

/** How long the gateway is tried for before the job gives up (it may be restarting its listener). */
const CONNECT_PATIENCE_MS = 10_000;

function log(line: string): void {
  process.stderr.write(`[kernelgateway launch ${new Date().toISOString()}] ${line}\n`);
}

/** "host:port" or "[v6 address]:port". */
export function parseAddress(text: string | undefined): { host: string; port: number } | undefined {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text ?? '');
  if (!match) return undefined;
  const port = Number(match[3]);
  return port > 0 && port < 65536 ? { host: match[1] ?? match[2], port } : undefined;
}

function dial(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Runs the launcher; resolves with the exit code the job should end with. */
export async function runLauncher(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const address = parseAddress(env.KG_LAUNCH_ADDRESS);
  const kernelId = env.KG_LAUNCH_KERNEL_ID ?? '';
  const secret = parseSecret(env.KG_LAUNCH_SECRET);
  // The kernel and anything else started from here must not inherit them.
  for (const name of LAUNCH_VARIABLES) delete env[name];
  if (!address || !secret || !/^[A-Za-z0-9-]{1,64}$/.test(kernelId)) {
    log('KG_LAUNCH_ADDRESS (host:port), KG_LAUNCH_KERNEL_ID and KG_LAUNCH_SECRET (64 hex digits) must be set: this command is run by the gateway, in a job');
    return 2;
  }
  const deadline = Date.now() + CONNECT_PATIENCE_MS;
  let socket: Socket | undefined;
  for (let wait = 200; !socket; wait = Math.min(wait * 2, 2000)) {
    try {
      socket = await dial(address.host, address.port);
    } catch (error) {
      if (Date.now() + wait > deadline) {
        log(`cannot reach the gateway at ${address.host}:${address.port}: ${(error as Error).message}`);
        return 1;
      }
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
  let launcher: Launcher;
  try {
    launcher = new Launcher(await connectAsLauncher(socket, kernelId, secret), log);
  } catch (error) {
    log(`the gateway at ${address.host}:${address.port} refused this launcher: ${(error as Error).message}`);
    return 1;
  }
  log(`connected to the gateway at ${address.host}:${address.port} for kernel ${kernelId}`);
  // SIGTERM: Slurm ends the job (scancel, wall time). SIGINT and SIGHUP are for the kernel, not us.
  process.on('SIGTERM', () => launcher.terminatedBy('SIGTERM'));
  for (const signal of ['SIGINT', 'SIGHUP'] as const) process.on(signal, () => log(`${signal} ignored (signals reach the kernel through the gateway)`));
  return launcher.done;
}
