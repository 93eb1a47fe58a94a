/**
 * Unit tests of the built-in JavaScript kernel: the parser and its uses (is_complete, cell rewrites,
 * syntax errors, the name at the cursor), cells that a tokenizer would get wrong, mime bundles and the
 * display helpers, the evaluator, the kernelspec, connection files, and the protocol handler driven
 * in-process with signed frames.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createDisplay, helperBundles, mimeBundle, MIME_SYMBOL, type DisplayMessage } from '../src/jskernel/display.ts';
import { Evaluator, KernelInterrupt, propertyNames } from '../src/jskernel/evaluator.ts';
import { JsKernel } from '../src/jskernel/kernel.ts';
import { connectionFileArg } from '../src/jskernel/main.ts';
import { endpoint, readConnectionFile, type KernelConnection } from '../src/jskernel/server.ts';
import { builtinJavascriptSpec, JAVASCRIPT_LOGO_SVG, selfArgvPrefix } from '../src/jskernel/spec.ts';
import { hasTopLevelAwait, isComplete, planCell, topLevelDeclarations } from '../src/jskernel/syntax.ts';
import { codePointToIndex, cursorTarget, expressionAt, indexToCodePoint, namesInCode } from '../src/jskernel/tokens.ts';
import { createLogger } from '../src/log.ts';
import { MessageFactory, parseSigned, serializeFrames, Signer } from '../src/messaging/session.ts';

// =============================================================================================
const parsing = suite('jskernel syntax: parsing, top-level await, declarations');

parsing('brackets in strings, templates with nested ${}, comments and regex literals do not count', () => {
  const code = "a = 'x(' + `t ${ f(`in ${b}`) } [` /* ( */ // {\nr = /[(/]+/g; c = d / e / g";
  assert.equal(isComplete(code), { status: 'complete' });
  assert.equal(isComplete(`${code}; f(`), { status: 'incomplete', indent: '  ' });
  assert.equal(cursorTarget(`${code}; Math.ma`, code.length + 9), { prefix: 'ma', start: code.length + 7, object: 'Math', inLiteral: false });
  assert.equal(namesInCode(`${code}\nlet q = /[{]/`), ['q']);
});

parsing('unterminated input and mismatched brackets', () => {
  assert.equal(isComplete('`abc ${x}'), { status: 'incomplete', indent: '' });
  assert.equal(isComplete('/* open'), { status: 'incomplete', indent: '' });
  assert.equal(isComplete("'abc\\"), { status: 'incomplete', indent: '' });
  assert.is(isComplete("'abc").status, 'invalid');
  assert.is(isComplete("'a\nb'").status, 'invalid');
  assert.is(isComplete('f(]').status, 'invalid');
  assert.equal(isComplete('{ [ ('), { status: 'incomplete', indent: '      ' });
  for (const open of ['`abc ${x}', '/* open', "'abc\\", "'abc", 'x = /ab']) assert.is(cursorTarget(open, open.length).inLiteral, true, open);
});

parsing('top-level await is told apart from await inside functions', () => {
  const has = hasTopLevelAwait;
  assert.ok(has('await x'));
  assert.ok(has('const v = await f(); v'));
  assert.ok(has('if (a) { await b }'));
  assert.ok(has('for await (const x of it) {}'));
  assert.ok(has('`${await x}`'));
  assert.ok(has('const f = async () => 1\nawait f()'));
  assert.not.ok(has('async function f() { await x }'));
  assert.not.ok(has('const f = async () => { await x }'));
  assert.not.ok(has('const f = async x => await x'));
  assert.not.ok(has('const o = { async m() { await x } }'));
  assert.not.ok(has('obj.await'));
  assert.not.ok(has("'await x'"));
});

parsing('top-level declarations and their names (patterns included)', () => {
  const decls = topLevelDeclarations('let a = 1, {b, c: [d, ...e], f = 2} = o\nconst g = () => { let inner }\nclass H extends I {}\nasync function j() {}\nfunction* k() {}\nfor (let z of zs) {}');
  assert.equal(decls.map((d) => d.kind), ['let', 'const', 'class', 'function', 'function']);
  assert.equal(decls.flatMap((d) => d.names), ['a', 'b', 'd', 'e', 'f', 'g', 'H', 'j', 'k']);
  // class and function expressions are not declarations
  assert.equal(topLevelDeclarations('x = class A {}; y = function b() {}; (function c() {})()'), []);
});

// =============================================================================================
const plans = suite('jskernel syntax: cell rewrites');

