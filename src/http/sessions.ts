/** /api/sessions as Jupyter Server serves it, so session-based web clients work. */
import type { Config } from '../config/options.ts';
import { UnknownKernelError, type Session, type SessionManager, type SessionUpdate } from '../kernels/sessions.ts';
import { kernelStartError } from './kernels.ts';
import { HttpError, sendEmpty, sendJson } from './errors.ts';
import { readJson } from './request.ts';
import { KERNEL_ID, type RequestContext, type Route } from './router.ts';
import { checkListingAllowed } from './server.ts';
import { isJsonObject } from '../messaging/message.ts';

function optionalString(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new HttpError(400, `"${key}" must be a string`);
  return value;
}

function kernelField(body: Record<string, unknown>): { id?: string; name?: string } | undefined {
  const kernel = body.kernel;
  if (kernel === undefined || kernel === null) return undefined;
  if (!isJsonObject(kernel)) throw new HttpError(400, '"kernel" must be an object like {"name": "python3"}');
  return { id: optionalString(kernel, 'id'), name: optionalString(kernel, 'name') };
}

export function sessionRoutes(sessions: SessionManager, config: Config, authOn: boolean): Route[] {
  const find = (id: string): Session => {
    const session = sessions.get(id);
    if (!session) throw new HttpError(404, `Session not found: ${id}`);
    return session;
  };
  const sessionPath = new RegExp(`^api/sessions/${KERNEL_ID}$`);
  return [
    {
      method: 'GET',
      pattern: /^api\/sessions$/,
      handler: ({ res }: RequestContext) => {
        checkListingAllowed('sessions', authOn, config.listKernels);
        sendJson(res, 200, sessions.list().map((s) => sessions.model(s)));
      },
    },
    {
      method: 'POST',
      pattern: /^api\/sessions$/,
      handler: async ({ req, res }: RequestContext) => {
        const body = await readJson(req);
        if (!isJsonObject(body)) throw new HttpError(400, 'The request body must be a JSON object like {"path": "a.ipynb", "type": "notebook", "kernel": {"name": "python3"}}');
        // The legacy form {"notebook": {"path": ...}} means a notebook session.
        const legacy = isJsonObject(body.notebook) ? body.notebook : undefined;
        const path = optionalString(body, 'path') ?? (legacy ? optionalString(legacy, 'path') : undefined);
        const type = optionalString(body, 'type') ?? (legacy ? 'notebook' : undefined);
        if (path === undefined) throw new HttpError(400, 'Missing field in JSON data: path');
        if (type === undefined) throw new HttpError(400, 'Missing field in JSON data: type');
        const name = optionalString(body, 'name') ?? (legacy ? optionalString(legacy, 'name') : undefined) ?? '';
        const existing = sessions.findByPath(path);
        let session: Session;
        try {
          session = existing ?? (await sessions.create({ path, name, type, kernel: kernelField(body) ?? {} }));
        } catch (error) {
          if (error instanceof UnknownKernelError) throw new HttpError(400, error.message);
          throw kernelStartError(error);
        }
        sendJson(res, 201, sessions.model(session), { Location: `${config.baseUrl}api/sessions/${session.id}` });
      },
    },
    {
      method: 'GET',
      pattern: sessionPath,
      handler: ({ res, params }: RequestContext) => sendJson(res, 200, sessions.model(find(params[0]))),
    },
    {
      method: 'PATCH',
      pattern: sessionPath,
      handler: async ({ req, res, params }: RequestContext) => {
        const session = find(params[0]);
        const body = await readJson(req);
        if (!isJsonObject(body)) throw new HttpError(400, 'The request body must be a JSON object');
        const update: SessionUpdate = {
          path: optionalString(body, 'path'),
          name: optionalString(body, 'name'),
          type: optionalString(body, 'type'),
          kernel: kernelField(body),
        };
        try {
          await sessions.update(session, update);
        } catch (error) {
          if (error instanceof UnknownKernelError) throw new HttpError(400, error.message);
          throw kernelStartError(error);
        }
        sendJson(res, 200, sessions.model(session));
      },
    },
    {
      method: 'DELETE',
      pattern: sessionPath,
      handler: async ({ res, params }: RequestContext) => {
        const session = find(params[0]);
        if (!(await sessions.delete(session))) throw new HttpError(410, 'Kernel deleted before session', 'Gone');
        sendEmpty(res, 204);
      },
    },
  ];
}
