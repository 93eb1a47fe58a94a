/**
 * The route table of a notebook's endpoints. As in the reference, the first endpoint (in route order)
 * whose path matches decides: when it has no cell for the request's method the answer is 405, even if
 * a later endpoint would match with that method.
 *
 * A `:name` parameter matches one or more characters other than `/` (from the colon up to the next
 * `/` or whitespace is the name) and is percent-decoded; everything else in the path must match
 * literally. Paths are matched still percent-encoded and without a trailing-slash fallback, as the
 * reference's Tornado routes are.
 */
import { ApiDefinitionError, escapeRegExp, type Endpoint, type HttpVerb } from './api-definition.ts';

export type RouteMatch =
  | { kind: 'endpoint'; endpoint: Endpoint; verb: HttpVerb; params: Record<string, string> }
  | { kind: 'method-not-allowed'; endpoint: Endpoint; allowed: HttpVerb[] }
  | { kind: 'bad-request'; message: string }
  | { kind: 'not-found' };

interface CompiledRoute {
  endpoint: Endpoint;
  pattern: RegExp;
  names: string[];
}

const PARAMETER = /:([^/\s]*)/g;

/** The pattern and parameter names of a declared path; throws ApiDefinitionError for an unusable one. */
export function compilePath(path: string): { pattern: RegExp; names: string[] } {
  const names: string[] = [];
  let source = '^';
  let last = 0;
  for (const match of path.matchAll(PARAMETER)) {
    const name = match[1];
    if (name === '') throw new ApiDefinitionError(`endpoint path ${path}: a ':' must be followed by a parameter name`);
    if (names.includes(name)) throw new ApiDefinitionError(`endpoint path ${path}: the parameter ${name} appears twice`);
    names.push(name);
    source += escapeRegExp(path.slice(last, match.index)) + '([^/]+)';
    last = match.index + match[0].length;
  }
  source += escapeRegExp(path.slice(last)) + '$';
  return { pattern: new RegExp(source), names };
}

export class RouteTable {
  readonly #routes: CompiledRoute[];

  /** `endpoints` in route order; throws ApiDefinitionError when a path cannot be routed. */
  constructor(endpoints: readonly Endpoint[]) {
    this.#routes = endpoints.map((endpoint) => ({ endpoint, ...compilePath(endpoint.path) }));
  }

  /** Whether some endpoint's path matches (whatever the method). */
  has(rawPath: string): boolean {
    return this.#routes.some((route) => route.pattern.test(rawPath));
  }

  /** The endpoint for `method` and `rawPath` (the percent-encoded path below base_url, starting with `/`). */
  match(method: string, rawPath: string): RouteMatch {
    for (const route of this.#routes) {
      const found = route.pattern.exec(rawPath);
      if (!found) continue;
      const { endpoint } = route;
      const verb = method as HttpVerb;
      if (!endpoint.sources.has(verb)) return { kind: 'method-not-allowed', endpoint, allowed: [...endpoint.sources.keys()] };
      const values: Array<[string, string]> = [];
      for (const [index, name] of route.names.entries()) {
        try {
          values.push([name, decodeURIComponent(found[index + 1])]);
        } catch {
          return { kind: 'bad-request', message: `The path parameter ${name} is not valid percent-encoded UTF-8: ${found[index + 1]}` };
        }
      }
      return { kind: 'endpoint', endpoint, verb, params: Object.fromEntries(values) };
    }
    return { kind: 'not-found' };
  }
}
