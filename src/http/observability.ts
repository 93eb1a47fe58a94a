/**
 * What operators watch: GET /metrics (Prometheus text format; behind the token unless
 * --metrics-no-auth) and GET /api/status (as Jupyter Server answers it).
 */
import type { Config } from '../config/options.ts';
import { isoNow } from '../messaging/session.ts';
import { CONTENT_TYPE } from '../metrics/registry.ts';
import { metrics } from '../metrics/gateway-metrics.ts';
import type { Route } from './router.ts';
import { sendJson } from './errors.ts';

export function metricsRoute(config: Config): Route {
  metrics.watchEventLoop();
  return {
    method: 'GET',
    pattern: /^metrics$/,
    open: config.metricsNoAuth,
    handler: ({ req, res }) => {
      const body = Buffer.from(metrics.registry.render(), 'utf8');
      res.writeHead(200, { 'Content-Type': CONTENT_TYPE, 'Content-Length': body.length });
      res.end(req.method === 'HEAD' ? undefined : body);
    },
  };
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
