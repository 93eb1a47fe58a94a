/** Wires the parts together: kernelspecs, kernels, the bridge and the HTTP server; start and graceful stop. */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import * as zmq from 'zeromq';
import { CLOSE } from './bridge/connection.ts';
import { KernelHub } from './bridge/hub.ts';
import { Keepalive } from './bridge/keepalive.ts';
import type { Config } from './config/options.ts';
import { TokenCheck } from './http/auth.ts';
import { createUpgradeHandler } from './http/channels.ts';
import { kernelRoutes } from './http/kernels.ts';
import { kernelSpecRoutes } from './http/kernelspecs.ts';
import { createRequestHandler, sendJson, type Route } from './http/server.ts';
import { sessionRoutes } from './http/sessions.ts';
import { KernelManager } from './kernels/manager.ts';
import { ConnectionFileRegistry, LOCAL_PROVISIONER, LocalProvisioner, removeStaleConnectionFiles } from './kernels/provisioners/local.ts';
import { ProvisionerRegistry } from './kernels/provisioners/provisioner.ts';
import { slurmProvisioner } from './kernels/provisioners/slurm/setup.ts';
import { loadSeedNotebook, type SeedNotebook } from './kernels/seed.ts';
import { SessionManager } from './kernels/sessions.ts';
import { KernelSpecStore, type KernelSpec } from './kernels/specs.ts';
import { BUILTIN_JAVASCRIPT_NAME, builtinJavascriptSpec, JAVASCRIPT_LOGO_SVG, selfArgvPrefix } from './jskernel/spec.ts';
import type { Logger } from './log.ts';
import { kernelSearchPath, runtimeDir } from './paths.ts';
import { VERSION } from './version.ts';

export interface Gateway {
  /** The address it serves, with base_url (and no token). */
  url: string;
  manager: KernelManager;
  close(): Promise<void>;
}

export async function startGateway(config: Config, log: Logger): Promise<Gateway> {
  const runtime = runtimeDir();
  const connectionFiles = new ConnectionFileRegistry(runtime);
  const slurm = slurmProvisioner(config, log, selfArgvPrefix());
  const provisioners = new ProvisionerRegistry()
    .register(LOCAL_PROVISIONER, (context) => new LocalProvisioner(context, connectionFiles))
    .register(slurm.name, slurm.create);
  const specs = new KernelSpecStore(kernelSearchPath(), log, [builtinJavascript()], provisioners.names);
  const seed = config.seedUri ? await loadSeed(config, specs) : undefined;
  // Each kernel costs four ZeroMQ sockets whatever its number of clients; libzmq's default of 1,023
  // per context would cap the gateway near 250 kernels.
  zmq.context.maxSockets = Math.min(zmq.context.maxSocketsLimit, 32_768);
  const stale = removeStaleConnectionFiles(runtime, log);
  if (stale.length > 0) log.info(`removed ${stale.length} connection file(s) left in ${runtime} by a gateway that is gone: ${stale.join(', ')}`);
  const manager = new KernelManager({
    specs,
    provisioners,
    defaultKernelName: config.defaultKernelName,
    forceKernelName: config.forceKernelName,
    runtimeDir: runtime,
    rootDir: config.rootDir || process.cwd(),
    rootDirExplicit: config.rootDir !== '',
    kernelInfoTimeout: config.kernelInfoTimeout,
    kernelStartupTimeout: config.kernelStartupTimeout,
    maxKernels: config.maxKernels,
    envWhitelist: config.envWhitelist,
    envProcessWhitelist: config.envProcessWhitelist,
    seed,
    prespawnCount: config.prespawnCount,
    cull: {
      idleTimeout: config.cullIdleTimeout,
      interval: config.cullInterval,
      connected: config.cullConnected,
      busy: config.cullBusy,
    },
    log,
  });
  const sessions = new SessionManager(manager);
  const hubs = new Map<string, KernelHub>();
  const hubOptions = {
    log,
    offlineLimitBytes: config.offlineBufferBytes,
    clientBufferBytes: config.clientBufferBytes,
    kernelBufferBytes: config.kernelBufferBytes,
  };
  manager.addedListeners.add((kernel) => {
    hubs.set(kernel.id, new KernelHub(kernel, hubOptions));
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
    ...sessionRoutes(sessions, config, tokenCheck !== undefined),
    ...(config.exposeKernelspecs ? kernelSpecRoutes(specs, () => manager.defaultKernelName, config.baseUrl) : []),
  ];
  const handler = createRequestHandler({ config, log, tokenCheck, routes });
  const tls = config.certfile || config.clientCa;
  const server: Server = tls
    ? createTlsServer(
        {
          noDelay: true,
          cert: config.certfile ? readFileSync(config.certfile) : undefined,
          key: config.keyfile ? readFileSync(config.keyfile) : undefined,
          ca: config.clientCa ? readFileSync(config.clientCa) : undefined,
          // With a client CA, only clients holding a certificate it signed get in (mutual TLS).
          requestCert: !!config.clientCa,
          rejectUnauthorized: !!config.clientCa,
        },
        handler,
      )
    : createServer({ noDelay: true }, handler);
  const keepalive = new Keepalive(config.wsPingInterval, log);
  const { onUpgrade, wss } = createUpgradeHandler({ config, log, tokenCheck, hubFor: (id) => hubs.get(id), keepalive });
  server.on('upgrade', onUpgrade);

  const port = await listen(server, config, log);
  const host = config.ip.includes(':') ? `[${config.ip}]` : config.ip;
  const url = `${tls ? 'https' : 'http'}://${host}:${port}${config.baseUrl}`;
  log.info(`kernelgateway ${VERSION} is available at ${url}`);
  if (config.authToken === undefined) {
    // As Jupyter Server: a generated token is shown once, in the URL, so the person who started us can use it.
    log.info(`Use this URL (it carries the generated token): ${url}?token=${token}`);
  }

  // Whatever way the process ends, no kernel process and no connection file outlives it.
  const killKernels = () => {
    manager.killAll();
    connectionFiles.close();
  };
  process.on('exit', killKernels);
  manager.fillPool();

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      log.info('Shutting down: stopping all kernels');
      keepalive.stop();
      for (const hub of hubs.values()) hub.closeAll(CLOSE.goingAway, 'gateway shutting down');
      await manager.shutdownAll();
      await slurm.close();
      connectionFiles.close();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    })());
  return { url, manager, close };
}

/** The JavaScript kernel this very program runs (`kernelgateway kernel -f ...`), so a bare machine has a kernel. */
function builtinJavascript(): KernelSpec {
  return {
    name: BUILTIN_JAVASCRIPT_NAME,
    resourceDir: '',
    spec: builtinJavascriptSpec(selfArgvPrefix()),
    files: { 'logo-svg.svg': JAVASCRIPT_LOGO_SVG },
  };
}

/** Load the seed notebook and check a kernelspec of its language exists; any problem stops start-up. */
async function loadSeed(config: Config, specs: KernelSpecStore): Promise<SeedNotebook> {
  const seed = await loadSeedNotebook(config.seedUri);
  const forced = config.forceKernelName ? specs.get(config.forceKernelName) : undefined;
  const matching = forced ? [forced] : specs.list();
  if (!matching.some((spec) => spec.spec.language.toLowerCase() === seed.language)) {
    throw new Error(
      `seed notebook ${config.seedUri} is ${seed.language}, but no ${forced ? 'forced ' : ''}kernelspec speaks it ` +
        `(installed: ${specs.list().map((spec) => `${spec.name} (${spec.spec.language})`).join(', ') || 'none'})`,
    );
  }
  return seed;
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
