/**
 * The notebook-http personality: a notebook served as a web API.
 *
 * createNotebookHttpPersonality() loads the notebook named by --seed-uri, parses its endpoints, starts
 * and seeds its kernel pool, and resolves only then (a notebook without endpoints, or a setup cell that
 * fails, rejects with the reason: start-up stops). The HTTP layer then calls handle() for every request
 * below base_url; it answers, in the reference's route order:
 *   /_api/source            the notebook (with allow_notebook_download; token required)
 *   /public/<file>          --static-path files (no token)
 *   the notebook's endpoints (token required; OPTIONS answered 200 without one)
 *   /_api/spec/swagger.json the Swagger document (token required)
 * and returns false for any other path (the HTTP layer's 404).
 *
 * reload() (SIGHUP) builds the whole service again from the notebook — parsed and its new pool seeded
 * — before it replaces the old one, whose pool then finishes the requests it accepted; when anything
 * fails the old notebook keeps serving and the error is logged. close() stops everything.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError, sendError, unauthorized } from '../http/errors.ts';
import { loadNotebook as loadNotebookFile, type NotebookDocument } from '../kernels/notebook.ts';
import type { Logger } from '../log.ts';
import type { ApiDefinition, Endpoint, HttpVerb } from './api-definition.ts';
import { parseApiDefinition } from './cell-parser.ts';
import type { CellParserName } from './parser-names.ts';
import { assignedSource, notebookLanguage, requestAssignment } from './language.ts';
import { KernelPool, type PoolOutcome, type PoolStats } from './pool.ts';
import type { KernelSourceFactory, PoolKernel } from './pool-kernel.ts';
import { requestJson } from './request.ts';
import { readBody } from '../http/request.ts';
import { endpointResponse, executionResult, finishResponse, sendNotebookResponse, setHeader, type ExecutionResult, type NotebookResponse } from './response.ts';
import { RouteTable, type RouteMatch } from './routes.ts';
import { pythonJsonDumps } from './python-json.ts';
import { serveStaticFile } from './static-files.ts';

export interface NotebookHttpOptions {
  /** The notebook: a local path, a file: URL or an http(s) URL. */
  seedUri: string;
  /** NotebookHTTPPersonality.cell_parser (default annotations). */
  cellParser?: CellParserName;
  /** NotebookHTTPPersonality.comment_prefix: comment tokens by language name, over the defaults. */
  commentPrefixes?: Readonly<Record<string, string>>;
  /** NotebookHTTPPersonality.allow_notebook_download: serve GET /_api/source. */
  allowNotebookDownload?: boolean;
  /** NotebookHTTPPersonality.static_path: serve this folder at /public/. */
  staticPath?: string;
  /** Pool size (--prespawn-count); at least 1. */
  prespawnCount?: number;
  /** --request-timeout in ms (default 60 000; 0: none). */
  requestTimeoutMs?: number;
  /** After a timeout's interrupt, time the kernel has to answer before it is replaced, ms (default 5 000). */
  interruptGraceMs?: number;
  /** --max-queued-requests (default 100). */
  maxQueuedRequests?: number;
  /** Largest request body accepted, bytes (default 10 MiB). */
  maxBodyBytes?: number;
  /** The kernel layer: fresh, seeded kernels for a notebook. */
  kernels: KernelSourceFactory;
  /** The token check; leave out when auth is off. */
  isAuthorized?: (req: IncomingMessage, url: URL) => boolean;
  /** CORS headers for endpoint, swagger and source responses (the reference sends none on /public). */
  corsHeaders?: Readonly<Record<string, string>>;
  log: Logger;
  /** How the notebook is read (tests); defaults to the seed notebook reader. */
  loadNotebook?: (uri: string) => Promise<NotebookDocument>;
}

export type ReloadResult = { reloaded: true } | { reloaded: false; error: Error };

export interface NotebookHttpStatus {
  notebook: string;
  endpoints: Array<{ path: string; methods: HttpVerb[] }>;
  pool: PoolStats;
}

