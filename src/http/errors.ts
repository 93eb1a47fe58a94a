/**
 * How the HTTP face answers when something is wrong: every error is JSON `{reason, message}` with
 * the right status, whether it ends a REST request or refuses a WebSocket upgrade.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: string = STATUS_CODES[status] ?? 'Error',
    /** Extra response headers (e.g. Retry-After). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, STATUS_CODES[status], { ...headers, 'Content-Type': 'application/json', 'Content-Length': data.length });
  res.end(data);
}

export function sendEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status);
  res.end();
}

/** The answer to a request without a valid token, the same wherever it is asked for. */
export function unauthorized(): HttpError {
  return new HttpError(401, 'A valid token is required (Authorization: token <token>, or ?token=)', 'Unauthorized');
}

function errorBody(error: HttpError): { reason: string; message: string } {
  return { reason: error.reason, message: error.message };
}

export function sendError(res: ServerResponse, error: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, error.status, errorBody(error), error.headers);
}

/** The same answer on a socket whose upgrade is refused (there is no ServerResponse there). */
export function refuseUpgrade(socket: Duplex, error: HttpError, headers: Record<string, string> = {}): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(errorBody(error));
  const lines = Object.entries({ ...headers, ...error.headers }).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  socket.end(
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}\r\nContent-Type: application/json\r\n${lines}` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
