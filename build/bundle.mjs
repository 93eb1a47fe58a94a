// Bundles the gateway into dist/kernelgateway.js. zeromq stays external: its native addon is
// found through the package's own build/ layout at run time.
import { build } from 'esbuild';

await build({
  entryPoints: ['src/cli.ts'],
  outfile: 'dist/kernelgateway.js',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['zeromq'],
  banner: { js: "import { createRequire as __kgCreateRequire } from 'node:module'; const require = __kgCreateRequire(import.meta.url);" },
  sourcemap: false,
  logLevel: 'warning',
});
