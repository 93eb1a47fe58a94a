/** Which kernelspec serves a notebook (notebookKernelName). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { notebookKernelName, type KernelChoice } from '../../src/notebook-http/kernel-source.ts';
import type { SeedNotebook } from '../../src/kernels/seed.ts';

const specs = [
  { name: 'python3', spec: { language: 'python' } },
  { name: 'javascript', spec: { language: 'javascript' } },
  { name: 'deno', spec: { language: 'JavaScript' } },
];
const choice = (forced = ''): KernelChoice => ({ specs: () => specs, forced });
const seed = (language: string, kernelName?: string): SeedNotebook => ({ uri: 'api.ipynb', language, kernelName, cells: [] });

test('the kernelspec the notebook names, even when missing (the manager reports it)', () => {
  assert.is(notebookKernelName(seed('python', 'fakelang2000'), choice(), 'python3'), 'fakelang2000');
});

test('forced, or no language: left to the kernel manager', () => {
  assert.is(notebookKernelName(seed('klingon'), choice('python3'), 'python3'), undefined);
  assert.is(notebookKernelName(seed(''), choice(), 'python3'), undefined);
});

test('no name: the default kernel when it speaks the language, else the first that does', () => {
  assert.is(notebookKernelName(seed('python'), choice(), 'python3'), 'python3');
  assert.is(notebookKernelName(seed('javascript'), choice(), 'python3'), 'javascript');
  assert.is(notebookKernelName(seed('javascript'), choice(), 'deno'), 'deno');
});

test('no name and no kernelspec of the language: an error saying what is installed', () => {
  assert.throws(() => notebookKernelName(seed('klingon'), choice(), 'python3'), /speaks its language, klingon.*python3 \(python\)/);
});

test.run();
