/** Waiting for a kernel through any benchmark connection: a bounded wait, a cell, readiness. */
import type { KernelConnection } from './connections.ts';

const READY_TIMEOUT_MS = 60_000;

/**
 * Runs `body` until it calls done or fail; fails on timeout or when a connection breaks.
 * `body` returns its teardown (listeners, timers), always called once.
 */
export function until<T>(
  describe: () => string,
  timeoutMs: number,
  connections: readonly KernelConnection[],
  body: (done: (value: T) => void, fail: (error: Error) => void) => () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let teardown: (() => void) | undefined;
    const unbreak: (() => void)[] = [];
    const finish = (settle: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      teardown?.();
      for (const off of unbreak) off();
      settle();
    };
    const timer = setTimeout(() => finish(() => reject(new Error(`timed out after ${timeoutMs} ms: ${describe()}`))), timeoutMs);
    for (const connection of connections) {
      unbreak.push(connection.onBroken((error) => finish(() => reject(new Error(`${connection.label}: ${error.message} — while waiting for ${describe()}`)))));
    }
    try {
      const off = body(
        (value) => finish(() => resolve(value)),
        (error) => finish(() => reject(error)),
      );
      if (settled) off();
      else teardown = off;
    } catch (error) {
      finish(() => reject(error));
    }
  });
}

export function executeContent(code: string) {
  return { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true };
}

/** Runs a cell; resolves with its stdout, rejects on an error reply. */
export function runCell(connection: KernelConnection, code: string, timeoutMs = 30_000): Promise<string> {
  const request = connection.prepare('execute_request', executeContent(code));
  let stdout = '';
  let reply: Record<string, unknown> | undefined;
  let idle = false;
  return until(() => `${connection.label}: setup cell ${request.msgId}`, timeoutMs, [connection], (done, fail) => {
    const off = connection.listen(request.msgId, (message) => {
      if (message.msgType === 'stream' && message.content().name === 'stdout') stdout += String(message.content().text);
      if (message.channel === 'shell' && message.msgType === 'execute_reply') reply = message.content();
      if (message.msgType === 'status' && message.content().execution_state === 'idle') idle = true;
      if (!reply || !idle) return;
      if (reply.status === 'ok') done(stdout);
      else fail(new Error(`${connection.label}: setup cell failed: ${String(reply.ename)}: ${String(reply.evalue)}`));
    });
    connection.send(request).catch(fail);
    return off;
  });
}

/** One execute, timed from send until both execute_reply and the iopub idle for it arrived (ms). */
export function executeOnce(connection: KernelConnection, code = 'pass', timeoutMs = 10_000): Promise<number> {
  const request = connection.prepare('execute_request', executeContent(code));
  let reply = false;
  let idle = false;
  return until(
    () => `${connection.label}: execute ${request.msgId} (execute_reply ${reply ? 'arrived' : 'missing'}, idle ${idle ? 'arrived' : 'missing'})`,
    timeoutMs,
    [connection],
    (done, fail) => {
      const off = connection.listen(request.msgId, (message) => {
        if (message.channel === 'shell' && message.msgType === 'execute_reply') {
          const status = message.content().status;
          if (status !== 'ok') return fail(new Error(`${connection.label}: execute_reply status ${String(status)}`));
          reply = true;
        } else if (message.channel === 'iopub' && message.msgType === 'status' && message.content().execution_state === 'idle') {
          idle = true;
        }
        if (reply && idle) done(performance.now() - start);
      });
      const start = performance.now();
      connection.send(request).catch(fail);
      return off;
    },
  );
}

/** Sends kernel_info_request until one gets both its reply and an iopub message (kernel starting; ZeroMQ slow joiner). */
export async function ready(connection: KernelConnection, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    const request = connection.prepare('kernel_info_request', {});
    let reply = false;
    let iopub = false;
    try {
      await until(
        () => `kernel_info ${request.msgId}`,
        Math.max(1, Math.min(2000, deadline - Date.now())),
        [connection],
        (done, fail) => {
          const off = connection.listen(request.msgId, (message) => {
            if (message.channel === 'shell' && message.msgType === 'kernel_info_reply') reply = true;
            if (message.channel === 'iopub') iopub = true;
            if (reply && iopub) done(undefined);
          });
          connection.send(request).catch(fail);
          return off;
        },
      );
      return;
    } catch (error) {
      if (connection.broken || Date.now() >= deadline) {
        throw new Error(`${connection.label}: kernel not ready after ${attempt} kernel_info_requests in ${timeoutMs} ms ` + `(last one: reply ${reply ? 'arrived' : 'missing'}, iopub ${iopub ? 'arrived' : 'missing'}): ${(error as Error).message}`);
      }
    }
  }
}

