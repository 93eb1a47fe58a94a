/**
 * The WebSocket upgrade for /api/kernels/{id}/channels: token, origin, kernel and capacity checks
 * before the upgrade, the subprotocol choice, and a delayed 101 until the kernel has answered
 * kernel_info. The connection is complete when it is made (see KernelHub.connect).
 */
import { STATUS_CODES, type IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { CLOSE } from '../bridge/connection.ts';
import type { KernelHub } from '../bridge/hub.ts';
import type { Keepalive } from '../bridge/keepalive.ts';
import { V1_PROTOCOL } from '../bridge/v1-protocol.ts';
import type { Config } from '../config/options.ts';
import type { Logger } from '../log.ts';
import { newSessionId } from '../messaging/session.ts';
import { originAllowed, type TokenCheck } from './auth.ts';
import { FileDescriptorBudget } from './capacity.ts';
import { KERNEL_ID, redactUrl, requestUrl, stripBase } from './server.ts';

const CHANNELS_PATH = new RegExp(`^api/kernels/${KERNEL_ID}/channels$`);

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
  const { config, log, tokenCheck, hubFor, keepalive } = options;
  const budget = new FileDescriptorBudget();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: config.maxMessageSize,
    perMessageDeflate: false,
    // Echo v1 when offered; an empty answer means the legacy JSON protocol.
    handleProtocols: (protocols) => (protocols.has(V1_PROTOCOL) ? V1_PROTOCOL : false),
  });

  const refuse = (socket: Duplex, status: number, message: string, extraHeaders = '') => {
    if (socket.destroyed) return;
    const body = JSON.stringify({ reason: STATUS_CODES[status], message });
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\n${extraHeaders}` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  };

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => undefined);
    // Nothing a client sends may throw out of this event handler: that would take the gateway down.
    try {
      upgrade(req, socket, head);
    } catch (error) {
      log.warn(`refused a WebSocket upgrade for ${redactUrl(req.url)}: ${(error as Error).message}`);
      refuse(socket, 400, `Bad request: ${(error as Error).message}`);
    }
  };

  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = requestUrl(req);
    const path = stripBase(url.pathname, config.baseUrl);
    const match = path === undefined ? null : CHANNELS_PATH.exec(path);
    if (!match) return refuse(socket, 404, `No WebSocket endpoint at ${url.pathname}`);
    if (tokenCheck && !tokenCheck.acceptsRequest(req, url)) return refuse(socket, 401, 'A valid token is required (?token=)');
    if (!originAllowed(req, config.allowOrigin)) {
      log.warn(`refused a WebSocket from origin ${req.headers.origin} (allow_origin is ${JSON.stringify(config.allowOrigin)})`);
      return refuse(socket, 403, `Cross origin websockets not allowed (origin ${req.headers.origin})`);
    }
    const kernelId = match[1];
    const hub = hubFor(kernelId);
    if (!hub) return refuse(socket, 404, `Kernel does not exist: ${kernelId}`);
    let sessionId = url.searchParams.get('session_id') ?? '';
    if (!sessionId) {
      sessionId = newSessionId();
      log.debug(`WebSocket ${redactUrl(req.url)} has no session_id; using ${sessionId}`);
    }
    // It names the client's session in routing and logs; keep it to what a ZeroMQ id could hold.
    if (Buffer.byteLength(sessionId) > 255) return refuse(socket, 400, 'session_id must be at most 255 bytes');
    const full = budget.refusal();
    if (full) {
      log.warn(`refused a WebSocket for kernel ${kernelId}: ${full}`);
      return refuse(socket, 503, full, 'Retry-After: 5\r\n');
    }
    // As Jupyter Server: the client is let in once the kernel answers kernel_info (or the timeout passes).
    hub.kernel
      .whenReady()
      .then(() => {
        if (socket.destroyed) return;
        if (hubFor(kernelId) !== hub || hub.kernel.gone) return refuse(socket, 404, `Kernel does not exist: ${kernelId}`);
        wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
          // Before anything else: an 'error' event with no listener would take the process down.
          ws.on('error', (error) => log.debug(`kernel ${kernelId}: session ${sessionId}: ${error.message}`));
          const protocol = ws.protocol === V1_PROTOCOL ? 'v1' : 'json';
          try {
            keepalive.add(hub.connect(ws, protocol, sessionId));
          } catch (error) {
            log.error(`kernel ${kernelId}: could not connect session ${sessionId}: ${(error as Error).stack ?? error}`);
            ws.close(CLOSE.internalError, 'could not connect to the kernel');
            return;
          }
          log.debug(`kernel ${kernelId}: session ${sessionId} connected (${protocol} protocol)`);
        });
      })
      .catch((error: Error) => {
        log.error(`kernel ${kernelId}: WebSocket upgrade failed: ${error.stack ?? error.message}`);
        socket.destroy();
      });
  };

  return { onUpgrade, wss };
}
