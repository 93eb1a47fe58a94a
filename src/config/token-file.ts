/**
 * Files that hold the auth token: reading --auth-token-file, and the warning for such a file (or a
 * config file setting auth_token) that other users may read.
 */
import { readFileSync, statSync } from 'node:fs';
import { ConfigError } from './options.ts';
import { fsProblem } from './values.ts';

/**
 * The token in `file` (named by `source`, e.g. "--auth-token-file"): its text without the trailing
 * newline. An empty file, one that cannot be read, or several lines stop start-up.
 */
export function readTokenFile(file: string, source: string): string {
  const where = `${source}: ${JSON.stringify(file)}`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${where} ${fsProblem(err)}; expected a readable file holding the token`);
  }
  const token = text.replace(/(\r?\n)+$/, '');
  if (token === '') {
    throw new ConfigError(`${where} is empty; expected the token (auth off is --auth-token '' instead)`);
  }
  if (/[\r\n]/.test(token)) throw new ConfigError(`${where} holds several lines; expected the token alone`);
  return token;
}

/** A warning when group or others may read `file`, which `holds` the token ("sets auth_token"); none on Windows. */
export function sharedTokenFileWarning(file: string, holds: string, platform: NodeJS.Platform): string | undefined {
  if (platform === 'win32') return undefined;
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch {
    return undefined; // it was just read; nothing to say if it is gone
  }
  return (mode & 0o044) !== 0 ? `${file} ${holds} but other users may read it; make it private (chmod 600)` : undefined;
}
