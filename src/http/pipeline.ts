/**
 * The one gate every request passes, REST and WebSocket upgrade alike: under base_url, from an
 * allowed origin, with the token. Each refusal is the same HttpError (and so the same JSON body)
 * whichever way the client came.
 */
import type { IncomingMessage } from 'node:http';
import { originAllowed, type TokenCheck } from './auth.ts';
import { HttpError, unauthorized } from './errors.ts';
import { requestUrl, stripBase } from './request.ts';

export interface Gate {
  baseUrl: string;
  allowOrigin: string;
  /** undefined when auth is off. */
  tokenCheck: TokenCheck | undefined;
}

export interface Admitted {
  url: URL;
  /** The path below base_url, without its leading slash (e.g. `api/kernels`). */
  path: string;
  /** True when the request carried the configured token (false when auth is off). */
  authenticated: boolean;
}

/**
 * Where the request goes, or the HttpError that refuses it. `preflight` stops before origin and token;
 * `open(path)` says which paths need no token.
 */
export function admit(req: IncomingMessage, gate: Gate, preflight = false, open?: (path: string) => boolean): Admitted {
  const url = requestUrl(req);
  const path = stripBase(url.pathname, gate.baseUrl);
  if (path === undefined) throw new HttpError(404, `${url.pathname} is not under the base URL ${gate.baseUrl}`);
  if (preflight) return { url, path, authenticated: false };
  if (!originAllowed(req, gate.allowOrigin)) {
    throw new HttpError(403, `Cross-origin request from ${req.headers.origin} is not allowed (see --allow-origin)`);
  }
  const authenticated = gate.tokenCheck ? gate.tokenCheck.acceptsRequest(req, url) : false;
  if (gate.tokenCheck && !authenticated && !open?.(path)) {
    throw unauthorized();
  }
  return { url, path, authenticated };
}
