/**
 * The notebook-http personality behind a real node:http server with fake kernels: the reference's
 * notebook-http test cases (endpoints, parameters, bodies, errors, 405/404, headers, ResponseInfo,
 * pool rotation, swagger, source download, /public), token and CORS handling, and what we add:
 * timeouts, the bounded queue, reload.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { sendJson } from '../../src/http/errors.ts';
import { parseNotebook } from '../../src/kernels/notebook.ts';
import type { SeedNotebook } from '../../src/kernels/seed.ts';
import { createNotebookHttpPersonality, type NotebookHttpOptions, type NotebookHttpPersonality } from '../../src/notebook-http/personality.ts';
import { eventually, FakeKernelSource, memoryLogger } from './fake-kernels.ts';
import { notebookText, type CellSpec } from './notebooks.ts';

// ---------------------------------------------------------------------------------------------
// Harness

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Running {
  personality: NotebookHttpPersonality;
  sources: FakeKernelSource[];
  seeds: SeedNotebook[];
  log: ReturnType<typeof memoryLogger>;
  port: number;
  request(method: string, path: string, options?: { headers?: Record<string, string | string[]>; body?: string }): Promise<Reply>;
  stop(): Promise<void>;
}

const TOKEN = 'secret-token';

/** The reference's kernel_api notebook, in the fake kernels' little language. */
const API_CELLS: CellSpec[] = [
  { type: 'markdown', source: '# API\nA sample API.' },
  'set hello_message hello',
  '# GET /hello\nprint hello world',
  '# GET /hello/person\nrequest args.person.0',
  '# GET /hello/persons\nrequest args.person',
  '# GET /hello/:person\nrequest path.person',
  '# GET /message\nget message',
  '# PUT /message\nremember message body\nget message',
  '# POST /people\nrequest body',
  '# DELETE /people/:index\nrequest path.index',
  '# GET /error\nraise NameError name \'x\' is not defined',
  '# GET /stderr\nprint I am text on stdout\nstderr I am text on stderr',
  '# GET /sleep/:time\nsleep 200\nprint slept',
  '# GET /hang\nhang',
  '# GET /execute_result\nresult {"text/plain": "2"}',
  '# GET /content-type\nrequest headers.Content-Type',
  '# GET /headers\nrequest headers',
  '# GET /multi\nprint first',
  '# GET /multi\nprint second',
  '# GET /env\nget seeded',
  'set seeded yes',
  '# GET /json\nprint { "hello" : "world"}',
  '# ResponseInfo GET /json\nprint {"headers": {"Content-Type": "application/json"}}',
  '# GET /nocontent\n',
  '# ResponseInfo GET /nocontent\nprint {"status": 204}',
  '# GET /etag\nprint { "hello" : "world"}',
  '# ResponseInfo GET /etag\nprint {"headers": {"Content-Type": "application/json", "Etag": "1234567890"}}',
];

