/**
 * The REQUEST assignment in each kernel language, round-tripped through the real interpreters (python3,
 * bash, dash, perl, node:vm and the built-in JavaScript kernel's evaluator) with hostile strings;
 * the assignment and a cell as one execution, checked against two in IPython; comment tokens per
 * language; Python's json.dumps layout.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as vm from 'node:vm';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Evaluator } from '../../src/jskernel/evaluator.ts';
import { assignedSource, commentPrefixFor, notebookLanguage, requestAssignment } from '../../src/notebook-http/language.ts';
import { pythonJsonDumps, pythonJsonLayout } from '../../src/notebook-http/python-json.ts';
import type { NotebookDocument } from '../../src/kernels/notebook.ts';

/** Strings that break naive quoting in one language or another. */
const HOSTILE = [
  '',
  'plain',
  `double " quote`,
  `single ' quote`,
  `'\\''`,
  'back\\slash',
  'trailing backslash \\',
  '\\" escaped quote',
  '\\u0041 not an escape',
  'new\nline, cr\r, tab\t, nul \u0000, bell \u0007, del \u007f',
  '$HOME ${HOME} $(echo pwned) `echo pwned` $$ $1',
  '!! !-1 !$ history',
  '@ARGV @{[ die "pwned" ]} %ENV',
  '#{raise "pwned"} #@x',
  '%s %(name)s %d {0} {}',
  'unicode é ñ ü ß € ☃',
  'astral 😀 𝄞',
  'lone surrogate \ud800 end',
  'line separators \u2028 \u2029 \u0085',
  '""" \'\'\' triple',
  '*/ /* --> <!-- </script>',
];

const REQUEST_VALUES: unknown[] = [
  { body: HOSTILE.join('|'), args: { q: HOSTILE }, path: {}, headers: { 'If-None-Match': '"\\"abc\\""' } },
  ...HOSTILE.map((s) => ({ s })),
];

/** The JSON texts handed to requestAssignment: Python layout (what requests use) and pretty-printed. */
const JSON_TEXTS = [...REQUEST_VALUES.map((v) => pythonJsonDumps(v)), JSON.stringify(REQUEST_VALUES[0], null, 2)];

function runInterpreter(command: string, args: string[], script: string): string {
  const result = spawnSync(command, args, { input: script, encoding: 'utf8', timeout: 30_000 });
  if (result.status !== 0) throw new Error(`${command} failed (${result.status}): ${result.stderr}`);
  return result.stdout;
}

/** Each language's value of REQUEST must parse to the same JSON as the text assigned. */
function checkRoundTrip(language: string, printed: string[]): void {
  assert.is(printed.length, JSON_TEXTS.length, `${language}: one line per case`);
  JSON_TEXTS.forEach((json, i) => {
    assert.equal(JSON.parse(printed[i]), JSON.parse(json), `${language}: case ${i} (${json.slice(0, 60)})`);
    assert.match(printed[i], /^[\x20-\x7e]*$/, `${language}: the value is printable ASCII`);
  });
}

const lines = (output: string) => output.split('\n').slice(0, -1);

test('python3: REQUEST = "..." round-trips every hostile string', () => {
  const script = JSON_TEXTS.map((json) => `${requestAssignment('python', json)}\nprint(REQUEST)`).join('\n');
  checkRoundTrip('python', lines(runInterpreter('/usr/bin/python3', ['-'], script)));
});

test('python3: the default (unknown languages, R, Scala...) is the Python form, byte for byte the reference', () => {
  const json = pythonJsonDumps({ body: '', args: {}, path: { person: 'a"b' }, headers: {} });
  const expected = 'REQUEST = ' + JSON.stringify(json);
  for (const language of [undefined, 'python', 'Python', 'scala', 'R', 'javascript', 'anything']) {
    assert.is(requestAssignment(language, json), expected, String(language));
  }
  // json.dumps of the JSON text (what the reference writes) is the same literal.
  const reference = runInterpreter('/usr/bin/python3', ['-c', 'import json,sys; print("REQUEST = " + json.dumps(sys.stdin.read()), end="")'], json);
  assert.is(requestAssignment('python', json), reference);
});

test('bash: single-quoted, so $(...), backquotes and ! stay text, also with history expansion on', () => {
  const script = ['set -o history -H', ...JSON_TEXTS.map((json) => `${requestAssignment('bash', json)}\nprintf '%s\\n' "$REQUEST"`)].join('\n');
  checkRoundTrip('bash', lines(runInterpreter('/usr/bin/bash', ['-s'], script)));
  assert.ok(requestAssignment('Bash', '{}').startsWith(`REQUEST='{`));
});

