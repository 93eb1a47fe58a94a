/** Wires the parts together: kernelspecs, kernels, the bridge and the HTTP server; start and graceful stop. */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CLOSE } from './bridge/connection.ts';
import { KernelHub } from './bridge/hub.ts';
import type { Config } from './config.ts';
import { TokenCheck } from './http/auth.ts';
import { createUpgradeHandler } from './http/channels.ts';
import { kernelRoutes } from './http/kernels.ts';
import { kernelSpecRoutes } from './http/kernelspecs.ts';
import { createRequestHandler, sendJson, type Route } from './http/server.ts';
import { runtimeDir } from './kernels/launcher.ts';
import { KernelManager } from './kernels/manager.ts';
import { kernelSearchPath, KernelSpecStore } from './kernels/specs.ts';
import type { Logger } from './log.ts';
import { VERSION } from './version.ts';

export interface Gateway {
  /** The address it serves, with base_url (and no token). */
  url: string;
  manager: KernelManager;
  close(): Promise<void>;
}

export async function startGateway(config: Config, log: Logger): Promise<Gateway> {
  const specs = new KernelSpecStore(kernelSearchPath(), log);
  const manager = new KernelManager({
    specs,
    defaultKernelName: config.defaultKernelName,
    runtimeDir: runtimeDir(),
    rootDir: process.cwd(),
    kernelInfoTimeout: config.kernelInfoTimeout,
    log,
  });
  const hubs = new Map<string, KernelHub>();
  manager.addedListeners.add((kernel) => {
    hubs.set(kernel.id, new KernelHub(kernel, log, config.offlineBufferBytes));
    kernel.lifecycleListeners.add((event) => {
      if (event === 'dead' || event === 'shutdown') hubs.delete(kernel.id);
    });
  });

  const token = config.authToken ?? randomBytes(24).toString('hex');
  if (config.authToken === '') log.warn('Authentication is OFF (empty token): anyone who can reach this port can run code');
  const tokenCheck = token ? new TokenCheck(token) : undefined;

  const routes: Route[] = [
    { method: 'GET', pattern: /^api$/, handler: ({ res }) => sendJson(res, 200, { version: VERSION }) },
    ...kernelRoutes(manager, config, tokenCheck !== undefined),
    ...kernelSpecRoutes(specs, () => manager.defaultKernelName, config.baseUrl),
  ];
  const server: Server = createServer({ noDelay: true }, createRequestHandler({ config, log, tokenCheck, routes }));
  const { onUpgrade, wss } = createUpgradeHandler({ config, log, tokenCheck, hubFor: (id) => hubs.get(id) });
  server.on('upgrade', onUpgrade);

  const port = await listen(server, config, log);
  const host = config.ip.includes(':') ? `[${config.ip}]` : config.ip;
  const url = `http://${host}:${port}${config.baseUrl}`;
  log.info(`kernelgateway ${VERSION} is available at ${url}`);
  if (config.authToken === undefined) {
    // As Jupyter Server: a generated token is shown once, in the URL, so the person who started us can use it.
    log.info(`Use this URL (it carries the generated token): ${url}?token=${token}`);
  }

  // Whatever way the process ends, no kernel process and no connection file outlives it.
  const killKernels = () => {
    for (const kernel of manager.list()) kernel.killNow();
  };
  process.on('exit', killKernels);

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      log.info('Shutting down: stopping all kernels');
      for (const hub of hubs.values()) hub.closeAll(CLOSE.goingAway, 'gateway shutting down');
      await manager.shutdownAll();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      process.off('exit', killKernels);
    })());
  return { url, manager, close };
}

/** Listen on the configured port, or on the next free one of up to port_retries more. */
async function listen(server: Server, config: Config, log: Logger): Promise<number> {
  for (let attempt = 0; attempt <= config.portRetries; attempt++) {
    const port = config.port === 0 ? 0 : config.port + attempt;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, config.ip, () => {
          server.off('error', reject);
          resolve();
        });
      });
      return (server.address() as AddressInfo).port;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== 'EADDRINUSE' && code !== 'EACCES') || config.port === 0) throw error;
      log.info(`port ${port} is not available (${code}); trying the next one`);
    }
  }
  throw new Error(`no free port in ${config.port}..${config.port + config.portRetries} (see --port and --port-retries)`);
}
