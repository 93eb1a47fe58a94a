/**
 * The notebook-http kernel pool with real ipykernel kernels: N kernels serve N requests at once,
 * strict rotation with state per kernel, the bounded queue (503 with Retry-After), a pool kernel
 * killed while idle or while serving is replaced and seeded again, and --request-timeout (504, the
 * kernel interrupted and serving again, or replaced when it ignores the interrupt).
 *
 * Nothing is timed: requests that must run at the same time wait on gate files the test creates,
 * and the cells report which kernel (pid) ran them.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { errorBody, guardSuite, processGone, shutdownTest, waitUntil, type ApiResponse, type Gateway } from '../helpers/gateway.ts';
import { getText, http, notebookDir, startNotebookGateway, writeNotebook, type HttpResult } from '../helpers/notebook-http.ts';

const test = suite('notebook-http: the kernel pool (concurrency, rotation, queue, dead kernels, timeouts)');
let dir: string;
let gates: string;
let pool: Gateway;
let timed: Gateway;

function cells(gateDir: string): string[] {
  return [
    `import json, os, time, pathlib\nGATES = pathlib.Path(${JSON.stringify(gateDir)})\nseeded_in = os.getpid()\nmessage = "original"`,
    '# GET /pid\nprint(os.getpid())',
    '# GET /seeded\nprint(seeded_in == os.getpid(), os.getpid())',
    '# GET /message\nprint(message, os.getpid())',
    '# PUT /message\nmessage = json.loads(REQUEST)["body"]\nprint("stored", os.getpid())',
    // Runs until the test creates <name>.release; <name>.started (holding the pid) says it is running.
    [
      '# GET /block/:name',
      'name = json.loads(REQUEST)["path"]["name"]',
      '(GATES / (name + ".started")).write_text(str(os.getpid()))',
      'while not (GATES / (name + ".release")).exists():',
      '    time.sleep(0.02)',
      'print(name, os.getpid())',
    ].join('\n'),
    '# GET /spin\n(GATES / "spin.started").write_text(str(os.getpid()))\ntime.sleep(600)',
    [
      '# GET /stubborn',
      '(GATES / "stubborn.started").write_text(str(os.getpid()))',
      'while True:',
      '    try:',
      '        time.sleep(600)',
      '    except KeyboardInterrupt:',
      '        pass',
    ].join('\n'),
  ];
}

guardSuite(
  test,
  async () => {
    dir = notebookDir('pool');
    gates = join(dir, 'gates');
    mkdirSync(gates);
    const notebook = writeNotebook(dir, 'pool.ipynb', cells(gates));
    [pool, timed] = await Promise.all([
      startNotebookGateway(notebook, ['--prespawn-count', '3', '--max-queued-requests', '2']),
      startNotebookGateway(notebook, ['--prespawn-count', '1', '--request-timeout', '2']),
    ]);
  },
  async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  },
);

const started = (name: string) => join(gates, `${name}.started`);
const release = (name: string) => writeFileSync(join(gates, `${name}.release`), '');

/** The pid in `<name>.started`, once the cell has written it. */
function waitStarted(name: string, what = `the cell of ${name} to start`): Promise<number> {
  return waitUntil(() => (existsSync(started(name)) ? Number(readFileSync(started(name), 'utf8')) : 0), 30_000, what);
}

function pidOf(res: HttpResult): number {
  assert.is(res.status, 200, res.text);
  return Number(res.text.trim().split(' ').at(-1));
}

function asApiResponse(res: HttpResult): ApiResponse {
  let body: unknown;
  try {
    body = JSON.parse(res.text);
  } catch {
    body = undefined;
  }
  return { status: res.status, headers: new Headers(res.headers as Record<string, string>), text: res.text, body };
}

/** Serve sequential requests until `count` different kernels answered; their pids, in order of first answer. */
async function servingPids(gw: Gateway, count: number): Promise<number[]> {
  const pids: number[] = [];
  await waitUntil(
    async () => {
      const res = await http(gw, 'GET', '/seeded');
      if (res.status !== 200) return false;
      const [seeded, pid] = res.text.trim().split(' ');
      assert.is(seeded, 'True', `kernel ${pid} lacks the setup cells' state`);
      if (!pids.includes(Number(pid))) pids.push(Number(pid));
      return pids.length >= count;
    },
    60_000,
    `${count} different kernels to answer`,
  );
  return pids;
}

// ---------------------------------------------------------------------------------------------
// The pool of three

test('three pool kernels run three blocking requests at the same time, each in its own process', async () => {
  const names = ['c1', 'c2', 'c3'];
  const requests = names.map((name) => http(pool, 'GET', `/block/${name}`));
  // All three cells are running at once: they could not all start otherwise.
  const pids = await Promise.all(names.map((name) => waitStarted(name)));
  names.forEach(release);
  const answers = await Promise.all(requests);
  assert.equal(answers.map(pidOf), pids);
  assert.is(new Set(pids).size, 3, `pids ${pids}`);
  const kernels = pool.kernelPids();
  for (const pid of pids) assert.ok(kernels.includes(pid), `${pid} is not one of the gateway's kernel processes ${kernels}`);
});

test('strict rotation: sequential requests visit the kernels in turn', async () => {
  const first: number[] = [];
  for (let i = 0; i < 6; i++) first.push(pidOf(await http(pool, 'GET', '/pid')));
  assert.is(new Set(first.slice(0, 3)).size, 3, `first three ${first}`);
  assert.equal(first.slice(3), first.slice(0, 3));
});