test('sh (dash): the same single-quoted form', () => {
  if (!existsSync('/usr/bin/dash')) return;
  const script = JSON_TEXTS.map((json) => `${requestAssignment('sh', json)}\nprintf '%s\\n' "$REQUEST"`).join('\n');
  checkRoundTrip('dash', lines(runInterpreter('/usr/bin/dash', ['-s'], script)));
});

test('perl: my $REQUEST = \'...\' (no interpolation of $ and @)', () => {
  const script = JSON_TEXTS.map((json) => `{ ${requestAssignment('perl', json)}; print "$REQUEST\\n"; }`).join('\n');
  checkRoundTrip('perl', lines(runInterpreter('/usr/bin/perl', ['-w', '-'], script)));
  assert.ok(requestAssignment('Perl', '{}').startsWith('my $REQUEST = '));
});

test('javascript: the assignment works in a sloppy node:vm context and in the built-in JavaScript kernel', async () => {
  const context = vm.createContext({});
  const printed = JSON_TEXTS.map((json) => vm.runInContext(`${requestAssignment('javascript', json)}; REQUEST`, context) as string);
  checkRoundTrip('node:vm', printed);

  const evaluator = new Evaluator({ stdout: () => {}, stderr: () => {}, display: () => {}, input: async () => '' });
  const values: string[] = [];
  for (const json of JSON_TEXTS) {
    await evaluator.execute(requestAssignment('javascript', json));
    values.push((await evaluator.execute('REQUEST')) as string);
  }
  checkRoundTrip('jskernel', values);
  // A notebook that declared REQUEST itself (let) still sees each new value.
  await evaluator.execute("let REQUEST = '{}'");
  await evaluator.execute(requestAssignment('javascript', '{"a": 1}'));
  assert.is(await evaluator.execute('REQUEST'), '{"a": 1}');
});

test('ruby and julia: forms without interpolation (no interpreter here: checked literally)', () => {
  const json = '{"a": "#{x} $y \'q\' \\\\ \\""}';
  assert.is(requestAssignment('ruby', json), `REQUEST = '{"a": "#{x} $y \\'q\\' \\\\\\\\ \\\\""}'`);
  assert.is(requestAssignment('julia', json), 'REQUEST = "{\\"a\\": \\"#{x} \\$y \'q\' \\\\\\\\ \\\\\\"\\"}"');
});

test('assignedSource: Python code starting with its annotation gets the assignment on its first line', () => {
  const assignment = requestAssignment('python', '{"a": 1}');
  const source = '# GET /hello\nprint("hello")\n';
  const combined = assignedSource('python', assignment, source)!;
  assert.is(combined, `${assignment} ${source}`);
  assert.is(combined.split('\n').length, source.split('\n').length, 'no line added');
  assert.is(assignedSource('Python', assignment, '## GET /x\npass'), `${assignment} ## GET /x\npass`);
});

test('assignedSource: two executions where one could differ', () => {
  const assignment = requestAssignment('python', '{}');
  assert.is(assignedSource('javascript', assignment, '// GET /x\nconsole.log(1)'), undefined, 'other languages');
  assert.is(assignedSource(undefined, assignment, '# GET /x\nprint(1)'), undefined, 'no language');
  assert.is(assignedSource('python', assignment, '// GET /x\nprint(1)'), undefined, 'not a Python comment first');
  assert.is(assignedSource('python', assignment, '# GET /x\nfrom __future__ import annotations\nprint(1)'), undefined, '__future__');
  assert.is(assignedSource('python', assignment, '# GET /x\n\n  # only comments\n'), undefined, 'no statement');
});

/**
 * Runs each case twice in one IPython shell (the input transformers and compiler ipykernel uses): the
 * assignment and the code as two cells, then as assignedSource's one cell; prints what each produced.
 */
const IPYTHON_COMPARE = `
import contextlib, io, json, sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
out = []
for case in json.load(sys.stdin):
    runs = []
    for cells in (case["separate"], [case["combined"]]):
        shell.user_ns.pop("REQUEST", None)
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            for cell in cells:
                result = shell.run_cell(cell, store_history=False)
                if not result.success:
                    break
        error = result.error_before_exec or result.error_in_exec
        runs.append({
            "stdout": buffer.getvalue() if error is None else None,
            "result": repr(result.result),
            "error": None if error is None else [type(error).__name__, getattr(error, "lineno", None), getattr(error, "msg", str(error))],
            "REQUEST": shell.user_ns.get("REQUEST") if error is None else None,
        })
    out.append(runs)
print(json.dumps(out))
`;

