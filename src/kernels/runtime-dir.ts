/** Jupyter's runtime directory, where connection files go. */
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { jupyterDataDir } from './specs.ts';

/** $JUPYTER_RUNTIME_DIR, else <data dir>/runtime. Created private (0700). */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env, dataDir = jupyterDataDir(env)): string {
  const dir = env.JUPYTER_RUNTIME_DIR || join(dataDir, 'runtime');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Best effort: a runtime dir we did not create may be wider; connection files are 0600 regardless.
  try {
    const mode = statSync(dir).mode & 0o777;
    if (mode & 0o077 && !env.JUPYTER_RUNTIME_DIR) chmodSync(dir, 0o700);
  } catch {
    /* not ours to fix */
  }
  return dir;
}
