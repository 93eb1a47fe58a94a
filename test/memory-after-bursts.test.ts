/**
 * Memory release after bursts: when it steps (quiet ticks after enough traffic or after kernels ended, never during traffic),
 * in what order, and when it stops; and the real malloc_trim addon `npm run build` makes, in a child
 * Node whose glibc heap holds ~125 MB of free memory pinned by a few live Buffers.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { loadMallocTrim, MemoryRelease, onGlibc, type MemoryReleaseOptions } from '../src/memory-release.ts';
import { REPO_ROOT } from './helpers/processes.ts';

const MiB = 2 ** 20;

/** A MemoryRelease over counters the test moves: traffic, young generation, RSS; steps are recorded. */
function harness(options: Partial<MemoryReleaseOptions> & { young?: number[]; trim?: boolean } = {}) {
  const state = { received: 0, rss: 100 * MiB, youngIndex: 0, clock: 0 };
  const steps: string[] = [];
  const settled: { gaveBack: number; ticks: number; rssAfter: number; lastStepMs: number }[] = [];
  const young = options.young ?? [32 * MiB];
  const release = new MemoryRelease({
    activity: () => state.received,
    youngCommitted: () => young[Math.min(state.youngIndex, young.length - 1)]!,
    rss: () => state.rss,
    collectMajor: () => {
      steps.push('major');
      state.rss -= 4 * MiB;
    },
    collectYoung: () => {
      steps.push('young');
      state.youngIndex++;
      state.rss -= 2 * MiB;
    },
    collectFull: () => {
      steps.push('full');
      state.rss -= 3 * MiB;
    },
    trimHeap:
      options.trim === false
        ? undefined
        : () => {
            steps.push('trim');
            state.rss -= 1 * MiB;
            return true;
          },
    onSettled: (release) => settled.push(release),
    // The clock moves 0.75 ms per reading.
    clock: () => (state.clock += 0.75),
    settleTicks: 5,
    ...options,
  });
  return { state, steps, settled, release };
}

test('nothing is released while traffic flows, nor after traffic below a burst', () => {
  const { state, steps, release } = harness();
  for (let i = 0; i < 10; i++) {
    state.received += 3 * MiB;
    assert.not.ok(release.tick(), `tick ${i} during traffic`);
  }
  assert.equal(steps, []);
  const quiet = harness();
  quiet.state.received += 3 * MiB;
  quiet.release.tick();
  for (let i = 0; i < 5; i++) assert.not.ok(quiet.release.tick(), '3 MiB is not a burst');
  assert.equal(quiet.steps, []);
});

test('after a burst: a major collection, then young-generation ones, each followed by a trim, until V8 has shrunk the young generation; a full collection last', () => {
  // The young generation as V8 reports it after each step: it shrinks at the third young collection.
  const { state, steps, settled, release } = harness({ young: [32 * MiB, 32 * MiB, 32 * MiB, 1 * MiB] });
  state.received += 8 * MiB;
  assert.not.ok(release.tick(), 'the tick that sees the burst is not quiet');
  for (let i = 0; i < 4; i++) assert.ok(release.tick(), `quiet tick ${i}`);
  assert.not.ok(release.tick(), 'done once the young generation is small');
  assert.equal(steps, ['major', 'trim', 'young', 'trim', 'young', 'trim', 'young', 'full', 'trim']);
  assert.equal(settled, [{ gaveBack: 17 * MiB, ticks: 4, rssAfter: 83 * MiB, lastStepMs: 0.75 }]);
  // Small traffic afterwards is not a new burst.
  state.received += 1 * MiB;
  release.tick();
  assert.not.ok(release.tick());
  assert.is(steps.length, 9);
  // A new burst starts again with a major collection.
  state.received += 5 * MiB;
  release.tick();
  assert.ok(release.tick());
  assert.equal(steps.slice(9), ['major', 'trim']);
});

