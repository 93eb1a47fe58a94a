/**
 * After heavy kernel traffic, one garbage collection once the gateway is quiet. The frames of a
 * received ZeroMQ message are Buffers over memory libzmq allocated (zero-copy); it is freed only when
 * V8 collects those Buffers, and V8 keeps the pages its own heap grew to during a burst. Left alone,
 * both can stay for minutes. The collection is V8's asynchronous (incremental) one, so the event loop
 * is not stopped; where no collection can be asked for (the runtime refuses --expose-gc), nothing
 * happens.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Traffic after which a collection is worth it. */
const AFTER_BYTES = 16 * 1024 * 1024;
/** How long the gateway must be quiet first (ms). */
const QUIET_MS = 1000;

type Gc = (options?: { type?: string; execution?: string }) => void;

let gc: Gc | undefined | null = null; // null: not looked for yet
let bytes = 0;
let lastTraffic = 0;
let timer: NodeJS.Timeout | undefined;

function findGc(): Gc | undefined {
  try {
    setFlagsFromString('--expose-gc');
    // A context made after the flag is set has gc(); the main one does not.
    const found = runInNewContext('typeof gc === "function" ? gc : undefined') as Gc | undefined;
    return typeof found === 'function' ? found : undefined;
  } catch {
    return undefined;
  }
}

/** Count `n` bytes of messages that went through; schedules the collection once there were enough. */
export function trafficPassed(n: number): void {
  bytes += n;
  lastTraffic = Date.now();
  if (bytes < AFTER_BYTES || timer) return;
  timer = setInterval(() => {
    if (Date.now() - lastTraffic < QUIET_MS) return;
    clearInterval(timer);
    timer = undefined;
    bytes = 0;
    if (gc === null) gc = findGc();
    gc?.({ type: 'major', execution: 'async' });
  }, QUIET_MS);
  timer.unref();
}
