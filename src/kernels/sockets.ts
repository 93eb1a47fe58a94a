/**
 * Small pieces over zeromq v6 sockets: a send queue (v6 allows one send in flight per socket)
 * and a receive loop that survives a closed socket.
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

function byteLength(frames: Buffer[]): number {
  let total = 0;
  for (const frame of frames) total += frame.length;
  return total;
}

/** Calls `onMessage` for every multipart message until the socket closes. */
export async function receiveLoop(
  socket: Readable,
  onMessage: (frames: Buffer[]) => void,
  onError: (error: Error) => void,
): Promise<void> {
  try {
    for await (const frames of socket) onMessage(frames);
  } catch (error) {
    if (!socket.closed) onError(error as Error);
  }
}
