/**
 * Both cell parsers as the reference's unit tests describe them (annotations: kernel_gateway's
 * cell/parser tests; swagger: swagger/parser and builder tests), plus the places we differ.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ApiDefinitionError, defaultSwaggerTitle, firstParameterDepth, type ApiDefinition } from '../../src/notebook-http/api-definition.ts';
import { annotationPatterns, readAnnotation } from '../../src/notebook-http/annotation-parser.ts';
import { parseApiDefinition } from '../../src/notebook-http/cell-parser.ts';
import { cellParserByName } from '../../src/notebook-http/parser-names.ts';
import { pythonJsonDumps } from '../../src/notebook-http/python-json.ts';
import { operationPatterns, operationRoute, swaggerDocumentInCell } from '../../src/notebook-http/swagger-parser.ts';
import { NotebookError, parseNotebook } from '../../src/kernels/notebook.ts';
import { seedFromNotebook } from '../../src/kernels/seed.ts';
import { notebook, type CellSpec } from './notebooks.ts';

const annotated = (cells: CellSpec[], language = 'python', uri?: string) => parseApiDefinition(notebook(cells, language, uri), { parser: 'annotations' });
const swaggered = (cells: CellSpec[], language = 'python', uri?: string) => parseApiDefinition(notebook(cells, language, uri), { parser: 'swagger' });
const paths = (definition: ApiDefinition) => definition.endpoints.map((e) => e.path);
const endpoint = (definition: ApiDefinition, path: string) => {
  const found = definition.endpoints.find((e) => e.path === path);
  if (!found) throw new Error(`no endpoint ${path} in ${paths(definition).join(', ')}`);
  return found;
};

// ---------------------------------------------------------------------------------------------
// the shared notebook reader

test('notebook reader: every cell with its type; language_info and kernelspec kept apart; clear errors', () => {
  const text = JSON.stringify({
    nbformat: 4,
    metadata: { kernelspec: { name: 'javascript', language: 'javascript' }, language_info: { name: 'JavaScript' } },
    cells: [{ cell_type: 'markdown' }, { cell_type: 'code', source: ['a\n', 'b'] }, { cell_type: 'raw', source: 'r' }],
  });
  const document = parseNotebook(text, '/nb.ipynb');
  assert.equal(document.cells, [
    { number: 1, type: 'markdown', source: '' },
    { number: 2, type: 'code', source: 'a\nb' },
    { number: 3, type: 'raw', source: 'r' },
  ]);
  assert.equal([document.kernelName, document.kernelspecLanguage, document.languageInfoName, document.text], ['javascript', 'javascript', 'JavaScript', text]);
  const seed = seedFromNotebook(document);
  assert.equal([seed.language, seed.cells], ['javascript', [{ number: 2, source: 'a\nb' }]]);
  assert.throws(() => parseNotebook('{"cells": [', 'bad.ipynb'), (e: Error) => e instanceof NotebookError && e.message.includes('not valid JSON'));
  assert.throws(() => parseNotebook('{"nbformat": 3, "cells": []}', 'old.ipynb'), /nbformat 3/);
  assert.throws(() => parseNotebook('{"cells": [{"cell_type": "code"}]}', 'x.ipynb'), /cell 1 has no source/);
});

// ---------------------------------------------------------------------------------------------
// annotations

test('annotations: what counts as an endpoint cell', () => {
  const { endpoint: pattern } = annotationPatterns('#');
  assert.equal(readAnnotation('# GET /yes', pattern), { verb: 'GET', path: '/yes' });
  assert.equal(readAnnotation('#   POST   /a/:b  \nprint(1)', pattern), { verb: 'POST', path: '/a/:b' }, 'the path is the rest of the line, trimmed');
  assert.equal(readAnnotation('# DELETE /people/:index\r\nx', pattern), { verb: 'DELETE', path: '/people/:index' });
  for (const source of ['not an api cell', '#GET /x', '# PATCH /x', '# get /x', '# GET x', ' # GET /x', 'x = 1\n# GET /x', '# ResponseInfo GET /x']) {
    assert.is(readAnnotation(source, pattern), undefined, source);
  }
  const { response } = annotationPatterns('#');
  assert.equal(readAnnotation('# ResponseInfo GET /x', response), { verb: 'GET', path: '/x' });
  assert.is(readAnnotation('# GET /x', response), undefined);
});

test('annotations: route order is literal paths first, then deeper first parameters; ties keep notebook order', () => {
  const definition = annotated(['# GET /:foo', '# GET /hello/:foo', '# GET /hello/world', '# GET /a/:x', '# GET /b']);
  assert.equal(paths(definition), ['/hello/world', '/b', '/hello/:foo', '/a/:x', '/:foo']);
  assert.is(firstParameterDepth('/foo/:bar'), 1);
  assert.is(firstParameterDepth('/foo/quo/:bar'), 2);
  assert.is(firstParameterDepth('/:foo'), 0);
  assert.is(firstParameterDepth('/foo/quo/bar'), Number.MAX_SAFE_INTEGER);
});

test('annotations: cells of one verb and path are concatenated in order, each followed by a newline', () => {
  const definition = annotated(['# GET /multi\nx = 1', 'y = 2', '# GET /multi\nprint(x)', '# POST /multi\npass', '# GET /other', '# ResponseInfo GET /multi\na', '# ResponseInfo GET /multi\nb']);
  const multi = endpoint(definition, '/multi');
  assert.is(multi.sources.get('GET'), '# GET /multi\nx = 1\n# GET /multi\nprint(x)\n');
  assert.is(multi.sources.get('POST'), '# POST /multi\npass\n');
  assert.is(multi.responseSources.get('GET'), '# ResponseInfo GET /multi\na\n# ResponseInfo GET /multi\nb\n');
  assert.is(endpoint(definition, '/other').sources.get('GET'), '# GET /other\n');
  assert.equal([...endpoint(definition, '/other').responseSources], []);
});

test('annotations: setup code is every other non-empty code cell; markdown never counts', () => {
  const definition = annotated([
    { type: 'markdown', source: '# GET /documented-only\nA heading that looks like an annotation' },
    'import json',
    '',
    '# GET /hello\nprint("hello")',
    '# ResponseInfo GET /hello\nprint("{}")',
    { type: 'raw', source: '# GET /raw' },
    { type: 'code', source: ['people = []\n', 'x = 1'] },
  ]);
  assert.equal(paths(definition), ['/hello']);
  assert.equal(definition.setupCells.map((c) => [c.number, c.source]), [
    [2, 'import json'],
    [7, 'people = []\nx = 1'],
  ]);
  assert.equal(Object.keys(definition.swagger.paths as object), ['/hello'], 'swagger lists only served endpoints');
});

test('annotations: the comment token follows the notebook language; ResponseInfo for no endpoint is reported', () => {
  const js = annotated(['// GET /js\nconsole.log(1)', '# GET /not-js', '// ResponseInfo POST /js\nx'], 'javascript');
  assert.equal(paths(js), ['/js']);
  assert.equal(js.setupCells.map((c) => c.source), ['# GET /not-js']);
  assert.equal(js.warnings, ['a ResponseInfo cell for POST /js has no endpoint cell and is never run']);
  const custom = parseApiDefinition(notebook(['%% GET /x'], 'python'), { parser: 'annotations', commentPrefixes: { python: '%%' } });
  assert.equal(paths(custom), ['/x']);
  const regexChars = parseApiDefinition(notebook(['.* GET /x', 'ab GET /y'], 'python'), { parser: 'annotations', commentPrefixes: { python: '.*' } });
  assert.equal(paths(regexChars), ['/x'], 'the token is matched literally');
});

test('annotations: swagger.json exactly as the reference builds it', () => {
  const definition = annotated(['# GET /name\nprint(name)', '# POST /name\nname = 1', '# GET /name\nmore'], 'python', '/srv/simple_api.ipynb');
  assert.is(
    pythonJsonDumps(definition.swagger),
    '{"swagger": "2.0", "paths": {"/name": {"get": {"responses": {"200": {"description": "Success"}}}, "post": {"responses": {"200": {"description": "Success"}}}}}, "info": {"version": "0.0.0", "title": "simple_api"}}',
  );
  assert.is(defaultSwaggerTitle('/a/weird.name.ipynb'), 'weird');
  assert.is(defaultSwaggerTitle('/a/.hidden.ipynb'), '.hidden.ipynb');
  assert.is(defaultSwaggerTitle('noext'), 'noext');
  assert.is(defaultSwaggerTitle('https://example.org/nb/api.ipynb'), 'api');
});

test('no endpoints: a clear error naming the notebook, the parser and the expected annotation', () => {
  try {
    annotated(['print(1)', { type: 'markdown', source: '# GET /x' }], 'javascript', '/srv/empty.ipynb');
    assert.unreachable('should throw');
  } catch (error) {
    assert.instance(error, ApiDefinitionError);
    assert.match((error as Error).message, 'No endpoints were discovered in /srv/empty.ipynb');
    assert.match((error as Error).message, '"// GET /path"');
  }
});

test('parser names: ours and the reference module names', () => {
  assert.is(cellParserByName('annotations'), 'annotations');
  assert.is(cellParserByName('kernel_gateway.notebook_http.cell.parser'), 'annotations');
  assert.is(cellParserByName('swagger'), 'swagger');
  assert.is(cellParserByName('kernel_gateway.notebook_http.swagger.parser'), 'swagger');
  assert.is(cellParserByName('nope'), undefined);
});

// ---------------------------------------------------------------------------------------------
// swagger

const fenced = (document: unknown) => ({ type: 'markdown' as const, source: '```\n' + JSON.stringify(document) + '\n```\n' });

test('swagger: the document is found in a fenced block of any cell; several are merged at the top level', () => {
  assert.equal(swaggerDocumentInCell('Intro\n```\n{"swagger": "2.0",\n "paths": {}}\n```\nafter'), { swagger: '2.0', paths: {} });
  assert.equal(swaggerDocumentInCell('{"swagger": "2.0"}'), { swagger: '2.0' }, 'a short cell is parsed whole');
  assert.is(swaggerDocumentInCell('```\n{"openapi": "3"}\n```'), undefined, 'no swagger key');
  assert.is(swaggerDocumentInCell('```\n["swagger"]\n```\n'), undefined, 'not an object');
  assert.is(swaggerDocumentInCell('```\nnot json\n```\n'), undefined);
  const definition = swaggered([
    fenced({ swagger: '2.0', info: { title: 'T', version: '1' } }),
    fenced({ swagger: '2.0', paths: { '/a': { get: { operationId: 'getA' } } } }),
    '# operationId: getA\nprint(1)',
  ]);
  assert.equal(definition.swagger, { swagger: '2.0', info: { title: 'T', version: '1' }, paths: { '/a': { get: { operationId: 'getA' } } } });
});

test('swagger: operation and ResponseInfo cells, with or without spaces after the comment token', () => {
  const { operation, response } = operationPatterns('#');
  for (const source of ['#operationId:foo', '# operationId:foo', '#operationId: foo']) assert.is(operation.exec(source)?.[1].trim(), 'foo', source);
  for (const source of ['no', '# another comment', '# ResponseInfo operationId: foo']) assert.is(operation.exec(source), null, source);
  for (const source of ['#ResponseInfo operationId:foo', '# ResponseInfo operationId:foo', '# ResponseInfo  operationId: foo', '#ResponseInfo operationId: foo']) {
    assert.is(response.exec(source)?.[1].trim(), 'foo', source);
  }
  assert.is(response.exec('# operationId: foo'), null);
});

test('swagger: routes get /:name per declared parameter and sort as annotations do', () => {
  const definition = swaggered([
    fenced({
      swagger: '2.0',
      paths: {
        '': { post: { operationId: 'postRoot', parameters: [{ name: 'foo' }] } },
        '/hello': { post: { operationId: 'postHello', parameters: [{ name: 'foo' }] }, get: { operationId: 'getHello', parameters: [{ name: 'foo' }] } },
        '/hello/world': { put: { operationId: 'putWorld' } },
      },
    }),
    '# operationId:putWorld',
    '# operationId:getHello',
    '# operationId:postHello',
    '# operationId:postRoot',
  ]);
  assert.equal(paths(definition), ['/hello/world', '/hello/:foo', '/:foo']);
  assert.equal([...endpoint(definition, '/hello/:foo').sources.keys()].sort(), ['GET', 'POST'], 'lower-case verb keys route (the reference answers 405)');
});

test('swagger: operation cells concatenate; a trailing space after the id still binds', () => {
  const document = {
    swagger: '2.0',
    paths: { '/foo': { put: { operationId: 'putFoo', parameters: [{ name: 'bar' }] }, post: { operationId: 'postFooBody' }, get: { operationId: 'getFoo', parameters: [{ name: 'bar' }] } } },
  };
  const definition = swaggered([
    fenced(document),
    '# operationId: postFooBody ',
    '# unrelated comment ',
    '# operationId: putFoo',
    '# operationId: puttFoo',
    '# operationId: getFoo',
    '# operationId: putFoo',
    '# ResponseInfo operationId: putFoo',
    '# ResponseInfo operationId: postFooBody ',
    '# ResponseInfo operationId: putFoo ',
  ]);
  assert.equal(paths(definition).sort(), ['/foo', '/foo/:bar']);
  assert.is(endpoint(definition, '/foo').sources.get('POST'), '# operationId: postFooBody \n');
  assert.is(endpoint(definition, '/foo/:bar').sources.get('GET'), '# operationId: getFoo\n');
  assert.is(endpoint(definition, '/foo/:bar').sources.get('PUT'), '# operationId: putFoo\n# operationId: putFoo\n');
  assert.is(endpoint(definition, '/foo').responseSources.get('POST'), '# ResponseInfo operationId: postFooBody \n');
  assert.is(endpoint(definition, '/foo/:bar').responseSources.get('PUT'), '# ResponseInfo operationId: putFoo\n# ResponseInfo operationId: putFoo \n');
  assert.equal(definition.setupCells.map((c) => c.source), ['# unrelated comment '], 'operation cells, even undeclared ones, never run as setup');
  assert.ok(definition.warnings.includes('Operation puttFoo was referenced in a cell but not declared'));
});

test('swagger: warnings for operations declared but not referenced, and referenced but not declared', () => {
  const document = { swagger: '2.0', paths: { '/foo': { put: { operationId: 'putbar' }, post: { operationId: 'postbar' }, get: { operationId: 'get' } } } };
  const declaredOnly = swaggered([fenced(document), '# operationId: get', '# operationId: putbar']);
  assert.equal(declaredOnly.warnings, ['Operation postbar was declared but not referenced in a cell']);
  const referencedOnly = swaggered(['# operationId: get', '# operationId: postbar', '# operationId: putbar', '# operationId: extraOperation', fenced(document)]);
  assert.equal(referencedOnly.warnings, ['Operation extraOperation was referenced in a cell but not declared']);
  try {
    swaggered(['# operationId: get']);
    assert.unreachable('no document, no endpoints');
  } catch (error) {
    assert.match((error as Error).message, 'No Swagger documentation found');
  }
});

test('swagger: {name} templates and parameter locations', () => {
  assert.is(operationRoute('/people/{id}', [{ name: 'id', in: 'path' }]), '/people/:id');
  assert.is(operationRoute('/people', [{ name: 'id', in: 'path' }, { name: 'limit', in: 'query' }, { name: 'body', in: 'body' }, { name: 'X-Key', in: 'header' }, { name: 'f', in: 'formData' }]), '/people/:id');
  assert.is(operationRoute('/people', [{ name: 'id' }, { $ref: '#/parameters/x' }, 'junk']), '/people/:id');
  assert.is(operationRoute('', [{ name: 'foo' }]), '/:foo');
  assert.is(operationRoute('', undefined), '/');
});

test('swagger: unsupported verbs are reported and not routed', () => {
  const definition = swaggered([fenced({ swagger: '2.0', paths: { '/x': { patch: { operationId: 'p' }, get: { operationId: 'g' } } } }), '# operationId: p', '# operationId: g']);
  assert.equal([...endpoint(definition, '/x').sources.keys()], ['GET']);
  assert.ok(definition.warnings.includes('Operation p uses the verb patch; only GET, PUT, POST and DELETE are served'));
});

test('swagger: swagger.json is the declared document, title defaulted only when info has none', () => {
  const withTitle = {
    swagger: '2.0',
    info: { version: '0.0.0', title: 'Default Title' },
    paths: { '/some/resource': { get: { summary: 'Get some resource', description: 'Get some kind of resource?', operationId: 'getSomeResource', responses: { '200': { description: 'a resource' } } } } },
  };
  const kept = swaggered([fenced(withTitle), '# operationId: getSomeResource\nprint(1)'], 'python', '/srv/other.ipynb');
  assert.equal(kept.swagger, withTitle);
  const untitled = swaggered([fenced({ ...withTitle, info: { version: '1' } }), '# operationId: getSomeResource'], 'python', '/srv/my_api.v2.ipynb');
  assert.equal((untitled.swagger.info as { title: string }).title, 'my_api');
  const upper = swaggered([fenced({ swagger: '2.0', paths: { '/x': { GET: { operationId: 'g' } } } }), '# operationId: g']);
  assert.equal(upper.swagger.paths, { '/x': { GET: { operationId: 'g' }, get: { operationId: 'g' } } }, 'an upper-case key is also listed lower-cased, as the reference');
});

test.run();
