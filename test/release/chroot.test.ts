/**
 * The linux-x64 release in a bare Debian with no Node: the stand-in for the Dockerfile's runtime stage
 * (there is no Docker engine here). debootstrap --variant=minbase bookworm makes the root from apt's
 * configured mirror, apt-get inside it adds python3-ipykernel, the archive is unpacked into /opt, and
 * the executable runs with chroot: --version, then the kernel smoke test with the chroot's own python.
 *
 * Needs root, debootstrap and the Debian mirror (.ci/run installs debootstrap); without them it fails,
 * saying what is missing, rather than passing untested. Measured here: debootstrap 32 s, ipykernel 23 s.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import {
  RELEASE_DIR, VERSION, archiveName, cleanupTempDirs, ensureRelease, launchGateway, run, smokeSteps, stopAll, tempDir, topDir, which,
  type SmokeState,
} from './harness.ts';

const test = suite('linux-x64 executable in a minimal Debian chroot (no Node)');
const state: SmokeState = {};
let root = '';
let procMounted = false;
const ROOT_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', LANG: 'C.UTF-8' };

/** The first Debian mirror apt is configured with (deb822 .sources or one-line sources.list). */
function debianMirror(): string {
  const files = ['/etc/apt/sources.list', ...(existsSync('/etc/apt/sources.list.d') ? readdirSync('/etc/apt/sources.list.d').map((f) => join('/etc/apt/sources.list.d', f)) : [])];
  for (const file of files.filter((f) => /\.(list|sources)$/.test(f) && existsSync(f))) {
    const text = readFileSync(file, 'utf8');
    const uri = text.match(/^URIs:\s*(https?:\/\/\S+\/debian)\s*$/m)?.[1] ?? text.match(/^deb\s+(?:\[[^\]]*\]\s+)?(https?:\/\/\S+\/debian)\s+bookworm\s/m)?.[1];
    if (uri) return uri;
  }
  return 'http://deb.debian.org/debian';
}

function unmountProc(): void {
  if (procMounted) {
    spawnSync('umount', [join(root, 'proc')], { stdio: 'ignore' });
    procMounted = readFileSync('/proc/mounts', 'utf8').includes(` ${join(root, 'proc')} `);
  }
}

const why = process.getuid?.() !== 0 ? 'not root'
  : !which('debootstrap', `${process.env.PATH}:/usr/sbin:/sbin`) ? 'debootstrap is not installed'
  : process.platform !== 'linux' || process.arch !== 'x64' ? 'not linux-x64'
  : undefined;

if (why) {
  test('the chroot test can run here', () => {
    throw new Error(`cannot run the chroot test: ${why} (bash .ci/run installs what it needs)`);
  });
} else {
  test.before(() => {
    root = join(tempDir('kg-chroot-'), 'bookworm');
  });
  test.after(async () => {
    await stopAll();
    unmountProc();
    // Never remove a tree with something still mounted in it.
    if (!procMounted) cleanupTempDirs();
  });

  test('the release is built (or fresh)', () => {
    process.stdout.write(`  (${ensureRelease()})\n`);
  });

  test('debootstrap --variant=minbase bookworm, then apt-get install python3-ipykernel in it', () => {
    const mirror = debianMirror();
    let t0 = Date.now();
    run(which('debootstrap', `${process.env.PATH}:/usr/sbin:/sbin`)!, ['--variant=minbase', 'bookworm', root, mirror], { timeoutMs: 900_000 });
    const debootstrapS = (Date.now() - t0) / 1000;
    copyFileSync('/etc/resolv.conf', join(root, 'etc', 'resolv.conf'));
    procMounted = spawnSync('mount', ['-t', 'proc', 'proc', join(root, 'proc')], { stdio: 'ignore' }).status === 0;
    t0 = Date.now();
    run('chroot', [root, 'sh', '-c', 'apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-ipykernel >/dev/null'], {
      env: { ...ROOT_ENV, DEBIAN_FRONTEND: 'noninteractive' }, timeoutMs: 900_000,
    });
    const aptS = (Date.now() - t0) / 1000;
    process.stdout.write(`  (mirror ${mirror}: debootstrap ${debootstrapS.toFixed(0)} s, python3-ipykernel ${aptS.toFixed(0)} s; /proc ${procMounted ? 'mounted' : 'not mounted'})\n`);
    if (!existsSync(join(root, 'usr', 'share', 'jupyter', 'kernels', 'python3', 'kernel.json'))) throw new Error('no python3 kernelspec in the chroot');
  });

  test('the archive unpacked into /opt/kernelgateway; no node in the chroot', () => {
    const unpacked = tempDir('kg-chroot-archive-');
    run('tar', ['-xzf', join(RELEASE_DIR, archiveName('linux-x64')), '-C', unpacked]);
    mkdirSync(join(root, 'opt'), { recursive: true });
    cpSync(join(unpacked, topDir('linux-x64')), join(root, 'opt', 'kernelgateway'), { recursive: true });
    const found = run('chroot', [root, 'sh', '-c', 'command -v node nodejs npm || true'], { env: ROOT_ENV }).trim();
    if (found) throw new Error(`the chroot has ${found}`);
  });

  test('chroot: kernelgateway --version', () => {
    const out = run('chroot', [root, '/opt/kernelgateway/kernelgateway', '--version'], { env: ROOT_ENV, timeoutMs: 60_000 });
    if (!out.startsWith(`kernelgateway/${VERSION} linux-x64 node-v22.`)) throw new Error(`--version printed ${JSON.stringify(out)}`);
  });

  test('chroot: the gateway starts and listens (on the host loopback)', async () => {
    mkdirSync(join(root, 'run', 'kg-runtime'), { recursive: true });
    state.gw = await launchGateway({
      command: ['chroot', root, '/opt/kernelgateway/kernelgateway'],
      cwd: '/',
      env: ROOT_ENV,
      runtimeDir: { gateway: '/run/kg-runtime', host: join(root, 'run', 'kg-runtime') },
    });
  });

  for (const [name, body] of smokeSteps(state, { checkProcessGroup: true })) test(`chroot: ${name}`, body);

  test('chroot: unmount /proc', () => {
    unmountProc();
    if (procMounted) throw new Error(`${join(root, 'proc')} is still mounted`);
  });
}

test.run();