test('assignedSource: the same outputs, results, errors and error lines as two executions in IPython', () => {
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import IPython'], { encoding: 'utf8' });
  if (probe.status !== 0) return; // No IPython here: the integration tests run it through ipykernel.
  const cells = [
    '# GET /x\nprint(REQUEST)',
    '# GET /x\nimport json\nprint(json.loads(REQUEST))\n',
    '# GET /x\n1 + 1',
    '# GET /x\n1 + 1;',
    '# GET /x\nx = 1\nprint(x +)\n',
    '# GET /x\n  print("indented")',
    '# GET /x\nif True:\nprint("no block")',
    '# GET /x\nraise ValueError("bad value")',
    '# GET /x\nprint("two cells")\n\n# GET /x\nprint("as one")\n',
    '# GET /x\nhere = %pwd\nprint(type(here).__name__)',
    '# GET /x\n>>> print("a pasted prompt")',
    '# GET /x?\nprint("a question mark in the annotation")',
    '# GET /x\nprint("""a string\n# that looks like a comment""")',
  ];
  const cases = JSON_TEXTS.slice(0, 3).flatMap((json) =>
    cells.map((source) => {
      const assignment = requestAssignment('python', json);
      const combined = assignedSource('python', assignment, source);
      assert.ok(combined, source);
      return { separate: [assignment, source], combined };
    }),
  );
  const runs = JSON.parse(runInterpreter('/usr/bin/python3', ['-c', IPYTHON_COMPARE], JSON.stringify(cases))) as Array<[unknown, unknown]>;
  runs.forEach(([separate, combined], i) => assert.equal(combined, separate, `case ${i}: ${JSON.stringify(cases[i].combined.slice(-80))}`));
  // The cases are not all alike: errors with their lines, and results, were compared.
  const errors = runs.map(([separate]) => (separate as { error: unknown[] | null }).error).filter(Boolean);
  assert.ok(errors.some((error) => error![0] === 'SyntaxError' && error![1] === 3), JSON.stringify(errors));
  assert.ok(errors.some((error) => error![0] === 'IndentationError' && error![1] === 2), JSON.stringify(errors));
});

test('comment tokens: # by default, // for JavaScript, Scala and the like, configurable per language', () => {
  assert.is(commentPrefixFor(undefined), '#');
  assert.is(commentPrefixFor('python'), '#');
  assert.is(commentPrefixFor('bash'), '#');
  assert.is(commentPrefixFor('scala'), '//');
  assert.is(commentPrefixFor('javascript'), '//');
  assert.is(commentPrefixFor('JavaScript'), '//', 'case-insensitive after the exact name');
  assert.is(commentPrefixFor('typescript'), '//');
  assert.is(commentPrefixFor('sql'), '--');
  assert.is(commentPrefixFor('python', { python: '##' }), '##');
  assert.is(commentPrefixFor('Python', { Python: '%%' }), '%%', 'the configured table wins, exact name first');
  assert.is(commentPrefixFor('scala', { python: '##' }), '//', 'configuring one language keeps the defaults of the others');
});

test('the notebook language: language_info.name, else kernelspec.language', () => {
  const notebook = (languageInfoName?: string, kernelspecLanguage?: string) =>
    ({ uri: 'x', text: '', kernelName: undefined, languageInfoName, kernelspecLanguage, cells: [] }) as NotebookDocument;
  assert.is(notebookLanguage(notebook('python', 'javascript')), 'python');
  assert.is(notebookLanguage(notebook(undefined, 'javascript')), 'javascript');
  assert.is(notebookLanguage(notebook()), undefined);
});

test('json.dumps layout: separators, ASCII escapes (lowercase hex, surrogate pairs), numbers kept as written', () => {
  const value = { a: [1, 2.5, true, null], 'b c': { d: 'é😀\u007f"\\\n' }, e: {} , f: [] };
  const expected = runInterpreter('/usr/bin/python3', ['-c', 'import json,sys; print(json.dumps(json.loads(sys.stdin.read())), end="")'], JSON.stringify(value));
  assert.is(pythonJsonDumps(value), expected);
  assert.is(pythonJsonLayout('{ "n" : 12345678901234567890123 ,\n "x":1.0e5, "s":"a\\/b : , c" }'), '{"n": 12345678901234567890123, "x": 1.0e5, "s": "a\\/b : , c"}');
  assert.is(pythonJsonDumps({ data: { 'text/plain': '2' } }), '{"data": {"text/plain": "2"}}');
});

test.run();
