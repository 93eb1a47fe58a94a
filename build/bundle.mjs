// Bundles the gateway into dist/kernelgateway.cjs, one CommonJS file (zeromq stays external: its native
// addon is found through the package's own build/ layout at run time), and makes its V8 code cache,
// dist/kernelgateway.code-cache, for the Node running this build (bin/load-bundle.js reads it).
// Measured on Node 20 against the earlier split ES module build, first GET /api after Node's own start:
// ~80 ms as ES modules, ~67 ms as one CommonJS file, ~45 ms with the cache. What src/ imports
// dynamically (the JavaScript kernel with acorn, zeromq, ws) is still evaluated only at first use.
import { build } from 'esbuild';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

rmSync('dist', { recursive: true, force: true });
await build({
  entryPoints: ['src/cli.ts'],
  outfile: 'dist/kernelgateway.cjs',
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
  sourcemap: false,
  logLevel: 'warning',
});

/** A port that was free a moment ago on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer().on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * The warm-up runs a real start in a child process. Its environment has no KG_* variables and an empty
 * home and Jupyter config, so the builder's settings cannot make it start kernels or do anything but
 * start and answer. Without a cache the gateway works the same, only starts slower: a failure warns.
 */
async function makeCodeCache() {
  const home = mkdtempSync(join(tmpdir(), 'kg-code-cache-'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^(KG_|JUPYTER_)/.test(name)));
  Object.assign(env, { HOME: home, JUPYTER_CONFIG_DIR: home, JUPYTER_DATA_DIR: home, JUPYTER_RUNTIME_DIR: join(home, 'runtime') });
  try {
    const child = spawn(process.execPath, ['build/warm-code-cache.mjs', String(await freePort())], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr = (stderr + chunk).slice(-2000)));
    const code = await new Promise((resolve) => child.on('close', resolve));
    if (code !== 0) process.stderr.write(`build: no code cache (the gateway starts without one, slower): warm-up exited with ${code}\n${stderr}`);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
await makeCodeCache();
