/**
 * Jupyter Server in gateway mode, as a user would run it: Debian's Jupyter Server 1.23 started with
 * --gateway-url pointing at a test gateway, from a folder of its own, with its runtime, data and
 * config folders inside that folder.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kernel, KernelMessage } from '@jupyterlab/services';
import { sleep, withTimeout, type Gateway } from './gateway.ts';
import { freePort, spawnLogged } from './processes.ts';

const JUPYTER_PYTHON = '/usr/bin/python3';

export interface JupyterServer {
  url: string; // http://127.0.0.1:<port>/
  token: string;
  /** The folder it was started in (its root_dir), outside our gateway's root. */
  cwd: string;
  proc: ChildProcess;
  log(): string;
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null; killed: boolean }>;
}

export interface JupyterServerOptions {
  /** Variables for Jupyter Server's own environment (in gateway mode it forwards KERNEL_* ones in each start request). */
  env?: Record<string, string>;
}

/**
 * Starts Debian's Jupyter Server with --gateway-url pointing at `gateway`, in a folder of its own
 * (outside the gateway's root), and waits until its /api answers.
 */
export async function startJupyterServer(gateway: Gateway, options: JupyterServerOptions = {}): Promise<JupyterServer> {
  const root = mkdtempSync(join(tmpdir(), 'kg-it-jupyter-server-'));
  const dirs = { cwd: join(root, 'notebooks'), runtime: join(root, 'runtime'), data: join(root, 'data'), config: join(root, 'config') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  const token = `js-${Math.random().toString(36).slice(2)}`;
  const port = await freePort();

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || k.startsWith('JUPYTER_') || k.startsWith('KG_')) continue;
    env[k] = v;
  }
  // Everything Jupyter Server writes (runtime files, cookie secret, user config) stays in `root`.
  Object.assign(env, { JUPYTER_RUNTIME_DIR: dirs.runtime, JUPYTER_DATA_DIR: dirs.data, JUPYTER_CONFIG_DIR: dirs.config, PYTHONUNBUFFERED: '1' }, options.env);

  const args = [
    '-m', 'jupyter_server',
    '--allow-root',
    '--no-browser',
    // Explicit IPv4 loopback: the default "localhost" may bind ::1 first, and we connect to 127.0.0.1.
    '--ip=127.0.0.1',
    `--port=${port}`,
    '--port-retries=0',
    `--ServerApp.token=${token}`,
    `--gateway-url=${gateway.url.replace(/\/$/, '')}`,
    `--GatewayClient.auth_token=${gateway.token}`,
  ];
  const proc = spawnLogged({ command: [JUPYTER_PYTHON, ...args], cwd: dirs.cwd, env });
  const log = () => proc.stdout() + proc.stderr();
  const url = `http://127.0.0.1:${port}/`;
  const server: JupyterServer = {
    url,
    token,
    cwd: dirs.cwd,
    proc: proc.proc,
    log,
    async stop() {
      const exit = await proc.stop(5000);
      rmSync(root, { recursive: true, force: true });
      return exit;
    },
  };

  const readyTimeoutMs = 30000;
  const deadline = Date.now() + readyTimeoutMs;
  for (;;) {
    const exit = proc.exit;
    if (exit) {
      await server.stop();
      throw new Error(`Jupyter Server exited (code ${exit.code}, signal ${exit.signal}) before it was ready.\nIts log:\n${log()}`);
    }
    // Ready once GET /api answers (it logs "is running at" just before); a refused connection fails fast.
    const res = await fetch(`${url}api`, { headers: { Authorization: `token ${token}` }, signal: AbortSignal.timeout(2000) }).catch(() => undefined);
    if (res) await res.text().catch(() => undefined);
    if (res?.status === 200) break;
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`Jupyter Server (${args.join(' ')}) did not log "is running at" and answer GET /api within ${readyTimeoutMs} ms.\nIts log:\n${log()}`);
    }
    await sleep(100);
  }
  return server;
}

/**
 * The kernel's info through Jupyter Server, asked for once the client is connected. Jupyter Server
 * 1.23 can lose the kernel_info_request JupyterLab's client sends the moment its WebSocket opens:
 * on_open only schedules the connection to the gateway, and a message arriving before that has begun
 * waits on a future that never completes (jupyter_server/gateway/handlers.py). A request sent later
 * waits for the connection instead, so what is checked is the path through both servers.
 */
export async function kernelInfoThroughServer(kernel: Kernel.IKernelConnection, timeoutMs: number): Promise<KernelMessage.IInfoReply & { status: string }> {
  const reply = await withTimeout(kernel.requestKernelInfo(), timeoutMs, 'kernel_info_reply through Jupyter Server');
  if (!reply) throw new Error('no kernel_info_reply: the kernel connection was disposed');
  return reply.content as KernelMessage.IInfoReply & { status: string };
}
