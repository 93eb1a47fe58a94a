/**
 * Seed notebooks (--seed-uri): a local file or an http URL whose code cells run in every new kernel
 * of its language before the kernel is handed out; a failing cell fails the start and leaves nothing
 * behind; a seed that cannot be used stops the gateway at start-up.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  api,
  errorBody,
  findProcesses,
  guardSuite,
  runGatewayToExit,
  seedNotebook,
  shutdownTest,
  sleep,
  startGateway,
  waitUntil,
  type Gateway,
} from '../helpers/gateway.ts';
import { execute, KernelClient } from '../helpers/kernel-ws.ts';

const test = suite('seed notebooks (--seed-uri)');
let dir: string;
let server: Server;
let served = 0;
let local: Gateway;
let remote: Gateway;
let failing: Gateway;

const GOOD = seedNotebook([
  { type: 'code', source: 'seeded = 41' },
  { type: 'markdown', source: '# A heading, not code: 1/0' },
  { type: 'code', source: 'seeded += 1' },
]);
const BAD = seedNotebook([
  { type: 'code', source: 'seeded = 41' },
  { type: 'code', source: '1/0' },
  { type: 'code', source: 'never = True' },
]);

guardSuite(
  test,
  async () => {
    dir = mkdtempSync(join(tmpdir(), 'kg-it-seed-'));
    writeFileSync(join(dir, 'good.ipynb'), GOOD);
    writeFileSync(join(dir, 'bad.ipynb'), BAD);
    server = createServer((req, res) => {
      served++;
      if (req.url === '/nb.ipynb') {
        res.writeHead(200, { 'Content-Type': 'application/x-ipynb+json' });
        res.end(GOOD);
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    [local, remote, failing] = await Promise.all([
      startGateway({ args: ['--seed-uri', join(dir, 'good.ipynb')] }),
      startGateway({ args: ['--seed-uri', `http://127.0.0.1:${port}/nb.ipynb`] }),
      startGateway({ args: ['--seed-uri', join(dir, 'bad.ipynb')] }),
    ]);
  },
  async () => {
    server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  },
);

/** Starts a kernel and checks, with the very first request on it, that the seed ran (and only once). */
async function checkSeeded(gw: Gateway): Promise<void> {
  const res = await api(gw, 'POST', 'api/kernels', { json: { name: 'python3' }, timeoutMs: 60000 });
  assert.is(res.status, 201, res.text);
  const c = await KernelClient.connect(gw, res.body.id);
  try {
    const r = await execute(c, "print(seeded, 'never' in dir())");
    assert.is(r.reply.content.status, 'ok', JSON.stringify(r.reply.content));
    assert.is(r.stdout, '42 False\n');
  } finally {
    await c.closeAndWait();
  }
}

test('local .ipynb: a new kernel has seeded == 42 before anything else runs', async () => {
  await checkSeeded(local);
});

test('local .ipynb: a kernelspec of the same language (testpy) is seeded too', async () => {
  const res = await api(local, 'POST', 'api/kernels', { json: { name: 'testpy' }, timeoutMs: 60000 });
  assert.is(res.status, 201, res.text);
  const c = await KernelClient.connect(local, res.body.id);
  try {
    assert.is((await execute(c, 'print(seeded)')).stdout, '42\n');
  } finally {
    await c.closeAndWait();
  }
});

test('http://127.0.0.1:<port>/nb.ipynb served by a node:http server works too', async () => {
  assert.ok(served >= 1, 'the gateway never fetched the notebook');
  await checkSeeded(remote);
});

test('a failing cell (cell 2: 1/0) → POST 500 naming cell 2 and ZeroDivisionError; no kernel left', async () => {
  const seen = new Set<number>();
  const watcher = setInterval(() => failing.kernelPids().forEach((p) => seen.add(p)), 20);
  let res;
  try {
    res = await api(failing, 'POST', 'api/kernels', { json: { name: 'python3' }, timeoutMs: 60000 });
  } finally {
    clearInterval(watcher);
  }
  assert.is(res.status, 500, res.text);
  const body = errorBody(res, 'failing seed');
  assert.match(body.message, /cell 2\b/, `message does not name cell 2: ${body.message}`);
  assert.match(body.message, /ZeroDivisionError/, body.message);
  assert.ok(seen.size > 0, 'no kernel process was ever seen, so "none left" proves nothing');
  const listed = await api(failing, 'GET', 'api/kernels');
  assert.equal(listed.body, []);
  await waitUntil(() => failing.kernelPids().length === 0, 10000, 'the seeded kernel process to exit');
  assert.equal(failing.connectionFiles(), []);
});

test('a failing seed does not break the gateway: the next start fails the same way', async () => {
  const res = await api(failing, 'POST', 'api/kernels', { json: {}, timeoutMs: 60000 });
  assert.is(res.status, 500, res.text);
  assert.match(errorBody(res, 'second start').message, /ZeroDivisionError/);
  await waitUntil(() => failing.kernelPids().length === 0 && failing.connectionFiles().length === 0, 10000, 'no kernel left');
});

test('start-up: a missing file, invalid JSON, or a language no kernelspec speaks → exit non-zero naming the problem', async () => {
  writeFileSync(join(dir, 'invalid.ipynb'), '{"nbformat": 4, "cells": [');
  writeFileSync(join(dir, 'klingon.ipynb'), seedNotebook([{ type: 'code', source: 'Qapla' }], 'klingon'));
  const missing = join(dir, 'does-not-exist.ipynb');
  const before = new Set(findProcesses('kg-it-exit-'));
  const [rMissing, rInvalid, rKlingon] = await Promise.all([
    runGatewayToExit({ args: ['--seed-uri', missing] }),
    runGatewayToExit({ args: ['--seed-uri', join(dir, 'invalid.ipynb')] }),
    runGatewayToExit({ args: ['--seed-uri', join(dir, 'klingon.ipynb')] }),
  ]);
  const cases: Array<[string, typeof rMissing, RegExp[]]> = [
    ['missing file', rMissing, [/does-not-exist\.ipynb/, /ENOENT|does not exist|no such file/i]],
    ['invalid JSON', rInvalid, [/invalid\.ipynb/, /JSON/]],
    ['klingon', rKlingon, [/klingon/i, /kernelspec/i]],
  ];
  for (const [what, r, patterns] of cases) {
    assert.not.ok(r.timedOut, `${what}: the gateway kept running:\n${r.stderr}`);
    assert.ok(r.code !== 0 && r.code !== null, `${what}: exit code ${r.code} (signal ${r.signal})\n${r.stderr}`);
    assert.not.match(r.stderr, /is available at/, `${what}: it started listening first`);
    for (const p of patterns) assert.match(r.stderr, p, `${what}: stderr does not match ${p}:\n${r.stderr}`);
  }
  await sleep(100);
  const leftover = findProcesses('kg-it-exit-').filter((p) => !before.has(p));
  assert.equal(leftover, [], 'processes left behind by the failed start-ups');
});

shutdownTest(test, () => local, 'local seed');
shutdownTest(test, () => remote, 'http seed');
shutdownTest(test, () => failing, 'failing seed');
test.run();
