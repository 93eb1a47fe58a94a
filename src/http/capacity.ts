/**
 * Room for one more client, judged by file descriptors: each WebSocket client costs one, and a
 * share is kept back for what the gateway itself must still be able to do (start kernels, answer
 * REST requests). A client refused here gets a clear 503 before the upgrade, instead of a socket that
 * fails later or a kernel start that fails for everyone. Linux only (elsewhere always room: the
 * operating system's own refusal stands).
 */
import { readdirSync, readFileSync } from 'node:fs';

const RECOUNT_MS = 500;

export class FileDescriptorBudget {
  #limit: number | undefined;
  #limitRead = false;
  #counted = 0;
  #countedAt = 0;
  #admittedSince = 0;

  /** undefined when there is room; else why not. */
  refusal(): string | undefined {
    const limit = this.#softLimit();
    if (limit === undefined) return undefined;
    const now = Date.now();
    if (now - this.#countedAt > RECOUNT_MS) {
      const open = openDescriptors();
      if (open === undefined) return undefined;
      this.#counted = open;
      this.#countedAt = now;
      this.#admittedSince = 0;
    }
    const inUse = this.#counted + this.#admittedSince;
    const reserve = Math.max(128, Math.floor(limit / 10));
    if (inUse + reserve < limit) {
      this.#admittedSince++;
      return undefined;
    }
    return (
      `the gateway is at its limit of open files (${inUse} of ${limit} in use, ${reserve} kept for kernels and requests); ` +
      'raise it with `ulimit -n` before starting the gateway, or try again later'
    );
  }

  #softLimit(): number | undefined {
    if (this.#limitRead) return this.#limit;
    this.#limitRead = true;
    try {
      const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
      const soft = Number(line?.split(/\s{2,}/)[1]);
      this.#limit = Number.isFinite(soft) && soft > 0 ? soft : undefined;
    } catch {
      this.#limit = undefined;
    }
    return this.#limit;
  }
}

function openDescriptors(): number | undefined {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return undefined;
  }
}
