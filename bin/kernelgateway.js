#!/usr/bin/env node
// The installed command: runs the bundle that `npm run build` writes.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const bundle = new URL('../dist/kernelgateway.js', import.meta.url);
try {
  await import(bundle.href);
} catch (err) {
  // Only a missing bundle gets the hint; a module missing inside it is a real error.
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || existsSync(fileURLToPath(bundle))) throw err;
  process.stderr.write('kernelgateway: dist/kernelgateway.js is missing; run npm run build\n');
  process.exit(1);
}
