/**
 * What operators watch: GET /metrics (Prometheus text format; behind the token unless
 * --metrics-no-auth) and GET /api/status (as Jupyter Server answers it).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Config } from '../config/options.ts';
import { isoNow } from '../messaging/session.ts';
import { CONTENT_TYPE } from '../metrics/registry.ts';
import { metrics } from '../metrics/gateway-metrics.ts';
import type { Route } from './router.ts';
import { sendJson } from './errors.ts';

/** The metrics, as a scrape asks for them. Event-loop lag is measured from the first scrape on (a timer nobody reads costs wake-ups). */
export function sendMetrics(req: IncomingMessage, res: ServerResponse): void {
  metrics.watchEventLoop();
  const body = Buffer.from(metrics.registry.render(), 'utf8');
  res.writeHead(200, { 'Content-Type': CONTENT_TYPE, 'Content-Length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
}

export function metricsRoute(config: Config): Route {
  return { method: 'GET', pattern: /^metrics$/, open: config.metricsNoAuth, handler: ({ req, res }) => sendMetrics(req, res) };
}

export interface StatusSource {
  started: Date;
  /** The latest of the last API request and every kernel's last activity. */
  lastActivity(): Date;
  connections(): number;
  kernels(): number;
}

/** Jupyter Server's /api/status: {started, last_activity, connections, kernels}. */
export function statusRoute(source: StatusSource): Route {
  return {
    method: 'GET',
    pattern: /^api\/status$/,
    handler: ({ res }) =>
      sendJson(res, 200, {
        started: isoNow(source.started),
        last_activity: isoNow(source.lastActivity()),
        connections: source.connections(),
        kernels: source.kernels(),
      }),
  };
}