plans('synchronous cells: let/const become var, classes become var assignments (same lines)', () => {
  const p = planCell('let x = 5\nconst {a, b} = o;\nclass K { m() {} }\nx');
  assert.is(p.async, false);
  assert.is(p.source, 'var x = 5\nvar   {a, b} = o;\nvar K = class K { m() {} };\nx');
  assert.equal(p.declared, ['x', 'a', 'b', 'K']);
  // nested declarations stay as they are
  assert.is(planCell('{ let y = 1 }\nfor (const i of [1]) {}').source, '{ let y = 1 }\nfor (const i of [1]) {}');
});

plans('cells with top-level await: an async arrow, declarations hoisted, last expression returned', () => {
  const p = planCell('let v = await f()\nfunction g() { return v }\nclass C {}\nv + 1');
  assert.is(p.async, true);
  assert.is(p.returnsValue, true);
  assert.is(p.lineOffset, -1);
  assert.equal(p.declared, ['v', 'g', 'C']);
  assert.match(p.source, /;\(  v = await f\(\)\);/);
  assert.match(p.source, /__kgGlobal__\.g = g;/);
  assert.match(p.source, /void \(C = class C \{\}\);/);
  assert.match(p.source, /void \(C = class C \{\}\); ;return \(\nv \+ 1\)\n\}\)\(this\);\nvar v, g, C;$/);
  // the user's code starts on the script's second line (lineOffset -1 keeps line numbers), and
  // declarations and the returned statement keep their columns
  assert.is(p.source.split('\n')[1], ';(  v = await f());');
  assert.is(planCell('await a\n  b').source, '(async (__kgGlobal__) => { \nawait a ;return (\n  b)\n})(this);');
  assert.is(planCell('b + await a').source, '(async (__kgGlobal__) => { return (\nb + await a)\n})(this);');
  assert.is(planCell('await a // note\nb').source, '(async (__kgGlobal__) => { \nawait a // note\nreturn (b)\n})(this);');
  assert.is(planCell('let q\nawait 0').source.split('\n')[1], ';(  q = undefined); ;return (');
});

plans('the last expression is returned only when it is an expression statement', () => {
  assert.is(planCell('await a; b').returnsValue, true);
  assert.is(planCell('await a\nif (b) c').returnsValue, false);
  assert.is(planCell('await a\nfor (;;)\n  b').returnsValue, false);
  assert.is(planCell('await a; let z = 1').returnsValue, false);
  assert.is(planCell('await a; { b }').returnsValue, false);
  assert.is(planCell('await a\nfoo: b').returnsValue, false);
  assert.is(planCell('if (x) {\n  await y\n} else {\n  z\n}').returnsValue, false);
  assert.is(planCell('await a;;').returnsValue, true);
  assert.is(planCell('await a', { returnLast: false }).returnsValue, false);
});

// =============================================================================================
const complete = suite('jskernel syntax: is_complete');

const cases: Array<[string, 'complete' | 'incomplete' | 'invalid', string?]> = [
  ['', 'complete'],
  ['1 + 1', 'complete'],
  ['let x = 5;\nx', 'complete'],
  ['await fetchIt()', 'complete'],
  ['function f() {', 'incomplete', '  '],
  ['if (a) {\n  if (b) {', 'incomplete', '    '],
  ['x = [1, 2,', 'incomplete', '  '],
  ['f(1,', 'incomplete', '  '],
  ['let s = `line one', 'incomplete', ''],
  ['let s = `a ${b', 'incomplete', '  '],
  ['/* a comment', 'incomplete', ''],
  ["'continued \\", 'incomplete', ''],
  ['let x =', 'incomplete', ''],
  ['if (x)', 'incomplete', ''],
  ['x = 1 +', 'incomplete', ''],
  ['}', 'invalid'],
  ['f(]', 'invalid'],
  ["x = 'abc", 'invalid'],
  ['let x = 5 5', 'invalid'],
  ['const = 1', 'invalid'],
];
for (const [code, status, indent] of cases) {
  complete(`${JSON.stringify(code)} is ${status}`, () => {
    const r = isComplete(code);
    assert.is(r.status, status);
    if (indent !== undefined) assert.is(r.indent, indent);
  });
}

// =============================================================================================
const cursor = suite('jskernel syntax: the name at the cursor');

cursor('prefix, start and object before a dot', () => {
  assert.equal(cursorTarget('let alpha = 1; al', 17), { prefix: 'al', start: 15, inLiteral: false });
  assert.equal(cursorTarget('Math.ma', 7), { prefix: 'ma', start: 5, object: 'Math', inLiteral: false });
  assert.equal(cursorTarget('a.b?.c', 6), { prefix: 'c', start: 5, object: 'a.b', inLiteral: false });
  assert.equal(cursorTarget("x['k'].", 7), { prefix: '', start: 7, object: "x['k']", inLiteral: false });
  assert.equal(cursorTarget('"str".len', 9), { prefix: 'len', start: 6, object: '"str"', inLiteral: false });
  // calls are never evaluated for completion
  assert.is(cursorTarget('f().x', 5).object, undefined);
  // inside literals and comments: nothing
  assert.is(cursorTarget("'Math.ma", 8).inLiteral, true);
  assert.is(cursorTarget('x // Math.ma', 12).inLiteral, true);
  assert.is(cursorTarget('`${Ma', 5).inLiteral, false);
});

