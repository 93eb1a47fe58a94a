/** Wires the parts together for the chosen personality: kernels, the personality, the HTTP server; start and graceful stop. */
import { randomBytes } from 'node:crypto';
import type { Config } from './config/options.ts';
import { TokenCheck } from './http/auth.ts';
import { createHttpServer, createRequestHandler, listen } from './http/server.ts';
import { jupyterWebsocketApi } from './http/websocket-api.ts';
import { KernelManager } from './kernels/manager.ts';
import { ConnectionFileRegistry, LOCAL_PROVISIONER, LocalProvisioner, removeStaleConnectionFiles } from './kernels/provisioners/local.ts';
import { ProvisionerRegistry } from './kernels/provisioners/provisioner.ts';
import { slurmProvisioner } from './kernels/provisioners/slurm/setup.ts';
import { loadSeedNotebook, type SeedNotebook } from './kernels/seed.ts';
import { KernelSpecStore, type KernelSpec } from './kernels/specs.ts';
import { BUILTIN_JAVASCRIPT_NAME, builtinJavascriptSpec, JAVASCRIPT_LOGO_SVG, selfArgvPrefix } from './jskernel/spec.ts';
import type { Logger } from './log.ts';
import { releaseMemoryAfterBursts } from './memory-release.ts';
import { kernelSearchPath, runtimeDir } from './paths.ts';
import { VERSION } from './version.ts';

export interface Gateway {
  /** The address it serves, with base_url (and no token). */
  url: string;
  manager: KernelManager;
  /** Reload what the personality serves (notebook-http: the notebook), if it can. */
  reload(): Promise<void>;
  close(): Promise<void>;
}

export async function startGateway(config: Config, log: Logger): Promise<Gateway> {
  const notebookHttp = config.api === 'notebook-http';
  const { manager, specs, connectionFiles, slurm } = await createKernels(config, log, notebookHttp);
  // Whatever way the process ends, no kernel process and no connection file outlives it.
  const killKernels = () => {
    manager.killAll();
    connectionFiles.close();
  };
  process.on('exit', killKernels);

  const token = config.authToken ?? randomBytes(24).toString('hex');
  if (config.authToken === '') log.warn('Authentication is OFF (empty token): anyone who can reach this port can run code');
  const tokenCheck = token ? new TokenCheck(token) : undefined;
  const personality = notebookHttp
    ? (await import('./notebook-http/face.ts')).notebookHttpApi(config, log, manager, specs, tokenCheck)
    : jupyterWebsocketApi(config, log, manager, specs, tokenCheck);
  const server = await createHttpServer(config, createRequestHandler(config, log, personality.serve));
  if (personality.onUpgrade) server.on('upgrade', personality.onUpgrade);

  let stopMemoryRelease = () => {};
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      log.info('Shutting down: stopping all kernels');
      stopMemoryRelease();
      await personality.close();
      await manager.shutdownAll();
      await slurm.close();
      connectionFiles.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      process.off('exit', killKernels);
    })());

  const port = await listen(server, config, log);
  try {
    // notebook-http: requests that come now wait for its kernels; the address is announced when they are ready.
    await personality.ready;
  } catch (error) {
    await close();
    throw error;
  }
  const host = config.ip.includes(':') ? `[${config.ip}]` : config.ip;
  const url = `${config.certfile || config.clientCa ? 'https' : 'http'}://${host}:${port}${config.baseUrl}`;
  log.info(`kernelgateway ${VERSION} is available at ${url}${notebookHttp ? ` (notebook-http: ${config.seedUri})` : ''}`);
  if (config.authToken === undefined) {
    // As Jupyter Server: a generated token is shown once, in the URL, so the person who started us can use it.
    log.info(`Use this URL (it carries the generated token): ${url}?token=${token}`);
  }
  if (!notebookHttp) manager.fillPool();
  stopMemoryRelease = releaseMemoryAfterBursts(log);
  const reload = async () => {
    if (personality.reload) await personality.reload();
    else log.info('SIGHUP: nothing to reload (the jupyter-websocket personality reads its kernelspecs on every request)');
  };
  return { url, manager, reload, close };
}

/**
 * Kernelspecs, the seed notebook, provisioners and the kernel manager. For notebook-http the notebook
 * is the service, not a seed, and the personality keeps its own pool.
 */
async function createKernels(config: Config, log: Logger, notebookHttp: boolean) {
  const runtime = runtimeDir();
  const connectionFiles = new ConnectionFileRegistry(runtime);
  const slurm = slurmProvisioner(config, log, selfArgvPrefix());
  const provisioners = new ProvisionerRegistry()
    .register(LOCAL_PROVISIONER, (context) => new LocalProvisioner(context, connectionFiles))
    .register(slurm.name, slurm.create);
  const specs = new KernelSpecStore(kernelSearchPath(), log, [builtinJavascript()], provisioners.names);
  const seed = config.seedUri && !notebookHttp ? await loadSeed(config, specs) : undefined;
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
    prespawnCount: notebookHttp ? 0 : config.prespawnCount,
    cull: {
      idleTimeout: config.cullIdleTimeout,
      interval: config.cullInterval,
      connected: config.cullConnected,
      busy: config.cullBusy,
    },
    log,
  });
  return { manager, specs, connectionFiles, slurm };
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
