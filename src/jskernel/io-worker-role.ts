/**
 * How the JavaScript kernel's socket worker thread is recognised (server.ts starts it). Kept apart
 * from the kernel, so that the gateway's entry can ask without loading the kernel and zeromq.
 */
import { isMainThread, workerData } from 'node:worker_threads';

/** Marks the worker's workerData. */
export const IO_ROLE = 'kernelgateway-jskernel-io';

/** True in the socket worker thread (where an entry script must not start anything else). */
export function isIoWorker(): boolean {
  return !isMainThread && (workerData as { role?: unknown } | undefined)?.role === IO_ROLE;
}
