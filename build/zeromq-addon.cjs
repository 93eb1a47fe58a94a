'use strict';
// Finding and loading zeromq's addon inside the release executables (build/release.mjs). A single
// executable application cannot dlopen a native addon from inside itself, so the release archive ships
// zeromq's addon next to the executable:
//
//   kernelgateway[.exe]
//   zeromq/build/manifest.json                       one entry, in zeromq's own manifest format
//   zeromq/build/<os>/<arch>/node/<libc>-<abi>-Release/addon.node
//
// process.execPath is the executable's real path (symlinks resolved), so a symlink to the executable,
// e.g. /usr/local/bin/kernelgateway -> /opt/kernelgateway/kernelgateway, still finds the addon.
// The addon is a Node-API addon (node-addon-api): it loads in any Node version with the Node-API
// version it needs, whatever Node ABI (NODE_MODULE_VERSION) the manifest says it was built with.
const { existsSync, readFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');

function addonDirectory() {
  return join(dirname(process.execPath), 'zeromq', 'build');
}

function readManifest(buildDir) {
  const file = join(buildDir, 'manifest.json');
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(
      `the ZeroMQ addon is missing: cannot read ${file} (${err.code || err.message}). ` +
        'Keep the zeromq/ folder from the release archive next to the kernelgateway executable.',
    );
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${err.message}`);
  }
}

/** The addons the manifest lists for this platform, newest ABI first; throws saying what is missing. */
function addonCandidates() {
  const buildDir = addonDirectory();
  const manifest = readManifest(buildDir);
  const candidates = [];
  for (const [key, relative] of Object.entries(manifest)) {
    let config;
    try {
      config = JSON.parse(key);
    } catch {
      continue;
    }
    if (config.os !== process.platform || config.arch !== process.arch) continue;
    // The manifest keeps zeromq's own separators (backslashes for Windows builds).
    candidates.push({ abi: Number(config.abi) || 0, file: join(buildDir, ...String(relative).split(/[\\/]+/)) });
  }
  if (candidates.length === 0) {
    throw new Error(`${join(buildDir, 'manifest.json')} lists no ZeroMQ addon for ${process.platform}-${process.arch}`);
  }
  candidates.sort((a, b) => b.abi - a.abi);
  return candidates;
}

function loadZeromqAddon() {
  const candidates = addonCandidates();
  // createRequire(process.execPath) is a full require; the one a single executable's main script gets
  // loads built-in modules only.
  const load = createRequire(process.execPath);
  const failures = [];
  for (const candidate of candidates) {
    try {
      return load(candidate.file);
    } catch (err) {
      failures.push(`${candidate.file}: ${err.message}`);
    }
  }
  throw new Error(`could not load the ZeroMQ addon:\n  ${failures.join('\n  ')}`);
}

/**
 * At start-up, before the command runs: the addon must be there (zeromq itself is loaded only when the
 * first kernel starts, so without this a missing folder would show only then). Reads the manifest and
 * looks for the file; the addon is not loaded.
 */
exports.exitUnlessAddonPresent = function exitUnlessAddonPresent() {
  try {
    const candidates = addonCandidates();
    if (!candidates.some((candidate) => existsSync(candidate.file))) {
      throw new Error(`the ZeroMQ addon is missing: none of ${candidates.map((c) => c.file).join(', ')} exists`);
    }
  } catch (err) {
    // Before any of the gateway's own code runs: say what is wrong and stop.
    process.stderr.write(`kernelgateway: ${err.message}\n`);
    process.exit(1);
  }
};

/** The addon, for zeromq (see zeromq-addon-loader.cjs); throws when it cannot be loaded (the kernel start fails, saying why). */
exports.loadZeromqAddon = loadZeromqAddon;