test('state is per kernel: after PUT on one kernel, the next two GETs see the old value, the third the new', async () => {
  const put = await http(pool, 'PUT', '/message', { body: 'changed' });
  assert.is(put.status, 200, put.text);
  const putPid = pidOf(put);
  const answers: Array<[string, number]> = [];
  for (let i = 0; i < 3; i++) {
    const [value, pid] = (await getText(pool, '/message')).trim().split(' ');
    answers.push([value, Number(pid)]);
  }
  assert.equal(answers.map(([value]) => value), ['original', 'original', 'changed']);
  assert.is(answers[2][1], putPid);
  assert.not.ok(answers.slice(0, 2).some(([, pid]) => pid === putPid));
});

test('a full queue: with 3 kernels busy and 2 requests queued, the next gets 503 with Retry-After; the queued ones are served', async () => {
  const names = ['q1', 'q2', 'q3'];
  const blockers = names.map((name) => http(pool, 'GET', `/block/${name}`));
  await Promise.all(names.map((name) => waitStarted(name)));
  // Three more requests while every kernel is busy: two fit in the queue, one does not. Which one
  // is refused depends on arrival order, but nothing else can answer before the kernels are freed.
  const waiting = [0, 1, 2].map((i) => http(pool, 'GET', `/message?i=${i}`));
  const first = await Promise.race(waiting);
  assert.is(first.status, 503, first.text);
  assert.match(String(first.headers['retry-after']), /^[1-9]\d*$/);
  assert.is(errorBody(asApiResponse(first), '503').reason, 'Service Unavailable');
  names.forEach(release);
  const all = await Promise.all(waiting);
  assert.equal(all.map((res) => res.status).sort(), [200, 200, 503]);
  for (const res of await Promise.all(blockers)) assert.is(res.status, 200, res.text);
});

test('an idle pool kernel killed with SIGKILL is replaced by a new kernel, seeded (the setup cells ran in it)', async () => {
  const before = await servingPids(pool, 3);
  const victim = before[0];
  process.kill(victim, 'SIGKILL');
  await waitUntil(() => processGone(victim), 10_000, `kernel ${victim} to exit`);
  // Requests keep being answered meanwhile; eventually by three kernels again, the new one seeded.
  const after = await servingPids(pool, 3);
  assert.not.ok(after.includes(victim), `the killed kernel ${victim} still answers`);
  const fresh = after.filter((pid) => !before.includes(pid));
  assert.is(fresh.length, 1, `before ${before}, after ${after}`);
  await waitUntil(() => pool.kernelPids().length === 3, 15_000, `three kernel processes (now ${pool.kernelPids()})`);
  assert.equal(pool.kernelPids().sort(), [...after].sort());
});

test('a pool kernel killed while serving: that request → 500, the kernel is replaced and seeded', async () => {
  const request = http(pool, 'GET', '/block/victim');
  const victim = await waitStarted('victim');
  process.kill(victim, 'SIGKILL');
  const res = await request;
  assert.is(res.status, 500, res.text);
  assert.match(errorBody(asApiResponse(res), 'died').message, /died/);
  const after = await servingPids(pool, 3);
  assert.not.ok(after.includes(victim));
  await waitUntil(() => pool.kernelPids().length === 3, 15_000, `three kernel processes (now ${pool.kernelPids()})`);
});

// ---------------------------------------------------------------------------------------------
// --request-timeout 2, one kernel

/**
 * GET /seeded on the gateway with --request-timeout 2, until it is answered: a request can meet the
 * kernel still recovering, or a replacement still starting, and time out in the queue (504).
 */
async function seededOnTimed(what = 'GET /seeded to be answered'): Promise<string> {
  const answer = await waitUntil<string | undefined>(async () => {
    const res = await http(timed, 'GET', '/seeded');
    if (res.status !== 200 && res.status !== 504) throw new Error(`GET /seeded → ${res.status} ${res.text}`);
    return res.status === 200 ? res.text.trim() : undefined;
  }, 60_000, what);
  return answer!;
}

test('timeout: a cell still running after --request-timeout → 504; the kernel is interrupted and serves again, state intact', async () => {
  const [, pid] = (await seededOnTimed()).split(' ');
  const res = await http(timed, 'GET', '/spin');
  assert.is(res.status, 504, res.text);
  assert.match(errorBody(asApiResponse(res), '504').message, /--request-timeout/);
  assert.is(Number(readFileSync(started('spin'), 'utf8')), Number(pid));
  // The same process, with its setup state, answers again.
  const again = await seededOnTimed('the interrupted kernel to answer');
  assert.is(again, `True ${pid}`);
  assert.equal(timed.kernelPids(), [Number(pid)]);
});

test('timeout: a cell that swallows the interrupt → 504; its kernel is replaced by a new, seeded one', async () => {
  const [, before] = (await seededOnTimed()).split(' ');
  const res = await http(timed, 'GET', '/stubborn');
  assert.is(res.status, 504, res.text);
  assert.is(Number(readFileSync(started('stubborn'), 'utf8')), Number(before));
  const [seeded, after] = (await seededOnTimed('a replacement kernel to answer')).split(' ');
  assert.is(seeded, 'True');
  assert.is.not(after, before);
  await waitUntil(() => processGone(Number(before)), 30_000, `the stubborn kernel ${before} to be stopped`);
  assert.equal(timed.kernelPids(), [Number(after)]);
});

shutdownTest(test, () => pool, 'pool of 3');
shutdownTest(test, () => timed, '--request-timeout 2');

test.run();
