// Builds src/native/malloc-trim.c into a Node-API addon for glibc Linux: dist/native/malloc-trim.node for
// `npm run build` (this machine), native/malloc-trim.node in the glibc Linux release archives (build/release.mjs).
// The gateway runs without it, but then keeps the free heap memory a burst leaves (README: Memory after a burst).
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const MALLOC_TRIM_SOURCE = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'native', 'malloc-trim.c');
/** Where the addon goes, relative to the bundle's or the executable's folder (src/memory-release.ts). */
export const MALLOC_TRIM_ADDON = 'native/malloc-trim.node';

/** Debian's cross compilers, for an architecture other than this machine's. */
const CROSS_COMPILERS = { x64: 'x86_64-linux-gnu-gcc', arm64: 'aarch64-linux-gnu-gcc' };
const CROSS_PACKAGES = { x64: 'gcc-x86-64-linux-gnu libc6-dev-amd64-cross', arm64: 'gcc-aarch64-linux-gnu libc6-dev-arm64-cross' };

/** Whether this process runs on glibc (musl has no malloc_trim, and needs none). */
export function onGlibc() {
  return process.platform === 'linux' && Boolean(process.report?.getReport().header.glibcVersionRuntime);
}

/**
 * Compiles the addon for glibc linux-`arch` into `out`: with $CC or cc on a glibc Linux machine of that
 * architecture, else with Debian's cross compiler. Returns undefined when built, else why not (no
 * compiler, no headers, the compiler's errors).
 */
export function buildMallocTrim(arch, out) {
  const native = arch === process.arch && onGlibc();
  const compiler = native ? process.env.CC || 'cc' : CROSS_COMPILERS[arch];
  if (!compiler) return `no C compiler is known for linux-${arch}`;
  let include;
  try {
    include = createRequire(import.meta.url)('node-api-headers').include_dir;
  } catch (error) {
    return `no Node-API headers (the node-api-headers devDependency: npm ci): ${error.message}`;
  }
  mkdirSync(dirname(out), { recursive: true });
  // -s: no symbols beyond the Node-API entry points; the file is ~14 KB. A C library without malloc_trim
  // (musl) fails at the implicit declaration.
  const args = ['-shared', '-fPIC', '-O2', '-std=gnu11', '-Wall', '-Wextra', '-Werror=implicit-function-declaration',
    '-fvisibility=hidden', '-s', '-I', include, MALLOC_TRIM_SOURCE, '-o', out];
  const result = spawnSync(compiler, args, { encoding: 'utf8' });
  if (result.error) {
    const install = native ? 'gcc libc6-dev' : CROSS_PACKAGES[arch];
    return result.error.code === 'ENOENT' ? `no C compiler (${compiler}; on Debian: apt-get install ${install})` : `${compiler}: ${result.error.message}`;
  }
  if (result.status !== 0) return `${compiler} ${args.join(' ')} failed:\n${result.stderr.trim()}`;
  return undefined;
}
