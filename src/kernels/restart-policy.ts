/**
 * When a kernel that died is restarted, and when it is given up, as Jupyter's restarter does: a death
 * soon after the previous restart (or before the kernel was ever ready) counts as one more in a row;
 * past the limit the kernel is dead for good.
 */
export const RESTART_LIMIT = 5;
/** A process that lived this long after its restart started well: its next death starts a new count. */
const STABLE_START_MS = 10_000;

export class RestartPolicy {
  #inARow = 0;
  #lastRestart = 0;
  /** The kernel answered kernel_info at least once. */
  everReady = false;

  /** A death: the attempt number of the restart to make, or undefined to give up. */
  died(now = Date.now()): number | undefined {
    this.#inARow = now - this.#lastRestart < STABLE_START_MS || !this.everReady ? this.#inARow + 1 : 1;
    this.#lastRestart = now;
    return this.#inARow > RESTART_LIMIT ? undefined : this.#inARow;
  }
}