cursor('expressionAt finds the dotted name around the cursor, or the function being called', () => {
  assert.is(expressionAt('Math.max(1, 2)', 6), 'Math.max');
  assert.is(expressionAt('parseInt(', 9), 'parseInt');
  assert.is(expressionAt('  foo ( ', 8), 'foo');
  assert.is(expressionAt('1 + 2', 2), undefined);
});

cursor('names declared anywhere in the code', () => {
  assert.equal(namesInCode('let alpha = 1; function f() { const inner = 2 } class K {}'), ['alpha', 'f', 'inner', 'K']);
});

cursor('cursor positions: code points <-> UTF-16 indexes', () => {
  const s = 'a🎉b';
  assert.is(codePointToIndex(s, 2), 3);
  assert.is(indexToCodePoint(s, 3), 2);
  assert.is(codePointToIndex(s, 99), s.length);
});

// =============================================================================================
const display = suite('jskernel display: mime bundles and display helpers');

display('plain values become text/plain via util.inspect', () => {
  assert.equal(mimeBundle(2), { 'text/plain': '2' });
  assert.equal(mimeBundle('s'), { 'text/plain': "'s'" });
  assert.equal(mimeBundle({ a: [1, 2] }), { 'text/plain': '{ a: [ 1, 2 ] }' });
});

display("objects give their own bundle: [Symbol.for('jupyter.mime')]() or _toMime()", () => {
  const viaSymbol = { [MIME_SYMBOL]: () => ({ 'text/html': '<b>x</b>', 'text/plain': 'x' }) };
  assert.equal(mimeBundle(viaSymbol), { 'text/html': '<b>x</b>', 'text/plain': 'x' });
  const viaMethod = { _toMime: () => ({ 'text/markdown': '# T' }) };
  const bundle = mimeBundle(viaMethod);
  assert.is(bundle['text/markdown'], '# T');
  assert.type(bundle['text/plain'], 'string'); // added when missing
  assert.throws(() => mimeBundle({ _toMime: () => 'no' }), /mime bundle/);
  assert.throws(() => mimeBundle({ _toMime: () => ({ 'text/html': 5 }) }), /must be a string/);
  assert.throws(() => mimeBundle({ _toMime: () => ({ html: 'x' }) }), /not a mime type/);
});

display('helper bundles', () => {
  assert.equal(helperBundles.html('<i>a</i>'), { 'text/html': '<i>a</i>', 'text/plain': '<i>a</i>' });
  assert.equal(helperBundles.markdown('*a*'), { 'text/markdown': '*a*', 'text/plain': '*a*' });
  assert.equal(helperBundles.json({ a: [1] }), { 'application/json': { a: [1] }, 'text/plain': '{\n  "a": [\n    1\n  ]\n}' });
  assert.equal(helperBundles.png(Buffer.from([1, 2, 3])), { 'image/png': 'AQID', 'text/plain': '<PNG image>' });
  assert.equal(helperBundles.png('AQ ID\n'), { 'image/png': 'AQID', 'text/plain': '<PNG image>' });
  assert.is(helperBundles.svg('<svg/>')['image/svg+xml'], '<svg/>');
  assert.throws(() => helperBundles.html(42), /needs a string/);
  assert.throws(() => helperBundles.json(undefined), /JSON-serializable/);
  assert.throws(() => helperBundles.png(42), /base64/);
});

display('display() emits display_data, with metadata and display_id; display.update() emits updates', () => {
  const sent: DisplayMessage[] = [];
  const d = createDisplay((m) => sent.push(m));
  d({ a: 1 });
  d.html('<p>x</p>', { display_id: 'out1', metadata: { isolated: true } });
  d.update('<p>y</p>', { display_id: 'out1', raw: false });
  d({ 'text/plain': 'raw' }, { raw: true });
  assert.equal(sent[0], { data: { 'text/plain': '{ a: 1 }' }, metadata: {}, transient: {}, update: false });
  assert.equal(sent[1], { data: { 'text/html': '<p>x</p>', 'text/plain': '<p>x</p>' }, metadata: { isolated: true }, transient: { display_id: 'out1' }, update: false });
  assert.is(sent[2].update, true);
  assert.equal(sent[2].transient, { display_id: 'out1' });
  assert.equal(sent[3].data, { 'text/plain': 'raw' });
  assert.throws(() => (d.update as (v: unknown, o: unknown) => void)(1, {}), /display_id/);
});