test('the release pauses while traffic resumes, and ends after settleTicks if the young generation never shrinks', () => {
  const { state, steps, settled, release } = harness();
  state.received += 8 * MiB;
  release.tick();
  assert.ok(release.tick());
  state.received += 1 * MiB;
  assert.not.ok(release.tick(), 'traffic again: no step');
  for (let i = 0; i < 4; i++) assert.ok(release.tick(), `quiet tick ${i}`);
  assert.not.ok(release.tick());
  assert.equal(steps.filter((step) => step !== 'trim'), ['major', 'young', 'young', 'young', 'young', 'full']);
  assert.is(settled.length, 1);
  assert.is(settled[0]!.ticks, 5);
});

test('a trickle under 64 KiB a second is a pause; a burst in the middle of a release starts it again', () => {
  const { state, steps, settled, release } = harness();
  state.received += 8 * MiB;
  release.tick();
  for (let i = 0; i < 2; i++) {
    state.received += 60 * 1024;
    assert.ok(release.tick(), `a progress bar's output only: quiet tick ${i}`);
  }
  assert.equal(steps, ['major', 'trim', 'young', 'trim']);
  // 5 MiB more: a new burst, whose release begins again with a major collection.
  state.received += 5 * MiB;
  assert.not.ok(release.tick());
  for (let i = 0; i < 5; i++) assert.ok(release.tick(), `quiet tick ${i} after the second burst`);
  assert.not.ok(release.tick());
  assert.equal(steps.slice(4).filter((step) => step !== 'trim'), ['major', 'young', 'young', 'young', 'young', 'full']);
  // One release in the end, counting what both gave back (MiB): 5 + 3, then 5 + 3 x 3 + 6; its 5 ticks.
  assert.equal(settled.map(({ gaveBack, ticks }) => ({ gaveBack, ticks })), [{ gaveBack: 28 * MiB, ticks: 5 }]);
});

test('without V8 collections, trims on two quiet ticks; a burst before the release existed counts', () => {
  const noGc = harness({ collectMajor: undefined, collectYoung: undefined, collectFull: undefined });
  noGc.state.received += 5 * MiB;
  noGc.release.tick();
  assert.ok(noGc.release.tick());
  assert.ok(noGc.release.tick());
  assert.not.ok(noGc.release.tick());
  assert.equal(noGc.steps, ['trim', 'trim']);
  assert.equal(noGc.settled, [{ gaveBack: 2 * MiB, ticks: 2, rssAfter: 98 * MiB, lastStepMs: 0.75 }]);
  // Without malloc_trim, the collections alone.
  const noTrim = harness({ trim: false, young: [1 * MiB] });
  noTrim.state.received += 5 * MiB;
  noTrim.release.tick();
  for (let i = 0; i < 2; i++) assert.ok(noTrim.release.tick(), `quiet tick ${i}`);
  assert.not.ok(noTrim.release.tick());
  assert.equal(noTrim.steps, ['major', 'young', 'full']);
  // Traffic before construction (releasedAt: 0) was a burst.
  const late = harness({ releasedAt: 0, activity: () => 10 * MiB, young: [1 * MiB] });
  assert.ok(late.release.tick());
  assert.equal(late.steps, ['major', 'trim']);
});

