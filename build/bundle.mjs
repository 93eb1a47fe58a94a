// Bundles the gateway into dist/: the entry dist/kernelgateway.js and chunks that are loaded only when
// needed (the JavaScript kernel with acorn; zeromq, which stays external because its native addon is
// found through the package's own build/ layout at run time, is imported from them). Without
// splitting, esbuild would hoist those imports into the entry and load them at start-up.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

// Node's built-in modules are taken through the banner's require(), not imported as ES modules: for a
// built-in imported as an ES module Node reads every export, and some exports are lazy getters that load
// more (node:fs's streams; node 22's node:http loads undici for its WebSocket getter, ~40 ms of start-up).
const builtinsThroughRequire = {
  name: 'builtins-through-require',
  setup(b) {
    b.onResolve({ filter: /^node:http$/ }, (args) =>
      args.namespace === 'required-builtin' ? { path: args.path, external: true } : { path: args.path, namespace: 'required-builtin' },
    );
    b.onLoad({ filter: /.*/, namespace: 'required-builtin' }, (args) => ({ contents: `module.exports = require(${JSON.stringify(args.path)});`, loader: 'js' }));
  },
};

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
  plugins: [builtinsThroughRequire],
  sourcemap: false,
  logLevel: 'warning',
});
