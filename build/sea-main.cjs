'use strict';
// The main script of the executable for the platform the release is built on: it compiles the bundle, a
// SEA asset, with the V8 code cache a warm-up start of that bundle made with the same Node (another
// asset; see warm-code-cache.mjs). V8 refuses the cache under other V8 flags (NODE_OPTIONS), and the
// bundle is then simply compiled. In a single executable `require` loads built-in modules only, as the
// bundle expects: its ZeroMQ addon is loaded by path (build/zeromq-addon.cjs).
const { getAsset } = require('node:sea');
const { wrap } = require('node:module');
const { Script } = require('node:vm');

const script = new Script(wrap(getAsset('kernelgateway.cjs', 'utf8')), {
  filename: __filename,
  cachedData: Buffer.from(getAsset('kernelgateway.code-cache')),
});
script.runInThisContext()(exports, require, module, __filename, __dirname);
