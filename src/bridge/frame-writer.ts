/**
 * How a client's messages reach its TCP socket, doing two things `ws` does not:
 *
 * - Batching: frames sent in one turn of the event loop leave in one write. Otherwise a burst of
 *   kernel messages costs a writev system call per frame and per client, most of the gateway's CPU in
 *   a flood. The socket is corked at the first small frame of a turn and uncorked when the turn's work
 *   is done (process.nextTick runs once the burst's promise jobs are through), or as soon as the batch
 *   holds BATCH_BYTES: memory stays bounded, and big frames gain nothing by waiting.
 * - One frame from several chunks (chunks.ts): the frame header, made once per message whatever the
 *   number of clients (OutgoingFrame), is written and the chunks after it as they are, so the big parts
 *   ZeroMQ delivered are not copied into one Buffer first. (ws would need that copy, and its fragments
 *   would cost the client a copy more when it joins them.)
 *
 * Both need the TCP socket under the WebSocket, which ws 8 keeps in `_socket`. ws writes its own
 * frames (pings, close) straight to that socket too, and with permessage-deflate off it never holds
 * one back, so frames cannot interleave. Without the socket, messages go through ws.send, copied and
 * unbatched, and nothing else changes.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { byteLength } from '../zmq/io.ts';
import { OWN_FRAGMENT_BYTES } from './chunks.ts';

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

/** Bytes of an unmasked (server to client) frame header for a message of `length` bytes (RFC 6455 §5.2). */
function headerBytes(length: number): number {
  return length < 126 ? 2 : length < 65536 ? 4 : 10;
}

/** Writes that header at the start of `target`. */
function writeFrameHeader(target: Buffer, length: number, binary: boolean): void {
  target[0] = FIN | (binary ? OPCODE_BINARY : OPCODE_TEXT);
  if (length < 126) {
    target[1] = length;
  } else if (length < 65536) {
    target[1] = 126;
    target.writeUInt16BE(length, 2);
  } else {
    target[1] = 127;
    target.writeBigUInt64BE(BigInt(length), 2);
  }
}

/**
 * One WebSocket message: its payload as chunks (chunks.ts) and, made once for every client it goes
 * to, the same behind its frame header, ready for a TCP socket.
 */
export class OutgoingFrame {
  readonly bytes: number;
  #wire: Buffer[] | undefined;

  constructor(
    readonly chunks: Buffer[],
    readonly binary: boolean,
  ) {
    this.bytes = byteLength(chunks);
  }

  /** Header and payload; a small first chunk shares one Buffer with the header (one write fewer). */
  get wire(): Buffer[] {
    if (this.#wire) return this.#wire;
    const [first = Buffer.alloc(0), ...rest] = this.chunks;
    const size = headerBytes(this.bytes);
    const joined = first.length < OWN_FRAGMENT_BYTES;
    const head = Buffer.allocUnsafe(size + (joined ? first.length : 0));
    writeFrameHeader(head, this.bytes, this.binary);
    if (!joined) return (this.#wire = [head, ...this.chunks]);
    first.copy(head, size);
    return (this.#wire = [head, ...rest]);
  }
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

  /** One WebSocket message; `written` once the socket took all of it. */
  send(frame: OutgoingFrame, written?: () => void): void {
    const tcp = this.#tcp;
    const { chunks, bytes, binary } = frame;
    if (!tcp || this.#ws.readyState !== OPEN) {
      this.#ws.send(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, bytes), { binary }, written && (() => written()));
      return;
    }
    if (bytes >= BATCH_BYTES) {
      this.flush();
      tcp.cork();
      this.#writeFrame(tcp, frame.wire, written);
      tcp.uncork();
      return;
    }
    if (!this.#corked) {
      this.#corked = true;
      tcp.cork();
      process.nextTick(this.#flush);
    }
    this.#writeFrame(tcp, frame.wire, written);
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

  #writeFrame(tcp: Duplex, wire: readonly Buffer[], written?: () => void): void {
    const last = wire.length - 1;
    for (let i = 0; i < last; i++) tcp.write(wire[i]);
    if (written) tcp.write(wire[last], () => written());
    else tcp.write(wire[last]);
  }
}