// =============================================================================================
const evaluator = suite('jskernel evaluator');

function newEvaluator() {
  const out: Array<[string, unknown]> = [];
  const ev = new Evaluator({
    stdout: (t) => out.push(['stdout', t]),
    stderr: (t) => out.push(['stderr', t]),
    display: (m) => out.push(['display', m]),
    input: async (prompt, password) => `answer to ${prompt}${password ? ' (secret)' : ''}`,
  });
  return { ev, out };
}

evaluator('the last expression is the value; declarations persist; cells can be re-run', async () => {
  const { ev } = newEvaluator();
  assert.is(await ev.execute('1 + 1'), 2);
  assert.is(await ev.execute('let x = 5'), undefined);
  assert.is(await ev.execute('x * 2'), 10);
  await ev.execute('const c = 1; function f() { return c + 1 } class K { v() { return 3 } }');
  // (the array comes from the context's realm, so compare its JSON)
  assert.is(JSON.stringify(await ev.execute('[c, f(), new K().v()]')), '[1,2,3]');
  assert.is(await ev.execute('let x = 6; const c = 2; class K {}; x + c'), 8);
});

evaluator('top-level await, with persistent declarations', async () => {
  const { ev } = newEvaluator();
  assert.is(await ev.execute('await new Promise((r) => setTimeout(r, 10)); 7'), 7);
  await ev.execute('const later = await Promise.resolve(41); function g() { return later + 1 }');
  assert.is(await ev.execute('g()'), 42);
  assert.is(await ev.execute('await 1; let declared = 2'), undefined);
  assert.is(await ev.execute('declared'), 2);
});

evaluator('console goes to the stdout/stderr hooks, display and input to theirs', async () => {
  const { ev, out } = newEvaluator();
  await ev.execute("console.log('a', 1); console.info({ b: 2 }); console.debug('d'); console.error('e %d', 5); console.warn('w')");
  assert.equal(out, [['stdout', 'a 1\n'], ['stdout', '{ b: 2 }\n'], ['stdout', 'd\n'], ['stderr', 'e 5\n'], ['stderr', 'w\n']]);
  out.length = 0;
  await ev.execute("display.markdown('**m**')");
  assert.equal((out[0][1] as DisplayMessage).data, { 'text/markdown': '**m**', 'text/plain': '**m**' });
  assert.is(await ev.execute("await input('name? ')"), 'answer to name? ');
  assert.is(await ev.execute("await input('pw: ', { password: true })"), 'answer to pw:  (secret)');
});

evaluator('the context has require, timers, Buffer, URL and import()', async () => {
  const { ev } = newEvaluator();
  assert.is(await ev.execute("require('node:path').join('a', 'b')"), join('a', 'b'));
  assert.is(await ev.execute("(await import('node:path')).basename('/x/y.js')"), 'y.js');
  assert.is(await ev.execute("typeof setTimeout + typeof Buffer + typeof URL + typeof fetch"), 'functionfunctionfunctionfunction');
  assert.is(await ev.execute('global === globalThis'), true);
});

evaluator('errors: ename, evalue and a traceback without kernel frames', async () => {
  const { ev } = newEvaluator();
  const caught = async (code: string) => {
    try {
      await ev.execute(code);
    } catch (error) {
      return ev.errorContent(error);
    }
    throw new Error(`no error from ${code}`);
  };
  const e1 = await caught("function inner() { throw new TypeError('deep') }\ninner()");
  assert.is(e1.ename, 'TypeError');
  assert.is(e1.evalue, 'deep');
  assert.equal(e1.traceback, ['TypeError: deep', '    at inner (<cell 1>:1:26)', '    at <cell 1>:2:1']);
  const e2 = await caught("await Promise.reject(new RangeError('later'))");
  assert.equal(e2.traceback, ['RangeError: later', '    at <cell 2>:1:22']);
  const e3 = await caught('let = ;');
  assert.is(e3.ename, 'SyntaxError');
  assert.ok(e3.traceback.some((l) => l.startsWith('SyntaxError:')));
  const e4 = await caught("throw 'text'");
  assert.equal(e4, { ename: 'Uncaught', evalue: "'text'", traceback: ["Uncaught 'text'"] });
});

evaluator('interrupt() rejects a pending await with KeyboardInterrupt', async () => {
  const { ev } = newEvaluator();
  const running = ev.execute('await new Promise(() => {})');
  await new Promise((r) => setTimeout(r, 20));
  assert.is(ev.interrupt(), true);
  try {
    await running;
    assert.unreachable('the cell should have been interrupted');
  } catch (error) {
    assert.instance(error, KernelInterrupt);
    assert.is(ev.errorContent(error).ename, 'KeyboardInterrupt');
  }
  assert.is(ev.interrupt(), false);
  assert.is(await ev.execute('3'), 3);
});

