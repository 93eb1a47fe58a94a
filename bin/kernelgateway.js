#!/usr/bin/env node
// The installed command: runs the bundle that `npm run build` writes (see load-bundle.js).
'use strict';
const { compileBundle } = require('./load-bundle.js');

let bundle;
try {
  bundle = compileBundle();
} catch (err) {
  if (err?.code !== 'ENOENT') throw err;
  process.stderr.write('kernelgateway: dist/kernelgateway.cjs is missing; run npm run build\n');
  process.exit(1);
}
bundle.run();
