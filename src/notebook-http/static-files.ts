/**
 * /public/<file>: files of --static-path, as the reference's Tornado StaticFileHandler serves them:
 * GET and HEAD only, no token, the content type from the file's extension (no charset), 404 for a
 * missing file, 403 for a directory or a path leading outside the folder, Last-Modified and
 * If-Modified-Since. (Range requests are not supported.)
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, isAbsolute, relative, resolve, sep } from 'node:path';

/** Python's mimetypes for the usual web files. */
const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.htm': 'text/html',
  '.css': 'text/css',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.json': 'application/json',
  '.map': 'application/json',
  '.txt': 'text/plain',
  '.md': 'text/markdown',
  '.csv': 'text/csv',
  '.xml': 'application/xml',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.ico': 'image/vnd.microsoft.icon',
  '.webp': 'image/webp',
  '.pdf': 'application/pdf',
  '.wasm': 'application/wasm',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.ttf': 'font/ttf',
  '.ipynb': 'application/x-ipynb+json',
  '.zip': 'application/zip',
};

export function contentTypeFor(file: string): string {
  return CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
}

export type StaticOutcome = { kind: 'sent' } | { kind: 'error'; status: 403 | 404 | 405 | 400; message: string };

/**
 * Serve `encodedPath` (the part after /public/, still percent-encoded) from `root`.
 * Errors are returned for the caller to answer in its usual shape.
 */
export async function serveStaticFile(req: IncomingMessage, res: ServerResponse, root: string, encodedPath: string): Promise<StaticOutcome> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return { kind: 'error', status: 405, message: `${req.method} is not supported on /public/` };
  let path: string;
  try {
    path = decodeURIComponent(encodedPath);
  } catch {
    return { kind: 'error', status: 400, message: `Malformed percent-encoding in /public/${encodedPath}` };
  }
  const base = resolve(root);
  const file = resolve(base, path);
  const inside = relative(base, file);
  if (path.includes('\0') || inside === '..' || inside.startsWith('..' + sep) || isAbsolute(inside)) {
    return { kind: 'error', status: 403, message: `/public/${path} is not in the static folder` };
  }
  let info;
  try {
    info = await stat(file);
  } catch {
    return { kind: 'error', status: 404, message: `No file /public/${path}` };
  }
  if (!info.isFile()) return { kind: 'error', status: 403, message: `/public/${path} is not a file` };
  const modified = new Date(Math.floor(info.mtimeMs / 1000) * 1000);
  const since = Date.parse(req.headers['if-modified-since'] ?? '');
  if (!Number.isNaN(since) && since >= modified.getTime()) {
    res.writeHead(304, { 'Last-Modified': modified.toUTCString() });
    res.end();
    return { kind: 'sent' };
  }
  res.writeHead(200, { 'Content-Type': contentTypeFor(file), 'Content-Length': info.size, 'Last-Modified': modified.toUTCString(), 'Accept-Ranges': 'none' });
  if (req.method === 'HEAD') {
    res.end();
    return { kind: 'sent' };
  }
  await new Promise<void>((done) => {
    const stream = createReadStream(file);
    stream.once('error', () => {
      res.destroy();
      done();
    });
    stream.once('end', done);
    res.once('close', () => {
      stream.destroy();
      done();
    });
    stream.pipe(res);
  });
  return { kind: 'sent' };
}