evaluator('completion: globals, names in the code, properties after a dot', async () => {
  const { ev } = newEvaluator();
  await ev.execute('const record = { first: 1, fifth: 5, second: 2 }');
  assert.equal(ev.complete('let alpha = 1; al', 17).matches, ['alpha']);
  assert.equal(ev.complete('record.fi', 9), { matches: ['fifth', 'first'], start: 7, end: 9 });
  assert.equal(ev.complete('Math.ma', 7).matches, ['max']);
  assert.ok(ev.complete('rec', 3).matches.includes('record'));
  assert.ok(ev.complete('cons', 4).matches.includes('console'));
  assert.ok(ev.complete('cons', 4).matches.includes('const'));
  assert.equal(ev.complete("'Math.ma", 8).matches, []);
  assert.equal(ev.complete('nothing.he', 10).matches, []);
  assert.ok(propertyNames('s').includes('toUpperCase'));
  assert.equal(propertyNames(null), []);
});

evaluator('inspect: the value under the cursor', async () => {
  const { ev } = newEvaluator();
  await ev.execute('function twice(n) { return 2 * n }\nconst count = 3');
  assert.equal(ev.inspect('count', 2, 0), { found: true, data: { 'text/plain': 'count: number\n3' } });
  assert.match(ev.inspect('twice(', 6, 0).data['text/plain'] as string, /^twice: function\nfunction twice\(n\)/);
  assert.is(ev.inspect('missing', 3, 0).found, false);
});

// =============================================================================================
const cells = suite('jskernel cells: what a tokenizer gets wrong');

/** Run cells in one evaluator; each value is compared as JSON (values from the context's realm). */
async function runCells(...steps: Array<[string, unknown]>): Promise<void> {
  const { ev } = newEvaluator();
  for (const [code, expected] of steps) {
    const value = await ev.execute(code);
    assert.is(JSON.stringify(value), JSON.stringify(expected), code);
  }
}

/** The error content a cell ends with. */
async function cellError(code: string): Promise<{ ename: string; evalue: string; traceback: string[] }> {
  const { ev } = newEvaluator();
  try {
    await ev.execute(code);
  } catch (error) {
    return ev.errorContent(error);
  }
  throw new Error(`no error from ${code}`);
}

cells('regular expression literals and division', async () => {
  await runCells(
    ['a = 12; b = 3; c = 2\na / b / c', 2],
    ["s = 'xx re yy'\nx = /re/g.test(s)", true],
    ['x', true],
    ['[a / b, /[/]/.source, a /b/ c]', [4, '[/]', 2]],
    ['await 0\nconst r = /\\}/g; r.test("}") && a / b / c', 2],
  );
});

cells('ASI: lines without semicolons; a multi-line expression at the end', async () => {
  await runCells(
    ['let p = 1\nlet q = 2\np + q', 3],
    ['[1, 2, 3]\n  .map((n) => n * 2)\n  .filter((n) => n > 2)', [4, 6]],
    ['await null\nconst w = 1\n;[w]', [1]],
    ['await null\nconst v = q\n  + p\nv\n  * 2', 6],
  );
});

cells('destructuring declarations persist, with or without top-level await', async () => {
  await runCells(
    ['const obj = { a: 1, b: [2, 3] }\nconst {a, b: [c]} = obj', undefined],
    ['[a, c]', [1, 2]],
    ['await 0\nlet {a: a2, b: [, c2], ...rest} = { ...obj, d: 4 }', undefined],
    ['[a2, c2, rest]', [1, 3, { d: 4 }]],
  );
});

cells('class and function declarations persist and can be declared again', async () => {
  await runCells(
    ['class Point { constructor(x) { this.x = x } }\nfunction make(x) { return new Point(x) }', undefined],
    ['make(4).x', 4],
    ['await 0; class Later { v() { return 5 } }; async function makeLater() { return new Later() }', undefined],
    ['(await makeLater()).v()', 5],
    ['class Point { constructor() { this.x = -1 } }; function make() { return new Point() }; make().x', -1],
  );
});

cells('let and const: later cells see, assign and declare them again, as in a REPL', async () => {
  await runCells(
    ['let x = 1; const k = 1', undefined],
    ['x = 7; k = 2; [x, k]', [7, 2]],
    ['let x = 2; x', 2],
    ['let x\nx', undefined],
    ['await 0; let x = 5; const k = 3; [x, k]', [5, 3]],
    ['[x, k]', [5, 3]],
  );
});

