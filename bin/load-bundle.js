// Loads dist/kernelgateway.cjs, the bundle `npm run build` writes, with the V8 code cache the build made
// beside it (dist/kernelgateway.code-cache): compiling the code a start runs is about a third of the
// gateway's start on Node 20. The cache opens with the SHA-256 of the bundle it was made from, so a bundle
// changed since is compiled afresh; V8 itself refuses a cache from another Node version or other flags.
// CommonJS (bin/package.json), like the bundle: Node 20's ES module loader would add ~10 ms to every start.
'use strict';
const { createHash } = require('node:crypto');
const { readFileSync } = require('node:fs');
const Module = require('node:module');
const { dirname, join } = require('node:path');
const { Script } = require('node:vm');

const BUNDLE = join(__dirname, '..', 'dist', 'kernelgateway.cjs');
const CODE_CACHE = join(__dirname, '..', 'dist', 'kernelgateway.code-cache');
const HASH_BYTES = 32;

const sha256 = (source) => createHash('sha256').update(source).digest();

/** The content of a cache file: the bundle's hash, then V8's data (made by build/warm-code-cache.mjs). */
function codeCacheFile(source, v8Data) {
  return Buffer.concat([sha256(source), v8Data]);
}

/** The cache's V8 data when it was made from the source hashed `sourceHash`, else undefined. */
function cachedDataFor(sourceHash) {
  let file;
  try {
    file = readFileSync(CODE_CACHE);
  } catch {
    return undefined;
  }
  return file.length > HASH_BYTES && file.subarray(0, HASH_BYTES).equals(sourceHash) ? file.subarray(HASH_BYTES) : undefined;
}

/** `source` compiled as Node compiles a CommonJS module, with V8's `cachedData` when given. */
function compileCommonJs(source, filename, cachedData) {
  return new Script(Module.wrap(source), { filename, cachedData });
}

/** Runs a script from compileCommonJs as the module `filename`. */
function runCommonJs(script, filename) {
  const module = { exports: {} };
  script.runInThisContext()(module.exports, Module.createRequire(filename), module, filename, dirname(filename));
}

/**
 * Compiles the bundle (throws ENOENT when it is missing); run() executes it as CommonJS would. cache says
 * whether the cache file was used, refused by V8 ('rejected'), or absent or made from another bundle.
 */
function compileBundle() {
  const source = readFileSync(BUNDLE, 'utf8');
  const cachedData = cachedDataFor(sha256(source));
  const script = compileCommonJs(source, BUNDLE, cachedData);
  return {
    cache: cachedData === undefined ? 'none' : script.cachedDataRejected ? 'rejected' : 'used',
    run: () => runCommonJs(script, BUNDLE),
  };
}

module.exports = { BUNDLE, CODE_CACHE, codeCacheFile, compileBundle, compileCommonJs, runCommonJs };
