/**
 * Kernels' working directories: `path` below --root-dir (walking up to an existing folder),
 * KERNEL_WORKING_DIR (used when it exists and is allowed, else the root, never a refusal), and a
 * refusal only for a `path` that escapes a root the operator set; the default root is the gateway's
 * current directory.
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { api, errorBody, guardSuite, kernelPid, shutdownTest, sleep, startGateway, type Gateway } from '../helpers/gateway.ts';
import { runInKernel } from '../helpers/kernel-ws.ts';

const test = suite('kernel working directory (--root-dir, path, KERNEL_WORKING_DIR)');
let root: string;
let outside: string;
let gw: Gateway;
let plain: Gateway;

guardSuite(
  test,
  async () => {
    root = realpathSync(mkdtempSync(join(tmpdir(), 'kg-it-root-')));
    outside = realpathSync(mkdtempSync(join(tmpdir(), 'kg-it-outside-')));
    mkdirSync(join(root, 'sub', 'dir'), { recursive: true });
    symlinkSync(outside, join(root, 'link-out'));
    [gw, plain] = await Promise.all([startGateway({ args: ['--root-dir', root] }), startGateway()]);
  },
  async () => {
    for (const d of [root, outside]) if (d) rmSync(d, { recursive: true, force: true });
  },
);

async function cwdOf(g: Gateway, body: unknown): Promise<string> {
  const res = await api(g, 'POST', 'api/kernels', { json: body, timeoutMs: 60000 });
  assert.is(res.status, 201, `POST ${JSON.stringify(body)} → ${res.status} ${res.text}`);
  return (await runInKernel(g, res.body.id, 'import os; print(os.getcwd())')).trim();
}

test('kernels start in the right folder: path sub/dir, path sub/missing/x.ipynb (walks up), KERNEL_WORKING_DIR, a missing KERNEL_WORKING_DIR, no path', async () => {
  // Started together to save time; each is checked separately.
  const [subDir, walked, viaEnv, missingEnv, none] = await Promise.all([
    cwdOf(gw, { name: 'python3', path: 'sub/dir' }),
    cwdOf(gw, { name: 'python3', path: 'sub/missing/x.ipynb' }),
    cwdOf(gw, { name: 'python3', env: { KERNEL_WORKING_DIR: join(root, 'sub') } }),
    cwdOf(gw, { name: 'python3', env: { KERNEL_WORKING_DIR: join(root, 'sub', 'nope') } }),
    cwdOf(gw, { name: 'python3' }),
  ]);
  assert.is(subDir, join(root, 'sub', 'dir'), 'path sub/dir');
  assert.is(walked, join(root, 'sub'), 'path sub/missing/x.ipynb');
  assert.is(viaEnv, join(root, 'sub'), 'KERNEL_WORKING_DIR <root>/sub');
  assert.is(missingEnv, root, 'KERNEL_WORKING_DIR that does not exist (inside root)');
  assert.is(none, root, 'no path');
});

test('with --root-dir, a path that escapes it → 400 JSON and no kernel: ../escape, sub/../../escape, a symlink inside root pointing outside', async () => {
  const before = gw.kernelPids().length;
  const cases: Array<[string, unknown]> = [
    ['path ../escape', { name: 'python3', path: '../escape' }],
    ['path sub/../../escape', { name: 'python3', path: 'sub/../../escape' }],
    ['path through link-out', { name: 'python3', path: 'link-out/x.ipynb' }],
  ];
  for (const [what, body] of cases) {
    const res = await api(gw, 'POST', 'api/kernels', { json: body });
    assert.is(res.status, 400, `${what}: ${res.status} ${res.text}`);
    assert.match(errorBody(res, what).message, /--root-dir/);
  }
  await sleep(300);
  assert.is(gw.kernelPids().length, before, 'a kernel process was spawned for a refused request');
});

test('with --root-dir, a KERNEL_WORKING_DIR outside it never fails the start: the kernel starts in the root, and the log says why', async () => {
  const cases: Array<[string, string]> = [
    ['KERNEL_WORKING_DIR /tmp', realpathSync(tmpdir())],
    ['KERNEL_WORKING_DIR outside (real dir)', outside],
    ['KERNEL_WORKING_DIR = symlink inside root to outside', join(root, 'link-out')],
  ];
  for (const [what, dir] of cases) {
    assert.is(await cwdOf(gw, { name: 'python3', env: { KERNEL_WORKING_DIR: dir } }), root, what);
    assert.ok(gw.stderr().includes(`KERNEL_WORKING_DIR "${dir}" lies outside --root-dir`), `${what}: no INFO line saying why`);
  }
});

test("without --root-dir the root is the gateway's current directory, and Jupyter Server's folder is used wherever it is", async () => {
  // The harness starts the gateway in the parent of its runtime dir.
  const gatewayCwd = realpathSync(dirname(plain.runtimeDir));
  assert.is(await cwdOf(plain, { name: 'python3' }), gatewayCwd);
  // And the process really runs there (not only what Python reports).
  const [k] = (await api(plain, 'GET', 'api/kernels')).body as Array<{ id: string }>;
  const pid = await kernelPid(plain, k.id);
  assert.is(realpathSync(`/proc/${pid}/cwd`), gatewayCwd);
  // Gateway mode from another folder: the notebook server's folder exists here, outside our root.
  assert.is(await cwdOf(plain, { name: 'python3', env: { KERNEL_WORKING_DIR: outside } }), outside);
  // A path that leaves the default root starts the kernel in the root, with a log line.
  assert.is(await cwdOf(plain, { name: 'python3', path: '../x' }), gatewayCwd);
  assert.ok(plain.stderr().includes('path "../x" lies outside the root directory'), 'no INFO line for the path');
});

shutdownTest(test, () => gw, 'root-dir');
shutdownTest(test, () => plain, 'default root');
test.run();
