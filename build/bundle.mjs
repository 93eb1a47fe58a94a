// Bundles the gateway into dist/kernelgateway.cjs, one CommonJS file (zeromq stays external: its native
// addon is found through the package's own build/ layout at run time), and makes its V8 code cache,
// dist/kernelgateway.code-cache, for the Node running this build (bin/load-bundle.js reads it).
// First GET /api after Node 20's own start, measured side by side: 71-85 ms as the split ES modules this
// replaced, 62-75 ms as one CommonJS file, 39-51 ms with the cache (README, Benchmark). What src/ imports
// dynamically (the JavaScript kernel with acorn, zeromq, ws) is still evaluated only at first use.
import { build } from 'esbuild';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import loader from '../bin/load-bundle.js';
import { buildMallocTrim, MALLOC_TRIM_ADDON, onGlibc } from './native-addon.mjs';
import { warmCodeCache } from './warm-code-cache.mjs';

const { BUNDLE, CODE_CACHE, codeCacheFile } = loader;

rmSync('dist', { recursive: true, force: true });
await build({
  entryPoints: ['src/cli.ts'],
  outfile: BUNDLE,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['zeromq'],
  // import() of an external module stays import() in CommonJS output, which a vm.Script cannot run
  // without an experimental loader hook; as require() it is the same module, evaluated at the same time.
  supported: { 'dynamic-import': false },
  // CommonJS has no import.meta: import.meta.url becomes the bundle's own file URL.
  define: { 'import.meta.url': '__kgImportMetaUrl' },
  banner: { js: "var __kgImportMetaUrl = require('node:url').pathToFileURL(__filename).href;" },
  logOverride: { 'empty-import-meta': 'error' },
  // Whitespace and syntax only: a smaller source is less for V8 to scan and keep (fresh RSS 49.2 -> 47.0 MB,
  // start-up ~7 ms less), while names stay readable in stack traces (full minification: 0.3 MB, ~5 ms more).
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: false,
  logLevel: 'warning',
});

const raw = `${CODE_CACHE}.v8`;
const problem = await warmCodeCache({ node: process.execPath, bundle: BUNDLE, out: raw });
if (problem) {
  process.stderr.write(`build: no code cache (the gateway starts without one, slower): ${problem}\n`);
} else {
  writeFileSync(CODE_CACHE, codeCacheFile(readFileSync(BUNDLE, 'utf8'), readFileSync(raw)));
  rmSync(raw);
}

// glibc Linux: the addon that gives a burst's free heap memory back (src/memory-release.ts).
if (onGlibc()) {
  const problem = buildMallocTrim(process.arch, `dist/${MALLOC_TRIM_ADDON}`);
  if (problem) process.stderr.write(`build: no ${MALLOC_TRIM_ADDON} (the gateway runs, but keeps the free heap memory a burst leaves): ${problem}\n`);
}
