/**
 * SIGHUP reloads the notebook of a notebook-http gateway: the new notebook's endpoints answer (its
 * setup cells ran in new kernels), removed ones 404, the old kernels finish what they accepted and
 * stop; a broken notebook (not JSON, no endpoints, a failing setup cell) leaves the old one serving
 * and the error is logged.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { guardSuite, processGone, shutdownTest, waitUntil, type Gateway } from '../helpers/gateway.ts';
import { getText, http, notebookDir, notebookText, startNotebookGateway } from '../helpers/notebook-http.ts';

const test = suite('notebook-http: SIGHUP reloads the notebook');
let dir: string;
let gates: string;
let notebook: string;
let gw: Gateway;

/** The notebook at version `version`: /version everywhere, plus /v<version>, plus a blocking endpoint. */
function write(version: number, extra: string[] = []): void {
  writeFileSync(
    notebook,
    notebookText(
      [
        `import json, os, time, pathlib\nversion = ${version}\nGATES = pathlib.Path(${JSON.stringify(gates)})`,
        '# GET /version\nprint(version, os.getpid())',
        `# GET /v${version}\nprint("only in version ${version}")`,
        '# GET /block/:name\nname = json.loads(REQUEST)["path"]["name"]\n(GATES / (name + ".started")).touch()\nwhile not (GATES / (name + ".release")).exists():\n    time.sleep(0.02)\nprint(name, version, os.getpid())',
        ...extra,
      ],
      'python',
      'testpy',
    ),
  );
}

guardSuite(
  test,
  async () => {
    dir = notebookDir('reload');
    gates = join(dir, 'gates');
    mkdirSync(gates);
    notebook = join(dir, 'service.ipynb');
    write(1);
    gw = await startNotebookGateway(notebook, ['--prespawn-count', '2']);
  },
  async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  },
);

/** The version and pid /version reports. */
async function version(): Promise<[number, number]> {
  const [v, pid] = (await getText(gw, '/version')).trim().split(' ').map(Number);
  return [v, pid];
}

/** Ask the gateway to reload its notebook. */
function hangUp(): void {
  process.kill(gw.proc.pid!, 'SIGHUP');
}

const count = (text: string, needle: string) => text.split(needle).length - 1;
/** How the gateway logs a reload that failed. */
const FAILED = 'failed; the previous version keeps serving';

test('version 1 serves /v1', async () => {
  assert.is(await getText(gw, '/v1'), 'only in version 1\n');
  assert.is((await version())[0], 1);
  assert.is(gw.kernelPids().length, 2);
});

test('SIGHUP with a new notebook: its endpoints answer, removed ones 404, new kernels seeded, the old ones stopped', async () => {
  const oldPids = gw.kernelPids();
  write(2);
  hangUp();
  await waitUntil(async () => (await http(gw, 'GET', '/v2')).status === 200, 60_000, '/v2 to answer after SIGHUP');
  assert.is(await getText(gw, '/v2'), 'only in version 2\n');
  assert.is((await http(gw, 'GET', '/v1')).status, 404);
  for (let i = 0; i < 4; i++) {
    const [v, pid] = await version();
    assert.is(v, 2);
    assert.not.ok(oldPids.includes(pid), `version 2 answered by an old kernel ${pid}`);
  }
  await waitUntil(() => oldPids.every(processGone), 15_000, `the old kernels ${oldPids} to stop`);
  assert.is(gw.kernelPids().length, 2);
  const spec = JSON.parse(await getText(gw, '/_api/spec/swagger.json')) as { paths: Record<string, unknown> };
  assert.ok('/v2' in spec.paths && !('/v1' in spec.paths), JSON.stringify(spec.paths));
});

for (const [what, breakIt, expected] of [
  ['a file that is not JSON', () => writeFileSync(notebook, '{"cells": [ not json'), /JSON|parse/i],
  ['a notebook without endpoints', () => writeFileSync(notebook, notebookText(['x = 1', '# not an endpoint'], 'python', 'testpy')), /No endpoints/],
  ['a notebook whose setup cell fails', () => write(3, ['1 / 0']), /cell 5 failed: ZeroDivisionError/],
] as const) {
  test(`SIGHUP with ${what}: the old notebook keeps serving, the error is logged, no kernel is left over`, async () => {
    const pids = gw.kernelPids();
    const failures = count(gw.stderr(), FAILED);
    breakIt();
    hangUp();
    await waitUntil(() => count(gw.stderr(), FAILED) > failures, 60_000, 'the failed reload to be logged');
    const line = gw.stderr().split('\n').filter((l) => l.includes(FAILED)).at(-1)!;
    assert.match(line, expected);
    assert.is(await getText(gw, '/v2'), 'only in version 2\n');
    assert.is((await version())[0], 2);
    await waitUntil(() => gw.kernelPids().length === 2, 15_000, `only the serving kernels left (now ${gw.kernelPids()})`);
    assert.equal(gw.kernelPids().sort(), pids.sort());
  });
}

test('a reload while a request runs: the request finishes on its old kernel, then the old kernels stop', async () => {
  const oldPids = gw.kernelPids();
  const running = http(gw, 'GET', '/block/inflight');
  await waitUntil(() => existsSync(join(gates, 'inflight.started')), 30_000, 'the blocking cell to start');
  write(4);
  hangUp();
  await waitUntil(async () => (await http(gw, 'GET', '/v4')).status === 200, 60_000, '/v4 to answer');
  assert.is((await version())[0], 4);
  writeFileSync(join(gates, 'inflight.release'), '');
  const res = await running;
  assert.is(res.status, 200, res.text);
  const [name, v, pid] = res.text.trim().split(' ');
  assert.equal([name, v], ['inflight', '2']);
  assert.ok(oldPids.includes(Number(pid)));
  await waitUntil(() => oldPids.every(processGone), 15_000, `the old kernels ${oldPids} to stop`);
});

shutdownTest(test, () => gw);

test.run();
