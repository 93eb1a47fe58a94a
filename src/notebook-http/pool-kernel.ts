/**
 * What notebook-http needs from the kernel layer: kernels that run code and report its outputs, and a
 * source of fresh kernels already seeded with the notebook's setup cells. Nothing here knows of
 * ZeroMQ, kernelspecs or processes.
 */
import type { SeedNotebook } from '../kernels/seed.ts';

/** An iopub output of one execution; other message types (display_data, ...) need not be reported. */
export type KernelOutput =
  /** `stream` content; `name` is 'stdout' or 'stderr' (some kernels leave it out). */
  | { type: 'stream'; name?: string; text: string }
  /** `execute_result` content's data bundle (mime type → value). */
  | { type: 'execute_result'; data: Record<string, unknown> }
  | { type: 'error'; ename: string; evalue: string; traceback?: string[] };

export interface PoolKernel {
  /** For logs. */
  readonly id: string;
  /** False once the kernel has died or been shut down (already false when a death rejects executions or calls onDeath's callbacks). */
  readonly alive: boolean;
  /**
   * Run `code` (execute_request with allow_stdin false, stop_on_error false) and resolve with the outputs
   * whose parent is this request, in arrival order, once the kernel reports `idle` for it (or answers
   * the request `aborted`: then the outputs end with an error, as the code did not run).
   * Rejects when `signal` aborts (at once, leaving the execution to the kernel), when the kernel dies,
   * and at once when `signal` is already aborted.
   */
  execute(code: string, signal: AbortSignal): Promise<KernelOutput[]>;
  /** Ask the kernel to interrupt what it runs (by its kernelspec's interrupt mode). */
  interrupt(): Promise<void>;
  /**
   * `callback` runs once when the kernel dies, or is restarted by anyone but the pool: either way its
   * memory, including the setup cells' state, is gone.
   */
  onDeath(callback: () => void): void;
  /** Stop the kernel and release what it holds; never rejects for a kernel that is already gone. */
  shutdown(): Promise<void>;
}

export interface KernelSource {
  /**
   * Start a kernel for the notebook and run its setup cells in it, one after the other; resolve when it
   * is ready to serve. Rejects (and leaves nothing running) when the kernel cannot start or a setup
   * cell fails, with an error naming the cell.
   */
  start(): Promise<PoolKernel>;
}

/**
 * How the kernel layer is asked for the kernels of a notebook: `seed` is the notebook's kernelspec name
 * (--force-kernel-name applies on the kernel layer's side), its language and its setup cells (code
 * cells that are neither endpoint nor ResponseInfo cells), in the shape seeding already runs.
 */
export type KernelSourceFactory = (seed: SeedNotebook) => KernelSource;
