/**
 * The Swagger cell parser (the reference's kernel_gateway.notebook_http.swagger.parser): the API is a
 * Swagger 2.0 document in a fenced block (```) of any cell, several such documents merged at the top
 * level; a code cell starting `<comment> operationId: <id>` implements the operations with that id,
 * one starting `<comment> ResponseInfo operationId: <id>` produces their status and headers.
 *
 * An operation's route is its Swagger path with `/:<name>` appended for each of its parameters, as the
 * reference does. Differences, each a case where the reference cannot serve the operation at all:
 *  - operations are routed whatever the case of their verb key (the reference matches the request's
 *    upper-case method against the document's keys, so the usual lower-case `get:` answers 405);
 *  - a `{name}` template segment becomes the `:name` parameter (instead of staying literal text with
 *    `/:name` appended after it), and parameters declared `in` query, header, body or formData are not
 *    appended as path segments;
 *  - an operationId followed by spaces still names its operation in swagger.json.
 */
import type { NotebookCell } from '../kernels/notebook.ts';
import { isJsonObject } from '../messaging/message.ts';
import {
  applyDefaultTitle,
  escapeRegExp,
  isHttpVerb,
  sortEndpointPaths,
  type ApiDefinition,
  type HttpVerb,
  type ParserInput,
} from './api-definition.ts';

/** The operation patterns for a comment token (matched at the start of a cell's source). */
export function operationPatterns(commentPrefix: string): { operation: RegExp; response: RegExp } {
  const comment = escapeRegExp(commentPrefix);
  return {
    operation: new RegExp(`^${comment}\\s*operationId:\\s*(.*)`),
    response: new RegExp(`^${comment}\\s*ResponseInfo\\s+operationId:\\s*(.*)`),
  };
}

/** Python's str.splitlines separators. */
const LINE_BREAK = /\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/;

/**
 * The Swagger document a cell holds, as the reference finds it: the lines between the first two lines
 * starting with ``` (when the cell has more than two lines), joined without line breaks, parsed as
 * JSON, and kept when it is an object with a `swagger` key.
 */
export function swaggerDocumentInCell(source: string): Record<string, unknown> | undefined {
  let lines = source.split(LINE_BREAK);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  if (lines.length > 2) {
    const open = lines.findIndex((line) => line.startsWith('```'));
    if (open >= 0) lines = lines.slice(open + 1);
    const close = lines.findIndex((line) => line.startsWith('```'));
    if (close >= 0) lines = lines.slice(0, close);
  }
  try {
    const document: unknown = JSON.parse(lines.join(''));
    return isJsonObject(document) && 'swagger' in document ? document : undefined;
  } catch {
    return undefined;
  }
}

/** One operation of the Swagger document. */
interface Operation {
  path: string;
  /** The verb key as written in the document. */
  key: string;
  operation: Record<string, unknown>;
}

/** Every operation object of the document's `paths`, in document order. */
function operationsOf(swagger: Record<string, unknown>): Operation[] {
  if (!isJsonObject(swagger.paths)) return [];
  const operations: Operation[] = [];
  for (const [path, item] of Object.entries(swagger.paths)) {
    if (!isJsonObject(item)) continue;
    for (const [key, operation] of Object.entries(item)) {
      if (isJsonObject(operation)) operations.push({ path, key, operation });
    }
  }
  return operations;
}

const NOT_IN_PATH = new Set(['query', 'header', 'body', 'formData']);

/** The route of an operation: `{name}` segments and declared parameters become `:name` segments. */
export function operationRoute(path: string, parameters: unknown): string {
  const templated = new Set<string>();
  let route = path.replace(/\{([^{}/]+)\}/g, (_, name: string) => {
    templated.add(name);
    return `:${name}`;
  });
  if (Array.isArray(parameters)) {
    for (const parameter of parameters) {
      if (!isJsonObject(parameter) || typeof parameter.name !== 'string' || parameter.name === '') continue;
      if (templated.has(parameter.name) || NOT_IN_PATH.has(parameter.in as string)) continue;
      route += `/:${parameter.name}`;
    }
  }
  return route.startsWith('/') ? route : `/${route}`;
}

