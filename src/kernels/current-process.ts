/**
 * A kernel's current process, as its provisioner launched it: whether it has exited, and waiting for
 * that with a deadline. A new process makes the previous one's exit irrelevant (its generation is over).
 */
import type { ExitStatus, LaunchedProcess } from './provisioners/provisioner.ts';

export class CurrentProcess {
  #launched: LaunchedProcess | undefined;
  #exited = true;
  #generation = 0;

  get pid(): number | undefined {
    return this.#launched?.pid;
  }

  /** A process was ever launched. */
  get launched(): boolean {
    return this.#launched !== undefined;
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** Watch a newly launched process; `onExit` hears of its end unless a newer one replaced it by then. */
  watch(launched: LaunchedProcess, onExit: (status: ExitStatus) => void): void {
    const generation = ++this.#generation;
    this.#launched = launched;
    this.#exited = false;
    void launched.exited.then((status) => {
      if (generation !== this.#generation) return;
      this.#exited = true;
      onExit(status);
    });
  }

  /** True once the process has exited (at once if it has), false after `ms`. */
  waitExit(ms: number): Promise<boolean> {
    const exited = this.#launched?.exited;
    if (!exited || this.#exited) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), ms);
      void exited.then(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}
