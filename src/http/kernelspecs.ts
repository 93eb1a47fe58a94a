/** /api/kernelspecs and /kernelspecs/{name}/{file}: kernelspec models and their resource files. */
import { createReadStream, statSync } from 'node:fs';
import { extname } from 'node:path';
import { kernelSpecModel, type KernelSpecStore } from '../kernels/specs.ts';
import { HttpError, sendJson } from './errors.ts';
import type { RequestContext, Route } from './router.ts';

const CONTENT_TYPES: Record<string, string> = {
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
};

export function kernelSpecRoutes(specs: KernelSpecStore, defaultName: () => string, baseUrl: string): Route[] {
  return [
    {
      method: 'GET',
      pattern: /^api\/kernelspecs$/,
      handler: ({ res }: RequestContext) => {
        const kernelspecs: Record<string, unknown> = {};
        for (const spec of specs.list()) kernelspecs[spec.name] = kernelSpecModel(spec, spec.name, baseUrl, specs);
        sendJson(res, 200, { default: defaultName(), kernelspecs });
      },
    },
    {
      method: 'GET',
      pattern: /^api\/kernelspecs\/([\w.\-%]+)$/,
      handler: ({ res, params }: RequestContext) => {
        const spec = specs.get(params[0]);
        if (!spec) throw new HttpError(404, `Kernel spec ${params[0]} not found`);
        sendJson(res, 200, kernelSpecModel(spec, params[0], baseUrl, specs));
      },
    },
    {
      method: 'GET',
      pattern: /^kernelspecs\/([\w.\-%]+)\/(.+)$/,
      handler: ({ req, res, params }: RequestContext) => {
        const inline = specs.builtinResource(params[0], params[1]);
        if (inline !== undefined) {
          const body = Buffer.from(inline, 'utf8');
          res.writeHead(200, { 'Content-Type': CONTENT_TYPES[extname(params[1]).toLowerCase()] ?? 'application/octet-stream', 'Content-Length': body.length });
          return void res.end(req.method === 'HEAD' ? undefined : body);
        }
        const file = specs.resolveResource(params[0], params[1]);
        if (!file) throw new HttpError(404, `Kernel spec ${params[0]} has no resource ${params[1]}`);
        const stat = statSync(file);
        const extension = extname(file).toLowerCase();
        const headers: Record<string, string | number> = {
          'Content-Type': CONTENT_TYPES[extension] ?? 'application/octet-stream',
          'Content-Length': stat.size,
          'Last-Modified': stat.mtime.toUTCString(),
        };
        if (extension === '.png') headers['Cache-Control'] = 'max-age=2592000';
        res.writeHead(200, headers);
        if (req.method === 'HEAD') return void res.end();
        createReadStream(file).pipe(res);
      },
    },
  ];
}
