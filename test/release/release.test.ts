/**
 * The release archives (npm run release): builds them unless release/ already holds a fresh set, then
 *  - linux-x64: unpacked into an empty temp folder outside the checkout and run with a PATH holding no
 *    node or npm: --version, then the kernel smoke test (start, execute, interrupt, restart, delete,
 *    SIGTERM) with Debian's ipykernel;
 *  - linux-arm64: the same under qemu-aarch64-static with an aarch64 C library (qemu-user-static,
 *    libc6-arm64-cross, libstdc++6-arm64-cross); the kernel is the host's python3;
 *  - darwin-x64 and win-x64: format and size checks (`file`), and win-x64 run under wine64 (--version,
 *    GET /api). A missing tool fails the test, saying what to install (.ci/run installs them all).
 * Environment: KG_RELEASE_REBUILD=1 always rebuilds; KG_RELEASE_REUSE=1 never does.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import {
  Channels, PLATFORMS, RELEASE_DIR, REPO_ROOT, VERSION, api, archiveName, cleanupTempDirs, ensureRelease, launchGateway, run,
  sleep, smokeSteps, stopAll, tempDir, topDir, waitUntil, which, type Platform, type SmokeState,
} from './harness.ts';

const exeName = (p: Platform): string => (p === 'win-x64' ? 'kernelgateway.exe' : 'kernelgateway');
const SEA_FUSE = 'NODE_SEA_FUSE_' + 'fce680ab2cc467b6e072b8b5df1996b2';
const MB = 1e6;

function unpack(p: Platform): string {
  const dir = tempDir(`kg-release-${p}-`);
  const archive = join(RELEASE_DIR, archiveName(p));
  if (p === 'win-x64') run('python3', ['-m', 'zipfile', '-e', archive, dir]);
  else run('tar', ['-xzf', archive, '-C', dir]);
  return join(dir, topDir(p));
}

function fileType(path: string): string {
  return run('file', ['-b', path]).trim();
}

function checkLayout(root: string, p: Platform): void {
  const exe = join(root, exeName(p));
  if (!existsSync(exe)) throw new Error(`no ${exeName(p)} in the archive`);
  if (p !== 'win-x64' && (statSync(exe).mode & 0o111) === 0) throw new Error(`${exeName(p)} is not executable`);
  const manifestFile = join(root, 'zeromq', 'build', 'manifest.json');
  const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as Record<string, string>;
  const entries = Object.entries(manifest);
  if (entries.length !== 1) throw new Error(`manifest.json lists ${entries.length} addons, expected 1`);
  const [key, rel] = entries[0];
  const config = JSON.parse(key) as { os: string; arch: string };
  const [os, arch] = p === 'win-x64' ? ['win32', 'x64'] : p.split('-');
  if (config.os !== os || config.arch !== arch) throw new Error(`manifest addon is for ${config.os}-${config.arch}`);
  const addon = join(root, 'zeromq', 'build', ...rel.split(/[\\/]+/));
  if (!existsSync(addon)) throw new Error(`the manifest names ${rel}, which the archive lacks`);
  const type = fileType(addon);
  const expected = { 'linux-x64': /ELF 64-bit.*x86-64/, 'linux-arm64': /ELF 64-bit.*aarch64/, 'darwin-x64': /Mach-O 64-bit.*x86_64/, 'win-x64': /PE32\+ executable \(DLL\).*x86-64/ }[p];
  if (!expected.test(type)) throw new Error(`addon ${rel}: ${type}`);
  for (const f of ['README.txt', 'LICENSE.node.txt', 'zeromq/LICENSE.txt', 'zeromq/LICENSE_MPL-2.0.txt']) {
    if (!existsSync(join(root, f))) throw new Error(`no ${f} in the archive`);
  }
  // glibc Linux only: the malloc_trim addon that gives a burst's free heap memory back.
  const trim = join(root, 'native', 'malloc-trim.node');
  if (p.startsWith('linux-')) {
    const trimType = fileType(trim);
    const arch = p === 'linux-x64' ? /x86-64/ : /aarch64/;
    if (!/ELF 64-bit LSB shared object/.test(trimType) || !arch.test(trimType)) throw new Error(`native/malloc-trim.node: ${trimType}`);
  } else if (existsSync(trim)) throw new Error(`${p} has native/malloc-trim.node, which only glibc Linux uses`);
}

function checkSeaFuse(exe: string): void {
  const data = readFileSync(exe);
  const at = data.indexOf(SEA_FUSE);
  if (at === -1 || data.toString('latin1', at + SEA_FUSE.length, at + SEA_FUSE.length + 2) !== ':1') {
    throw new Error(`${exe}: no SEA blob injected (fuse not set)`);
  }
}

/** An environment with nothing but an empty PATH, a HOME in the temp folder and a locale. */
function cleanEnv(home: string): Record<string, string> {
  const bin = join(home, 'empty-bin');
  mkdirSync(bin, { recursive: true });
  if (which('node', bin) || which('npm', bin)) throw new Error('the clean PATH holds node or npm');
  return { PATH: bin, HOME: home, LANG: 'C.UTF-8' };
}

