/**
 * The HTTP face: a small routing table under base_url, CORS, token auth, and JSON errors
 * ({reason, message}) for everything that goes wrong.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Config } from '../config/options.ts';
import type { Logger } from '../log.ts';
import { originAllowed, type TokenCheck } from './auth.ts';
import { applyCors, corsHeaders } from './cors.ts';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: string = STATUS_CODES[status] ?? 'Error',
  ) {
    super(message);
  }
}

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
}

/** A kernel id as Jupyter Server routes it. */
export const KERNEL_ID = String.raw`(\w+-\w+-\w+-\w+-\w+)`;

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, STATUS_CODES[status], { ...headers, 'Content-Type': 'application/json', 'Content-Length': data.length });
  res.end(data);
}

export function sendEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status);
  res.end();
}

export function sendError(res: ServerResponse, error: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, error.status, { reason: error.reason, message: error.message });
}

/**
 * Listing kernels or sessions: JupyterLab polls these routes, so they are open whenever a token protects
 * the gateway; without one, only when the operator asked for it (--list-kernels).
 */
export function checkListingAllowed(what: 'kernels' | 'sessions', authOn: boolean, listKernels: boolean): void {
  if (!authOn && !listKernels) {
    throw new HttpError(403, `Listing ${what} is disabled when no token is configured; start the gateway with --list-kernels to allow it`, 'Forbidden');
  }
}

/** Read a JSON request body; an empty body is `{}`. */
export async function readJson(req: IncomingMessage, limitBytes = 1024 * 1024): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) throw new HttpError(413, `request body is larger than ${limitBytes} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `Invalid JSON in body of request: ${(error as Error).message}`);
  }
}

export interface RouterOptions {
  config: Config;
  log: Logger;
  /** undefined when auth is off. */
  tokenCheck: TokenCheck | undefined;
  routes: Route[];
}

/** The request handler for node:http. Paths outside base_url, unknown paths and methods get JSON errors. */
export function createRequestHandler(options: RouterOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { config, log, tokenCheck, routes } = options;
  const cors = corsHeaders(config);
  return (req, res) => {
    const started = Date.now();
    res.once('finish', () => {
      if (log.level !== 'DEBUG') return;
      log.debug(`${req.method} ${redactUrl(req.url)} ${res.statusCode} (client ${clientAddress(req, config.trustXheaders)}, ${Date.now() - started} ms)`);
    });
    void handle(req, res).catch((error: unknown) => {
      if (error instanceof HttpError) return sendError(res, error);
      if (req.destroyed || (error as NodeJS.ErrnoException).code === 'ECONNRESET' || (error as Error).name === 'AbortError') {
        // The client went away in the middle of its request: routine, nothing to answer.
        log.debug(`${req.method} ${redactUrl(req.url)}: the client aborted the request (${(error as Error).message})`);
        res.destroy();
        return;
      }
      log.error(`${req.method} ${redactUrl(req.url)}: ${(error as Error).stack ?? error}`);
      sendError(res, new HttpError(500, `Unknown server error: ${(error as Error).message}`));
    });
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    applyCors(res, cors);
    const url = requestUrl(req);
    const path = stripBase(url.pathname, config.baseUrl);
    if (path === undefined) throw new HttpError(404, `${url.pathname} is not under the base URL ${config.baseUrl}`);
    // Preflight needs no token: browsers never send credentials with it.
    if (req.method === 'OPTIONS') return sendEmpty(res, 204);
    if (!originAllowed(req, config.allowOrigin)) {
      throw new HttpError(403, `Cross-origin request from ${req.headers.origin} is not allowed (see --allow-origin)`);
    }
    const authenticated = tokenCheck ? tokenCheck.acceptsRequest(req, url) : false;
    if (tokenCheck && !authenticated) throw new HttpError(401, 'A valid token is required (Authorization: token <token>, or ?token=)', 'Unauthorized');
    let pathMatched = false;
    for (const route of routes) {
      const match = route.pattern.exec(path);
      if (!match) continue;
      pathMatched = true;
      if (route.method !== req.method && !(route.method === 'GET' && req.method === 'HEAD')) continue;
      let params: string[];
      try {
        params = match.slice(1).map((p) => decodeURIComponent(p));
      } catch {
        throw new HttpError(400, `Malformed percent-encoding in ${url.pathname}`);
      }
      await route.handler({ req, res, url, params, authenticated });
      return;
    }
    if (pathMatched) throw new HttpError(405, `${req.method} is not supported on ${url.pathname}`);
    throw new HttpError(404, `Not found: ${url.pathname}`);
  }
}

/** The path below base_url without its leading slash, or undefined when outside base_url. */
export function stripBase(pathname: string, baseUrl: string): string | undefined {
  const normalized = pathname.replace(/\/{2,}/g, '/');
  if (!normalized.startsWith(baseUrl) && normalized + '/' !== baseUrl) return undefined;
  return normalized.slice(baseUrl.length).replace(/\/$/, '');
}

/** The client's address; behind a trusted proxy, the one it reports (X-Real-Ip, else the first X-Forwarded-For). */
export function clientAddress(req: IncomingMessage, trustXheaders: boolean): string {
  if (trustXheaders) {
    const real = req.headers['x-real-ip'];
    if (typeof real === 'string' && real) return real.trim();
    const forwarded = req.headers['x-forwarded-for'];
    if (typeof forwarded === 'string' && forwarded) return forwarded.split(',')[0].trim();
  }
  return req.socket.remoteAddress ?? 'unknown';
}

/**
 * The request's URL. The request target is a path (or, from a proxy, an absolute URL); a path that
 * starts with `//` is still a path here, never a host name.
 */
export function requestUrl(req: IncomingMessage): URL {
  const target = req.url ?? '/';
  try {
    return target.startsWith('/') ? new URL(`http://gateway${target}`) : new URL(target);
  } catch {
    throw new HttpError(400, `Malformed request target: ${redactUrl(target).slice(0, 200)}`);
  }
}

/**
 * A URL safe to log: every query parameter whose name, once decoded, is `token` (in any case)
 * has its value hidden, however the client spelled the name (`%74oken=`).
 */
export function redactUrl(url: string | undefined): string {
  const text = url ?? '';
  const at = text.indexOf('?');
  if (at < 0) return text;
  const hash = text.indexOf('#', at);
  const query = text.slice(at + 1, hash < 0 ? undefined : hash);
  const redacted = query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      let decoded: string;
      try {
        decoded = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        decoded = name;
      }
      return decoded.trim().toLowerCase() === 'token' ? `${name}=<hidden>` : pair;
    })
    .join('&');
  return `${text.slice(0, at + 1)}${redacted}${hash < 0 ? '' : text.slice(hash)}`;
}
