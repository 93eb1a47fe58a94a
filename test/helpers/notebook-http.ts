/**
 * For notebook-http integration tests: notebooks written to a folder of the test's own, a gateway
 * started in notebook-http mode on one, and plain node:http requests (repeated headers, raw bodies and
 * paths sent exactly as given, which fetch cannot all do).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { notebookText, type CellSpec } from '../notebook-http/notebooks.ts';
import { startGateway, withTimeout, type Gateway, type StartOptions } from './gateway.ts';

export { notebookText, type CellSpec };

/** A fresh folder for a suite's notebooks and files. */
export function notebookDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `kg-it-nbhttp-${prefix}-`));
}

/** Write a notebook (strings are code cells) and return its path. */
export function writeNotebook(dir: string, name: string, cells: CellSpec[], language = 'python', kernelName = 'testpy'): string {
  const path = join(dir, name);
  writeFileSync(path, notebookText(cells, language, kernelName));
  return path;
}

/** A gateway serving `notebook` (`--api notebook-http --seed-uri <notebook>` plus `args`). */
export function startNotebookGateway(notebook: string, args: string[] = [], opts: StartOptions = {}): Promise<Gateway> {
  return startGateway({ readyTimeoutMs: 60_000, ...opts, args: ['--api', 'notebook-http', '--seed-uri', notebook, ...args] });
}

export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export interface HttpOptions {
  headers?: OutgoingHttpHeaders;
  body?: string | Buffer;
  /** Send `Authorization: token <gw.token>` (default true). */
  auth?: boolean;
  timeoutMs?: number;
}

/** One request on its own connection; `path` is below the gateway's base URL and sent as written. */
export function http(gw: Gateway, method: string, path: string, opts: HttpOptions = {}): Promise<HttpResult> {
  const headers: OutgoingHttpHeaders = { ...opts.headers };
  if (opts.auth !== false && gw.token) headers.Authorization = `token ${gw.token}`;
  const base = new URL(gw.url).pathname;
  return withTimeout(
    new Promise<HttpResult>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: gw.port, method, path: base + path.replace(/^\//, ''), headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(opts.body);
    }),
    opts.timeoutMs ?? 60_000,
    `${method} ${path}`,
  );
}

/** GET with the token; the body text. Throws unless the status is 200. */
export async function getText(gw: Gateway, path: string, opts: HttpOptions = {}): Promise<string> {
  const res = await http(gw, 'GET', path, opts);
  if (res.status !== 200) throw new Error(`GET ${path} → ${res.status} ${res.text}`);
  return res.text;
}
