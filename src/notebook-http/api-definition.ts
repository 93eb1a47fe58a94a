/**
 * What a cell parser makes of a notebook (an ApiDefinition: endpoints in route order, the code every
 * pool kernel runs at start-up, the Swagger document), and the rules both parsers share.
 */
import type { NotebookCell, NotebookDocument } from '../kernels/notebook.ts';

/** The verbs a notebook can declare (the reference's handlers implement no others). */
export const HTTP_VERBS = ['GET', 'PUT', 'POST', 'DELETE'] as const;
export type HttpVerb = (typeof HTTP_VERBS)[number];

export function isHttpVerb(value: string): value is HttpVerb {
  return (HTTP_VERBS as readonly string[]).includes(value);
}

/** The notebook cannot be served: no endpoint, or an endpoint path that cannot be routed. */
export class ApiDefinitionError extends Error {}

export interface Endpoint {
  /** The path as declared, `:name` marking a parameter (e.g. `/people/:id`). */
  path: string;
  /** Code run for each verb: the cells of that verb and path, each followed by a newline, in notebook order. */
  sources: Map<HttpVerb, string>;
  /** Code run after it to get the response's status and headers (ResponseInfo cells), likewise. */
  responseSources: Map<HttpVerb, string>;
}

export interface ApiDefinition {
  /** Endpoints in the order routes are tried (see sortEndpointPaths). */
  endpoints: Endpoint[];
  /** Code cells that are neither endpoint nor ResponseInfo cells: run once in every pool kernel, in order. */
  setupCells: NotebookCell[];
  /** The Swagger 2.0 document describing the API. */
  swagger: Record<string, unknown>;
  /** Problems worth a warning in the log (the notebook is still served). */
  warnings: string[];
}

/** What the inner parsers are given. */
export interface ParserInput {
  notebook: NotebookDocument;
  commentPrefix: string;
}

/**
 * The depth of a path's first parameter (`/foo/:bar` → 1, `/foo/quo/:bar` → 2), or the largest value
 * for a path without one: the reference's route ordering key.
 */
export function firstParameterDepth(path: string): number {
  const colon = path.indexOf(':');
  if (colon < 0) return Number.MAX_SAFE_INTEGER;
  return path.slice(0, colon).split('/').length - 2;
}

/**
 * Route order, as the reference: paths without parameters first, then by descending depth of the first
 * parameter; ties keep notebook order (e.g. `/hello/world`, `/hello/:foo`, `/:foo`).
 */
export function sortEndpointPaths<T>(entries: Array<[string, T]>): Array<[string, T]> {
  return [...entries].sort(([a], [b]) => firstParameterDepth(b) - firstParameterDepth(a));
}

/** Append a cell to the concatenated source of `key`/`verb`, the way the reference does (cell + newline). */
export function appendSource<K>(map: Map<K, Map<HttpVerb, string>>, key: K, verb: HttpVerb, source: string): void {
  let verbs = map.get(key);
  if (!verbs) map.set(key, (verbs = new Map()));
  verbs.set(verb, (verbs.get(verb) ?? '') + source + '\n');
}

/** The API title the reference derives from the notebook's file name: up to its first dot, unless it starts with one. */
export function defaultSwaggerTitle(uri: string): string {
  const base = uri.slice(uri.lastIndexOf('/') + 1);
  return base.indexOf('.') > 0 ? base.slice(0, base.indexOf('.')) : base;
}

/** Set info.title from the notebook's name when the document has an info object without a title. */
export function applyDefaultTitle(swagger: Record<string, unknown>, uri: string): void {
  const info = swagger.info;
  if (typeof info === 'object' && info !== null && !Array.isArray(info) && !('title' in info)) {
    (info as Record<string, unknown>).title = defaultSwaggerTitle(uri);
  }
}

/** `text` escaped for a RegExp: comment tokens and the literal parts of paths are text, not patterns. */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
