/**
 * notebook-http with real kernels: a Python notebook served by ipykernel (one pool kernel, so every
 * request sees the state the previous one left) and a JavaScript notebook served by the built-in
 * kernel on a PATH with no Python. Endpoints, route order, REQUEST (bodies by content type, query,
 * path, headers), responses (stdout, execute_result, ResponseInfo, 404/405/500), OPTIONS and CORS,
 * the token, /_api/source, /public/, swagger.json, and the jupyter-websocket routes being absent.
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { errorBody, guardSuite, shutdownTest, type ApiResponse, type Gateway } from '../helpers/gateway.ts';
import { http, notebookDir, startNotebookGateway, writeNotebook, type HttpResult } from '../helpers/notebook-http.ts';

const test = suite('notebook-http: endpoints, REQUEST and responses (ipykernel and the JavaScript kernel)');
let dir: string;
let notebookPath: string;
let py: Gateway;
let js: Gateway;

const PY_CELLS = [
  'import json, os, sys\nmessage = "hola"\npeople = []',
  // ipykernel aborts execute requests that arrive within this time of an error (when asked to stop on
  // errors); two seconds instead of an instant make the test of requests behind a failure deterministic.
  'get_ipython().kernel.stop_on_error_timeout = 2.0',
  { type: 'markdown' as const, source: '# GET /markdown\nNot a code cell: never an endpoint.' },
  // Route order: declared before the more specific routes, tried after them.
  '# GET /:first/:second\nprint("two segments", json.loads(REQUEST)["path"])',
  '# POST /:first/:second\nprint("posted")',
  '# GET /hello/:name\nprint("hello " + json.loads(REQUEST)["path"]["name"])',
  '# GET /hello/world\nprint("hello world")',
  '# GET /hello/person\nprint("hello " + ", ".join(json.loads(REQUEST)["args"]["person"]))',
  '# GET /echo\nprint(REQUEST)',
  '# POST /echo\nprint(REQUEST)',
  '# PUT /echo\nprint(REQUEST)',
  '# GET /message\nprint(message)',
  '# PUT /message\nmessage = json.loads(REQUEST)["body"]\nprint("stored")',
  '# POST /people\npeople.extend(json.loads(REQUEST)["body"])\nprint(json.dumps(people))',
  '# DELETE /people/:index\ndel people[int(json.loads(REQUEST)["path"]["index"])]\nprint(json.dumps(people))',
  '# GET /error\nraise ValueError("no such thing")',
  '# GET /stderr\nprint("to stdout")\nprint("to stderr", file=sys.stderr)',
  '# GET /execute_result\n1 + 1',
  '# GET /nothing\nx = 1',
  '# GET /multi\nx = 1',
  '# GET /multi\nprint("x is", x)',
  '# GET /env\nprint("KERNEL_GATEWAY is", os.environ.get("KERNEL_GATEWAY"))',
  '# GET /created\nprint(json.dumps({"id": 7}))',
  '# ResponseInfo GET /created\nprint(json.dumps({"status": 201, "headers": {"Content-Type": "application/json", "Location": "/things/7", "X-Count": 3}}))',
  '# GET /nocontent\nprint("dropped")',
  '# ResponseInfo GET /nocontent\nprint(json.dumps({"status": 204}))',
  '# GET /etag\nprint("tagged")',
  '# ResponseInfo GET /etag\nprint(json.dumps({"headers": {"Etag": "1234567890"}}))',
  '# GET /syntax\nx = 1\nprint(x +)',
  '# GET /future\nfrom __future__ import annotations\ndef f(x: Undefined) -> None: pass\nprint(f.__annotations__)',
  '# GET /magic\nhere = %pwd\nprint(type(here).__name__, json.loads(REQUEST)["args"])',
  '# GET /bad-info\nprint("body")',
  '# ResponseInfo GET /bad-info\nraise KeyError("info")',
];

const JS_CELLS = [
  'let hits = 0;',
  '// GET /hello/:name\nconsole.log("hello " + JSON.parse(REQUEST).path.name);',
  '// POST /echo\nhits += 1;\nconsole.log(REQUEST);',
  '// GET /count\nhits',
  '// GET /process\nconsole.log(process.env.KERNEL_GATEWAY, process.pid);',
  '// GET /error\nthrow new TypeError("not served");',
  '// GET /created\nconsole.log(JSON.stringify({ made: true }));',
  '// ResponseInfo GET /created\nconsole.log(JSON.stringify({ status: 201, headers: { "Content-Type": "application/json" } }));',
  '// GET /metrics\nconsole.log("the notebook\'s own /metrics");',
];

guardSuite(
  test,
  async () => {
    dir = notebookDir('api');
    notebookPath = writeNotebook(dir, 'api.ipynb', PY_CELLS);
    const jsNotebook = writeNotebook(dir, 'js-api.ipynb', JS_CELLS, 'javascript', 'javascript');
    mkdirSync(join(dir, 'static', 'css'), { recursive: true });
    writeFileSync(join(dir, 'static', 'index.html'), '<h1>static</h1>\n');
    writeFileSync(join(dir, 'static', 'css', 'site.css'), 'h1 { color: red }\n');
    // The JavaScript gateway's PATH holds node and nothing else: no Python to be found.
    mkdirSync(join(dir, 'bin'));
    symlinkSync(process.execPath, join(dir, 'bin', 'node'));
    [py, js] = await Promise.all([
      startNotebookGateway(notebookPath, [
        '--allow-notebook-download',
        '--static-path', join(dir, 'static'),
        '--allow-origin', 'https://app.example',
        '--allow-headers', 'X-Custom, Content-Type',
        '--allow-methods', 'GET, POST',
        '--max-age', '600',
      ]),
      startNotebookGateway(jsNotebook, [], { env: { PATH: join(dir, 'bin') } }),
    ]);
  },
  async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  },
);

/** REQUEST as an endpoint that prints it received it. */
function request(res: HttpResult): { body: unknown; args: Record<string, string[]>; path: Record<string, string>; headers: Record<string, string | string[]> } {
  assert.is(res.status, 200, res.text);
  return JSON.parse(res.text);
}

