/**
 * The WebSocket upgrade for /api/kernels/{id}/channels: token, origin, kernel and capacity checks
 * before the upgrade, the subprotocol choice, and a delayed 101 until the kernel has answered
 * kernel_info. The connection is complete when it is made (see KernelHub.connect).
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { CLOSE } from '../bridge/connection.ts';
import type { KernelHub } from '../bridge/hub.ts';
import type { Keepalive } from '../bridge/keepalive.ts';
import { V1_PROTOCOL } from '../bridge/v1-protocol.ts';
import type { Config } from '../config/options.ts';
import type { Logger } from '../log.ts';
import { newSessionId } from '../messaging/session.ts';
import type { TokenCheck } from './auth.ts';
import { FileDescriptorBudget } from './capacity.ts';
import { HttpError, refuseUpgrade } from './errors.ts';
import { errorDetail, errorMessage } from '../log.ts';
import { admit } from './pipeline.ts';
import { redactUrl } from './request.ts';
import { KERNEL_ID } from './router.ts';
import { metrics } from '../metrics/gateway-metrics.ts';
import { gateOf } from './server.ts';

const CHANNELS_PATH = new RegExp(`^api/kernels/${KERNEL_ID}/channels$`);
const CHANNELS_ROUTE = '/api/kernels/{id}/channels';

/** How an upgrade ended, for /metrics: counted when its socket closes unless it became a WebSocket. */
interface Outcome {
  status: number;
  upgraded: boolean;
}

export interface ChannelsOptions {
  config: Config;
  log: Logger;
  tokenCheck: TokenCheck | undefined;
  hubFor: (kernelId: string) => KernelHub | undefined;
  keepalive: Keepalive;
}

/** An 'upgrade' listener for node:http, plus the WebSocket server to close on shutdown. */
export function createUpgradeHandler(options: ChannelsOptions): {
  onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  wss: WebSocketServer;
} {
  const { config, log, hubFor, keepalive } = options;
  const gate = gateOf(config, options.tokenCheck);
  const budget = new FileDescriptorBudget();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config.maxMessageSize,
    perMessageDeflate: false,
    // Echo v1 when offered; an empty answer means the legacy JSON protocol.
    handleProtocols: (protocols) => (protocols.has(V1_PROTOCOL) ? V1_PROTOCOL : false),
  });

  const counted = (started: number, status: number) => metrics.countHttp('GET', CHANNELS_ROUTE, status, (performance.now() - started) / 1000);

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => undefined);
    const started = performance.now();
    // 499: the client went before an answer.
    const outcome: Outcome = { status: 499, upgraded: false };
    socket.once('close', () => {
      if (!outcome.upgraded) counted(started, outcome.status);
    });
    // Nothing a client sends may throw out of this event handler: that would take the gateway down.
    try {
      upgrade(req, socket, head, started, outcome);
    } catch (error) {
      if (error instanceof HttpError) {
        log.debug(`refused a WebSocket upgrade for ${redactUrl(req.url)}: ${error.status} ${error.message}`);
        outcome.status = error.status;
        return refuseUpgrade(socket, error);
      }
      outcome.status = 400;
      log.warn(`refused a WebSocket upgrade for ${redactUrl(req.url)}: ${errorMessage(error)}`);
      refuseUpgrade(socket, new HttpError(400, `Bad request: ${errorMessage(error)}`));
    }
  };

  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer, started: number, outcome: Outcome): void => {
    const { url, path } = admit(req, gate);
    const match = CHANNELS_PATH.exec(path);
    if (!match) throw new HttpError(404, `No WebSocket endpoint at ${url.pathname}`);
    const kernelId = match[1];
    const hub = hubFor(kernelId);
    if (!hub) throw new HttpError(404, `Kernel does not exist: ${kernelId}`);
    let sessionId = url.searchParams.get('session_id') ?? '';
    if (!sessionId) {
      sessionId = newSessionId();
      log.debug(`WebSocket ${redactUrl(req.url)} has no session_id; using ${sessionId}`);
    }
    // It names the client's session in routing and logs; keep it to what a ZeroMQ id could hold.
    if (Buffer.byteLength(sessionId) > 255) throw new HttpError(400, 'session_id must be at most 255 bytes');
    const full = budget.refusal();
    if (full) {
      log.warn(`refused a WebSocket for kernel ${kernelId}: ${full}`);
      throw new HttpError(503, full, 'Service Unavailable', { 'Retry-After': '5' });
    }
    // As Jupyter Server: the client is let in once the kernel answers kernel_info (or the timeout passes).
    hub.kernel
      .whenReady()
      .then(() => {
        if (socket.destroyed) return;
        if (hubFor(kernelId) !== hub || hub.kernel.gone) {
          outcome.status = 404;
          return refuseUpgrade(socket, new HttpError(404, `Kernel does not exist: ${kernelId}`));
        }
        wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
          outcome.upgraded = true;
          counted(started, 101);
          // Before anything else: an 'error' event with no listener would take the process down.
          ws.on('error', (error) => log.debug(`kernel ${kernelId}: session ${sessionId}: ${error.message}`, { kernel_id: kernelId, session_id: sessionId }));
          const protocol = ws.protocol === V1_PROTOCOL ? 'v1' : 'json';
          try {
            keepalive.add(hub.connect(ws, protocol, sessionId));
          } catch (error) {
            log.error(`kernel ${kernelId}: could not connect session ${sessionId}: ${errorDetail(error)}`);
            ws.close(CLOSE.internalError, 'could not connect to the kernel');
            return;
          }
          log.debug(`kernel ${kernelId}: session ${sessionId} connected (${protocol} protocol)`, { kernel_id: kernelId, session_id: sessionId, protocol });
        });
      })
      .catch((error: Error) => {
        log.error(`kernel ${kernelId}: WebSocket upgrade failed: ${errorDetail(error)}`);
        socket.destroy();
      });
  };

  return { onUpgrade, wss };
}