function qemu(): { cmd: string; env: Record<string, string> } | undefined {
  const cmd = which('qemu-aarch64-static');
  const sysroot = ['/usr/aarch64-linux-gnu', '/'].find((d) => existsSync(join(d, 'lib', 'ld-linux-aarch64.so.1')));
  if (!cmd || !sysroot) return undefined;
  return { cmd, env: sysroot === '/' ? {} : { QEMU_LD_PREFIX: sysroot } };
}

// ---------------------------------------------------------------------------------------------

const archives = suite('release archives');
let buildNote = '';
archives.before(() => {
  buildNote = ensureRelease();
});
archives('every platform has its archive, and SHA256SUMS covers each', () => {
  const sums = readFileSync(join(RELEASE_DIR, 'SHA256SUMS'), 'utf8').trim().split('\n');
  const listed = new Map(sums.map((l) => {
    const m = l.match(/^([0-9a-f]{64}) {2}(\S+)$/);
    if (!m) throw new Error(`bad SHA256SUMS line ${JSON.stringify(l)}`);
    return [m[2], m[1]] as const;
  }));
  for (const p of PLATFORMS) {
    const name = archiveName(p);
    const digest = createHash('sha256').update(readFileSync(join(RELEASE_DIR, name))).digest('hex');
    if (listed.get(name) !== digest) throw new Error(`${name}: SHA256SUMS has ${listed.get(name)}, the file hashes to ${digest}`);
  }
  if (listed.size !== PLATFORMS.length) throw new Error(`SHA256SUMS lists ${[...listed.keys()].join(', ')}`);
  process.stdout.write(`  (${buildNote})\n`);
});
archives('sha256sum -c SHA256SUMS passes', () => {
  if (!which('sha256sum')) throw new Error('sha256sum is not installed');
  run('sha256sum', ['-c', 'SHA256SUMS'], { cwd: RELEASE_DIR });
});
archives('archive sizes: linux-x64 under 60 MB, every archive 20–80 MB', () => {
  const sizes = PLATFORMS.map((p) => [p, statSync(join(RELEASE_DIR, archiveName(p))).size] as const);
  process.stdout.write(`  (${sizes.map(([p, s]) => `${p} ${(s / MB).toFixed(1)} MB`).join(', ')})\n`);
  for (const [p, s] of sizes) if (s < 20 * MB || s > 80 * MB) throw new Error(`${p} archive is ${(s / MB).toFixed(1)} MB`);
  const linux = sizes.find(([p]) => p === 'linux-x64')![1];
  if (linux >= 60 * MB) throw new Error(`linux-x64 archive is ${(linux / MB).toFixed(1)} MB`);
});
archives.run();

// ---------------------------------------------------------------------------------------------