async function start(overrides: Partial<NotebookHttpOptions> & { cells?: CellSpec[]; language?: string; text?: () => string } = {}): Promise<Running> {
  const sources: FakeKernelSource[] = [];
  const seeds: SeedNotebook[] = [];
  const log = memoryLogger();
  const cells = overrides.cells ?? API_CELLS;
  const personality = await createNotebookHttpPersonality({
    seedUri: '/notebooks/kernel_api.ipynb',
    log,
    kernels: (seed) => {
      seeds.push(seed);
      const source = new FakeKernelSource(`n${sources.length + 1}k`);
      source.setup = seed.cells.map((cell) => cell.source);
      sources.push(source);
      return source;
    },
    isAuthorized: (req, url) => url.searchParams.get('token') === TOKEN || req.headers.authorization === `token ${TOKEN}`,
    corsHeaders: { 'Access-Control-Allow-Origin': 'https://app.example' },
    loadNotebook: async (uri) => parseNotebook(overrides.text?.() ?? notebookText(cells, overrides.language ?? 'python'), uri),
    ...overrides,
  });
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    personality.handle(req, res, path).then(
      (handled) => {
        if (!handled) sendJson(res, 404, { reason: 'Not Found', message: `no route ${path}` });
      },
      (error: Error) => {
        res.writeHead(500);
        res.end(`unexpected: ${error.stack}`);
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    personality,
    sources,
    seeds,
    log,
    port,
    request: (method, path, options = {}) => send(port, method, path, { authorization: `token ${TOKEN}`, ...options.headers }, options.body),
    stop: async () => {
      await personality.close();
      await closeServer(server);
    },
  };
}

function send(port: number, method: string, path: string, headers: Record<string, string | string[]>, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

// ---------------------------------------------------------------------------------------------
// The reference's test cases (tests/test_notebook_http.py)

const api = suite('notebook-http: the reference behaviours');
let gw: Running;
api.before(async () => {
  gw = await start();
});
api.after(async () => {
  await gw.stop();
});

api('GET /hello → 200 hello world, text/plain', async () => {
  const res = await gw.request('GET', '/hello');
  assert.equal([res.status, res.body, res.headers['content-type']], [200, 'hello world\n', 'text/plain']);
  assert.match(String(res.headers.etag), /^"[0-9a-f]{40}"$/);
  assert.is(res.headers['access-control-allow-origin'], 'https://app.example');
});

api('path parameters, literal routes before parameterised ones, query lists', async () => {
  assert.is((await gw.request('GET', '/hello/governor')).body, 'governor\n');
  assert.is((await gw.request('GET', '/hello/the%20governor')).body, 'the governor\n');
  assert.is((await gw.request('GET', '/hello/person?person=governor')).body, 'governor\n');
  assert.is((await gw.request('GET', '/hello/persons?person=governor&person=rick')).body, '["governor","rick"]\n');
  assert.is((await gw.request('DELETE', '/people/2')).body, '2\n');
});

api('bodies: JSON parsed for application/json, text otherwise', async () => {
  const people = JSON.stringify(['Rick', 'Maggie', 'Glenn']);
  assert.is((await gw.request('POST', '/people', { headers: { 'Content-Type': 'application/json' }, body: people })).body, people + '\n');
  assert.is((await gw.request('POST', '/people', { headers: { 'Content-Type': 'text/plain' }, body: people })).body, people + '\n', 'the text itself');
  const form = await gw.request('POST', '/people', { headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'a=1&a=2' });
  assert.is(form.body, '{"a":["1","2"]}\n');
});

api('PUT changes kernel state that later GETs see (one kernel)', async () => {
  assert.is((await gw.request('PUT', '/message', { body: 'hola {}' })).body, 'hola {}\n');
  assert.is((await gw.request('GET', '/message')).body, 'hola {}\n');
});

api('errors: 500 with Error <ename>: <evalue>; stderr dropped; execute_result as JSON; cells concatenated', async () => {
  const error = await gw.request('GET', '/error');
  assert.equal([error.status, error.body, error.headers['content-type']], [500, "Error NameError: name 'x' is not defined \n", 'text/plain']);
  assert.is((await gw.request('GET', '/stderr')).body, 'I am text on stdout\n');
  assert.is((await gw.request('GET', '/execute_result')).body, '{"text/plain": "2"}');
  assert.is((await gw.request('GET', '/multi')).body, 'first\nsecond\n');
});

api('405 for a known path with another verb (empty, with Allow); unknown paths are not handled', async () => {
  const res = await gw.request('DELETE', '/message');
  assert.equal([res.status, res.body, res.headers.allow], [405, '', 'GET, PUT']);
  assert.is((await gw.request('HEAD', '/hello')).status, 405);
  const unknown = await gw.request('GET', '/not/an/endpoint');
  assert.equal([unknown.status, JSON.parse(unknown.body).reason], [404, 'Not Found']);
  assert.is((await gw.request('GET', '/hello/')).status, 404, 'a trailing slash is another path');
});

api('request headers reach REQUEST under Tornado names; escaped quotes are harmless', async () => {
  for (const type of ['text/plain', 'application/json', 'application/atom+xml', 'foo']) {
    assert.is((await gw.request('GET', '/content-type', { headers: { 'content-type': type } })).body, `${type}\n`);
  }
  const res = await gw.request('GET', '/headers', { headers: { 'If-None-Match': '"\\"abc\\"", "it\'s $(x) `y`"', 'x-api-KEY': 'k', accept: ['a', 'b'] } });
  const headers = JSON.parse(res.body);
  assert.equal([headers['If-None-Match'], headers['X-Api-Key'], headers.Accept], ['"\\"abc\\"", "it\'s $(x) `y`"', 'k', ['a', 'b']]);
});

api('setup cells ran in the pool kernel before it served; the kernel got the setup cells only', async () => {
  assert.is((await gw.request('GET', '/env')).body, 'yes\n');
  assert.equal(gw.seeds[0].cells.map((c) => c.source), ['set hello_message hello', 'set seeded yes']);
  assert.equal([gw.seeds[0].kernelName, gw.seeds[0].language, gw.seeds[0].uri], ['python3', 'python', '/notebooks/kernel_api.ipynb']);
});

api('ResponseInfo: content type, 204 without body, Etag', async () => {
  const json = await gw.request('GET', '/json');
  assert.equal([json.status, json.headers['content-type'], JSON.parse(json.body)], [200, 'application/json', { hello: 'world' }]);
  const none = await gw.request('GET', '/nocontent');
  assert.equal([none.status, none.body, none.headers['content-type']], [204, '', undefined]);
  const etag = await gw.request('GET', '/etag');
  assert.equal([etag.status, etag.headers.etag, etag.headers['content-type']], [200, '1234567890', 'application/json']);
});

api('automatic Etag: a matching If-None-Match gets 304', async () => {
  const first = await gw.request('GET', '/hello');
  const again = await gw.request('GET', '/hello', { headers: { 'If-None-Match': String(first.headers.etag) } });
  assert.equal([again.status, again.body], [304, '']);
});

api('token: required on endpoints, swagger; OPTIONS needs none and carries CORS headers', async () => {
  const noToken = { authorization: '' };
  for (const path of ['/hello', '/_api/spec/swagger.json', '/message']) {
    const res = await gw.request('GET', path, { headers: noToken });
    assert.equal([res.status, JSON.parse(res.body).reason], [401, 'Unauthorized'], path);
  }
  assert.is((await gw.request('GET', `/hello?token=${TOKEN}`, { headers: noToken })).status, 200);
  const preflight = await gw.request('OPTIONS', '/hello', { headers: noToken });
  assert.equal([preflight.status, preflight.body, preflight.headers['access-control-allow-origin']], [200, '', 'https://app.example']);
  assert.is((await gw.request('OPTIONS', '/_api/spec/swagger.json', { headers: noToken })).status, 200);
});

api('swagger.json: the annotations document, paths as annotated', async () => {
  const res = await gw.request('GET', '/_api/spec/swagger.json');
  assert.equal([res.status, res.headers['content-type']], [200, 'application/json']);
  const spec = JSON.parse(res.body);
  assert.equal([spec.swagger, spec.info], ['2.0', { version: '0.0.0', title: 'kernel_api' }]);
  assert.equal(spec.paths['/hello/:person'], { get: { responses: { '200': { description: 'Success' } } } });
  assert.ok(res.body.startsWith('{"swagger": "2.0", "paths": {"/hello": {"get": '), 'json.dumps layout and key order');
  assert.is((await gw.request('POST', '/_api/spec/swagger.json')).status, 405);
});

api('/_api/source and /public are off unless configured', async () => {
  assert.is((await gw.request('GET', '/_api/source')).status, 404);
  assert.is((await gw.request('GET', '/public')).status, 404);
  assert.is((await gw.request('GET', '/public/index.html')).status, 404);
});

api('a body above the limit is refused with 413', async () => {
  const small = await start({ maxBodyBytes: 10 });
  try {
    const res = await small.request('POST', '/people', { body: 'x'.repeat(11) });
    assert.is(res.status, 413);
    assert.is((await small.request('POST', '/people', { body: 'x'.repeat(10) })).body, 'xxxxxxxxxx\n');
  } finally {
    await small.stop();
  }
});

api.run();

// ---------------------------------------------------------------------------------------------

const files = suite('notebook-http: /_api/source and /public');
let dir: string;
files.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'nbhttp-'));
  mkdirSync(join(dir, 'public', 'sub'), { recursive: true });
  writeFileSync(join(dir, 'public', 'index.html'), '<h1>hi</h1>');
  writeFileSync(join(dir, 'public', 'sub', 'data.json'), '{}');
  writeFileSync(join(dir, 'secret.txt'), 'secret');
});
files.after(() => rmSync(dir, { recursive: true, force: true }));

