/**
 * Byte streams multiplexed over one launcher connection, with flow control per stream: a sender
 * may have at most STREAM_WINDOW bytes of a stream that the receiver has not yet passed on (to a
 * kernel's socket, to the gateway's ZeroMQ socket, to the log); the receiver grants bytes again
 * with ack frames once it has. So a busy channel (iopub) cannot make either side buffer without
 * bound, and one stream waiting for its reader never holds up the others. A peer that sends beyond
 * its window breaks the protocol and loses the connection.
 *
 * Each side opens streams with ids of its own parity (launcher odd, gateway even); stream 0 is the
 * control stream, which is not one of these.
 */
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { FrameKind, MAX_DATA_BYTES } from './protocol.ts';

export const STREAM_WINDOW = 512 * 1024;
/** Open streams per connection (a kernel uses five channels, two output streams, and a few more across restarts). */
export const MAX_STREAMS = 32;
/**
 * Consumed bytes are acknowledged in batches of this size. A sender is never left waiting by it: it
 * stops only with a whole window unacknowledged, of which at least a batch is then passed on.
 */
const ACK_BATCH = 64 * 1024;

/** What a stream needs from its connection. */
export interface StreamCarrier {
  sendFrame(kind: FrameKind, stream: number, payload?: Buffer): void;
  /** The peer broke the protocol: end the connection. */
  violation(message: string): void;
}

export class Stream {
  /** Incoming bytes; call `consumed` once they have been passed on (it grants them to the sender again). */
  ondata: (chunk: Buffer, consumed: () => void) => void = (_chunk, consumed) => consumed();
  /** Everything written has been sent: the source may be read again. */
  ondrain: () => void = () => undefined;
  /** The stream ended (either side closed it, or the connection went). Called once. */
  onclose: (reason: string) => void = () => undefined;

  #credit = STREAM_WINDOW;
  readonly #pending: Buffer[] = [];
  #pendingBytes = 0;
  #allowance = STREAM_WINDOW;
  #unacked = 0;
  #ending = false;
  #closed = false;
  /** A write returned false: the source waits for ondrain. */
  #blocked = false;

  constructor(
    readonly id: number,
    readonly label: string,
    private readonly carrier: StreamCarrier,
    private readonly forget: (stream: Stream) => void,
  ) {}

  get closed(): boolean {
    return this.#closed;
  }

