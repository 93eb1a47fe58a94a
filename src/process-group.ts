/**
 * A kernel process as both the gateway (local kernels) and the launcher (kernels in a Slurm job) run
 * it: started in a process group of its own, so that a signal reaches whatever it started; signalled
 * as a group; and its private files. Node's built-ins only: the launcher loads nothing of the gateway.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, constants, openSync, unlinkSync, writeSync } from 'node:fs';

/** Start `argv` in a new process group (on Windows, hidden), its output piped. */
export function spawnInGroup(argv: readonly string[], env: NodeJS.ProcessEnv, cwd: string): ChildProcess {
  return spawn(argv[0], argv.slice(1), {
    cwd,
    env,
    detached: process.platform !== 'win32',
    stdio: ['ignore', 'pipe', 'pipe'],
    windowsHide: true,
  });
}

/**
 * Signal a process's whole group, even after its leader has exited (what it started may live on), as
 * jupyter_client's killpg does; on Windows, the process itself.
 */
export function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  const alive = child.exitCode === null && child.signalCode === null;
  try {
    if (process.platform !== 'win32') process.kill(-child.pid, signal);
    else if (alive) child.kill(signal);
  } catch {
    // ESRCH: the group is empty.
    if (alive) {
      try {
        child.kill(signal);
      } catch {
        /* already gone */
      }
    }
  }
}

/** Remove a file if it is there. */
export function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* already gone */
  }
}

/** Write `text` to `path` readable by its owner only (0600), replacing any earlier file. */
export function writePrivateFile(path: string, text: string): void {
  removeFile(path);
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    writeSync(fd, text);
  } finally {
    closeSync(fd);
  }
}
