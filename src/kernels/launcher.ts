/**
 * Everything about starting a kernel process: ports, the connection file, argv substitution,
 * the environment, and the spawn itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, unlinkSync, writeSync, constants } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { homedir } from 'node:os';
import type { ConnectionInfo } from '../messaging/message.ts';


export type { ConnectionInfo };
export type Ports = Pick<ConnectionInfo, 'shell_port' | 'iopub_port' | 'stdin_port' | 'control_port' | 'hb_port'>;

/** Ports held by live kernels of this process, so two kernels are never given the same port. */
const reservedPorts = new Set<number>();

function listenOnFreePort(ip: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: ip, port: 0, exclusive: true }, () => resolve(server));
  });
}

/**
 * Five distinct free ports on `ip`, reserved for this process until `releasePorts`.
 * All five probe sockets are held open together so the OS cannot hand out one port twice.
 */
export async function choosePorts(ip: string): Promise<Ports> {
  const servers: Server[] = [];
  const ports: number[] = [];
  try {
    while (ports.length < 5) {
      const server = await listenOnFreePort(ip);
      servers.push(server);
      const port = (server.address() as { port: number }).port;
      if (!reservedPorts.has(port)) ports.push(port);
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


/** Write a connection file readable by its owner only; any previous file is replaced, never reused. */
export function writeConnectionFile(path: string, info: ConnectionInfo): void {
  try {
    unlinkSync(path);
  } catch {
    /* did not exist */
  }
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    writeSync(fd, JSON.stringify(info, null, 2));
  } finally {
    closeSync(fd);
  }
}

export function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* already gone */
  }
}

/** Replace `{name}` placeholders anywhere in each argument; unknown ones stay as they are. Then expand a leading `~`. */
export function substituteArgv(argv: readonly string[], vars: Record<string, string>, home = homedir()): string[] {
  return argv.map((arg) => {
    const replaced = arg.replace(/\{([A-Za-z0-9_]+)\}/g, (whole, name: string) => (name in vars ? vars[name] : whole));
    return replaced === '~' || replaced.startsWith('~/') ? home + replaced.slice(1) : replaced;
  });
}

/** Python's string.Template.safe_substitute: $VAR and ${VAR} from `vars`, $$ -> $, unknown names kept. */
export function templateSubstitute(value: string, vars: NodeJS.ProcessEnv): string {
  return value.replace(/\$(?:(\$)|([_a-zA-Z][_a-zA-Z0-9]*)|\{([_a-zA-Z][_a-zA-Z0-9]*)\})/g, (whole, dollar, bare, braced) => {
    if (dollar) return '$';
    const name = bare ?? braced;
    const found = vars[name];
    return found === undefined ? whole : found;
  });
}

/** Variables of the gateway that a kernel must never see. */
export const GATEWAY_SECRETS = ['KG_AUTH_TOKEN'];

/**
 * A kernel's environment, composed as jupyter_client and the reference gateway do:
 * base env, then the kernelspec's env (templated against the base), no PYTHONEXECUTABLE for
 * Python kernels, KERNEL_GATEWAY=1, JPY_PARENT_PID so the kernel exits when we die, and no gateway secrets.
 */
export function composeKernelEnv(
  base: NodeJS.ProcessEnv,
  specEnv: Record<string, string>,
  language: string,
  secrets: readonly string[] = GATEWAY_SECRETS,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const [name, value] of Object.entries(specEnv)) env[name] = templateSubstitute(value, base);
  if (language.toLowerCase().startsWith('python')) delete env.PYTHONEXECUTABLE;
  for (const name of secrets) delete env[name];
  env.KERNEL_GATEWAY = '1';
  env.JPY_PARENT_PID = String(process.pid);
  return env;
}

/**
 * Spawn a kernel in its own session (setsid), so the whole process group can be signalled.
 * stdin is closed; stdout is the gateway's; stderr is piped so early crashes can be reported.
 */
export function spawnKernel(argv: readonly string[], env: NodeJS.ProcessEnv, cwd: string): ChildProcess {
  return spawn(argv[0], argv.slice(1), {
    cwd,
    env,
    detached: process.platform !== 'win32',
    stdio: ['ignore', 'inherit', 'pipe'],
    windowsHide: true,
  });
}

/**
 * Signal a kernel's whole process group, even after its leader has exited (what it started may live on),
 * as jupyter_client's killpg does; on Windows, the process itself.
 */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  const alive = child.exitCode === null && child.signalCode === null;
  try {
    if (process.platform !== 'win32') process.kill(-child.pid, signal);
    else if (alive) child.kill(signal);
  } catch {
    // ESRCH: the group is empty.
    if (alive) {
      try {
        child.kill(signal);
      } catch {
        /* already gone */
      }
    }
  }
}
