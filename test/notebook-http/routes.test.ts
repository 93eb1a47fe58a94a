/** The notebook-http route table: first match decides, 405 for a known path with another verb, 404 else. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiDefinitionError } from '../../src/notebook-http/api-definition.ts';
import { parseApiDefinition } from '../../src/notebook-http/cell-parser.ts';
import { compilePath, RouteTable } from '../../src/notebook-http/routes.ts';
import { notebook } from './notebooks.ts';

const table = (...cells: string[]) => new RouteTable(parseApiDefinition(notebook(cells), { parser: 'annotations' }).endpoints);

const summary = (match: ReturnType<RouteTable['match']>) =>
  match.kind === 'endpoint'
    ? { kind: match.kind, path: match.endpoint.path, verb: match.verb, params: { ...match.params } }
    : match.kind === 'method-not-allowed'
      ? { kind: match.kind, path: match.endpoint.path, allowed: match.allowed }
      : match.kind === 'bad-request'
        ? { kind: match.kind }
        : { kind: match.kind };

test('literal paths beat parameterised ones; parameters are percent-decoded', () => {
  const routes = table('# GET /hello/:person', '# GET /hello/person', '# GET /:any', '# DELETE /people/:index');
  assert.equal(summary(routes.match('GET', '/hello/person')), { kind: 'endpoint', path: '/hello/person', verb: 'GET', params: {} });
  assert.equal(summary(routes.match('GET', '/hello/governor')), { kind: 'endpoint', path: '/hello/:person', verb: 'GET', params: { person: 'governor' } });
  assert.equal(summary(routes.match('GET', '/hello/a%20b%2Fc%C3%A9')), { kind: 'endpoint', path: '/hello/:person', verb: 'GET', params: { person: 'a b/cé' } });
  assert.equal(summary(routes.match('GET', '/top')), { kind: 'endpoint', path: '/:any', verb: 'GET', params: { any: 'top' } });
  assert.equal(summary(routes.match('DELETE', '/people/2')), { kind: 'endpoint', path: '/people/:index', verb: 'DELETE', params: { index: '2' } });
});

test('405 when the first matching path has no cell for the verb, even if a later one has', () => {
  const routes = table('# GET /message', '# PUT /message', '# GET /items/list', '# POST /items/:name');
  assert.equal(summary(routes.match('DELETE', '/message')), { kind: 'method-not-allowed', path: '/message', allowed: ['GET', 'PUT'] });
  assert.equal(summary(routes.match('PATCH', '/message')), { kind: 'method-not-allowed', path: '/message', allowed: ['GET', 'PUT'] });
  assert.equal(summary(routes.match('POST', '/items/list')), { kind: 'method-not-allowed', path: '/items/list', allowed: ['GET'] });
  assert.equal(summary(routes.match('POST', '/items/x')), { kind: 'endpoint', path: '/items/:name', verb: 'POST', params: { name: 'x' } });
  assert.ok(routes.has('/message'));
});

test('404: unknown paths, trailing slashes, empty parameters; the rest of a path is literal', () => {
  const routes = table('# GET /hello', '# GET /file.json', '# GET /p/:id', '# GET /v:version/info');
  for (const path of ['/not/an/endpoint', '/hello/', '/hello/x', '/fileXjson', '/p/', '/p/a/b', '/HELLO']) {
    assert.equal(summary(routes.match('GET', path)), { kind: 'not-found' }, path);
  }
  assert.equal(summary(routes.match('GET', '/file.json')), { kind: 'endpoint', path: '/file.json', verb: 'GET', params: {} });
  assert.equal(summary(routes.match('GET', '/v2/info')), { kind: 'endpoint', path: '/v:version/info', verb: 'GET', params: { version: '2' } });
  assert.not.ok(routes.has('/nope'));
});

test('bad percent-encoding in a parameter is a bad request', () => {
  const routes = table('# GET /p/:id');
  assert.equal(summary(routes.match('GET', '/p/%E0%A4%A')), { kind: 'bad-request' });
  assert.equal(summary(routes.match('GET', '/p/%FF')), { kind: 'bad-request' });
});

test('paths that cannot be routed are refused when the table is built', () => {
  assert.throws(() => compilePath('/a/:'), (e: Error) => e instanceof ApiDefinitionError && e.message.includes('parameter name'));
  assert.throws(() => compilePath('/a/:x/:x'), (e: Error) => e instanceof ApiDefinitionError && e.message.includes('appears twice'));
  const { names } = compilePath('/a/:__proto__/:constructor');
  assert.equal(names, ['__proto__', 'constructor']);
  const routes = table('# GET /a/:__proto__');
  const match = routes.match('GET', '/a/x');
  assert.ok(match.kind === 'endpoint' && Object.prototype.hasOwnProperty.call(match.params, '__proto__') && match.params['__proto__'] === 'x');
});

test.run();
