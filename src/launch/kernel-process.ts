/**
 * The kernel process on the node: its private connection file, its start in a process group of
 * its own (so a signal reaches whatever it started), its output and its end.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { signalGroup, spawnInGroup, writePrivateFile } from '../process-group.ts';

/** A private folder (0700) for the connection file; removed when the launcher ends. */
export class PrivateDir {
  readonly path = mkdtempSync(join(tmpdir(), 'kg-launch-'));

  /** Write `name` readable by its owner only (0600), replacing any earlier file. */
  writeFile(name: string, text: string): string {
    const file = join(this.path, name);
    writePrivateFile(file, text);
    return file;
  }

  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

/** How long the end of the kernel's output is awaited after it exited. */
const PIPE_GRACE_MS = 500;

export interface ExitReport {
  code: number | null;
  signal: string | null;
}

export class KernelProcess {
  readonly #child: ChildProcess;
  /** Settles when the process has exited and its output is read to the end. */
  readonly ended: Promise<ExitReport>;
  #exited = false;

  constructor(argv: readonly string[], env: NodeJS.ProcessEnv, cwd: string) {
    this.#child = spawnInGroup(argv, env, cwd);
    this.ended = new Promise((resolve) => {
      // 'close' follows 'exit' once both pipes ended; a process the kernel started may hold them open,
      // so its end is not waited for long. 'error' alone: it never started.
      this.#child.once('exit', (code, signal) => {
        this.#exited = true;
        const report = { code, signal };
        const timer = setTimeout(() => resolve(report), PIPE_GRACE_MS);
        this.#child.once('close', () => {
          clearTimeout(timer);
          resolve(report);
        });
      });
      this.#child.once('error', () => {
        this.#exited = true;
        setImmediate(() => resolve({ code: null, signal: null }));
      });
    });
  }

  /** Resolves once the program runs; rejects when it cannot be started (not found, not executable). */
  started(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#child.pid !== undefined) return resolve();
      this.#child.once('spawn', resolve);
      this.#child.once('error', reject);
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  get exited(): boolean {
    return this.#exited;
  }

  get stdout(): Readable {
    return this.#child.stdout!;
  }

  get stderr(): Readable {
    return this.#child.stderr!;
  }

  /** Signal the whole process group, even after its leader exited (what it started may live on). */
  signal(signal: NodeJS.Signals): void {
    signalGroup(this.#child, signal);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has ended. */
  async stop(graceMs: number): Promise<ExitReport> {
    if (!this.#exited) {
      this.signal('SIGTERM');
      const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
      await this.ended;
      clearTimeout(timer);
    }
    this.signal('SIGKILL');
    return this.ended;
  }
}
