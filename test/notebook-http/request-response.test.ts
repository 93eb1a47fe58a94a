/**
 * The REQUEST value built from an HTTP request (body by content type, args, path, headers, as the
 * reference's request_utils tests describe), and responses built from execution outputs (precedence,
 * ResponseInfo, Tornado's Etag/304 and 204 rules).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { multipartFields } from '../../src/notebook-http/multipart.ts';
import type { KernelOutput } from '../../src/notebook-http/pool-kernel.ts';
import { headersObject, requestJson, tornadoHeaderName, type RequestParts } from '../../src/notebook-http/request.ts';
import { endpointResponse, etagMatches, executionResult, finishResponse, type ExecutionResult, type NotebookResponse } from '../../src/notebook-http/response.ts';

const parts = (overrides: Partial<RequestParts>): RequestParts => ({ rawHeaders: [], query: '', params: {}, body: Buffer.alloc(0), ...overrides });
const request = (overrides: Partial<RequestParts>) => JSON.parse(requestJson(parts(overrides))) as { body: unknown; args: unknown; path: unknown; headers: unknown };
const withType = (type: string | undefined, body: string) => request({ rawHeaders: type === undefined ? [] : ['Content-Type', type], body: Buffer.from(body) }).body;

test('REQUEST: keys in the reference order, laid out as json.dumps', () => {
  const json = requestJson(
    parts({ rawHeaders: ['Host', 'x', 'Content-Type', 'application/json'], query: 'person=governor&person=rick', params: { id: '7' }, body: Buffer.from('{"a":[1,2]}') }),
  );
  const python = spawnSync(
    '/usr/bin/python3',
    ['-c', 'import json; print(json.dumps({"body": {"a": [1, 2]}, "args": {"person": ["governor", "rick"]}, "path": {"id": "7"}, "headers": {"Host": "x", "Content-Type": "application/json"}}), end="")'],
    { encoding: 'utf8' },
  ).stdout;
  assert.is(json, python);
});

test('REQUEST body: JSON, invalid JSON, forms, multipart, text, empty, missing type', () => {
  assert.equal(withType('application/json', '["Rick", "Maggie"]'), ['Rick', 'Maggie']);
  assert.equal(withType('application/json', '{"n": 12345678901234567890}'), JSON.parse('{"n": 12345678901234567890}'));
  assert.match(requestJson(parts({ rawHeaders: ['Content-Type', 'application/json'], body: Buffer.from('{"n": 12345678901234567890, "f": 1.50}') })), '{"n": 12345678901234567890, "f": 1.50}', 'numbers as written');
  assert.is(withType('application/json', '{not json'), '{not json');
  assert.is(withType('application/json; charset=utf-8', '{"a": 1}'), '{"a": 1}', 'only exactly application/json is parsed');
  assert.equal(withType('application/x-www-form-urlencoded', 'a=1&a=2&b=x+y%20z&c=&%C3%A9=%E2%82%AC'), { a: ['1', '2'], b: ['x y z'], c: [''], é: ['€'] });
  assert.is(withType('application/x-www-form-urlencoded; charset=UTF-8', 'a=1'), 'a=1', 'only exactly the form type is parsed');
  assert.is(withType('text/plain', 'hola {}'), 'hola {}');
  assert.is(withType(undefined, 'no type'), 'no type');
  assert.is(withType('application/json', ''), '');
  assert.is(withType(undefined, ''), '');
  const multipart =
    '--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n' +
    '--XyZ\r\ncontent-disposition: form-data; name="a"\r\n\r\n2\r\n' +
    '--XyZ\r\nContent-Disposition: form-data; name="upload"; filename="f.txt"\r\nContent-Type: text/plain\r\n\r\nfile data\r\n' +
    '--XyZ\r\nContent-Disposition: form-data; name="é; \\"q\\""\r\n\r\nline one\r\nline two\r\n' +
    '--XyZ\r\nContent-Disposition: attachment; name="skipped"\r\n\r\nx\r\n' +
    '--XyZ--\r\n';
  assert.equal(withType('multipart/form-data; boundary=XyZ', multipart), { a: ['1', '2'], 'é; "q"': ['line one\r\nline two'] });
  assert.equal(withType('multipart/form-data; boundary="XyZ"', multipart), { a: ['1', '2'], 'é; "q"': ['line one\r\nline two'] });
  assert.equal(withType('multipart/form-data', multipart), {}, 'no boundary');
  assert.equal(Object.fromEntries(multipartFields('multipart/form-data; boundary=XyZ', Buffer.from('--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n'))), {}, 'no final boundary');
});

test('REQUEST args and path: lists of values, blank values kept; path parameters as given', () => {
  const { args, path } = request({ query: 'person=governor%2C%20rick&person=carl&flag&empty=&sp=a+b', params: { person: 'governor', index: '2' } });
  assert.equal(args, { person: ['governor, rick', 'carl'], flag: [''], empty: [''], sp: ['a b'] });
  assert.equal(path, { person: 'governor', index: '2' });
  assert.equal(request({}).args, {});
});

test('REQUEST headers: Tornado spelling, repeats as lists, escaped quotes survive', () => {
  assert.is(tornadoHeaderName('content-TYPE'), 'Content-Type');
  assert.is(tornadoHeaderName('X-API-KEY'), 'X-Api-Key');
  assert.is(tornadoHeaderName('etag'), 'Etag');
  const raw = ['host', '127.0.0.1', 'Accept', 'a', 'x-custom', '1', 'accept', 'b', 'If-None-Match', '"\\"abc\\"", W/"x"'];
  assert.equal(Object.fromEntries(headersObject(raw)), { Host: ['127.0.0.1'], Accept: ['a', 'b'], 'X-Custom': ['1'], 'If-None-Match': ['"\\"abc\\"", W/"x"'] });
  assert.equal(request({ rawHeaders: raw }).headers, { Host: '127.0.0.1', Accept: ['a', 'b'], 'X-Custom': '1', 'If-None-Match': '"\\"abc\\"", W/"x"' });
  assert.equal(request({}).headers, {});
});

// ---------------------------------------------------------------------------------------------

const stdout = (text: string): KernelOutput => ({ type: 'stream', name: 'stdout', text });
const output = (text: string): ExecutionResult => ({ kind: 'output', text });

test('execution result: error, else stdout text, else the last execute_result as JSON, else nothing', () => {
  assert.equal(executionResult([stdout('a'), { type: 'error', ename: 'NameError', evalue: "name 'x' is not defined" }, stdout('b')]), {
    kind: 'error',
    text: "Error NameError: name 'x' is not defined \n",
  });
  assert.equal(executionResult([stdout('a\n'), { type: 'stream', name: 'stderr', text: 'err' }, { type: 'stream', text: 'b' }, { type: 'execute_result', data: { 'text/plain': '2' } }]), output('a\nb'));
  assert.equal(executionResult([{ type: 'execute_result', data: { 'text/plain': '1' } }, { type: 'execute_result', data: { 'text/plain': '2', 'text/html': '<b>é</b>' } }]), output('{"text/plain": "2", "text/html": "<b>\\u00e9</b>"}'));
  assert.equal(executionResult([{ type: 'stream', name: 'stderr', text: 'only stderr' }]), output(''));
  assert.equal(executionResult([]), output(''));
  assert.equal(executionResult([stdout('')]), output(''));
});

const headers = (response: NotebookResponse) => Object.fromEntries([...response.headers.values()]);

test('endpoint response: 200 text/plain; errors 500; ResponseInfo sets status and headers', () => {
  const plain = endpointResponse(output('hello world\n'));
  assert.equal([plain.status, headers(plain), plain.body.toString()], [200, { 'Content-Type': 'text/plain' }, 'hello world\n']);
  const failed = endpointResponse({ kind: 'error', text: 'Error E: v \n' });
  assert.equal([failed.status, failed.body.toString()], [500, 'Error E: v \n']);
  const infoFailed = endpointResponse(output('x'), { kind: 'error', text: 'Error F: w \n' });
  assert.equal([infoFailed.status, infoFailed.body.toString()], [500, 'Error F: w \n']);
  const json = endpointResponse(output('{ "hello" : "world"}\n'), output('{"headers": {"content-type": "application/json", "Etag": "1234567890", "X-Count": 3, "X-Flag": true}, "status": 201}\n'));
  assert.equal([json.status, headers(json)], [201, { 'content-type': 'application/json', Etag: '1234567890', 'X-Count': '3', 'X-Flag': 'True' }]);
  assert.is(endpointResponse(output('x'), output('')).status, 200, 'no ResponseInfo output: nothing changes');
  assert.is(endpointResponse(output('x'), output('[1, 2]')).status, 200, 'a JSON value that is not an object is ignored, as the reference');
  assert.is(endpointResponse(output('x'), output('{"other": 1}')).status, 200);
});

test('endpoint response: ResponseInfo output that cannot be applied is a 500 saying why', () => {
  const cases: Array<[string, string]> = [
    ['not json', 'must print a JSON object'],
    ['{"status": "201"}', '"status" must be an integer'],
    ['{"status": 99}', '"status" must be an integer'],
    ['{"status": 700}', '"status" must be an integer'],
    ['{"headers": ["a"]}', '"headers" must be an object'],
    ['{"headers": {"X": null}}', 'the header X must be a string or an integer'],
    ['{"headers": {"X": 1.5}}', 'the header X must be a string or an integer'],
    ['{"headers": {"Bad Name": "v"}}', 'is not a valid header name'],
    ['{"headers": {"X": "a\\r\\nInjected: 1"}}', 'characters a header cannot carry'],
    ['{"headers": {"X": "snow ☃"}}', 'characters a header cannot carry'],
  ];
  for (const [info, expected] of cases) {
    const response = endpointResponse(output('body'), output(info));
    assert.is(response.status, 500, info);
    assert.match(response.body.toString(), /^Error ResponseInfo: .* \n$/s, info);
    assert.match(response.body.toString(), expected, info);
  }
});

test('finishing: Etag on 200 GET and 304 on a match; 204/304 without body or content type; Content-Length', () => {
  const body = 'hello\n';
  const etag = `"${createHash('sha1').update(body).digest('hex')}"`;
  const ok = finishResponse(endpointResponse(output(body)), 'GET', undefined);
  assert.equal(headers(ok), { 'Content-Type': 'text/plain', Etag: etag, 'Content-Length': '6' });
  const notModified = finishResponse(endpointResponse(output(body)), 'GET', `"other", ${etag}`);
  assert.equal([notModified.status, notModified.body.length, headers(notModified)], [304, 0, { Etag: etag }]);
  assert.is(finishResponse(endpointResponse(output(body)), 'GET', '"\\"abc\\""').status, 200, 'escaped quotes in If-None-Match are harmless');
  assert.is(finishResponse(endpointResponse(output(body)), 'POST', etag).status, 200);
  assert.not.ok(finishResponse(endpointResponse(output(body)), 'POST', undefined).headers.has('etag'), 'only GET gets an automatic Etag');
  const own = finishResponse(endpointResponse(output(body), output('{"headers": {"Etag": "1234567890"}}')), 'GET', '*');
  assert.equal([own.status, headers(own).Etag], [200, '1234567890'], 'a ResponseInfo Etag is kept and not compared');
  const noContent = finishResponse(endpointResponse(output('ignored body\n'), output('{"status": 204}')), 'GET', undefined);
  assert.equal([noContent.status, noContent.body.length, headers(noContent)], [204, 0, {}]);
  const created = finishResponse(endpointResponse(output('x'), output('{"status": 201, "headers": {"Content-Length": "999", "Transfer-Encoding": "chunked"}}')), 'POST', undefined);
  assert.equal(headers(created), { 'Content-Type': 'text/plain', 'Content-Length': '1' }, 'the real length wins');
  assert.ok(etagMatches('"a"', '*'));
  assert.ok(etagMatches('"a"', 'W/"a"'));
  assert.ok(etagMatches('"a"', '"b", "a"'));
  assert.not.ok(etagMatches('"a"', ''));
  assert.not.ok(etagMatches('"a"', 'a'));
});

test.run();