function runnableSuite(p: 'linux-x64' | 'linux-arm64'): void {
  const s = suite(`${p} executable${p === 'linux-arm64' ? ' (qemu-aarch64-static)' : ''}`);
  const emulator = p === 'linux-arm64' ? qemu() : undefined;
  if (p === 'linux-arm64' && !emulator) {
    s('qemu-aarch64-static and the aarch64 C library are installed', () => {
      throw new Error('cannot run the linux-arm64 executable: install qemu-user-static libc6-arm64-cross libstdc++6-arm64-cross (bash .ci/run does)');
    });
    s.run();
    return;
  }
  if (p === 'linux-x64' && process.arch !== 'x64') {
    s('this machine runs x64 executables', () => {
      throw new Error(`this machine is ${process.arch}; the linux-x64 executable cannot run here`);
    });
    s.run();
    return;
  }
  const state: SmokeState = {};
  let root = '';
  let home = '';
  const prefix = emulator ? [emulator.cmd] : [];
  const envFor = () => ({ ...cleanEnv(home), ...(emulator?.env ?? {}) });
  s.before(() => {
    root = unpack(p);
    home = tempDir(`kg-release-home-${p}-`);
  });
  s.after(async () => {
    await stopAll();
  });
  s('archive layout: the executable, zeromq/build/manifest.json and the one addon it names, licences', () => {
    checkLayout(root, p);
    const type = fileType(join(root, 'kernelgateway'));
    if (!(p === 'linux-x64' ? /ELF 64-bit LSB (pie )?executable, x86-64/ : /ELF 64-bit LSB (pie )?executable, ARM aarch64/).test(type)) throw new Error(type);
    checkSeaFuse(join(root, 'kernelgateway'));
  });
  s('--version, from an empty temp folder with a PATH that holds no node or npm', () => {
    const cwd = tempDir('kg-release-cwd-');
    const out = run(prefix[0] ?? join(root, 'kernelgateway'), [...(prefix.length ? [join(root, 'kernelgateway')] : []), '--version'], { cwd, env: envFor(), timeoutMs: 60_000 });
    if (!out.startsWith(`kernelgateway/${VERSION} ${p} node-v22.`)) throw new Error(`--version printed ${JSON.stringify(out)}`);
  });
  s('the executable without its zeromq/ folder says what is missing', () => {
    const lonely = tempDir('kg-release-lonely-');
    run('cp', [join(root, 'kernelgateway'), lonely]);
    const cmd = [...prefix, join(lonely, 'kernelgateway'), '--version'];
    const res = spawnSyncResult(cmd, envFor());
    if (res.status === 0 || !/zeromq[/\\]build[/\\]manifest\.json/.test(res.stderr) || !/next to the kernelgateway executable/.test(res.stderr)) {
      throw new Error(`exit ${res.status}, stderr ${JSON.stringify(res.stderr)}`);
    }
  });
  s('starts and listens', async () => {
    state.gw = await launchGateway({
      command: [...prefix, join(root, 'kernelgateway')],
      cwd: tempDir('kg-release-cwd-'),
      env: envFor(),
      readyTimeoutMs: emulator ? 120_000 : 30_000,
    });
  });
  if (!emulator) {
    // The gateway's built-in JavaScript kernel re-runs the executable itself (`kernelgateway kernel -f …`).
    s('the built-in javascript kernel (the executable started again as a kernel): execute, interrupt a sync loop', async () => {
      const gw = state.gw;
      if (!gw) throw new Error('no gateway (an earlier step failed)');
      const specs = await api(gw, 'GET', 'api/kernelspecs');
      if (!specs.body?.kernelspecs?.javascript) throw new Error('no built-in javascript kernelspec');
      const res = await api(gw, 'POST', 'api/kernels', { name: 'javascript' });
      if (res.status !== 201) throw new Error(`POST /api/kernels javascript → ${res.status} ${res.text}`);
      const id = res.body.id as string;
      const ch = await Channels.open(gw, id);
      try {
        const { reply, result } = await ch.execute('6 * 7', 30_000);
        if (reply.content.status !== 'ok' || result !== '42') throw new Error(`execute → ${JSON.stringify(reply.content)} result ${JSON.stringify(result)}`);
        // Inside the executable the kernel's sockets share the thread with user code: only SIGINT can stop this.
        const msgId = ch.send('shell', 'execute_request', { code: 'while (true) {}', silent: false, stop_on_error: false });
        await ch.waitFor((m) => m.header.msg_type === 'execute_input' && m.parent_header.msg_id === msgId, 30_000, 'the loop to start');
        await sleep(300);
        const interrupt = await api(gw, 'POST', `api/kernels/${id}/interrupt`);
        if (interrupt.status !== 204) throw new Error(`interrupt → ${interrupt.status} ${interrupt.text}`);
        const stopped = await ch.waitFor((m) => m.header.msg_type === 'execute_reply' && m.parent_header.msg_id === msgId, 30_000, 'the interrupted reply');
        if (stopped.content.status !== 'error') throw new Error(`interrupted reply: ${JSON.stringify(stopped.content)}`);
        const after = await ch.execute('1 + 1', 30_000);
        if (after.result !== '2') throw new Error(`after the interrupt: ${JSON.stringify(after.reply.content)}`);
      } finally {
        ch.close();
      }
      const del = await api(gw, 'DELETE', `api/kernels/${res.body.id as string}`);
      if (del.status !== 204) throw new Error(`DELETE → ${del.status} ${del.text}`);
    });
  }
  s('gives memory back after a burst: V8 collections and malloc_trim from native/malloc-trim.node', async () => {
    const gw = state.gw;
    if (!gw) throw new Error('no gateway (an earlier step failed)');
    const k = emulator ? 4 : 1;
    const res = await api(gw, 'POST', 'api/kernels', { name: 'python3' }, 120_000 * k);
    if (res.status !== 201) throw new Error(`POST /api/kernels → ${res.status} ${res.text}`);
    const id = res.body.id as string;
    const ch = await Channels.open(gw, id, 60_000 * k);
    try {
      const { reply, stdout } = await ch.execute("for _ in range(6): print('y' * 1_000_000)", 120_000 * k);
      if (reply.content.status !== 'ok' || stdout.length !== 6 * 1_000_001) throw new Error(`execute → ${JSON.stringify(reply.content)}, ${stdout.length} characters`);
    } finally {
      ch.close();
    }
    const del = await api(gw, 'DELETE', `api/kernels/${id}`);
    if (del.status !== 204) throw new Error(`DELETE → ${del.status} ${del.text}`);
    const steps = async () => Number((await api(gw, 'GET', 'metrics')).text.match(/^kernelgateway_memory_release_steps_total (\d+)$/m)?.[1] ?? 0);
    await waitUntil(async () => ((await steps()) >= 1 ? true : undefined), 60_000 * k, 'a memory release step after the burst');
    const line = gw.stderr().match(/Memory release after bursts: [^\n]*/)?.[0];
    if (line !== 'Memory release after bursts: V8 collections and malloc_trim') throw new Error(`the gateway logged ${JSON.stringify(line)}`);
  });
  for (const [name, body] of smokeSteps(state, { slow: emulator ? 4 : 1, checkProcessGroup: true })) s(name, body);
  s.run();
}