files('download and static files when configured', async () => {
  const text = notebookText(['# GET /x\nprint x']);
  const running = await start({ text: () => text, allowNotebookDownload: true, staticPath: join(dir, 'public') });
  try {
    const source = await running.request('GET', '/_api/source');
    assert.equal([source.status, source.body, source.headers['content-type']], [200, text, 'application/x-ipynb+json']);
    assert.ok(Object.keys(JSON.parse(source.body)).includes('cells'));
    assert.is((await running.request('GET', '/_api/source', { headers: { authorization: '' } })).status, 401);

    const page = await running.request('GET', '/public/index.html', { headers: { authorization: '' } });
    assert.equal([page.status, page.body, page.headers['content-type']], [200, '<h1>hi</h1>', 'text/html']);
    assert.is(page.headers['access-control-allow-origin'], undefined, 'no CORS on /public, as the reference');
    const modified = await running.request('GET', '/public/index.html', { headers: { 'If-Modified-Since': String(page.headers['last-modified']) } });
    assert.is(modified.status, 304);
    assert.is((await running.request('GET', '/public/sub/data.json')).headers['content-type'], 'application/json');
    assert.is((await running.request('HEAD', '/public/index.html')).body, '');
    assert.is((await running.request('GET', '/public/missing.html')).status, 404);
    assert.is((await running.request('GET', '/public/sub')).status, 403, 'a directory');
    assert.is((await running.request('GET', '/public/')).status, 403);
    assert.is((await running.request('GET', '/public/..%2Fsecret.txt')).status, 403, 'outside the folder');
    assert.is((await running.request('GET', '/public/%2e%2e/secret.txt')).status, 403);
    assert.is((await running.request('POST', '/public/index.html')).status, 405);
  } finally {
    await running.stop();
  }
});

