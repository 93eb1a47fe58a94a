/**
 * Small pieces over zeromq v6 sockets, shared by the gateway and the programs it carries (the
 * JavaScript kernel): a send queue (v6 allows one send in flight per socket) and a receive loop that
 * survives a closed socket and works under Deno too.
 */
import type * as zmq from 'zeromq';

type Writable = zmq.Writable & zmq.Socket;
type Readable = zmq.Readable & zmq.Socket;

/** Sends multipart messages in order, one at a time, without making callers wait. */
export class SocketWriter {
  readonly #socket: Writable;
  readonly #queue: Buffer[][] = [];
  #sending = false;
  #queuedBytes = 0;

  constructor(socket: Writable, private readonly onError: (error: Error) => void) {
    this.#socket = socket;
  }

  /** Bytes accepted but not yet handed to ZeroMQ. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  write(frames: Buffer[]): void {
    this.#queue.push(frames);
    this.#queuedBytes += byteLength(frames);
    if (!this.#sending) void this.#drain();
  }

  async #drain(): Promise<void> {
    this.#sending = true;
    try {
      while (this.#queue.length > 0 && !this.#socket.closed) {
        const frames = this.#queue.shift()!;
        this.#queuedBytes -= byteLength(frames);
        await this.#socket.send(frames);
      }
    } catch (error) {
      if (!this.#socket.closed) this.onError(error as Error);
    } finally {
      this.#sending = false;
    }
  }
}

/** The bytes of a multipart message (or of any list of Buffers). */
export function byteLength(frames: readonly Buffer[]): number {
  let total = 0;
  for (const frame of frames) total += frame.length;
  return total;
}

/** True under Deno, whose libuv shim needs the polling receive below. */
export const IS_DENO = typeof (globalThis as { Deno?: unknown }).Deno === 'object';

/** Calls `onMessage` for every multipart message until the socket closes. */
export async function receiveLoop(
  socket: Readable,
  onMessage: (frames: Buffer[]) => void,
  onError: (error: Error) => void,
): Promise<void> {
  if (IS_DENO) return denoPoller.add({ socket, onMessage, onError });
  try {
    // receive() directly: zeromq's async iterator adds a promise and an object per message (~15 %
    // of receiving a small message). A closed socket rejects the pending receive (EAGAIN).
    while (!socket.closed) onMessage(await socket.receive());
  } catch (error) {
    if (!socket.closed) onError(error as Error);
  }
}

interface Inbound {
  socket: Readable;
  onMessage(frames: Buffer[]): void;
  onError(error: Error): void;
  done(): void;
}

/** Bounds of the wait between two looks at idle sockets under Deno (ms); it doubles while nothing comes. */
const POLL_MIN_MS = 1;
const POLL_MAX_MS = 16;
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Receiving under Deno. zeromq's addon waits for a message with a libuv poll handle that it starts once
 * per receive() and expects to fire again whenever the socket's descriptor turns readable; Deno's
 * libuv shim (2.9) fires such a handle once and then stops watching. The first wake-up of a waiting
 * receive() is often not a message (a peer connecting, say), and after it the receive() never
 * completes. So under Deno no receive() is left waiting: one loop asks every socket whether a message
 * is there (`readable`, which zeromq answers synchronously) and reads only then.
 */
class DenoPoller {
  readonly #active = new Set<Inbound>();
  #running = false;

  add(entry: Omit<Inbound, 'done'>): Promise<void> {
    return new Promise((resolve) => {
      this.#active.add({ ...entry, done: resolve });
      if (!this.#running) void this.#loop();
    });
  }

  async #loop(): Promise<void> {
    this.#running = true;
    let wait = POLL_MIN_MS;
    while (this.#active.size > 0) {
      let received = false;
      for (const entry of this.#active) {
        const { socket, onMessage, onError } = entry;
        try {
          // A bounded batch, so that one busy socket does not starve the others.
          for (let n = 0; n < 64 && !socket.closed && socket.readable; n++) {
            onMessage(await socket.receive());
            received = true;
          }
          if (socket.closed) this.#finish(entry);
        } catch (error) {
          this.#finish(entry); // as receiveLoop does: a failed socket is not read again
          if (!socket.closed) onError(error as Error);
        }
      }
      wait = received ? POLL_MIN_MS : Math.min(wait * 2, POLL_MAX_MS);
      await sleep(received ? 0 : wait);
    }
    this.#running = false;
  }

  #finish(entry: Inbound): void {
    this.#active.delete(entry);
    entry.done();
  }
}

const denoPoller = new DenoPoller();
