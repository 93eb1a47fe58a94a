/** Token and origin checks. Tokens are compared in constant time and never logged. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

/** Every token the request offers: `?token=`, `Authorization: token X` and `Authorization: Bearer X`. */
function offeredTokens(req: IncomingMessage, url: URL): string[] {
  const tokens = url.searchParams.getAll('token');
  const match = /^\s*(token|bearer)\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  if (match) tokens.push(match[2]);
  return tokens;
}

export class TokenCheck {
  readonly #digest: Buffer;

  constructor(token: string) {
    this.#digest = digest(token);
  }

  /** Constant time whatever the lengths: both sides are hashed to the same size first. */
  accepts(candidate: string): boolean {
    return timingSafeEqual(this.#digest, digest(candidate));
  }

  acceptsRequest(req: IncomingMessage, url: URL): boolean {
    let ok = false;
    for (const token of offeredTokens(req, url)) ok = this.accepts(token) || ok;
    return ok;
  }
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * Jupyter Server's origin rule: allowed when allow_origin is '*', when there is no Origin (scripts),
 * when the Origin's host:port equals the Host header, or when it equals allow_origin exactly.
 */
export function originAllowed(req: IncomingMessage, allowOrigin: string): boolean {
  if (allowOrigin === '*') return true;
  const origin = req.headers.origin;
  const host = req.headers.host;
  if (!origin || !host) return true;
  if (origin === allowOrigin) return true;
  try {
    return new URL(origin.toLowerCase()).host === host.toLowerCase();
  } catch {
    return false;
  }
}