cells('var in blocks and loop heads of a cell with top-level await persists', async () => {
  await runCells(
    ['if (true) { var inner = 3 } else var never = 1\nawait 0', 0],
    ['[inner, typeof never]', [3, 'undefined']],
    ['await 0; for (var item of [1, 2]) {}; for (var i = 0, j = 5; i < 2; i++) {}\n[item, i, j]', [2, 2, 5]],
  );
});

cells('labelled blocks and loops', async () => {
  await runCells(
    ['let n = 0\nouter: for (let i = 0; i < 3; i++) { for (let j = 0; j < 3; j++) { if (j === 1) continue outer; n++ } }\nn', 3],
    ['done: { n = 100; break done; n = 200 }\nn', 100],
    ['await 0\nloop: while (true) { n++; break loop }', undefined],
    ['n', 101],
  );
});

cells('a cell that is an object literal shows the object; a block is run as a block', async () => {
  await runCells(['{a: 1}', { a: 1 }], ['{}', {}], ['{ let y = 1 }', undefined], ['{a: await Promise.resolve(2)}', { a: 2 }], ['{ 5 }', undefined]);
});

cells('await inside nested functions is left alone; only top-level await makes an async cell', async () => {
  await runCells(
    ['const f = async () => { await null; return 5 }\nasync function g() { return await f() + 1 }\nf.constructor.name', 'AsyncFunction'],
    ['[await f(), await g()]', [5, 6]],
    ['var await = 3; await', 3],
  );
  assert.is(planCell('const f = async () => { await null }; f').async, false);
  assert.is(planCell('const o = { async m() { for await (const x of y) {} } }').async, false);
});

cells('template literals with ${} containing braces and templates', async () => {
  await runCells(['let t = `a${ {k: 1}.k }b${ `${ {z: [1]}.z[0] }}` }`\nt', 'a1b1}'], ['await 0; `{${ [t].map((s) => { return s }) }}`', '{a1b1}}']);
});

cells('comments at the end of a cell', async () => {
  await runCells(['1 + 1 // comment', 2], ['1 + 2 /* block */', 3], ['await 1; 2 + 2 // c', 4], ['await 1\n3 + 3\n// last line\n/* and a block */', 6], ['// only a comment', undefined]);
});

cells('the result is the last statement when it is an expression statement, else nothing', async () => {
  await runCells(['1; let z = 2', undefined], ['if (true) 5', undefined], ['2;;', 2], ['3; function h() {}', undefined], ['await 0; 4; class E {}', undefined]);
});

cells('syntax errors: where the parser stopped in the cell as written, in the usual traceback shape', async () => {
  assert.equal(await cellError('x = 1\nlet y = = 2'), {
    ename: 'SyntaxError',
    evalue: "Unexpected token '='",
    traceback: ['<cell 1>:2', 'let y = = 2', '        ^', '', "SyntaxError: Unexpected token '='"],
  });
  assert.equal((await cellError('await 1\n}')).traceback, ['<cell 1>:2', '}', '^', '', "SyntaxError: Unexpected token '}'"]);
  assert.equal((await cellError('await x; let = ;')).traceback.slice(0, 3), ['<cell 1>:1', 'await x; let = ;', '               ^']);
  assert.is((await cellError('function f(')).evalue, 'Unexpected end of input');
  assert.is((await cellError('let a = 1; let a = 2')).evalue, "Identifier 'a' has already been declared");
  assert.is((await cellError('let x = 5 5')).evalue, 'Unexpected number');
  assert.is((await cellError('return 5')).ename, 'SyntaxError');
});

// =============================================================================================
const misc = suite('jskernel spec, connection files, arguments');

misc('builtinJavascriptSpec', () => {
  assert.equal(builtinJavascriptSpec(['/usr/bin/node', '/opt/kg/dist/kernelgateway.js']), {
    argv: ['/usr/bin/node', '/opt/kg/dist/kernelgateway.js', 'kernel', '-f', '{connection_file}'],
    display_name: 'JavaScript (kernelgateway)',
    language: 'javascript',
    interrupt_mode: process.platform === 'win32' ? 'message' : 'signal',
    env: {},
    metadata: {},
  });
  assert.equal(builtinJavascriptSpec(['/usr/local/bin/kernelgateway']).argv, ['/usr/local/bin/kernelgateway', 'kernel', '-f', '{connection_file}']);
  assert.match(JAVASCRIPT_LOGO_SVG, /^<svg [^>]*width="64" height="64"/);
});

