/**
 * The fields of a multipart/form-data body, parsed as Tornado does for the reference: parts that are
 * not `form-data`, have no name, or are malformed are skipped; file parts (with a filename) are left
 * out, since REQUEST has no place for them; values are decoded as UTF-8.
 */

/** Field name → values, in order of first appearance; empty when the body has no boundary or no final one. */
export function multipartFields(contentType: string, body: Buffer): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  const boundary = boundaryOf(contentType);
  if (!boundary) return fields;
  const end = body.lastIndexOf(`--${boundary}--`);
  if (end < 0) return fields;
  for (const part of splitBuffer(body.subarray(0, end), Buffer.from(`--${boundary}\r\n`))) {
    if (part.length === 0) continue;
    const headerEnd = part.indexOf('\r\n\r\n');
    if (headerEnd < 0 || !part.subarray(-2).equals(CRLF)) continue;
    const disposition = partHeader(part.subarray(0, headerEnd).toString('utf8'), 'content-disposition');
    if (disposition === undefined) continue;
    const { value, params } = parseHeaderValue(disposition);
    if (value !== 'form-data' || !params.get('name') || params.get('filename') || params.get('filename*')) continue;
    const name = params.get('name')!;
    const values = fields.get(name) ?? [];
    values.push(part.subarray(headerEnd + 4, part.length - 2).toString('utf8'));
    fields.set(name, values);
  }
  return fields;
}

const CRLF = Buffer.from('\r\n');

function boundaryOf(contentType: string): string | undefined {
  for (const field of contentType.split(';')) {
    const [key, ...rest] = field.trim().split('=');
    const value = rest.join('=');
    if (key === 'boundary' && value) return value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
  }
  return undefined;
}

function splitBuffer(buffer: Buffer, separator: Buffer): Buffer[] {
  const pieces: Buffer[] = [];
  let start = 0;
  for (let at = buffer.indexOf(separator); at >= 0; at = buffer.indexOf(separator, start)) {
    pieces.push(buffer.subarray(start, at));
    start = at + separator.length;
  }
  pieces.push(buffer.subarray(start));
  return pieces;
}

function partHeader(headers: string, name: string): string | undefined {
  for (const line of headers.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name) return line.slice(colon + 1).trim();
  }
  return undefined;
}

/** `form-data; name="a"; filename="b"` → value and parameters (names lower-cased, quotes and \-escapes removed). */
export function parseHeaderValue(header: string): { value: string; params: Map<string, string> } {
  const pieces: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < header.length; i++) {
    const c = header[i];
    if (c === '"') quoted = !quoted;
    if (c === '\\' && quoted && i + 1 < header.length) {
      current += c + header[++i];
      continue;
    }
    if (c === ';' && !quoted) {
      pieces.push(current);
      current = '';
    } else current += c;
  }
  pieces.push(current);
  const params = new Map<string, string>();
  for (const piece of pieces.slice(1)) {
    const eq = piece.indexOf('=');
    if (eq < 0) continue;
    let value = piece.slice(eq + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1).replace(/\\(.)/g, '$1');
    params.set(piece.slice(0, eq).trim().toLowerCase(), value);
  }
  return { value: pieces[0].trim(), params };
}
