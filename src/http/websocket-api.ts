/**
 * The jupyter-websocket personality: Jupyter's kernel API. REST routes for kernels, sessions and
 * kernelspecs, and the channels WebSocket bridged to the kernels (bridge/).
 */
import { CLOSE } from '../bridge/connection.ts';
import { Hubs } from '../bridge/hubs.ts';
import { Keepalive } from '../bridge/keepalive.ts';
import type { Config } from '../config/options.ts';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { KernelManager } from '../kernels/manager.ts';
import { SessionManager } from '../kernels/sessions.ts';
import type { KernelSpecStore } from '../kernels/specs.ts';
import { errorMessage, type Logger } from '../log.ts';
import { VERSION } from '../version.ts';
import type { TokenCheck } from './auth.ts';
import { metricsRoute, statusRoute } from './observability.ts';
import { metrics } from '../metrics/gateway-metrics.ts';
import { sendJson } from './errors.ts';
import { kernelRoutes } from './kernels.ts';
import { kernelSpecRoutes } from './kernelspecs.ts';
import type { Route } from './router.ts';
import { serveRoutes, type Personality } from './server.ts';
import { sessionRoutes } from './sessions.ts';

export function jupyterWebsocketApi(config: Config, log: Logger, manager: KernelManager, specs: KernelSpecStore, tokenCheck: TokenCheck | undefined): Personality {
  const sessions = new SessionManager(manager);
  const hubs = new Hubs({
    log,
    offlineLimitBytes: config.offlineBufferBytes,
    clientBufferBytes: config.clientBufferBytes,
    kernelBufferBytes: config.kernelBufferBytes,
  });
  manager.connectionsOf = (id) => hubs.connectionsOf(id);
  manager.addedListeners.add((kernel) => hubs.add(kernel));
  const started = new Date();
  let apiActivity = started.getTime();
  metrics.registry.onCollect(() => {
    metrics.kernels.reset();
    for (const kernel of manager.list()) metrics.kernels.labels({ kernelspec: kernel.name, state: kernel.executionState }).inc();
    metrics.pool.labels().set(manager.poolSize);
    for (const [protocol, count] of Object.entries(hubs.connectionsByProtocol())) metrics.websockets.labels({ protocol }).set(count);
  });
  const status = statusRoute({
    started,
    lastActivity: () => new Date(Math.max(apiActivity, ...manager.list().map((k) => k.lastActivity.getTime()))),
    connections: () => manager.list().reduce((sum, kernel) => sum + hubs.connectionsOf(kernel.id), 0),
    kernels: () => manager.list().length,
  });
  // Jupyter Server's last_activity: a request to the API counts; watching the gateway (status, metrics) does not.
  const active = (route: Route): Route => ({
    ...route,
    handler: (context) => {
      apiActivity = Date.now();
      return route.handler(context);
    },
  });
  const routes: Route[] = [
    status,
    metricsRoute(config),
    ...[
      { method: 'GET', pattern: /^api$/, handler: ({ res }) => sendJson(res, 200, { version: VERSION }) } satisfies Route,
      ...kernelRoutes(manager, config, tokenCheck !== undefined),
      ...sessionRoutes(sessions, config, tokenCheck !== undefined),
      ...(config.exposeKernelspecs ? kernelSpecRoutes(specs, () => manager.defaultKernelName, config.baseUrl) : []),
    ].map(active),
  ];
  const keepalive = new Keepalive(config.wsPingInterval, log);
  // The upgrade handler and ws are loaded at the first WebSocket, not before listening.
  let channels: Promise<{ onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void; wss: { close(): void } }> | undefined;
  const upgrades = () =>
    (channels ??= import('./channels.ts').then(({ createUpgradeHandler }) =>
      createUpgradeHandler({ config, log, tokenCheck, hubFor: (id) => hubs.get(id), keepalive }),
    ));
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => undefined); // a reset before the handler is there must not throw
    upgrades().then(
      (handler) => handler.onUpgrade(req, socket, head),
      (error: unknown) => {
        log.error(`cannot handle WebSocket upgrades: ${errorMessage(error)}`);
        socket.destroy();
      },
    );
  };
  return {
    serve: serveRoutes(config, tokenCheck, routes),
    onUpgrade,
    ready: Promise.resolve(),
    // Clients are told the gateway goes (1001) before their kernels are stopped.
    async close() {
      keepalive.stop();
      hubs.closeAll(CLOSE.goingAway, 'gateway shutting down');
      await channels?.then(({ wss }) => wss.close(), () => undefined);
    },
  };
}
