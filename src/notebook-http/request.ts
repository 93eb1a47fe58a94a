/**
 * The REQUEST value: the JSON text the reference builds from an HTTP request, keys in this order:
 *  - body: for a Content-Type of exactly `application/json`, the parsed body (the raw text when it is
 *    not valid JSON); exactly `application/x-www-form-urlencoded`, or starting with
 *    `multipart/form-data`: the form fields, name → list of values; anything else (a missing type,
 *    `text/plain`, `application/json; charset=utf-8`...): the body as text;
 *  - args: the query parameters, name → list of values (repeats kept, blank values kept);
 *  - path: the path parameters, name → value;
 *  - headers: the request headers under Tornado's spelling of their names (`Content-Type`,
 *    `If-None-Match`, `X-Api-Key`), a repeated header as a list of its values.
 * The text is laid out as Python's json.dumps (ASCII only). A JSON body is embedded as the client
 * wrote it (re-spaced), so big integers and exact decimals reach the notebook unchanged.
 */
import { multipartFields } from './multipart.ts';
import { pythonJsonDumps, pythonJsonLayout } from './python-json.ts';

export interface RequestParts {
  /** node:http's rawHeaders: name, value, name, value... as received. */
  rawHeaders: readonly string[];
  /** The query string without its `?`. */
  query: string;
  params: Readonly<Record<string, string>>;
  body: Buffer;
}

export function requestJson(parts: RequestParts): string {
  const headers = headersObject(parts.rawHeaders);
  const contentType = headers.get('Content-Type')?.join(',');
  return (
    `{"body": ${bodyJson(contentType, parts.body)}, "args": ${pythonJsonDumps(groupParams(new URLSearchParams(parts.query)))}, ` +
    `"path": ${pythonJsonDumps(parts.params)}, "headers": ${pythonJsonDumps(Object.fromEntries([...headers].map(([name, values]) => [name, values.length === 1 ? values[0] : values])))}}`
  );
}

function bodyJson(contentType: string | undefined, body: Buffer): string {
  const text = body.toString('utf8');
  if (contentType === 'application/x-www-form-urlencoded') return pythonJsonDumps(groupParams(new URLSearchParams(text)));
  if (contentType?.startsWith('multipart/form-data')) return pythonJsonDumps(Object.fromEntries(multipartFields(contentType, body)));
  if (contentType === 'application/json') {
    try {
      JSON.parse(text);
      return pythonJsonLayout(text);
    } catch {
      // Not JSON after all: the text, as the reference.
    }
  }
  return pythonJsonDumps(text);
}

/** Query or form parameters: name → list of values, in order of first appearance. */
function groupParams(params: URLSearchParams): Record<string, string[]> {
  const grouped = new Map<string, string[]>();
  for (const [name, value] of params) {
    const values = grouped.get(name);
    if (values) values.push(value);
    else grouped.set(name, [value]);
  }
  return Object.fromEntries(grouped);
}

/** Header name → values, names spelled as Tornado normalises them, in order of first appearance. */
export function headersObject(rawHeaders: readonly string[]): Map<string, string[]> {
  const headers = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = tornadoHeaderName(rawHeaders[i]);
    const values = headers.get(name);
    if (values) values.push(rawHeaders[i + 1]);
    else headers.set(name, [rawHeaders[i + 1]]);
  }
  return headers;
}

/** `content-TYPE` → `Content-Type`: each dash-separated word capitalised, the rest lower-cased. */
export function tornadoHeaderName(name: string): string {
  return name
    .split('-')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1).toLowerCase())
    .join('-');
}