function asApiResponse(res: HttpResult): ApiResponse {
  return { status: res.status, headers: new Headers(res.headers as Record<string, string>), text: res.text, body: safeJson(res.text) };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Routes

test('GET /hello/world: a literal route answers with what the cell printed, text/plain', async () => {
  const res = await http(py, 'GET', '/hello/world');
  assert.is(res.status, 200, res.text);
  assert.is(res.text, 'hello world\n');
  assert.is(res.headers['content-type'], 'text/plain');
});

test('path parameters: /hello/:name gets the percent-decoded segment', async () => {
  assert.is((await http(py, 'GET', '/hello/governor')).text, 'hello governor\n');
  assert.is((await http(py, 'GET', '/hello/caf%C3%A9%20au%20lait')).text, 'hello café au lait\n');
});

test('route order: literal paths first, then by the depth of the first parameter, whatever the notebook order', async () => {
  // /:first/:second comes first in the notebook but matches last.
  assert.is((await http(py, 'GET', '/hello/world')).text, 'hello world\n');
  assert.is((await http(py, 'GET', '/hello/person?person=governor')).text, 'hello governor\n');
  assert.is((await http(py, 'GET', '/hello/someone')).text, 'hello someone\n');
  assert.is((await http(py, 'GET', '/other/thing')).text, 'two segments {\'first\': \'other\', \'second\': \'thing\'}\n');
});

test('the first matching route decides: POST /hello/x → 405 though /:first/:second has a POST cell', async () => {
  const res = await http(py, 'POST', '/hello/x');
  assert.is(res.status, 405);
  assert.is(res.text, '');
  assert.is((await http(py, 'POST', '/other/thing')).text, 'posted\n');
});

test('404 (JSON) for an unknown path, a trailing slash, a missing segment, and a markdown "endpoint"', async () => {
  for (const path of ['/not/an/endpoint/at/all', '/hello/world/', '/markdown', '/']) {
    const res = await http(py, 'GET', path);
    assert.is(res.status, 404, `${path}: ${res.text}`);
    assert.is(errorBody(asApiResponse(res), path).reason, 'Not Found');
  }
});

test('405 with an empty body for a known path and a verb it has no cell for; PATCH is never routed', async () => {
  for (const [method, path] of [['DELETE', '/message'], ['POST', '/message'], ['PATCH', '/echo'], ['DELETE', '/hello/world']]) {
    const res = await http(py, method, path);
    assert.is(res.status, 405, `${method} ${path}: ${res.text}`);
    assert.is(res.text, '');
  }
});

test('the jupyter-websocket routes are absent: /api, /api/kernels, /api/kernelspecs, /api/sessions → 404', async () => {
  // The JavaScript notebook has no two-segment catch-all route.
  for (const path of ['/api', '/api/kernels', '/api/kernelspecs', '/api/sessions', '/api/swagger.json', '/kernelspecs/python3/kernel.json']) {
    const res = await http(js, 'GET', path);
    assert.is(res.status, 404, `${path}: ${res.text}`);
  }
  assert.is((await http(js, 'POST', '/api/kernels', { body: '{}', headers: { 'Content-Type': 'application/json' } })).status, 404);
  assert.is((await http(py, 'GET', '/api')).status, 404);
  assert.is((await http(py, 'GET', '/api/kernels/' + '0'.repeat(8))).status, 404);
});

// ---------------------------------------------------------------------------------------------
// REQUEST

test('REQUEST.args: query values are lists, repeats kept in order, blanks kept', async () => {
  const got = request(await http(py, 'GET', '/echo?person=governor&person=rick&empty=&x=1%202'));
  assert.equal(got.args, { person: ['governor', 'rick'], empty: [''], x: ['1 2'] });
  assert.equal(got.path, {});
  assert.is(got.body, '');
  assert.is((await http(py, 'GET', '/hello/person?person=governor&person=rick')).text, 'hello governor, rick\n');
});

test('REQUEST.headers: Tornado spelling, a repeated header as a list, quotes and backslashes intact', async () => {
  const tricky = 'W/"abc\\"def", "ghi\\\\" \'single\' $(echo no) `no`';
  const got = request(
    await http(py, 'GET', '/echo', { headers: { 'x-CUSTOM-thing': tricky, 'X-Multi': ['one', 'two'], 'If-None-Match': '"\\"x\\""' } }),
  );
  assert.is(got.headers['X-Custom-Thing'], tricky);
  assert.equal(got.headers['X-Multi'], ['one', 'two']);
  assert.is(got.headers['If-None-Match'], '"\\"x\\""');
  assert.is(got.headers['Host'], `127.0.0.1:${py.port}`);
});

test('REQUEST.body: application/json is parsed (big integers and decimals as written); invalid JSON stays text', async () => {
  const json = '{"list": [1, 2.50, 12345678901234567890], "nested": {"ok": true, "none": null}, "text": "caf\\u00e9 \\"q\\""}';
  const got = request(await http(py, 'POST', '/echo', { body: json, headers: { 'Content-Type': 'application/json' } }));
  assert.equal(got.body, JSON.parse(json));
  // The kernel saw the digits the client sent, not a float's.
  const echoed = await http(py, 'POST', '/echo', { body: json, headers: { 'Content-Type': 'application/json' } });
  assert.ok(echoed.text.includes('12345678901234567890') && echoed.text.includes('2.50'), echoed.text);
  const invalid = request(await http(py, 'POST', '/echo', { body: '{"broken": ', headers: { 'Content-Type': 'application/json' } }));
  assert.is(invalid.body, '{"broken": ');
});

test('REQUEST.body: only exactly application/json is parsed (with a charset it is text, as the reference)', async () => {
  const got = request(await http(py, 'PUT', '/echo', { body: '[1]', headers: { 'Content-Type': 'application/json; charset=utf-8' } }));
  assert.is(got.body, '[1]');
});

test('REQUEST.body: application/x-www-form-urlencoded → field → list of values', async () => {
  const got = request(
    await http(py, 'POST', '/echo', { body: 'name=Ada+Lovelace&tag=a&tag=b&empty=&sym=%26%3D', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }),
  );
  assert.equal(got.body, { name: ['Ada Lovelace'], tag: ['a', 'b'], empty: [''], sym: ['&='] });
});

test('REQUEST.body: multipart/form-data (as fetch sends FormData) → fields as lists; file parts left out', async () => {
  const form = new FormData();
  form.append('name', 'Ada');
  form.append('tag', 'a');
  form.append('tag', 'b\r\nc');
  form.append('upload', new Blob(['file contents']), 'notes.txt');
  const res = await fetch(new URL('echo', py.url), { method: 'POST', body: form, headers: { Authorization: `token ${py.token}` } });
  const text = await res.text();
  assert.is(res.status, 200, text);
  const got = JSON.parse(text) as { body: unknown; headers: Record<string, string> };
  assert.equal(got.body, { name: ['Ada'], tag: ['a', 'b\r\nc'] });
  assert.match(got.headers['Content-Type'], /^multipart\/form-data; boundary=/);
});

test('REQUEST.body: any other type (or none) is the raw text', async () => {
  const plain = request(await http(py, 'PUT', '/echo', { body: 'hola {}', headers: { 'Content-Type': 'text/plain' } }));
  assert.is(plain.body, 'hola {}');
  const none = request(await http(py, 'PUT', '/echo', { body: 'ünïcödé "x" \\ y' }));
  assert.is(none.body, 'ünïcödé "x" \\ y');
});

test('PUT stores state that a later GET on the same kernel returns', async () => {
  const put = await http(py, 'PUT', '/message', { body: 'hola {}' });
  assert.is(put.text, 'stored\n');
  assert.is((await http(py, 'GET', '/message')).text, 'hola {}\n');
});

test('POST with a JSON array, then DELETE /people/:index', async () => {
  const names = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara'];
  const posted = await http(py, 'POST', '/people', { body: JSON.stringify(names), headers: { 'Content-Type': 'application/json' } });
  assert.equal(JSON.parse(posted.text), names);
  const deleted = await http(py, 'DELETE', '/people/2');
  assert.is(deleted.status, 200, deleted.text);
  assert.equal(JSON.parse(deleted.text), ['Ada', 'Grace', 'Edsger', 'Barbara']);
});

// ---------------------------------------------------------------------------------------------
// Responses

test('an error in the cell → 500 "Error <ename>: <evalue> \\n", text/plain', async () => {
  const res = await http(py, 'GET', '/error');
  assert.is(res.status, 500);
  assert.is(res.text, 'Error ValueError: no such thing \n');
  assert.is(res.headers['content-type'], 'text/plain');
});

test('a syntax error → 500 naming the line of the cell as written (REQUEST is assigned on the annotation line)', async () => {
  const res = await http(py, 'GET', '/syntax');
  assert.is(res.status, 500);
  assert.match(res.text, /^Error SyntaxError: invalid syntax \(\d+\.py, line 3\) \n$/);
  // The next request has its own REQUEST.
  assert.equal(request(await http(py, 'GET', '/echo?after=syntax')).args, { after: ['syntax'] });
});

test('a cell starting with a __future__ import, and IPython magics, work as in a notebook', async () => {
  assert.is((await http(py, 'GET', '/future')).text, "{'x': 'Undefined', 'return': 'None'}\n");
  assert.is((await http(py, 'GET', '/magic?m=1')).text, "str {'m': ['1']}\n");
});

test('an error in the ResponseInfo cell → 500 with its error', async () => {
  const res = await http(py, 'GET', '/bad-info');
  assert.is(res.status, 500);
  assert.is(res.text, "Error KeyError: 'info' \n");
});

test('the kernel serves on after an error (the next request is answered normally)', async () => {
  assert.is((await http(py, 'GET', '/error')).status, 500);
  assert.is((await http(py, 'GET', '/hello/world')).text, 'hello world\n');
});

test('a request right behind a failed one runs its own code with its own REQUEST (ipykernel aborts what arrives just after an error)', async () => {
  // One pool kernel: each second request is handed to the kernel the moment the failing one ends.
  for (let i = 0; i < 5; i++) {
    const [failed, next] = await Promise.all([http(py, 'GET', '/error'), http(py, 'GET', `/echo?i=${i}`)]);
    assert.is(failed.status, 500, `round ${i}: ${failed.text}`);
    assert.equal(request(next).args, { i: [String(i)] }, `round ${i}`);
  }
});

test('stderr is dropped; stdout is the body', async () => {
  assert.is((await http(py, 'GET', '/stderr')).text, 'to stdout\n');
});

test('no output: the last execute_result as JSON; nothing at all: an empty 200', async () => {
  const result = await http(py, 'GET', '/execute_result');
  assert.is(result.status, 200);
  assert.equal(JSON.parse(result.text), { 'text/plain': '2' });
  const nothing = await http(py, 'GET', '/nothing');
  assert.is(nothing.status, 200);
  assert.is(nothing.text, '');
});

test('several cells for one route run as one block', async () => {
  assert.is((await http(py, 'GET', '/multi')).text, 'x is 1\n');
});

test('KERNEL_GATEWAY=1 is set in the kernel', async () => {
  assert.is((await http(py, 'GET', '/env')).text, 'KERNEL_GATEWAY is 1\n');
});

test('ResponseInfo: status 201 and headers (Content-Type replaced, an integer header value)', async () => {
  const res = await http(py, 'GET', '/created');
  assert.is(res.status, 201, res.text);
  assert.is(res.headers['content-type'], 'application/json');
  assert.is(res.headers['location'], '/things/7');
  assert.is(res.headers['x-count'], '3');
  assert.equal(JSON.parse(res.text), { id: 7 });
});

test('ResponseInfo: 204 has no body and no Content-Type', async () => {
  const res = await http(py, 'GET', '/nocontent');
  assert.is(res.status, 204);
  assert.is(res.text, '');
  assert.is(res.headers['content-type'], undefined);
});

test('ResponseInfo: a set Etag is kept; otherwise GET gets one, and If-None-Match with it → 304', async () => {
  const tagged = await http(py, 'GET', '/etag');
  assert.is(tagged.status, 200);
  assert.is(tagged.headers['etag'], '1234567890');
  const plain = await http(py, 'GET', '/hello/world');
  const etag = plain.headers['etag'] as string;
  assert.match(etag, /^"[0-9a-f]{40}"$/);
  const again = await http(py, 'GET', '/hello/world', { headers: { 'If-None-Match': etag } });
  assert.is(again.status, 304);
  assert.is(again.text, '');
});

// ---------------------------------------------------------------------------------------------
// OPTIONS, CORS and the token

test('OPTIONS on an endpoint → 200, empty, with the CORS headers and without a token', async () => {
  const res = await http(py, 'OPTIONS', '/hello/world', { auth: false, headers: { Origin: 'https://app.example', 'Access-Control-Request-Method': 'GET' } });
  assert.is(res.status, 200);
  assert.is(res.text, '');
  assert.is(res.headers['access-control-allow-origin'], 'https://app.example');
  assert.is(res.headers['access-control-allow-headers'], 'X-Custom, Content-Type');
  assert.is(res.headers['access-control-allow-methods'], 'GET, POST');
  assert.is(res.headers['access-control-max-age'], '600');
  // A path with a parameter, and swagger.json, are preflighted the same way.
  assert.is((await http(py, 'OPTIONS', '/hello/anyone', { auth: false })).status, 200);
  assert.is((await http(py, 'OPTIONS', '/_api/spec/swagger.json', { auth: false })).status, 200);
});

test('CORS headers on endpoint answers, errors included', async () => {
  for (const path of ['/hello/world', '/error']) {
    const res = await http(py, 'GET', path);
    assert.is(res.headers['access-control-allow-origin'], 'https://app.example', path);
  }
});

test('token: endpoints, swagger.json and /_api/source → 401 without it or with a wrong one; ?token= works', async () => {
  for (const path of ['/hello/world', '/hello/x', '/_api/spec/swagger.json', '/_api/source']) {
    const none = await http(py, 'GET', path, { auth: false });
    assert.is(none.status, 401, `${path}: ${none.text}`);
    errorBody(asApiResponse(none), path);
    const wrong = await http(py, 'GET', path, { auth: false, headers: { Authorization: 'token wrong' } });
    assert.is(wrong.status, 401, `${path} with a wrong token`);
    const query = await http(py, 'GET', `${path}?token=${encodeURIComponent(py.token)}`, { auth: false });
    assert.is(query.status, 200, `${path}?token=: ${query.text}`);
  }
  // A request without the token never reaches the kernel: the state is unchanged.
  assert.is((await http(py, 'PUT', '/message', { auth: false, body: 'intruder' })).status, 401);
  assert.is((await http(py, 'GET', '/message')).text, 'hola {}\n');
});

// ---------------------------------------------------------------------------------------------
// Source, static files, swagger

test('/_api/source (--allow-notebook-download): the notebook file as it is on disk', async () => {
  const res = await http(py, 'GET', '/_api/source');
  assert.is(res.status, 200, res.text);
  assert.is(res.text, readFileSync(notebookPath, 'utf8'));
  const nb = JSON.parse(res.text) as Record<string, unknown>;
  for (const key of ['cells', 'metadata', 'nbformat', 'nbformat_minor']) assert.ok(key in nb, key);
});

test('/public/ (--static-path): files with their content type, no token needed; 404 for a missing file', async () => {
  const index = await http(py, 'GET', '/public/index.html', { auth: false });
  assert.is(index.status, 200);
  assert.is(index.headers['content-type'], 'text/html');
  assert.is(index.text, '<h1>static</h1>\n');
  const css = await http(py, 'GET', '/public/css/site.css', { auth: false });
  assert.is(css.headers['content-type'], 'text/css');
  assert.is((await http(py, 'GET', '/public/missing.html', { auth: false })).status, 404);
  const escape = await http(py, 'GET', '/public/..%2F..%2Fapi.ipynb', { auth: false });
  assert.ok(escape.status === 403 || escape.status === 404, `a path out of the folder → ${escape.status}`);
  assert.not.match(escape.text, /nbformat/);
});

test('swagger.json (annotations): Swagger 2.0, title from the file name, every path with its verbs as 200 "Success"', async () => {
  const res = await http(py, 'GET', '/_api/spec/swagger.json');
  assert.is(res.status, 200, res.text);
  assert.match(String(res.headers['content-type']), /^application\/json/);
  const spec = JSON.parse(res.text) as { swagger: string; info: Record<string, string>; paths: Record<string, Record<string, unknown>> };
  assert.is(spec.swagger, '2.0');
  assert.equal(spec.info, { version: '0.0.0', title: 'api' });
  const success = { responses: { '200': { description: 'Success' } } };
  assert.equal(spec.paths['/hello/:name'], { get: success });
  assert.equal(spec.paths['/echo'], { get: success, post: success, put: success });
  assert.equal(spec.paths['/people/:index'], { delete: success });
  assert.equal(Object.keys(spec.paths['/:first/:second']).sort(), ['get', 'post']);
  assert.not.ok('/markdown' in spec.paths);
});

// ---------------------------------------------------------------------------------------------
// The JavaScript kernel

test('JavaScript notebook: served by the built-in kernel with no Python on PATH', async () => {
  assert.is((await http(js, 'GET', '/hello/world')).text, 'hello world\n');
  const pids = js.kernelPids();
  assert.ok(pids.length >= 1, 'no kernel process found');
  for (const pid of pids) {
    const argv0 = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0];
    assert.not.match(argv0, /python/, `kernel ${pid} runs ${argv0}`);
  }
});