files.run();

// ---------------------------------------------------------------------------------------------

const pool = suite('notebook-http: the pool, timeouts, the queue');

pool('prespawn 3: strict rotation, per-kernel state (the reference test_should_cycle_through_kernels)', async () => {
  const running = await start({ prespawnCount: 3 });
  try {
    assert.is(running.sources[0].started.length, 3, 'all three kernels seeded before the first request');
    await running.request('PUT', '/message', { body: 'hola {}' });
    const seen = [];
    for (let i = 0; i < 3; i++) seen.push((await running.request('GET', '/message')).body);
    assert.equal(seen, ['\n', '\n', 'hola {}\n']);
  } finally {
    await running.stop();
  }
});

pool('prespawn 3: concurrent requests queue for kernels and all complete', async () => {
  const running = await start({ prespawnCount: 3 });
  try {
    const replies = await Promise.all(Array.from({ length: 7 }, () => running.request('GET', '/sleep/1')));
    assert.ok(replies.every((r) => r.status === 200 && r.body === 'slept\n'));
    assert.ok(running.sources[0].started.every((k) => k.maxInFlight === 1));
  } finally {
    await running.stop();
  }
});

pool('timeout: 504 and the kernel interrupted; a full queue: 503 with Retry-After', async () => {
  const running = await start({ requestTimeoutMs: 100, maxQueuedRequests: 1, interruptGraceMs: 500 });
  try {
    const hung = running.request('GET', '/hang');
    await eventually(() => running.personality.status.pool.busy === 1, 1000, 'hang running');
    const queued = running.request('GET', '/hello');
    await eventually(() => running.personality.status.pool.queued === 1, 1000, 'hello queued');
    const refused = await running.request('GET', '/hello');
    assert.equal([refused.status, JSON.parse(refused.body).reason, refused.headers['retry-after']], [503, 'Service Unavailable', '1']);
    const timedOut = await hung;
    assert.equal([timedOut.status, JSON.parse(timedOut.body).reason], [504, 'Gateway Timeout']);
    assert.match(JSON.parse(timedOut.body).message, 'interrupted');
    assert.is((await queued).body, 'hello world\n', 'the interrupted kernel served the queued request');
    assert.is(running.sources[0].started[0].interrupts, 1);
  } finally {
    await running.stop();
  }
});

pool('a client that goes away while queued does not run its request', async () => {
  const running = await start({});
  try {
    const busy = running.request('GET', '/sleep/1');
    await eventually(() => running.personality.status.pool.busy === 1, 1000, 'sleep running');
    const controller = new AbortController();
    const gone = fetchWithSignal(running, '/hello', controller.signal);
    await eventually(() => running.personality.status.pool.queued === 1, 1000, 'queued');
    controller.abort();
    await gone;
    await eventually(() => running.personality.status.pool.queued === 0, 1000, 'dequeued');
    await busy;
    assert.not.ok(running.sources[0].started[0].executed.some((code) => code.includes('print hello world')));
  } finally {
    await running.stop();
  }
});

