/**
 * How a client's messages reach its TCP socket, doing two things `ws` does not:
 *
 * - Batching: frames sent in one turn of the event loop leave in one write. Otherwise a burst of
 *   kernel messages costs a writev system call per frame and per client, most of the gateway's CPU in
 *   a flood. The socket is corked at the first small frame of a turn and uncorked when the turn's work
 *   is done (process.nextTick runs once the burst's promise jobs are through), or as soon as the batch
 *   holds BATCH_BYTES: memory stays bounded, and big frames gain nothing by waiting.
 * - One frame from several chunks (chunks.ts): the frame header is written here and the chunks after
 *   it as they are, so the big parts ZeroMQ delivered are not copied into one Buffer first. (ws would
 *   need that copy, and its fragments would cost the client a copy more when it joins them.)
 *
 * Both need the TCP socket under the WebSocket, which ws 8 keeps in `_socket`. ws writes its own
 * frames (pings, close) straight to that socket too, and with permessage-deflate off it never holds
 * one back, so frames cannot interleave. Without the socket, messages go through ws.send, copied and
 * unbatched, and nothing else changes.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';

const BATCH_BYTES = 64 * 1024;
const OPEN = 1; // WebSocket.OPEN
const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;
const FIN = 0x80;

/** The TCP socket under a `ws` WebSocket; undefined if ws no longer keeps it there. */
function tcpSocketOf(ws: WebSocket): Duplex | undefined {
  const socket = (ws as unknown as { _socket?: Partial<Duplex> })._socket;
  return typeof socket?.cork === 'function' && typeof socket.uncork === 'function' && typeof socket.write === 'function' ? (socket as Duplex) : undefined;
}

/** An unmasked (server to client) frame header for a whole message of `length` bytes (RFC 6455 §5.2). */
function frameHeader(length: number, binary: boolean): Buffer {
  const first = FIN | (binary ? OPCODE_BINARY : OPCODE_TEXT);
  if (length < 126) return Buffer.from([first, length]);
  if (length < 65536) {
    const header = Buffer.allocUnsafe(4);
    header[0] = first;
    header[1] = 126;
    header.writeUInt16BE(length, 2);
    return header;
  }
  const header = Buffer.allocUnsafe(10);
  header[0] = first;
  header[1] = 127;
  header.writeBigUInt64BE(BigInt(length), 2);
  return header;
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

  /** One WebSocket message made of `chunks` (`bytes` in all); `written` once the socket took all of it. */
  send(chunks: readonly Buffer[], bytes: number, binary: boolean, written?: () => void): void {
    const tcp = this.#tcp;
    if (!tcp || this.#ws.readyState !== OPEN) {
      this.#ws.send(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, bytes), { binary }, written && (() => written()));
      return;
    }
    if (bytes >= BATCH_BYTES) {
      this.flush();
      tcp.cork();
      this.#writeFrame(tcp, chunks, bytes, binary, written);
      tcp.uncork();
      return;
    }
    if (!this.#corked) {
      this.#corked = true;
      tcp.cork();
      process.nextTick(this.#flush);
    }
    this.#writeFrame(tcp, chunks, bytes, binary, written);
    this.#bytes += bytes;
    if (this.#bytes >= BATCH_BYTES) this.flush();
  }

  /** Send what the batch holds now. */
  flush(): void {
    if (!this.#corked) return;
    this.#corked = false;
    this.#bytes = 0;
    this.#tcp!.uncork();
  }

  #writeFrame(tcp: Duplex, chunks: readonly Buffer[], bytes: number, binary: boolean, written?: () => void): void {
    tcp.write(frameHeader(bytes, binary));
    const last = chunks.length - 1;
    for (let i = 0; i < last; i++) tcp.write(chunks[i]);
    if (written) tcp.write(chunks[last], () => written());
    else tcp.write(chunks[last]);
  }
}