function spawnSyncResult(cmd: string[], env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const res = spawnSync(cmd[0], cmd.slice(1), { env, encoding: 'utf8', timeout: 60_000, cwd: tempDir('kg-release-cwd-') });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

runnableSuite('linux-x64');
runnableSuite('linux-arm64');

// ---------------------------------------------------------------------------------------------

const darwin = suite('darwin-x64 executable (format only)');
let darwinRoot = '';
darwin.before(() => {
  darwinRoot = unpack('darwin-x64');
});
darwin('archive layout, Mach-O 64-bit x86_64 executable with a SEA blob, 60–200 MB', () => {
  checkLayout(darwinRoot, 'darwin-x64');
  const exe = join(darwinRoot, 'kernelgateway');
  const type = fileType(exe);
  if (!/^Mach-O 64-bit x86_64 executable/.test(type)) throw new Error(type);
  checkSeaFuse(exe);
  const size = statSync(exe).size;
  if (size < 60 * MB || size > 200 * MB) throw new Error(`${(size / MB).toFixed(1)} MB`);
  if ((statSync(exe).mode & 0o111) === 0) throw new Error('not executable');
});
darwin.run();

const win = suite('win-x64 executable (format; wine64 when installed)');
let winRoot = '';
const wine = ['/usr/lib/wine/wine64', which('wine64')].find((f): f is string => !!f && existsSync(f));
const wineEnv = (): Record<string, string> => ({
  ...(process.env as Record<string, string>),
  WINEDEBUG: '-all',
  WINEPREFIX: join(REPO_ROOT, 'node_modules', '.cache', 'kernelgateway-release', 'wineprefix'),
  // A new wine prefix reports Windows 7, where Node refuses to start without this.
  NODE_SKIP_PLATFORM_CHECK: '1',
});
win.before(() => {
  winRoot = unpack('win-x64');
});
win.after(() => {
  // Stop the wineserver of our prefix (and the wine services it keeps), then remove the unpacked copies.
  const wineserver = wine && [join(wine, '..', 'wineserver64'), join(wine, '..', 'wineserver'), which('wineserver')].find((f) => f && existsSync(f));
  if (wineserver) spawnSync(wineserver, ['-k'], { env: wineEnv(), stdio: 'ignore', timeout: 30_000 });
  cleanupTempDirs();
});
win('archive layout, PE32+ x86-64 console executable with a SEA blob, 50–200 MB', () => {
  checkLayout(winRoot, 'win-x64');
  const exe = join(winRoot, 'kernelgateway.exe');
  const type = fileType(exe);
  if (!/^PE32\+ executable \(console\) x86-64/.test(type)) throw new Error(type);
  checkSeaFuse(exe);
  const size = statSync(exe).size;
  if (size < 50 * MB || size > 200 * MB) throw new Error(`${(size / MB).toFixed(1)} MB`);
});
if (wine) {
  // wine's console layer fails on pipes (EBADF), so output goes to files.
  win('wine64: kernelgateway.exe --version (loads the win32 ZeroMQ addon)', () => {
    const out = join(tempDir('kg-release-wine-'), 'out.txt');
    run('sh', ['-c', '"$@" >"$KG_OUT" 2>&1', 'sh', wine, join(winRoot, 'kernelgateway.exe'), '--version'], {
      env: { ...wineEnv(), KG_OUT: out }, cwd: winRoot, timeoutMs: 300_000,
    });
    const text = readFileSync(out, 'utf8');
    if (!text.startsWith(`kernelgateway/${VERSION} win32-x64 node-v22.`)) throw new Error(`--version printed ${JSON.stringify(text)}`);
  });
  win('wine64: kernelgateway.exe serves GET /api', async () => {
    const dir = tempDir('kg-release-wine-');
    const err = join(dir, 'err.txt');
    const proc = spawn('sh', ['-c', 'exec "$@" >"$KG_DIR/out.txt" 2>"$KG_DIR/err.txt"', 'sh', wine, join(winRoot, 'kernelgateway.exe'), '--port', '0', '--auth-token', 'wine-token'], {
      env: { ...wineEnv(), KG_DIR: dir }, cwd: winRoot, stdio: 'ignore',
    });
    try {
      const url = await waitUntil(() => (existsSync(err) ? readFileSync(err, 'utf8').match(/is available at (http:\/\/\S+)/)?.[1] : undefined), 120_000, 'the wine gateway to listen');
      const res = await fetch(new URL('api', url), { headers: { Authorization: 'token wine-token' } });
      const body = (await res.json()) as { version?: string };
      if (res.status !== 200 || body.version !== VERSION) throw new Error(`GET /api → ${res.status} ${JSON.stringify(body)}`);
    } finally {
      proc.kill('SIGTERM');
      await sleep(500);
    }
  });
} else {
  win('wine64 is installed', () => {
    throw new Error('cannot run kernelgateway.exe: install wine64 (bash .ci/run does)');
  });
}
win.run();
