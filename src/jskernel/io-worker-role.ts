/**
 * How the JavaScript kernel's socket worker thread is recognised (server.ts starts it). Kept apart
 * from the kernel, so that the gateway's entry can ask without loading the kernel and zeromq, and
 * without node:worker_threads: the gateway's own start never needs it.
 */

/** Marks the worker's workerData. */
export const IO_ROLE = 'kernelgateway-jskernel-io';

/** The command the worker's command line names: the worker runs the `kernel` command's code. */
const IO_WORKER_COMMAND = 'kernel';

/** The worker's command line (process.argv after the script). */
export const ioWorkerArgv = (connectionFile: string): string[] => [IO_WORKER_COMMAND, '-f', connectionFile];

/** What isIoWorker reads of node:worker_threads. */
export interface ThreadInfo {
  isMainThread: boolean;
  workerData: unknown;
}

/** True in the socket worker thread (where an entry script must not start anything else). */
export function isIoWorker(threads: ThreadInfo): boolean {
  return !threads.isMainThread && (threads.workerData as { role?: unknown } | undefined)?.role === IO_ROLE;
}

/**
 * isIoWorker for an entry script: only the `kernel` command can be the worker (ioWorkerArgv), so
 * node:worker_threads is loaded to ask only then.
 */
export async function runsAsIoWorker(argv: readonly string[]): Promise<boolean> {
  if (!argv.includes(IO_WORKER_COMMAND)) return false;
  return isIoWorker(await import('node:worker_threads'));
}