export function parseSwaggerNotebook({ notebook, commentPrefix }: ParserInput): ApiDefinition {
  const patterns = operationPatterns(commentPrefix);
  const warnings: string[] = [];
  const swagger: Record<string, unknown> = {};
  for (const cell of notebook.cells) Object.assign(swagger, swaggerDocumentInCell(cell.source));
  if (Object.keys(swagger).length === 0) warnings.push('No Swagger documentation found');
  else if (!isJsonObject(swagger.paths)) warnings.push('No paths documented in Swagger documentation');

  // Each operationId's code: its cells concatenated in notebook order.
  const operationSources = new Map<string, string>();
  const responseSources = new Map<string, string>();
  const setupCells: NotebookCell[] = [];
  for (const cell of notebook.cells) {
    if (cell.type !== 'code') continue;
    const operation = patterns.operation.exec(cell.source);
    const response = operation ? null : patterns.response.exec(cell.source);
    if (operation) append(operationSources, operation[1].trim(), cell.source);
    else if (response) append(responseSources, response[1].trim(), cell.source);
    else if (cell.source.trim() !== '') setupCells.push(cell);
  }

  const operations = operationsOf(swagger);
  const declared = new Set(operations.map(({ operation }) => operation.operationId).filter((id) => typeof id === 'string'));
  for (const id of declared) if (!operationSources.has(id)) warnings.push(`Operation ${id} was declared but not referenced in a cell`);
  for (const id of operationSources.keys()) if (!declared.has(id)) warnings.push(`Operation ${id} was referenced in a cell but not declared`);

  const routes = new Map<string, Map<HttpVerb, string>>();
  const responseRoutes = new Map<string, Map<HttpVerb, string>>();
  const documented = new Map<string, Operation>();
  for (const entry of operations) {
    const id = entry.operation.operationId;
    if (typeof id !== 'string' || !operationSources.has(id)) continue;
    if (!documented.has(id)) documented.set(id, entry);
    const verb = entry.key.toUpperCase();
    if (!isHttpVerb(verb)) {
      warnings.push(`Operation ${id} uses the verb ${entry.key}; only GET, PUT, POST and DELETE are served`);
      continue;
    }
    const route = operationRoute(entry.path, entry.operation.parameters);
    setSource(routes, route, verb, operationSources.get(id)!);
    const responseSource = responseSources.get(id);
    if (responseSource !== undefined) setSource(responseRoutes, route, verb, responseSource);
  }

  // swagger.json: the declared document; as the reference, an operation bound to a cell is also listed
  // under its lower-cased verb.
  const document = structuredClone(swagger);
  if (isJsonObject(document.paths)) {
    for (const { path, key } of documented.values()) {
      const item = document.paths[path] as Record<string, unknown>;
      item[key.toLowerCase()] = item[key];
    }
  }
  applyDefaultTitle(document, notebook.uri);

  return {
    endpoints: sortEndpointPaths([...routes]).map(([path, verbs]) => ({ path, sources: verbs, responseSources: responseRoutes.get(path) ?? new Map() })),
    setupCells,
    swagger: document,
    warnings,
  };
}

function append(map: Map<string, string>, id: string, source: string): void {
  map.set(id, (map.get(id) ?? '') + source + '\n');
}

/** An operation's route and verb get its code (a later declaration with the same route and verb replaces it, as in the reference). */
function setSource(map: Map<string, Map<HttpVerb, string>>, route: string, verb: HttpVerb, source: string): void {
  let verbs = map.get(route);
  if (!verbs) map.set(route, (verbs = new Map()));
  verbs.set(verb, source);
}
