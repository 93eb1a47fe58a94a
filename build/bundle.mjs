// Bundles the gateway into dist/: the entry dist/kernelgateway.js and chunks that are loaded only when
// needed (the JavaScript kernel with acorn; zeromq, which stays external because its native addon is
// found through the package's own build/ layout at run time, is imported from them). Without
// splitting, esbuild would hoist those imports into the entry and load them at start-up.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
await build({
  entryPoints: { kernelgateway: 'src/cli.ts' },
  outdir: 'dist',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['zeromq'],
  banner: { js: "import { createRequire as __kgCreateRequire } from 'node:module'; const require = __kgCreateRequire(import.meta.url);" },
  sourcemap: false,
  logLevel: 'warning',
});
