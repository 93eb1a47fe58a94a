/**
 * bin/load-bundle.js: `node bin/kernelgateway.js` runs dist/kernelgateway.cjs with the V8 code cache the
 * build made, and runs it the same without one, with one made from another bundle, or with one V8 refuses.
 * Needs `npm run build` (npm test runs it first).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './helpers/processes.ts';

interface Loader {
  BUNDLE: string;
  CODE_CACHE: string;
  compileBundle(): { cache: 'used' | 'rejected' | 'none'; run(): void };
}

const copies: string[] = [];

/** bin/ and dist/ copied into a temp folder, and that copy's loader (a fresh module instance). */
function copyOfPackage(): { dir: string; loader: Loader } {
  const dir = mkdtempSync(join(tmpdir(), 'kg-bundle-loader-'));
  copies.push(dir);
  cpSync(join(REPO_ROOT, 'bin'), join(dir, 'bin'), { recursive: true });
  cpSync(join(REPO_ROOT, 'dist'), join(dir, 'dist'), { recursive: true });
  return { dir, loader: createRequire(join(dir, 'bin', 'x.js'))('./load-bundle.js') as Loader };
}

/** `node bin/kernelgateway.js --version` in `dir`. */
function version(dir: string): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [join(dir, 'bin', 'kernelgateway.js'), '--version'], { encoding: 'utf8' });
}

/** The copy in `dir` runs: `--version` exits 0 and prints the version. */
function assertRuns(dir: string): void {
  const res = version(dir);
  assert.is(res.status, 0, res.stderr);
  assert.match(res.stdout, /^kernelgateway\//);
}

test.after(() => {
  for (const dir of copies) rmSync(dir, { recursive: true, force: true });
});

test('the built bundle is compiled from its code cache', () => {
  const loader = createRequire(join(REPO_ROOT, 'bin', 'x.js'))('./load-bundle.js') as Loader;
  assert.is(loader.compileBundle().cache, 'used');
});

test('a bundle changed after the build is compiled without the cache, and runs', () => {
  const { dir, loader } = copyOfPackage();
  appendFileSync(loader.BUNDLE, '\n// changed\n');
  assert.is(loader.compileBundle().cache, 'none');
  assertRuns(dir);
});

test('a cache V8 refuses (made for the same bundle, but not code) is reported rejected, and the bundle runs', () => {
  const { dir, loader } = copyOfPackage();
  const cache = readFileSync(loader.CODE_CACHE);
  writeFileSync(loader.CODE_CACHE, Buffer.concat([cache.subarray(0, 32), Buffer.alloc(4096, 7)]));
  assert.is(loader.compileBundle().cache, 'rejected');
  assertRuns(dir);
});

test('no cache: compiled without one; no bundle: a clear message and exit code 1', () => {
  const { dir, loader } = copyOfPackage();
  rmSync(loader.CODE_CACHE);
  assert.is(loader.compileBundle().cache, 'none');
  assert.is(version(dir).status, 0);
  rmSync(loader.BUNDLE);
  const res = version(dir);
  assert.is(res.status, 1);
  assert.is(res.stderr, 'kernelgateway: dist/kernelgateway.cjs is missing; run npm run build\n');
});

test.run();