/** A request that is abandoned when `signal` aborts. */
function fetchWithSignal(running: Running, path: string, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port: running.port, path, headers: { authorization: `token ${TOKEN}` }, signal }, () => resolve());
    req.on('error', () => resolve());
    req.end();
  });
}

pool.run();

// ---------------------------------------------------------------------------------------------

const lifecycle = suite('notebook-http: start-up and reload');

lifecycle('start-up fails clearly: no endpoints, a failing setup cell', async () => {
  try {
    await start({ cells: ['print not an endpoint'] });
    assert.unreachable('no endpoints');
  } catch (error) {
    assert.match((error as Error).message, 'No endpoints were discovered in /notebooks/kernel_api.ipynb');
  }
  try {
    await start({ cells: ['# GET /x\nprint x', 'raise NameError x'] });
    assert.unreachable('setup fails');
  } catch (error) {
    assert.match((error as Error).message, 'setup failed');
  }
});

lifecycle('a JavaScript notebook uses // annotations', async () => {
  const running = await start({ cells: ['// GET /js/:name\nrequest path.name', '# GET /not-an-endpoint'], language: 'javascript' });
  try {
    assert.is((await running.request('GET', '/js/node')).body, 'node\n');
    assert.is((await running.request('GET', '/not-an-endpoint')).status, 404);
  } finally {
    await running.stop();
  }
});

lifecycle('reload: the new notebook serves once its kernels are seeded; the old pool drains and stops', async () => {
  let cells: CellSpec[] = ['# GET /version\nprint one', '# GET /slow\nsleep 150\nprint slow one'];
  const running = await start({ text: () => notebookText(cells) });
  try {
    const slow = running.request('GET', '/slow');
    await eventually(() => running.personality.status.pool.busy === 1, 1000, 'slow running');
    cells = ['# GET /version\nprint two', '# GET /added\nprint added', 'set seeded two'];
    assert.equal(await running.personality.reload(), { reloaded: true });
    assert.is((await running.request('GET', '/version')).body, 'two\n');
    assert.is((await running.request('GET', '/added')).body, 'added\n');
    assert.is((await slow).body, 'slow one\n', 'the request accepted before the reload finished on the old kernel');
    await eventually(() => running.sources[0].started[0].shutdowns === 1, 2000, 'old kernel stopped');
    assert.equal(running.seeds[1].cells.map((c) => c.source), ['set seeded two']);
    assert.equal(running.personality.status.endpoints.map((e) => e.path), ['/version', '/added']);
  } finally {
    await running.stop();
  }
});

lifecycle('reload of a broken notebook keeps the old one serving and logs why', async () => {
  let text = notebookText(['# GET /version\nprint one']);
  const running = await start({ text: () => text });
  try {
    text = '{"cells": [';
    const invalid = await running.personality.reload();
    assert.is(invalid.reloaded, false);
    text = notebookText(['print no endpoints']);
    assert.is((await running.personality.reload()).reloaded, false);
    text = notebookText(['# GET /version\nprint two', 'raise NameError broken']);
    assert.is((await running.personality.reload()).reloaded, false);
    assert.is((await running.request('GET', '/version')).body, 'one\n');
    const errors = running.log.lines.filter((l) => l.startsWith('ERROR') && l.includes('previous version keeps serving'));
    assert.is(errors.length, 3);
    assert.match(errors[0], 'not valid JSON');
    assert.match(errors[1], 'No endpoints were discovered');
    assert.match(errors[2], 'setup failed');
    assert.is(running.sources.length, 2, 'only the notebook that parsed asked for kernels');
    assert.is(running.sources[1].started.length, 0, 'its pool failed and left no kernel running');
  } finally {
    await running.stop();
  }
});

lifecycle('close: kernels shut down, later requests get 503', async () => {
  const running = await start({ prespawnCount: 2 });
  await running.personality.close();
  assert.ok(running.sources[0].started.every((k) => k.shutdowns === 1));
  const res = await running.request('GET', '/hello');
  assert.is(res.status, 503);
  await running.stop();
});

lifecycle.run();
