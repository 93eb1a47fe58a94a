/**
 * What a start request turns into before any process exists: the environment the kernel starts
 * from and its working directory.
 */
import { accessSync, constants as fsConstants, existsSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import type { Logger } from '../log.ts';
import { InvalidPathError } from './errors.ts';

/** The environment a kernel starts from (before its kernelspec's env; see composeKernelEnv). */
export function kernelBaseEnv(
  requested: Record<string, string> | undefined,
  gatewayEnv: NodeJS.ProcessEnv,
  envWhitelist: readonly string[] = [],
  envProcessWhitelist: readonly string[] = [],
): NodeJS.ProcessEnv {
  if (!requested) return { ...gatewayEnv };
  // As the reference gateway: a client that sends env gets PATH, the gateway variables the operator
  // listed, and its own KERNEL_* and whitelisted variables; nothing else of ours.
  const env: NodeJS.ProcessEnv = {};
  if (gatewayEnv.PATH !== undefined) env.PATH = gatewayEnv.PATH;
  for (const name of envProcessWhitelist) {
    if (gatewayEnv[name] !== undefined) env[name] = gatewayEnv[name];
  }
  const allowed = new Set(envWhitelist);
  for (const [key, value] of Object.entries(requested)) {
    if (key.startsWith('KERNEL_') || allowed.has(key)) env[key] = value;
  }
  return env;
}

/**
 * The kernel's working directory. A `path` is taken below the root directory (walked up to the
 * nearest existing folder, as Jupyter Server does); one that escapes a root the operator set with
 * --root-dir is refused. KERNEL_WORKING_DIR (Jupyter Server in gateway mode sends its own folder)
 * is used when it exists here and is allowed (inside --root-dir when one was set); otherwise the
 * kernel starts in the root directory, and the log says why: a starting folder is no security
 * boundary (whoever may start a kernel runs code in it), so it never fails a start.
 */
export function kernelWorkingDir(
  request: { path?: string; env?: Record<string, string> },
  root: string,
  explicit: boolean,
  log: Logger,
): string {
  const outside = (target: string) => {
    const rel = relative(root, target);
    return rel.startsWith('..') || isAbsolute(rel) || rel.split(sep).includes('..');
  };
  if (request.path) {
    const target = resolve(root, request.path.replace(/^\/+/, ''));
    let dir = target;
    let escapes = outside(target);
    if (!escapes) {
      while (dir !== root && !isDirectory(dir)) dir = dirname(dir);
      // A symlink inside the root may still lead out of it.
      escapes = outside(realpathSync(dir));
    }
    if (escapes) {
      if (explicit) {
        throw new InvalidPathError(`path "${request.path}" lies outside the gateway's root directory ${root} (--root-dir)`);
      }
      log.info(`path "${request.path}" lies outside the root directory ${root}; the kernel starts in ${root}`);
      return root;
    }
    return dir;
  }
  const requested = request.env?.KERNEL_WORKING_DIR;
  if (!requested) return root;
  const target = resolve(root, requested);
  if (!isDirectory(target)) {
    log.info(`KERNEL_WORKING_DIR "${requested}" is not a folder on this host; the kernel starts in ${root}`);
    return root;
  }
  if (explicit && (outside(target) || outside(realpathSync(target)))) {
    log.info(`KERNEL_WORKING_DIR "${requested}" lies outside --root-dir ${root}; the kernel starts in ${root}`);
    return root;
  }
  try {
    accessSync(target, fsConstants.X_OK);
  } catch {
    log.info(`KERNEL_WORKING_DIR "${requested}" cannot be entered by the gateway's user; the kernel starts in ${root}`);
    return root;
  }
  return target;
}

function isDirectory(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}
