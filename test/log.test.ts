/** The logger's protections (collapsed repeats, escaped control characters) and URL redaction. */
import { Writable } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger, escapeControls, printableBytes } from '../src/log.ts';
import { redactUrl } from '../src/http/request.ts';

const test = suite('log: repeats, control characters, redaction');

function capture(): { stream: Writable; lines: () => string[] } {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, lines: () => text.split('\n').filter((l) => l !== '') };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a line repeated past the limit is collapsed, and the window ends with a count', async () => {
  const out = capture();
  const log = createLogger('INFO', out.stream, { repeatLimit: 3, repeatWindowMs: 300 });
  for (let i = 0; i < 1292; i++) log.warn(`kernel k: dropped a iopub message: invalid signature (${i})`);
  assert.is(out.lines().length, 3, out.lines().join('\n'));
  await sleep(1200);
  const lines = out.lines();
  assert.is(lines.length, 4, lines.join('\n'));
  assert.match(lines[3], /dropped a iopub message: invalid signature \(0\) \.\.\. 1,289 more like this in the last 300 ms$/);
  // A new window starts afresh.
  log.warn('kernel k: dropped a iopub message: invalid signature (9999)');
  assert.is(out.lines().length, 5);
});

test('different lines are not collapsed together; DEBUG is never collapsed', () => {
  const out = capture();
  const log = createLogger('DEBUG', out.stream, { repeatLimit: 2, repeatWindowMs: 60_000 });
  for (let i = 0; i < 5; i++) log.debug(`GET /api ${i}`);
  log.warn('one thing');
  log.warn('another thing');
  log.warn('yet another thing');
  assert.is(out.lines().length, 8);
});

test('control characters are escaped; newlines and tabs of our own messages stay', () => {
  assert.is(escapeControls('a\x1b[31mred\x07\rb'), 'a\\x1b[31mred\\x07\\rb');
  assert.is(escapeControls('line one\n\tline two'), 'line one\n\tline two');
  assert.is(escapeControls('c1 \u009b here'), 'c1 \\u009b here');
  const out = capture();
  createLogger('INFO', out.stream).info('kernel says \x1b[2J\x00');
  assert.not.ok(out.lines()[0].includes('\x1b'));
  assert.ok(out.lines()[0].endsWith('kernel says \\x1b[2J\\x00'));
});

test('bytes a kernel printed: UTF-8 kept with controls escaped, binary shown byte by byte', () => {
  assert.is(printableBytes(Buffer.from('héllo\x1b[0m')), 'héllo\\x1b[0m');
  assert.is(printableBytes(Buffer.from([0x41, 0xff, 0x00, 0x0a, 0x42])), 'A\\xff\\x00\\x0aB');
});

test('redactUrl hides a token however its name is spelled, and nothing else', () => {
  assert.is(redactUrl('/api/kernels?token=abc&x=1'), '/api/kernels?token=<hidden>&x=1');
  assert.is(redactUrl('/api/kernels?%74oken=abc'), '/api/kernels?%74oken=<hidden>');
  assert.is(redactUrl('/api/kernels?TOKEN=abc&%54%4F%4B%45%4E=def'), '/api/kernels?TOKEN=<hidden>&%54%4F%4B%45%4E=<hidden>');
  assert.is(redactUrl('/x?session_id=s&token'), '/x?session_id=s&token=<hidden>');
  assert.is(redactUrl('/x?tokens=1&mytoken=2'), '/x?tokens=1&mytoken=2');
  assert.is(redactUrl('/x?%zz=1&token=2'), '/x?%zz=1&token=<hidden>');
  assert.is(redactUrl('/no/query'), '/no/query');
});

test.run();
