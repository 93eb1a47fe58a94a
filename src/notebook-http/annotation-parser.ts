/**
 * The default cell parser (the reference's kernel_gateway.notebook_http.cell.parser): a code cell whose
 * source starts with `<comment> <VERB> <path>` implements that endpoint, one starting with
 * `<comment> ResponseInfo <VERB> <path>` produces its status and headers. The path is the rest of
 * that line, trimmed; VERB is GET, PUT, POST or DELETE.
 */
import type { NotebookCell } from '../kernels/notebook.ts';
import {
  applyDefaultTitle,
  appendSource,
  escapeRegExp,
  isHttpVerb,
  sortEndpointPaths,
  type ApiDefinition,
  type HttpVerb,
  type ParserInput,
} from './api-definition.ts';

export interface Annotation {
  verb: HttpVerb;
  path: string;
}

/** The annotation patterns for a comment token (matched at the start of a cell's source, as the reference). */
export function annotationPatterns(commentPrefix: string): { endpoint: RegExp; response: RegExp } {
  const comment = escapeRegExp(commentPrefix);
  return {
    endpoint: new RegExp(`^${comment}\\s+(GET|PUT|POST|DELETE)\\s+(\\/.*)+`),
    response: new RegExp(`^${comment}\\s+ResponseInfo\\s+(GET|PUT|POST|DELETE)\\s+(\\/.*)+`),
  };
}

/** The verb and path a cell is annotated with, if `pattern` matches it. */
export function readAnnotation(source: string, pattern: RegExp): Annotation | undefined {
  const match = pattern.exec(source);
  if (!match || !isHttpVerb(match[1])) return undefined;
  return { verb: match[1], path: match[2].trim() };
}

export function parseAnnotatedNotebook({ notebook, commentPrefix }: ParserInput): ApiDefinition {
  const patterns = annotationPatterns(commentPrefix);
  const sources = new Map<string, Map<HttpVerb, string>>();
  const responseSources = new Map<string, Map<HttpVerb, string>>();
  const setupCells: NotebookCell[] = [];
  const paths: Record<string, Record<string, unknown>> = {};
  for (const cell of notebook.cells) {
    if (cell.type !== 'code') continue;
    const endpoint = readAnnotation(cell.source, patterns.endpoint);
    const response = endpoint ? undefined : readAnnotation(cell.source, patterns.response);
    if (endpoint) {
      appendSource(sources, endpoint.path, endpoint.verb, cell.source);
      (paths[endpoint.path] ??= {})[endpoint.verb.toLowerCase()] = { responses: { '200': { description: 'Success' } } };
    } else if (response) {
      appendSource(responseSources, response.path, response.verb, cell.source);
    } else if (cell.source.trim() !== '') {
      setupCells.push(cell);
    }
  }
  const swagger: Record<string, unknown> = { swagger: '2.0', paths, info: { version: '0.0.0' } };
  applyDefaultTitle(swagger, notebook.uri);
  const warnings = [...responseSources.keys()]
    .flatMap((path) => [...responseSources.get(path)!.keys()].map((verb) => [path, verb] as const))
    .filter(([path, verb]) => !sources.get(path)?.has(verb))
    .map(([path, verb]) => `a ResponseInfo cell for ${verb} ${path} has no endpoint cell and is never run`);
  return {
    endpoints: sortEndpointPaths([...sources]).map(([path, verbs]) => ({
      path,
      sources: verbs,
      responseSources: responseSources.get(path) ?? new Map(),
    })),
    setupCells,
    swagger,
    warnings,
  };
}
