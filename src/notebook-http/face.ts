/**
 * The notebook-http personality wired to the gateway: requests below base_url go to the notebook's
 * service (personality.ts) once its kernels are seeded (requests that come earlier wait for them);
 * everything else is a JSON 404. No jupyter-websocket route exists in this mode.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sendMetrics } from '../http/observability.ts';
import type { Config } from '../config/options.ts';
import type { TokenCheck } from '../http/auth.ts';
import { corsHeaders } from '../http/cors.ts';
import { HttpError, unauthorized } from '../http/errors.ts';
import { requestUrl } from '../http/request.ts';
import type { Personality } from '../http/server.ts';
import type { KernelManager } from '../kernels/manager.ts';
import type { KernelSpecStore } from '../kernels/specs.ts';
import { errorMessage, type Logger } from '../log.ts';
import { managedKernels } from './kernel-source.ts';
import { createNotebookHttpPersonality, type NotebookHttpPersonality } from './personality.ts';

/** The path below base_url as the notebook's routes see it: with its leading slash, still encoded, a trailing slash kept. */
function pathBelowBase(pathname: string, baseUrl: string): string | undefined {
  if (pathname.startsWith(baseUrl)) return `/${pathname.slice(baseUrl.length)}`;
  if (`${pathname}/` === baseUrl) return '/';
  return undefined;
}

export function notebookHttpApi(config: Config, log: Logger, manager: KernelManager, specs: KernelSpecStore, tokenCheck: TokenCheck | undefined): Personality {
  const starting: Promise<NotebookHttpPersonality> = createNotebookHttpPersonality({
    seedUri: config.seedUri,
    cellParser: config.cellParser,
    commentPrefixes: config.commentPrefix,
    allowNotebookDownload: config.allowNotebookDownload,
    staticPath: config.staticPath || undefined,
    prespawnCount: config.prespawnCount,
    requestTimeoutMs: config.requestTimeout * 1000,
    maxQueuedRequests: config.maxQueuedRequests,
    kernels: managedKernels(manager, { specs: () => specs.list(), forced: config.forceKernelName }),
    isAuthorized: tokenCheck ? (req: IncomingMessage, url: URL) => tokenCheck.acceptsRequest(req, url) : undefined,
    corsHeaders: corsHeaders(config),
    log,
  });
  const serveMetrics = (req: IncomingMessage, res: ServerResponse, url: URL) => {
    if (tokenCheck && !config.metricsNoAuth && !tokenCheck.acceptsRequest(req, url)) {
      throw unauthorized();
    }
    sendMetrics(req, res);
  };
  // Nobody may be left waiting on a promise that rejected unseen: ready reports it.
  starting.catch(() => undefined);
  let served: NotebookHttpPersonality | undefined;
  void starting.then((personality) => (served = personality), () => undefined);
  return {
    ready: starting.then(() => undefined),
    async serve(req, res) {
      const url = requestUrl(req);
      const path = pathBelowBase(url.pathname, config.baseUrl);
      if (path === undefined) throw new HttpError(404, `${url.pathname} is not under the base URL ${config.baseUrl}`);
      // The notebook's own /metrics endpoint, if it declares one, wins (once it is served).
      if (path === '/metrics' && req.method === 'GET' && !served?.hasEndpoint(path)) return serveMetrics(req, res, url);
      const personality = await starting.catch((error: unknown) => {
        throw new HttpError(503, `the notebook could not be served: ${errorMessage(error)}`);
      });
      if (!(await personality.handle(req, res, path))) throw new HttpError(404, `Not found: ${url.pathname}`);
    },
    async reload() {
      // The personality logs the outcome (the new endpoints, or why the previous notebook keeps serving).
      await (await starting).reload();
    },
    async close() {
      const personality = await starting.catch(() => undefined);
      await personality?.close();
    },
  };
}
