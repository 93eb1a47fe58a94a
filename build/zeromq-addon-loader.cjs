'use strict';
// Stands in for zeromq/lib/load-addon.js inside the release executables (build/release.mjs swaps it in
// with an esbuild plugin): the addon from the zeromq/ folder beside the executable (zeromq-addon.cjs).
Object.defineProperty(exports, '__esModule', { value: true });
exports.default = require('./zeromq-addon.cjs').loadZeromqAddon();