export interface NotebookHttpPersonality {
  /**
   * Answer a request if `path` is one of this personality's; false otherwise (nothing was sent).
   * `path` is the request's path below base_url, still percent-encoded, starting with `/`
   * (e.g. `/hello/a%20b`; a trailing slash is significant, as in the reference).
   */
  handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean>;
  /** Whether `path` (as handle() takes it) is one of the notebook's endpoints. */
  hasEndpoint(path: string): boolean;
  /** Load the notebook again and switch to it once its kernels are ready; on failure the old one stays. */
  reload(): Promise<ReloadResult>;
  /** Stop serving and shut every kernel down. */
  close(): Promise<void>;
  readonly status: NotebookHttpStatus;
}

/** Load, parse and start serving the notebook; rejects with a message fit for the operator. */
export async function createNotebookHttpPersonality(options: NotebookHttpOptions): Promise<NotebookHttpPersonality> {
  return new NotebookHttp(options, await startServing(options));
}

const DEFAULTS = { requestTimeoutMs: 60_000, interruptGraceMs: 5_000, maxQueuedRequests: 100, maxBodyBytes: 10 * 1024 * 1024 };

/** One loaded notebook and its kernels. */
interface ServedNotebook {
  notebook: NotebookDocument;
  definition: ApiDefinition;
  routes: RouteTable;
  language: string | undefined;
  swaggerJson: Buffer;
  pool: KernelPool;
}

async function startServing(options: NotebookHttpOptions): Promise<ServedNotebook> {
  const { log } = options;
  const notebook = await (options.loadNotebook ?? loadNotebookFile)(options.seedUri);
  const definition = parseApiDefinition(notebook, { parser: options.cellParser ?? 'annotations', commentPrefixes: options.commentPrefixes });
  const routes = new RouteTable(definition.endpoints);
  for (const warning of definition.warnings) log.warn(`notebook-http: ${warning}`);
  for (const endpoint of definition.endpoints) log.info(`Registering resource: ${endpoint.path}, methods: (${[...endpoint.sources.keys()].join(', ')})`);
  const language = notebookLanguage(notebook);
  const source = options.kernels({
    uri: notebook.uri,
    language: (notebook.kernelspecLanguage ?? language ?? '').toLowerCase(),
    kernelName: notebook.kernelName,
    cells: definition.setupCells.map(({ number, source }) => ({ number, source })),
  });
  const pool = await KernelPool.start(source, {
    size: Math.max(1, options.prespawnCount ?? 1),
    maxQueued: options.maxQueuedRequests ?? DEFAULTS.maxQueuedRequests,
    requestTimeoutMs: options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs,
    interruptGraceMs: options.interruptGraceMs ?? DEFAULTS.interruptGraceMs,
    log,
  });
  return { notebook, definition, routes, language, swaggerJson: Buffer.from(pythonJsonDumps(definition.swagger), 'utf8'), pool };
}

/** What a request to an endpoint produced on its kernel. */
interface EndpointRun {
  source: ExecutionResult;
  responseInfo?: ExecutionResult;
}

class NotebookHttp implements NotebookHttpPersonality {
  readonly #options: NotebookHttpOptions;
  readonly #log: Logger;
  readonly #cors: Readonly<Record<string, string>>;
  #current: ServedNotebook;
  #closed = false;
  #reloads: Promise<unknown> = Promise.resolve();
  /** Pools of notebooks replaced by a reload, finishing their requests. */
  readonly #retiring = new Set<KernelPool>();

  constructor(options: NotebookHttpOptions, served: ServedNotebook) {
    this.#options = options;
    this.#log = options.log;
    this.#cors = options.corsHeaders ?? {};
    this.#current = served;
  }

