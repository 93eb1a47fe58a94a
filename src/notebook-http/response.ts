/**
 * From a cell's outputs to the HTTP response, as the reference:
 *  - an execution's result is, in this order of precedence: its (last) error → `Error <ename>: <evalue> \n`
 *    with status 500; else all stdout stream text (and streams without a name) joined; else the last
 *    execute_result's data bundle as JSON (`{"text/plain": "2"}`); else nothing. stderr is dropped;
 *  - the response starts as 200 with `Content-Type: text/plain`; a ResponseInfo cell's output, a JSON
 *    object, sets `status` and replaces `headers` entry by entry;
 *  - Tornado's finishing rules: a 200 answer to GET gets an `Etag` (quoted SHA-1 of the body) unless
 *    one was set, and becomes 304 when the request's If-None-Match matches it; 204 and 304 carry no
 *    body and no Content-Type.
 * Where the reference fails obscurely we answer 500 with the same `Error <name>: <message>` text: a
 * ResponseInfo output that is not JSON (the reference sends an empty 200), a status that is not an
 * integer from 200 to 599, or a header that cannot be sent.
 */
import { createHash } from 'node:crypto';
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type { KernelOutput } from './pool-kernel.ts';
import { pythonJsonDumps } from './python-json.ts';

export type ExecutionResult = { kind: 'error'; text: string } | { kind: 'output'; text: string };

export function executionResult(outputs: readonly KernelOutput[]): ExecutionResult {
  let error: string | undefined;
  const streams: string[] = [];
  let result: Record<string, unknown> | undefined;
  for (const output of outputs) {
    if (output.type === 'error') error = errorText(output.ename, output.evalue);
    else if (output.type === 'stream' && (output.name === undefined || output.name === 'stdout')) streams.push(output.text);
    else if (output.type === 'execute_result') result = output.data;
  }
  if (error !== undefined) return { kind: 'error', text: error };
  if (streams.length > 0) return { kind: 'output', text: streams.join('') };
  return { kind: 'output', text: result ? pythonJsonDumps(result) : '' };
}

/** The reference's body for a failed execution (the space before the newline included). */
export function errorText(name: string, message: string): string {
  return `Error ${name}: ${message} \n`;
}

export interface NotebookResponse {
  status: number;
  /** Lower-cased name → [name as set, value]; later settings replace earlier ones. */
  headers: Map<string, [string, string]>;
  body: Buffer;
}

export function setHeader(response: NotebookResponse, name: string, value: string): void {
  response.headers.set(name.toLowerCase(), [name, value]);
}

/** A plain-text response (errors and the like). */
export function textResponse(status: number, text: string): NotebookResponse {
  const response: NotebookResponse = { status, headers: new Map(), body: Buffer.from(text, 'utf8') };
  setHeader(response, 'Content-Type', 'text/plain');
  return response;
}

/** The response to an endpoint request, from its cell's result and its ResponseInfo cell's result (if any). */
export function endpointResponse(source: ExecutionResult, responseInfo?: ExecutionResult): NotebookResponse {
  if (source.kind === 'error') return textResponse(500, source.text);
  if (responseInfo?.kind === 'error') return textResponse(500, responseInfo.text);
  const response = textResponse(200, source.text);
  if (responseInfo && responseInfo.text.trim() !== '') {
    const problem = applyResponseInfo(response, responseInfo.text);
    if (problem) return textResponse(500, errorText('ResponseInfo', problem));
  }
  return response;
}

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const UNSAFE_HEADER_VALUE = /[\x00-\x1f\x7f]|[^\x00-\xff]/;

/** Apply a ResponseInfo output; returns what is wrong with it, if anything. */
function applyResponseInfo(response: NotebookResponse, text: string): string | undefined {
  let info: unknown;
  try {
    info = JSON.parse(text);
  } catch {
    return `the ResponseInfo cell must print a JSON object like {"status": 201, "headers": {...}}, not ${JSON.stringify(text.slice(0, 200))}`;
  }
  // Other JSON values carry no status or headers: ignored, as by the reference.
  if (typeof info !== 'object' || info === null || Array.isArray(info)) return undefined;
  const { status, headers } = info as { status?: unknown; headers?: unknown };
  if (headers !== undefined) {
    if (typeof headers !== 'object' || headers === null || Array.isArray(headers)) return `"headers" must be an object, not ${JSON.stringify(headers)}`;
    for (const [name, raw] of Object.entries(headers)) {
      const value = typeof raw === 'string' ? raw : Number.isInteger(raw) ? String(raw) : typeof raw === 'boolean' ? (raw ? 'True' : 'False') : undefined;
      if (value === undefined) return `the header ${name} must be a string or an integer, not ${JSON.stringify(raw)}`;
      if (!HEADER_NAME.test(name)) return `${JSON.stringify(name)} is not a valid header name`;
      if (UNSAFE_HEADER_VALUE.test(value)) return `the value of the header ${name} contains characters a header cannot carry`;
      setHeader(response, name, value);
    }
  }
  if (status !== undefined) {
    if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 599) return `"status" must be an integer from 200 to 599, not ${JSON.stringify(status)}`;
    response.status = status;
  }
  return undefined;
}

/**
 * Tornado's last steps before sending, for a request with `method` and `ifNoneMatch`: the automatic
 * Etag and 304, no body or representation headers on 204/304, Content-Length from the body.
 */
export function finishResponse(response: NotebookResponse, method: string, ifNoneMatch: string | undefined): NotebookResponse {
  if (response.status === 200 && (method === 'GET' || method === 'HEAD') && !response.headers.has('etag')) {
    const etag = `"${createHash('sha1').update(response.body).digest('hex')}"`;
    setHeader(response, 'Etag', etag);
    if (etagMatches(etag, ifNoneMatch)) {
      response.status = 304;
      response.body = Buffer.alloc(0);
    }
  }
  if (response.status === 204 || response.status === 304) {
    response.body = Buffer.alloc(0);
    for (const name of ['content-encoding', 'content-language', 'content-type']) response.headers.delete(name);
  }
  response.headers.delete('transfer-encoding');
  if (response.status !== 204 && response.status !== 304) setHeader(response, 'Content-Length', String(response.body.length));
  return response;
}

/** Tornado's check_etag_header: `*`, or any listed tag equal to ours, weak prefixes ignored. */
export function etagMatches(etag: string, ifNoneMatch: string | undefined): boolean {
  const tags = (ifNoneMatch ?? '').match(/\*|(?:W\/)?"[^"]*"/g) ?? [];
  if (tags.length === 0) return false;
  if (tags[0] === '*') return true;
  const strong = (tag: string) => (tag.startsWith('W/') ? tag.slice(2) : tag);
  return tags.some((tag) => strong(tag) === strong(etag));
}

/** Send a finished response (no body for HEAD). `extraHeaders` (CORS) go first, so the notebook's own win. */
export function sendNotebookResponse(res: ServerResponse, response: NotebookResponse, method: string, extraHeaders: Readonly<Record<string, string>> = {}): void {
  for (const [name, value] of Object.entries(extraHeaders)) res.setHeader(name, value);
  for (const [name, value] of response.headers.values()) res.setHeader(name, value);
  res.writeHead(response.status, STATUS_CODES[response.status] ?? 'Unknown');
  res.end(method === 'HEAD' ? undefined : response.body);
}