test('kernels ending start a release on the next quiet tick, with no burst; those ending during one or soon after wait', () => {
  let ended = 0;
  const { state, steps, settled, release } = harness({ ended: () => ended, young: [1 * MiB], endsGapTicks: 4 });
  for (let i = 0; i < 3; i++) assert.not.ok(release.tick(), `quiet tick ${i}, nothing ended`);
  ended = 3;
  state.received += 1 * MiB;
  assert.not.ok(release.tick(), 'not during traffic');
  assert.ok(release.tick(), 'the next quiet tick');
  ended = 4;
  assert.ok(release.tick(), 'the same release goes on');
  assert.equal(steps, ['major', 'trim', 'young', 'full', 'trim'], 'and ends: the young generation is small');
  assert.is(settled.length, 1);
  // The kernel that ended during it is not forgotten: another release, once 4 ticks have passed since
  // the last one began.
  assert.not.ok(release.tick(), 'three ticks after the release began');
  assert.ok(release.tick(), 'four ticks after');
  assert.equal(steps.slice(5), ['major', 'trim']);
  assert.ok(release.tick());
  assert.is(settled.length, 2);
  // Steady churn: a kernel ending every tick gets one release per 4 ticks.
  let started = 0;
  for (let i = 0; i < 12; i++) {
    ended++;
    const before = steps.filter((step) => step === 'major').length;
    release.tick();
    started += steps.filter((step) => step === 'major').length - before;
  }
  assert.is(started, 3, 'one release every 4 ticks');
  // Kernels that ended before it existed count when it is told so (endedAt: 0).
  const late = harness({ ended: () => 2, endedAt: 0, young: [1 * MiB] });
  assert.ok(late.release.tick());
  const already = harness({ ended: () => 2, young: [1 * MiB] });
  assert.not.ok(already.release.tick(), 'by default, only kernels that end from now on');
  // A burst before it existed starts a release that covers the kernels that ended before it: no second one.
  const both = harness({ ended: () => 2, endedAt: 0, releasedAt: 0, activity: () => 10 * MiB, young: [1 * MiB], endsGapTicks: 1 });
  assert.ok(both.release.tick());
  assert.ok(both.release.tick());
  assert.equal(both.steps, ['major', 'trim', 'young', 'full', 'trim']);
  for (let i = 0; i < 3; i++) assert.not.ok(both.release.tick(), 'nothing more to release');
});

test('loadMallocTrim names the file it could not use', () => {
  const missing = loadMallocTrim('/nonexistent/native/malloc-trim.node');
  assert.ok('problem' in missing && missing.problem.includes('/nonexistent/native/malloc-trim.node is missing'));
  const notAddon = loadMallocTrim(join(REPO_ROOT, 'package.json'));
  assert.ok('problem' in notAddon && notAddon.problem.includes('did not load'), JSON.stringify(notAddon));
});

test('the malloc_trim addon from npm run build gives free heap memory in the middle of the heap back', () => {
  // Only glibc keeps such memory and has malloc_trim; elsewhere the build makes no addon.
  if (!onGlibc()) {
    assert.not.ok(existsSync(join(REPO_ROOT, 'dist', 'native', 'malloc-trim.node')), 'an addon on a system without glibc');
    return;
  }
  const addon = join(REPO_ROOT, 'dist', 'native', 'malloc-trim.node');
  // 2,000 Buffers of 64 KB come from glibc's heap; one in 50 stays alive, so the freed memory between
  // them cannot shrink from the top and stays resident until malloc_trim (measured: 174 -> 51 MiB).
  const script = `
    const { loadMallocTrim } = await import(${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'out', 'src', 'memory-release.js')).href)});
    const addon = loadMallocTrim(${JSON.stringify(addon)});
    if (!('trim' in addon)) throw new Error(addon.problem);
    let buffers = Array.from({ length: 2000 }, () => Buffer.alloc(65536, 1));
    const kept = buffers.filter((_, i) => i % 50 === 49);
    buffers = undefined;
    globalThis.gc();
    // V8 frees the Buffers' memory on a background thread after the collection: wait for it.
    for (let i = 0; i < 250 && process.memoryUsage().arrayBuffers > 8 * 2 ** 20; i++) await new Promise((done) => setTimeout(done, 20));
    const before = process.memoryUsage.rss();
    const gaveBack = addon.trim();
    const after = process.memoryUsage.rss();
    process.stdout.write(JSON.stringify({ before, after, gaveBack, kept: kept.length }));
  `;
  // glibc's defaults: no malloc setting from this environment (an mmap threshold would change the test).
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => name !== 'GLIBC_TUNABLES' && !name.startsWith('MALLOC_')));
  const result = JSON.parse(execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8', env })) as {
    before: number;
    after: number;
    gaveBack: boolean;
    kept: number;
  };
  assert.is(result.kept, 40);
  assert.is(result.gaveBack, true);
  assert.ok(result.before - result.after >= 80 * MiB, `RSS ${(result.before / MiB).toFixed(1)} -> ${(result.after / MiB).toFixed(1)} MiB`);
});

test.run();