misc('selfArgvPrefix: how the gateway starts itself again', () => {
  const base = { execPath: '/usr/bin/node', execArgv: [] as string[], singleExecutable: false, deno: false };
  assert.equal(selfArgvPrefix({ ...base, argv: ['/usr/bin/node', '/opt/kg/bin/kernelgateway.js', '--port', '0'] }), ['/usr/bin/node', '/opt/kg/bin/kernelgateway.js']);
  assert.equal(
    selfArgvPrefix({ ...base, execArgv: ['--max-old-space-size=4096', '--inspect=9229'], argv: ['/usr/bin/node', '/opt/kg.js'] }),
    ['/usr/bin/node', '--max-old-space-size=4096', '/opt/kg.js'],
  );
  assert.equal(selfArgvPrefix({ ...base, execPath: '/usr/local/bin/kernelgateway', singleExecutable: true, argv: ['/usr/local/bin/kernelgateway', '/usr/local/bin/kernelgateway'] }), ['/usr/local/bin/kernelgateway']);
  assert.equal(selfArgvPrefix({ ...base, execPath: '/usr/bin/deno', deno: true, argv: ['/usr/bin/deno', '/opt/kg/src/cli.ts'] }), ['/usr/bin/deno', 'run', '-A', '/opt/kg/src/cli.ts']);
  // the current process: node running uvu
  assert.is(selfArgvPrefix()[0], process.execPath);
});

