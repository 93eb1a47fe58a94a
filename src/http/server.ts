/**
 * The HTTP face: a node:http (or https) server whose requests go through the one pipeline
 * (pipeline.ts: base_url, origin, token), then the routing table; WebSocket upgrades go through the
 * same pipeline in channels.ts. Every error is JSON; a client that went away is not an error.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Config } from '../config/options.ts';
import type { Logger } from '../log.ts';
import type { TokenCheck } from './auth.ts';
import { applyCors, corsHeaders } from './cors.ts';
import { HttpError, sendEmpty, sendError } from './errors.ts';
import { errorDetail, errorMessage } from '../log.ts';
import { admit, type Gate } from './pipeline.ts';
import { clientAddress, redactUrl, requestUrl, stripBase } from './request.ts';
import { findRoute, routeOfResponse, routeTemplate, type Route } from './router.ts';
import { metrics } from '../metrics/gateway-metrics.ts';


/**
 * Listing kernels or sessions: JupyterLab polls these routes, so they are open whenever a token protects
 * the gateway; without one, only when the operator asked for it (--list-kernels).
 */
export function checkListingAllowed(what: 'kernels' | 'sessions', authOn: boolean, listKernels: boolean): void {
  if (!authOn && !listKernels) {
    throw new HttpError(403, `Listing ${what} is disabled when no token is configured; start the gateway with --list-kernels to allow it`, 'Forbidden');
  }
}

/** The gate of the pipeline, from the configuration. */
export function gateOf(config: Config, tokenCheck: TokenCheck | undefined): Gate {
  return { baseUrl: config.baseUrl, allowOrigin: config.allowOrigin, tokenCheck };
}

/** Serves one request; throws HttpError (or anything) to have it answered as JSON. */
export type Serve = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** What a personality gives the HTTP server: how it serves requests (and upgrades), and its life. */
export interface Personality {
  serve: Serve;
  onUpgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  /** Settles when it can serve (notebook-http: its kernels are seeded); rejects when it cannot. */
  ready: Promise<void>;
  /** Reload what it serves (notebook-http: SIGHUP). */
  reload?(): Promise<void>;
  /** Stop serving; the kernels are stopped after this. */
  close(): Promise<void>;
}

/**
 * The request handler for node:http around `serve`: an access line at DEBUG, every error answered as
 * JSON, a client that went away answered with nothing.
 */
export function createRequestHandler(config: Config, log: Logger, serve: Serve): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const started = performance.now();
    res.once('finish', () => {
      const route = routeOfResponse.get(res) ?? 'unmatched';
      const method = req.method ?? 'GET';
      const seconds = (performance.now() - started) / 1000;
      metrics.countHttp(method, route, res.statusCode, seconds);
      if (log.level !== 'DEBUG') return;
      const client = clientAddress(req, config.trustXheaders);
      const ms = Math.round(seconds * 1000);
      log.debug(`${method} ${redactUrl(req.url)} ${res.statusCode} (client ${client}, ${ms} ms)`, {
        method, route, status: res.statusCode, duration_ms: ms, client,
      });
    });
    void serve(req, res).catch((error: unknown) => {
      if (error instanceof HttpError) return sendError(res, error);
      if (req.destroyed || (error as NodeJS.ErrnoException).code === 'ECONNRESET' || (error as Error).name === 'AbortError') {
        // The client went away in the middle of its request: routine, nothing to answer.
        log.debug(`${req.method} ${redactUrl(req.url)}: the client aborted the request (${errorMessage(error)})`);
        res.destroy();
        return;
      }
      log.error(`${req.method} ${redactUrl(req.url)}: ${errorDetail(error)}`);
      sendError(res, new HttpError(500, `Unknown server error: ${errorMessage(error)}`));
    });
  };
}

/** The REST face: CORS, preflight, the pipeline, then the routing table. Unknown paths and methods get 404/405. */
export function serveRoutes(config: Config, tokenCheck: TokenCheck | undefined, routes: readonly Route[]): Serve {
  const cors = corsHeaders(config);
  const gate = gateOf(config, tokenCheck);
  const openRoutes = routes.filter((route) => route.open);
  const open = (path: string) => openRoutes.some((route) => route.pattern.test(path));
  /** A refused request (401, 403) is still counted under the route it asked for. */
  const labelRefusal = (req: IncomingMessage, res: ServerResponse) => {
    try {
      const path = stripBase(requestUrl(req).pathname, config.baseUrl);
      const route = path === undefined ? undefined : routes.find((r) => r.pattern.test(path));
      if (route) routeOfResponse.set(res, routeTemplate(route));
    } catch {
      // Unparsable: it stays unmatched.
    }
  };
  return async (req, res) => {
    applyCors(res, cors);
    // Preflight needs no token: browsers never send credentials with it.
    if (req.method === 'OPTIONS') {
      admit(req, gate, true);
      return sendEmpty(res, 204);
    }
    let admitted;
    try {
      admitted = admit(req, gate, false, open);
    } catch (error) {
      labelRefusal(req, res);
      throw error;
    }
    const { url, path, authenticated } = admitted;
    const { route, params } = findRoute(routes, req.method ?? 'GET', path, url.pathname);
    routeOfResponse.set(res, routeTemplate(route));
    await route.handler({ req, res, url, params, authenticated });
  };
}

/** An http server, or https when a certificate (or a client CA) is configured (TLS is loaded only then). */
export async function createHttpServer(config: Config, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
  if (!config.certfile && !config.clientCa) return createServer({ noDelay: true }, handler);
  const { createServer: createTlsServer } = await import('node:https');
  return createTlsServer(
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
  );
}

/** Listen on the configured port, or on the next free one of up to port_retries more. */
export async function listen(server: Server, config: Config, log: Logger): Promise<number> {
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