  get status(): NotebookHttpStatus {
    const { notebook, definition, pool } = this.#current;
    return {
      notebook: notebook.uri,
      endpoints: definition.endpoints.map((endpoint) => ({ path: endpoint.path, methods: [...endpoint.sources.keys()] })),
      pool: pool.stats,
    };
  }

  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    if (!path.startsWith('/')) path = `/${path}`;
    const method = req.method ?? 'GET';
    const url = URL.canParse(req.url ?? '/', 'http://gateway') ? new URL(req.url ?? '/', 'http://gateway') : new URL('http://gateway/');
    if (this.#options.allowNotebookDownload && path === '/_api/source') {
      if (this.#guard(req, res, url)) this.#sendSource(req, res, method);
      return true;
    }
    if (this.#options.staticPath !== undefined && path.startsWith('/public/')) {
      const outcome = await serveStaticFile(req, res, this.#options.staticPath, path.slice('/public/'.length));
      if (outcome.kind === 'error') this.#sendError(res, outcome.status, outcome.message, {}, false);
      return true;
    }
    if (this.#current.routes.has(path)) {
      if (this.#guard(req, res, url)) await this.#serveEndpoint(req, res, path, method);
      return true;
    }
    if (path === '/_api/spec/swagger.json') {
      if (this.#guard(req, res, url)) this.#sendSwagger(req, res, method);
      return true;
    }
    return false;
  }

  hasEndpoint(path: string): boolean {
    return this.#current.routes.has(path);
  }

  reload(): Promise<ReloadResult> {
    const result = this.#reloads.then(() => this.#reloadNow());
    this.#reloads = result;
    return result;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([this.#current.pool.close(), ...[...this.#retiring].map((pool) => pool.close()), this.#reloads]);
  }

  async #reloadNow(): Promise<ReloadResult> {
    if (this.#closed) return { reloaded: false, error: new Error('notebook-http is closed') };
    const uri = this.#options.seedUri;
    this.#log.info(`Reloading the notebook ${uri}`);
    let next: ServedNotebook;
    try {
      next = await startServing(this.#options);
    } catch (error) {
      const reason = error instanceof Error ? error : new Error(String(error));
      this.#log.error(`Reloading ${uri} failed; the previous version keeps serving: ${reason.message}`);
      return { reloaded: false, error: reason };
    }
    if (this.#closed) {
      await next.pool.close();
      return { reloaded: false, error: new Error('notebook-http was closed during the reload') };
    }
    const previous = this.#current;
    this.#current = next;
    this.#log.info(`Reloaded ${uri}: ${next.definition.endpoints.length} endpoint(s) now served; the previous kernels finish their requests and stop`);
    this.#retiring.add(previous.pool);
    void previous.pool.drain().finally(() => this.#retiring.delete(previous.pool));
    return { reloaded: true };
  }

  /**
   * The checks before a protected route: OPTIONS (a CORS preflight) is answered 200 without a token,
   * a request without a valid token 401. Returns whether the request may go on.
   */
  #guard(req: IncomingMessage, res: ServerResponse, url: URL): boolean {
    if (req.method === 'OPTIONS') {
      for (const [name, value] of Object.entries(this.#cors)) res.setHeader(name, value);
      res.writeHead(200, { 'Content-Length': 0 });
      res.end();
      return false;
    }
    if (this.#options.isAuthorized && !this.#options.isAuthorized(req, url)) {
      this.#sendError(res, 401, unauthorized().message);
      return false;
    }
    return true;
  }

  async #serveEndpoint(req: IncomingMessage, res: ServerResponse, path: string, method: string): Promise<void> {
    const first = this.#current.routes.match(method, path);
    if (first.kind !== 'endpoint') return this.#answerRouteProblem(res, first, method, path);
    let body: Buffer;
    try {
      body = await readBody(req, this.#options.maxBodyBytes ?? DEFAULTS.maxBodyBytes);
    } catch (error) {
      if (error instanceof HttpError) return this.#sendError(res, error.status, error.message, { Connection: 'close' });
      throw error;
    }
    const rawUrl = req.url ?? '';
    const query = rawUrl.includes('?') ? rawUrl.slice(rawUrl.indexOf('?') + 1) : '';
    const clientGone = new AbortController();
    res.once('close', () => {
      if (!res.writableEnded) clientGone.abort();
    });
    // A reload may have swapped notebooks while the body arrived: the current one serves the request.
    for (;;) {
      const served = this.#current;
      const match = served.routes.match(method, path);
      if (match.kind !== 'endpoint') return this.#answerRouteProblem(res, match, method, path);
      const assignment = requestAssignment(served.language, requestJson({ rawHeaders: req.rawHeaders, query, params: match.params, body }));
      const outcome = await served.pool.run((kernel, signal) => runEndpoint(kernel, signal, served.language, assignment, match.endpoint, match.verb), clientGone.signal);
      if (outcome.kind === 'closed' && !this.#closed && this.#current !== served) continue;
      return this.#answerOutcome(req, res, method, path, outcome);
    }
  }

  #answerRouteProblem(res: ServerResponse, match: Exclude<RouteMatch, { kind: 'endpoint' }>, method: string, path: string): void {
    if (match.kind === 'method-not-allowed') {
      // As the reference: an empty 405.
      for (const [name, value] of Object.entries(this.#cors)) res.setHeader(name, value);
      res.writeHead(405, { Allow: match.allowed.join(', '), 'Content-Length': 0 });
      res.end();
    } else if (match.kind === 'bad-request') {
      this.#sendError(res, 400, match.message);
    } else {
      this.#sendError(res, 404, `Not found: ${method} ${path}`);
    }
  }

  #answerOutcome(req: IncomingMessage, res: ServerResponse, method: string, path: string, outcome: PoolOutcome<EndpointRun>): void {
    const timeoutSeconds = (this.#options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs) / 1000;
    switch (outcome.kind) {
      case 'done':
        return this.#send(res, endpointResponse(outcome.value.source, outcome.value.responseInfo), method, req);
      case 'queue-full':
        return this.#sendError(res, 503, `Every kernel is busy and ${this.#current.pool.stats.queued} requests are waiting (--max-queued-requests); retry later`, {
          'Retry-After': String(outcome.retryAfterSeconds),
        });
      case 'timeout':
        return this.#sendError(
          res,
          504,
          outcome.phase === 'queued'
            ? `${method} ${path} waited ${timeoutSeconds} s for a free kernel (--request-timeout)`
            : `${method} ${path} did not finish within ${timeoutSeconds} s (--request-timeout); its kernel was interrupted`,
        );
      case 'kernel-died':
        return this.#sendError(res, 500, `The kernel running ${method} ${path} died; a replacement kernel is being started`);
      case 'failed':
        this.#log.error(`notebook-http: ${method} ${path} failed: ${(outcome.error as Error)?.stack ?? outcome.error}`);
        return this.#sendError(res, 500, `Unknown server error: ${(outcome.error as Error)?.message ?? outcome.error}`);
      case 'closed':
        return this.#sendError(res, 503, 'The notebook service is shutting down');
      case 'cancelled':
        return; // The client has gone.
    }
  }

  #sendSwagger(req: IncomingMessage, res: ServerResponse, method: string): void {
    if (method !== 'GET') return this.#sendError(res, 405, `${method} is not supported on /_api/spec/swagger.json`, { Allow: 'GET' });
    this.#send(res, this.#jsonResponse(this.#current.swaggerJson, 'application/json'), method, req);
  }

  #sendSource(req: IncomingMessage, res: ServerResponse, method: string): void {
    if (method !== 'GET' && method !== 'HEAD') return this.#sendError(res, 405, `${method} is not supported on /_api/source`, { Allow: 'GET, HEAD' });
    this.#send(res, this.#jsonResponse(Buffer.from(this.#current.notebook.text, 'utf8'), 'application/x-ipynb+json'), method, req);
  }

  #jsonResponse(body: Buffer, contentType: string): NotebookResponse {
    const response: NotebookResponse = { status: 200, headers: new Map(), body };
    setHeader(response, 'Content-Type', contentType);
    return response;
  }

  #send(res: ServerResponse, response: NotebookResponse, method: string, req: IncomingMessage): void {
    const ifNoneMatch = req.headers['if-none-match'];
    sendNotebookResponse(res, finishResponse(response, method, ifNoneMatch), method, this.#cors);
  }

  /** An error answer (http/errors.ts), with the CORS headers unless `cors` is false. */
  #sendError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}, cors = true): void {
    sendError(res, new HttpError(status, message, undefined, { ...(cors ? this.#cors : {}), ...headers }));
  }
}

/**
 * One request on its kernel, as the reference: the REQUEST assignment, then the endpoint's code, then
 * its ResponseInfo code; an error in any of them ends the run. The first two are one execution where
 * that makes no difference (see assignedSource).
 */
async function runEndpoint(kernel: PoolKernel, signal: AbortSignal, language: string | undefined, assignment: string, endpoint: Endpoint, verb: HttpVerb): Promise<EndpointRun> {
  const code = endpoint.sources.get(verb)!;
  const combined = assignedSource(language, assignment, code);
  if (combined === undefined) {
    const assigned = executionResult(await kernel.execute(assignment, signal));
    if (assigned.kind === 'error') return { source: assigned };
  }
  const source = executionResult(await kernel.execute(combined ?? code, signal));
  const responseSource = endpoint.responseSources.get(verb);
  if (source.kind === 'error' || responseSource === undefined) return { source };
  return { source, responseInfo: executionResult(await kernel.execute(responseSource, signal)) };
}
