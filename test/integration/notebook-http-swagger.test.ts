/**
 * The Swagger cell parser with a real kernel: a Swagger 2.0 document in a fenced block of a markdown
 * cell declares the API, code cells implement its operations by operationId. Operations keyed in
 * lower case (the usual `get:`) are served, where the reference answers 405; `{id}` templates and
 * declared parameters become path parameters; swagger.json is the declared document.
 */
import { rmSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { guardSuite, shutdownTest, type Gateway } from '../helpers/gateway.ts';
import { getText, http, notebookDir, startNotebookGateway, writeNotebook } from '../helpers/notebook-http.ts';

const test = suite('notebook-http: the Swagger cell parser');
let dir: string;
let gw: Gateway;

const ok = (description: string) => ({ responses: { '200': { description } } });
const SWAGGER = {
  swagger: '2.0',
  info: { title: 'Items API', version: '1.2.3' },
  paths: {
    '/name': { get: { operationId: 'getName', ...ok('the name') }, post: { operationId: 'setName', ...ok('stored') } },
    '/items/{id}': { get: { operationId: 'getItem', parameters: [{ name: 'id', in: 'path', required: true, type: 'string' }], ...ok('an item') } },
    '/legacy': { get: { operationId: 'legacy', parameters: [{ name: 'key' }], ...ok('old style') } },
    '/search': { get: { operationId: 'search', parameters: [{ name: 'q', in: 'query', type: 'string' }], ...ok('found') } },
    '/shout': { PUT: { operationId: 'shout', ...ok('loud') } },
    '/unimplemented': { get: { operationId: 'nobodyWroteThis', ...ok('never') } },
  },
};

guardSuite(
  test,
  async () => {
    dir = notebookDir('swagger');
    // The document spans several lines: the reference joins the fenced lines before parsing them.
    const fenced = ['# Items API', '', 'The service:', '', '```json', ...JSON.stringify(SWAGGER, null, 1).split('\n'), '```'].join('\n');
    const notebook = writeNotebook(dir, 'items.ipynb', [
      { type: 'markdown', source: fenced },
      'import json\nname = "nobody"',
      '# operationId: getName\nprint(name)',
      '#operationId:setName\nname = json.loads(REQUEST)["body"]\nprint("stored")',
      '# ResponseInfo operationId: setName\nprint(json.dumps({"status": 201, "headers": {"X-Stored": "yes"}}))',
      '# operationId: getItem\nprint("item", json.loads(REQUEST)["path"]["id"])',
      '# operationId: legacy\nprint("legacy", json.loads(REQUEST)["path"]["key"])',
      '# operationId: search\nprint("search", json.loads(REQUEST)["args"]["q"])',
      '# operationId: shout\nprint(json.loads(REQUEST)["body"].upper())',
      '# operationId: notInTheDocument\nprint("never")',
    ]);
    gw = await startNotebookGateway(notebook, ['--NotebookHTTPPersonality.cell_parser=kernel_gateway.notebook_http.swagger.parser']);
  },
  async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  },
);

test('operations keyed in lower case are served: GET and POST /name, with the ResponseInfo operation', async () => {
  assert.is(await getText(gw, '/name'), 'nobody\n');
  const posted = await http(gw, 'POST', '/name', { body: 'Ada' });
  assert.is(posted.status, 201, posted.text);
  assert.is(posted.headers['x-stored'], 'yes');
  assert.is(posted.text, 'stored\n');
  assert.is(await getText(gw, '/name'), 'Ada\n');
});

test('an upper-case verb key is served too; a verb without an operation → 405; other paths → 404', async () => {
  assert.is((await http(gw, 'PUT', '/shout', { body: 'quiet' })).text, 'QUIET\n');
  assert.is((await http(gw, 'DELETE', '/name')).status, 405);
  assert.is((await http(gw, 'GET', '/unimplemented')).status, 404);
  assert.is((await http(gw, 'GET', '/nowhere')).status, 404);
});

test('path parameters: a {id} template, and a declared parameter without "in" appended as /:key (as the reference)', async () => {
  assert.is(await getText(gw, '/items/42'), 'item 42\n');
  assert.is(await getText(gw, '/legacy/abc'), 'legacy abc\n');
  assert.is((await http(gw, 'GET', '/legacy')).status, 404);
});

test('a query parameter stays in the query', async () => {
  assert.is(await getText(gw, '/search?q=x&q=y'), "search ['x', 'y']\n");
});

test('swagger.json is the declared document, title and version kept', async () => {
  const spec = JSON.parse(await getText(gw, '/_api/spec/swagger.json')) as { info: unknown; paths: Record<string, Record<string, unknown>> };
  assert.equal(spec.info, SWAGGER.info);
  assert.equal(Object.keys(spec.paths).sort(), Object.keys(SWAGGER.paths).sort());
  assert.equal(spec.paths['/name'], SWAGGER.paths['/name']);
  assert.equal(spec.paths['/items/{id}'], SWAGGER.paths['/items/{id}']);
  // As the reference: an implemented operation is listed under its lower-cased verb as well.
  assert.equal(spec.paths['/shout'].put, SWAGGER.paths['/shout'].PUT);
});

test('operations declared without a cell, and cells naming undeclared operations, are logged as warnings', async () => {
  assert.match(gw.stderr(), /Operation nobodyWroteThis was declared but not referenced in a cell/);
  assert.match(gw.stderr(), /Operation notInTheDocument was referenced in a cell but not declared/);
});

shutdownTest(test, () => gw);

test.run();
