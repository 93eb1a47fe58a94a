/**
 * How a client's messages reach its TCP socket. Frames sent in one turn of the event loop leave in
 * one write: otherwise a burst of kernel messages costs a writev system call per frame and per
 * client, most of the gateway's CPU in a flood. The socket is corked at the first small frame of a
 * turn and uncorked when the turn's work is done (process.nextTick runs once the burst's promise jobs
 * are through), or as soon as the batch holds BATCH_BYTES: memory stays bounded, and big frames gain
 * nothing by waiting.
 *
 * This needs the TCP socket under the WebSocket, which ws 8 keeps in `_socket`; without it, frames
 * are sent one by one, as before.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

const BATCH_BYTES = 64 * 1024;

/** The TCP socket under a `ws` WebSocket; undefined if ws no longer keeps it there. */
function tcpSocketOf(ws: WebSocket): Duplex | undefined {
  const socket = (ws as unknown as { _socket?: Partial<Duplex> })._socket;
  return typeof socket?.cork === 'function' && typeof socket.uncork === 'function' ? (socket as Duplex) : undefined;
}

export class FrameWriter {
  readonly #ws: WebSocket;
  readonly #tcp: Duplex | undefined;
  #corked = false;
  #bytes = 0;
  readonly #flush = () => this.flush();

  constructor(ws: WebSocket) {
    this.#ws = ws;
    this.#tcp = tcpSocketOf(ws);
  }

  /** One WebSocket message. */
  send(data: Buffer, binary: boolean): void {
    const tcp = this.#tcp;
    if (!tcp || data.length >= BATCH_BYTES) {
      this.flush();
      this.#ws.send(data, { binary });
      return;
    }
    if (!this.#corked) {
      this.#corked = true;
      tcp.cork();
      process.nextTick(this.#flush);
    }
    this.#ws.send(data, { binary });
    this.#bytes += data.length;
    if (this.#bytes >= BATCH_BYTES) this.flush();
  }

  /** Send what the batch holds now. */
  flush(): void {
    if (!this.#corked) return;
    this.#corked = false;
    this.#bytes = 0;
    this.#tcp!.uncork();
  }
}
