/**
 * Giving back the memory of kernel messages. The parts of a received ZeroMQ message are Buffers (the
 * iopub subscriber's own, or zero-copy ones over libzmq's memory for the other channels); their memory
 * is freed only when V8 collects them. Left alone, a 50 MB output stays until some later collection
 * (the next one may find two). So once big messages have been written to the clients, a collection
 * frees them (a minor one is not enough: the memory pressure a message itself reports to V8 has usually
 * made its Buffers old by then). It comes as soon as 32 MB of them wait, so a 50 MB output is freed
 * before the next one arrives, else after 50 ms without another: each collection marks the whole heap
 * (~15 ms of the gateway's thread here), and a burst of ten 5 MB outputs had paid for ten of them on its
 * way. It is V8's asynchronous (incremental) major collection, which does not stop the event loop.
 * What a burst leaves once the traffic pauses is given back by src/memory-release.ts. Where no
 * collection can be asked for (the runtime refuses --expose-gc), nothing happens.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** A message at least this big is collected for once it is written. */
export const BIG_MESSAGE_BYTES = 4 * 1024 * 1024;
/** Big messages written and not yet collected for: this many bytes of them are collected at once. */
const COLLECT_AT_BYTES = 32 * 1024 * 1024;
/** Otherwise after this long without another big message (ms). */
const BIG_QUIET_MS = 50;

export type Gc = (options?: { type?: string; execution?: string; flavor?: string }) => void;

let gc: Gc | undefined | null = null; // null: not looked for yet
let uncollectedBytes = 0;
/** The collection for big messages written, when one is due. */
let bigCollection: NodeJS.Timeout | undefined;
/** Messages already counted: each client's write of the same encoded message reports it. */
const counted = new WeakSet<object>();

/** V8's gc(), looked for once; undefined where the runtime refuses --expose-gc. */
export function v8Gc(): Gc | undefined {
  if (gc === null) gc = findGc();
  return gc;
}

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

function collect(): void {
  uncollectedBytes = 0;
  clearTimeout(bigCollection);
  bigCollection = undefined;
  v8Gc()?.({ type: 'major', execution: 'async' });
}

/**
 * `message` (its encoded chunks), `bytes` long, was written to a client, perhaps one of several: collect
 * once this turn is over when enough waits, else once big messages stop coming for a moment.
 */
export function bigMessageWritten(message: object, bytes: number): void {
  if (counted.has(message)) return;
  counted.add(message);
  uncollectedBytes += bytes;
  clearTimeout(bigCollection);
  bigCollection = setTimeout(collect, uncollectedBytes < COLLECT_AT_BYTES ? BIG_QUIET_MS : 0);
  bigCollection.unref();
}