test('JavaScript: REQUEST with a JSON body, form fields and headers; state kept; execute_result', async () => {
  const json = request(await http(js, 'POST', '/echo?q=1&q=2', { body: '{"a": [1, "x"]}', headers: { 'Content-Type': 'application/json', 'X-Q': 'say "hi" \\ `now` ${x}' } }));
  assert.equal(json.body, { a: [1, 'x'] });
  assert.equal(json.args, { q: ['1', '2'] });
  assert.is(json.headers['X-Q'], 'say "hi" \\ `now` ${x}');
  const form = request(await http(js, 'POST', '/echo', { body: 'a=1&a=2', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }));
  assert.equal(form.body, { a: ['1', '2'] });
  assert.equal(JSON.parse((await http(js, 'GET', '/count')).text), { 'text/plain': '2' });
});

test('JavaScript: an error → 500 "Error TypeError: ..."; ResponseInfo; KERNEL_GATEWAY=1; 404/405', async () => {
  const error = await http(js, 'GET', '/error');
  assert.is(error.status, 500);
  assert.is(error.text, 'Error TypeError: not served \n');
  const created = await http(js, 'GET', '/created');
  assert.is(created.status, 201);
  assert.is(created.headers['content-type'], 'application/json');
  const [flag, pid] = (await http(js, 'GET', '/process')).text.trim().split(' ');
  assert.is(flag, '1');
  assert.ok(js.kernelPids().includes(Number(pid)), `pid ${pid} is not one of the gateway's kernels ${js.kernelPids()}`);
  assert.is((await http(js, 'GET', '/nope')).status, 404);
  assert.is((await http(js, 'DELETE', '/echo')).status, 405);
});

test('GET /metrics: the gateway metrics, unless the notebook declares /metrics itself', async () => {
  const gateway = await http(py, 'GET', '/metrics');
  assert.is(gateway.status, 200, gateway.text);
  assert.match(String(gateway.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  assert.is((await http(py, 'GET', '/metrics', { auth: false })).status, 401);
  const notebook = await http(js, 'GET', '/metrics');
  assert.is(notebook.status, 200, notebook.text);
  assert.is(notebook.text, "the notebook's own /metrics\n");
  assert.is((await http(js, 'GET', '/metrics', { auth: false })).status, 401);
});

test('without --allow-notebook-download and --static-path: /_api/source and /public/ → 404', async () => {
  for (const path of ['/_api/source', '/public/index.html', '/public']) {
    const res = await http(js, 'GET', path);
    assert.is(res.status, 404, `${path}: ${res.text}`);
  }
});

shutdownTest(test, () => py, 'Python notebook');
shutdownTest(test, () => js, 'JavaScript notebook');

test.run();