misc('connection files are read and checked', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kg-jskernel-unit-'));
  try {
    const file = join(dir, 'c.json');
    const good = { shell_port: 1, iopub_port: 2, stdin_port: 3, control_port: 4, hb_port: 5, ip: '127.0.0.1', key: 'k', transport: 'tcp', signature_scheme: 'hmac-sha256' };
    writeFileSync(file, JSON.stringify(good));
    assert.equal(readConnectionFile(file), good);
    writeFileSync(file, JSON.stringify({ ...good, hb_port: 0 }));
    assert.throws(() => readConnectionFile(file), /hb_port must be a port number/);
    writeFileSync(file, JSON.stringify({ ...good, signature_scheme: 'hmac-nope' }));
    assert.throws(() => readConnectionFile(file), /unsupported signature scheme/);
    writeFileSync(file, JSON.stringify({ ...good, transport: 'udp' }));
    assert.throws(() => readConnectionFile(file), /unsupported transport/);
    writeFileSync(file, '{not json');
    assert.throws(() => readConnectionFile(file), /cannot read connection file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

misc('endpoints for tcp (IPv4, IPv6) and ipc', () => {
  const info: KernelConnection = { transport: 'tcp', ip: '127.0.0.1', shell_port: 1, iopub_port: 2, stdin_port: 3, control_port: 4, hb_port: 5, key: '', signature_scheme: 'hmac-sha256' };
  assert.is(endpoint(info, 'shell'), 'tcp://127.0.0.1:1');
  assert.is(endpoint({ ...info, ip: '::1' }, 'hb'), 'tcp://[::1]:5');
  assert.is(endpoint({ ...info, transport: 'ipc', ip: '/tmp/kernel' }, 'iopub'), 'ipc:///tmp/kernel-2');
});

misc('connectionFileArg', () => {
  assert.is(connectionFileArg(['kernel', '-f', '/x.json']), '/x.json');
  assert.is(connectionFileArg(['-f=/y.json']), '/y.json');
  assert.is(connectionFileArg(['--connection-file', '/z.json']), '/z.json');
  assert.is(connectionFileArg(['kernel']), undefined);
});

// =============================================================================================
const protocol = suite('jskernel protocol handler, in process');

interface Out {
  channel: string;
  type: string;
  parent: string | undefined;
  content: Record<string, any>;
  identities: string[];
}

function harness() {
  const signer = new Signer('unit-key');
  const sent: Out[] = [];
  let shutdown: boolean | undefined;
  const quiet = createLogger('CRITICAL', { write: () => true } as unknown as NodeJS.WritableStream);
  const kernel = new JsKernel({
    signer,
    log: quiet,
    send: (channel, frames) => {
      const p = parseSigned(frames, signer);
      sent.push({
        channel,
        type: JSON.parse(p.header.toString()).msg_type,
        parent: JSON.parse(p.parentHeader.toString()).msg_id,
        content: JSON.parse(p.content.toString()),
        identities: p.identities.map((b) => b.toString()),
      });
    },
    onShutdown: (restart) => (shutdown = restart),
  });
  const factory = new MessageFactory();
  const request = (channel: 'shell' | 'control' | 'stdin', type: string, content: unknown, key = signer, parent: unknown = {}) => {
    const m = factory.message(type, content, parent);
    kernel.handle(channel, serializeFrames(m, key, [Buffer.from('client-1')]));
    return m.msgId;
  };
  const until = async (pred: () => boolean, what: string) => {
    const deadline = Date.now() + 5000;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(sent.map((s) => s.type))}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const replyTo = async (id: string) => {
    await until(() => sent.some((s) => s.parent === id && s.type.endsWith('_reply') && s.channel !== 'iopub'), `reply to ${id}`);
    await until(() => sent.some((s) => s.parent === id && s.type === 'status' && s.content.execution_state === 'idle'), `idle for ${id}`);
    return sent.find((s) => s.parent === id && s.type.endsWith('_reply') && s.channel !== 'iopub')!;
  };
  return { kernel, sent, request, replyTo, until, shutdown: () => shutdown, factory };
}

protocol('replies go back to the sender identity; busy and idle wrap each request', async () => {
  const h = harness();
  const id = h.request('shell', 'kernel_info_request', {});
  const reply = await h.replyTo(id);
  assert.equal(reply.identities, ['client-1']);
  assert.is(reply.content.protocol_version, '5.3');
  const mine = h.sent.filter((s) => s.parent === id).map((s) => `${s.channel}:${s.type}:${s.content.execution_state ?? ''}`);
  assert.equal(mine, ['iopub:status:busy', 'shell:kernel_info_reply:', 'iopub:status:idle']);
});

protocol('silent execution: no execute_input or result, count unchanged; user_expressions', async () => {
  const h = harness();
  await h.replyTo(h.request('shell', 'execute_request', { code: 'var n = 1' }));
  const silent = h.request('shell', 'execute_request', { code: 'n + 1', silent: true });
  const r1 = await h.replyTo(silent);
  assert.is(r1.content.execution_count, 1);
  assert.not.ok(h.sent.some((s) => s.parent === silent && (s.type === 'execute_input' || s.type === 'execute_result')));
  const withExpr = h.request('shell', 'execute_request', { code: 'n = 5', user_expressions: { twice: 'n * 2', bad: 'nope.x' } });
  const r2 = await h.replyTo(withExpr);
  assert.is(r2.content.execution_count, 2);
  assert.equal(r2.content.user_expressions.twice, { status: 'ok', data: { 'text/plain': '10' }, metadata: {} });
  assert.is(r2.content.user_expressions.bad.status, 'error');
  assert.is(r2.content.user_expressions.bad.ename, 'ReferenceError');
});

protocol('a wrongly signed message is dropped', async () => {
  const h = harness();
  h.request('shell', 'execute_request', { code: '1' }, new Signer('other-key'));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(h.sent, []);
});

protocol('stop_on_error aborts execute requests that arrived before the error reply', async () => {
  const h = harness();
  const bad = h.request('shell', 'execute_request', { code: "throw new Error('x')" });
  const queued = h.request('shell', 'execute_request', { code: '1' });
  const info = h.request('shell', 'kernel_info_request', {});
  assert.is((await h.replyTo(bad)).content.status, 'error');
  assert.is((await h.replyTo(queued)).content.status, 'aborted');
  assert.is((await h.replyTo(info)).content.status, 'ok');
  assert.is((await h.replyTo(h.request('shell', 'execute_request', { code: '2' }))).content.status, 'ok');
});

protocol('input_request goes to the requester on stdin; interrupt_request interrupts the wait', async () => {
  const h = harness();
  const id = h.request('shell', 'execute_request', { code: "await input('q? ')", allow_stdin: true });
  await h.until(() => h.sent.some((s) => s.type === 'input_request'), 'input_request');
  const req = h.sent.find((s) => s.type === 'input_request')!;
  assert.is(req.channel, 'stdin');
  assert.equal(req.identities, ['client-1']);
  assert.equal(req.content, { prompt: 'q? ', password: false });
  const interrupt = h.request('control', 'interrupt_request', {});
  assert.is((await h.replyTo(interrupt)).content.status, 'ok');
  const reply = await h.replyTo(id);
  assert.is(reply.content.ename, 'KeyboardInterrupt');
});

protocol('shutdown_request: reply on control and iopub, then onShutdown; later requests are ignored', async () => {
  const h = harness();
  const id = h.request('control', 'shutdown_request', { restart: true });
  const reply = await h.replyTo(id);
  assert.is(reply.channel, 'control');
  assert.equal(reply.content, { status: 'ok', restart: true });
  assert.ok(h.sent.some((s) => s.channel === 'iopub' && s.type === 'shutdown_reply'));
  assert.is(h.shutdown(), true);
  const count = h.sent.length;
  h.request('shell', 'kernel_info_request', {});
  await new Promise((r) => setTimeout(r, 30));
  assert.is(h.sent.length, count);
});

parsing.run();
plans.run();
complete.run();
cursor.run();
display.run();
evaluator.run();
cells.run();
misc.run();
protocol.run();