  /** Bytes accepted but not yet sent (beyond the window). */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Queue bytes; false when they could not all go out at once: pause the source until ondrain. */
  write(chunk: Buffer): boolean {
    if (this.#closed || this.#ending) return false;
    if (chunk.length > 0) {
      this.#pending.push(chunk);
      this.#pendingBytes += chunk.length;
      this.#flush();
    }
    this.#blocked = this.#pendingBytes > 0;
    return !this.#blocked;
  }

  /** Close once everything written has been sent. */
  end(): void {
    if (this.#closed) return;
    this.#ending = true;
    if (this.#pendingBytes === 0) this.close('ended');
  }

  /** Close now, telling the peer. */
  close(reason = 'closed'): void {
    if (this.#closed) return;
    this.carrier.sendFrame(FrameKind.close, this.id);
    this.#finish(reason);
  }

  /** A frame for this stream from the peer. */
  receive(kind: FrameKind, payload: Buffer): void {
    if (this.#closed) return;
    if (kind === FrameKind.data) {
      if (payload.length > this.#allowance) return this.carrier.violation(`stream ${this.id} (${this.label}): ${payload.length} bytes sent beyond the window`);
      this.#allowance -= payload.length;
      let done = false;
      this.ondata(payload, () => {
        if (done) return;
        done = true;
        this.#consumed(payload.length);
      });
    } else if (kind === FrameKind.ack) {
      const granted = payload.length === 4 ? payload.readUInt32BE(0) : -1;
      if (granted < 0 || this.#credit + granted > STREAM_WINDOW) return this.carrier.violation(`stream ${this.id}: bad ack`);
      this.#credit += granted;
      this.#flush();
    } else if (kind === FrameKind.close) {
      this.#finish('closed by the peer');
    }
  }

  /** The connection is gone. */
  lost(reason: string): void {
    this.#finish(reason);
  }

  #finish(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending.length = 0;
    this.#pendingBytes = 0;
    this.forget(this);
    this.onclose(reason);
  }

  #flush(): void {
    while (this.#pendingBytes > 0 && this.#credit > 0 && !this.#closed) {
      const head = this.#pending[0];
      const size = Math.min(head.length, this.#credit, MAX_DATA_BYTES);
      const piece = size === head.length ? head : head.subarray(0, size);
      if (size === head.length) this.#pending.shift();
      else this.#pending[0] = head.subarray(size);
      this.#pendingBytes -= size;
      this.#credit -= size;
      this.carrier.sendFrame(FrameKind.data, this.id, piece);
    }
    if (this.#pendingBytes > 0 || this.#closed) return;
    if (this.#ending) this.close('ended');
    else if (this.#blocked) {
      this.#blocked = false;
      this.ondrain();
    }
  }

  #consumed(bytes: number): void {
    if (this.#closed) return;
    this.#unacked += bytes;
    if (this.#unacked < ACK_BATCH) return;
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32BE(this.#unacked);
    this.#allowance += this.#unacked;
    this.#unacked = 0;
    this.carrier.sendFrame(FrameKind.ack, this.id, payload);
  }
}

/** The streams of one connection: opening, routing frames, refusing what is not allowed. */
export class StreamTable {
  /** A stream the peer opened; return false to refuse it. */
  onopen: (stream: Stream) => boolean = () => false;
  readonly #streams = new Map<number, Stream>();
  #nextId: number;

  constructor(
    private readonly carrier: StreamCarrier,
    /** Launchers open odd ids, the gateway even ones. */
    readonly ownParity: 0 | 1,
  ) {
    this.#nextId = ownParity === 1 ? 1 : 2;
  }

  get size(): number {
    return this.#streams.size;
  }

  /** Open a stream to the peer; undefined when this connection has too many. */
  open(label: string): Stream | undefined {
    if (this.#streams.size >= MAX_STREAMS) return undefined;
    const id = this.#nextId;
    this.#nextId += 2;
    const stream = this.#add(id, label);
    this.carrier.sendFrame(FrameKind.open, id, Buffer.from(label, 'utf8'));
    return stream;
  }

  receive(kind: FrameKind, id: number, payload: Buffer): void {
    if (kind !== FrameKind.open) {
      // Frames for a stream already closed here may still be on their way: nothing to do.
      this.#streams.get(id)?.receive(kind, payload);
      return;
    }
    if (id === 0 || id % 2 === this.ownParity || id >= 2 ** 31 || this.#streams.has(id) || payload.length > 64) {
      return this.carrier.violation(`bad stream open (id ${id})`);
    }
    const stream = this.#add(id, payload.toString('utf8'));
    if (this.#streams.size > MAX_STREAMS || !this.onopen(stream)) stream.close('refused');
  }

  /** The connection is gone: every stream ends. */
  lostAll(reason: string): void {
    for (const stream of [...this.#streams.values()]) stream.lost(reason);
  }

  #add(id: number, label: string): Stream {
    const stream = new Stream(id, label, this.carrier, (done) => this.#streams.delete(done.id));
    this.#streams.set(id, stream);
    return stream;
  }
}

/**
 * Connect a TCP socket and a stream: bytes flow both ways, each side pauses while the other cannot
 * take more, and either end closing closes the other (after what was already written).
 */
export function pipeSocket(socket: Socket, stream: Stream): void {
  socket.setNoDelay(true);
  socket.on('data', (chunk: Buffer) => {
    if (!stream.write(chunk) && !stream.closed) socket.pause();
  });
  stream.ondrain = () => socket.resume();
  stream.ondata = (chunk, consumed) => {
    if (socket.destroyed) return consumed();
    socket.write(chunk, () => consumed());
  };
  socket.on('close', () => stream.end());
  socket.on('error', () => stream.close('socket error'));
  stream.onclose = () => {
    if (!socket.destroyed) socket.end();
  };
}

/** Send what a readable (a kernel's stdout) produces over a stream, pausing it while the peer cannot take more. */
export function pipeReadable(readable: Readable, stream: Stream): void {
  readable.on('data', (chunk: Buffer) => {
    if (!stream.write(chunk) && !stream.closed) readable.pause();
  });
  stream.ondrain = () => readable.resume();
  readable.on('end', () => stream.end());
  readable.on('error', () => stream.close('read error'));
  // Nobody listens any more: keep reading, so the writer never blocks on a full pipe.
  stream.onclose = () => readable.resume();
}
