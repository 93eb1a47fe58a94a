/** CORS headers exactly as configured (the reference sends its values verbatim, never reflects them). */
import type { ServerResponse } from 'node:http';
import type { Config } from '../config/options.ts';

export function corsHeaders(config: Config): Record<string, string> {
  const headers: Record<string, string> = {};
  const add = (name: string, value: string) => {
    if (value) headers[name] = value;
  };
  add('Access-Control-Allow-Origin', config.allowOrigin);
  add('Access-Control-Allow-Headers', config.allowHeaders);
  add('Access-Control-Allow-Methods', config.allowMethods);
  add('Access-Control-Allow-Credentials', config.allowCredentials);
  add('Access-Control-Expose-Headers', config.exposeHeaders);
  add('Access-Control-Max-Age', config.maxAge);
  return headers;
}

export function applyCors(res: ServerResponse, headers: Record<string, string>): void {
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
}
