/** /api/kernels REST: start, list, get, delete, interrupt, restart. Translates requests into manager calls. */
import type { Config } from '../config/options.ts';
import { InvalidPathError, KernelLimitError, KernelStartError, NoSuchKernelSpecError, type KernelManager } from '../kernels/manager.ts';
import type { Kernel } from '../kernels/kernel.ts';
import { ProvisionerRequestError, UnknownProvisionerError } from '../kernels/provisioners/provisioner.ts';
import { HttpError, sendEmpty, sendJson } from './errors.ts';
import { readJson } from './request.ts';
import { KERNEL_ID, type RequestContext, type Route } from './router.ts';
import { checkListingAllowed } from './server.ts';
import { isJsonObject } from '../messaging/message.ts';
import { errorMessage } from '../log.ts';

/** The HTTP error for a failed kernel start, shared by /api/kernels and /api/sessions. */
export function kernelStartError(error: unknown): HttpError {
  if (error instanceof HttpError) return error;
  if (error instanceof NoSuchKernelSpecError) return new HttpError(404, error.message, 'Not Found');
  if (error instanceof KernelLimitError) return new HttpError(403, error.message, 'Forbidden');
  if (error instanceof InvalidPathError || error instanceof ProvisionerRequestError) return new HttpError(400, error.message);
  if (error instanceof KernelStartError) return new HttpError(500, error.message);
  if (error instanceof UnknownProvisionerError) return new HttpError(500, error.message);
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EMFILE' || code === 'ENFILE' || /too many open files/i.test(errorMessage(error))) {
    return new HttpError(
      503,
      'Could not start kernel: the gateway has no file descriptors left (ulimit -n); close clients or kernels, or raise the limit',
      'Service Unavailable',
    );
  }
  return new HttpError(500, `Could not start kernel: ${errorMessage(error)}`);
}

/** Names a shell accepts, and values without NUL, within a size a kernel's environment can hold. */
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const ENV_VALUE_LIMIT = 32 * 1024;

/** Validate a POST /api/kernels body, naming the field that is wrong. */
function parseStartBody(body: unknown): { name?: string; path?: string; env?: Record<string, string> } {
  if (!isJsonObject(body)) throw new HttpError(400, 'The request body must be a JSON object like {"name": "python3"}');
  const { name, path, env } = body;
  if (name !== undefined && name !== null && typeof name !== 'string') throw new HttpError(400, '"name" must be a string (a kernelspec name)');
  if (path !== undefined && path !== null && typeof path !== 'string') throw new HttpError(400, '"path" must be a string');
  if (env !== undefined && env !== null) {
    if (!isJsonObject(env)) throw new HttpError(400, '"env" must be an object of strings');
    for (const [key, value] of Object.entries(env)) {
      if (!ENV_NAME.test(key)) throw new HttpError(400, `"env" has an invalid variable name ${JSON.stringify(key)}`);
      if (typeof value !== 'string') throw new HttpError(400, `"env.${key}" must be a string`);
      if (value.includes('\0') || value.length > ENV_VALUE_LIMIT) {
        throw new HttpError(400, `"env.${key}" must be at most ${ENV_VALUE_LIMIT} characters without NUL`);
      }
    }
  }
  return {
    name: name ?? undefined,
    path: path ?? undefined,
    env: (env as Record<string, string> | null | undefined) ?? undefined,
  };
}

export function kernelRoutes(manager: KernelManager, config: Config, authOn: boolean): Route[] {
  const find = (id: string): Kernel => {
    const kernel = manager.get(id);
    if (!kernel) throw new HttpError(404, `Kernel does not exist: ${id}`);
    return kernel;
  };
  const kernelPath = (rest = '') => new RegExp(`^api/kernels/${KERNEL_ID}${rest}$`);

  return [
    {
      method: 'GET',
      pattern: /^api\/kernels$/,
      handler: ({ res }: RequestContext) => {
        checkListingAllowed('kernels', authOn, config.listKernels);
        sendJson(res, 200, manager.list().map((k) => manager.modelOf(k)));
      },
    },
    {
      method: 'POST',
      pattern: /^api\/kernels$/,
      handler: async ({ req, res }: RequestContext) => {
        const request = parseStartBody(await readJson(req));
        let kernel: Kernel;
        try {
          kernel = await manager.start(request);
        } catch (error) {
          throw kernelStartError(error);
        }
        sendJson(res, 201, manager.modelOf(kernel), { Location: `${config.baseUrl}api/kernels/${kernel.id}` });
      },
    },
    {
      method: 'GET',
      pattern: kernelPath(),
      handler: ({ res, params }: RequestContext) => sendJson(res, 200, manager.modelOf(find(params[0]))),
    },
    {
      method: 'DELETE',
      pattern: kernelPath(),
      handler: async ({ res, params }: RequestContext) => {
        find(params[0]);
        await manager.shutdown(params[0]);
        sendEmpty(res, 204);
      },
    },
    {
      method: 'POST',
      pattern: kernelPath('/interrupt'),
      handler: async ({ res, params }: RequestContext) => {
        await find(params[0]).interrupt();
        sendEmpty(res, 204);
      },
    },
    {
      method: 'POST',
      pattern: kernelPath('/restart'),
      handler: async ({ res, params }: RequestContext) => {
        const kernel = find(params[0]);
        try {
          await kernel.restart();
        } catch (error) {
          throw new HttpError(500, `Exception restarting kernel: ${errorMessage(error)}`);
        }
        sendJson(res, 200, manager.modelOf(kernel));
      },
    },
  ];
}
