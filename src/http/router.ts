/** A small routing table: routes are a method and a pattern over the path below base_url. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './errors.ts';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** Capture groups of the route's pattern, URL-decoded. */
  params: string[];
  /** True when the request carried the configured token (false when auth is off). */
  authenticated: boolean;
}

export interface Route {
  method: 'GET' | 'POST' | 'DELETE' | 'PATCH' | 'HEAD';
  /** Matched against the path below base_url, without the leading slash (e.g. `api/kernels`). */
  pattern: RegExp;
  handler: (ctx: RequestContext) => Promise<void> | void;
  /** Served without the token (still under base_url and from an allowed origin). */
  open?: boolean;
}

const templates = new WeakMap<RegExp, string>();

/** The route as a template for metrics and logs: `/api/kernels/{id}/interrupt`. */
export function routeTemplate(route: Route): string {
  let template = templates.get(route.pattern);
  if (template === undefined) {
    template =
      '/' +
      route.pattern.source
        .replace(/^\^/, '')
        .replace(/\$$/, '')
        .replaceAll(KERNEL_ID, '{id}')
        .replace(/\((?:[^()]|\([^()]*\))*\)/g, '{param}')
        .replaceAll('\\/', '/')
        .replaceAll('\\', '');
    templates.set(route.pattern, template);
  }
  return template;
}

/** The route template a response answered (set when a route matched), for metrics and the access log. */
export const routeOfResponse = new WeakMap<object, string>();

/** A kernel (or session) id as Jupyter Server routes it. */
export const KERNEL_ID = String.raw`(\w+-\w+-\w+-\w+-\w+)`;

/** The route for a method and path, with its decoded parameters; 404 or 405 otherwise. GET routes serve HEAD. */
export function findRoute(routes: readonly Route[], method: string, path: string, pathname: string): { route: Route; params: string[] } {
  let pathMatched = false;
  for (const route of routes) {
    const match = route.pattern.exec(path);
    if (!match) continue;
    pathMatched = true;
    if (route.method !== method && !(route.method === 'GET' && method === 'HEAD')) continue;
    try {
      return { route, params: match.slice(1).map((p) => decodeURIComponent(p)) };
    } catch {
      throw new HttpError(400, `Malformed percent-encoding in ${pathname}`);
    }
  }
  if (pathMatched) throw new HttpError(405, `${method} is not supported on ${pathname}`);
  throw new HttpError(404, `Not found: ${pathname}`);
}
