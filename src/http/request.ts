/** Reading a request: its URL (and a version safe to log), its path below base_url, its JSON body, its client. */
import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.ts';
import { errorMessage } from '../log.ts';

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

/** The path below base_url without its leading slash, or undefined when outside base_url. */
export function stripBase(pathname: string, baseUrl: string): string | undefined {
  const normalized = pathname.replace(/\/{2,}/g, '/');
  if (!normalized.startsWith(baseUrl) && normalized + '/' !== baseUrl) return undefined;
  return normalized.slice(baseUrl.length).replace(/\/$/, '');
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

/** The whole request body; 413 beyond `limitBytes` (checked against Content-Length first, then as it comes). */
export async function readBody(req: IncomingMessage, limitBytes: number): Promise<Buffer> {
  const tooLarge = () => new HttpError(413, `The request body is larger than ${limitBytes} bytes`);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limitBytes) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Read a JSON request body; an empty body is `{}`. */
export async function readJson(req: IncomingMessage, limitBytes = 1024 * 1024): Promise<unknown> {
  const text = (await readBody(req, limitBytes)).toString('utf8').trim();
  if (text === '') return {};
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `Invalid JSON in body of request: ${errorMessage(error)}`);
  }
}
