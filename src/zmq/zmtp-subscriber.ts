/**
 * A ZeroMQ SUB socket in JavaScript, for a kernel's iopub: ZMTP 3.0 (rfc.zeromq.org/spec/23) with
 * the NULL mechanism over TCP or IPC, connecting to one PUB and subscribed to everything.
 *
 * Why not zeromq's Subscriber: iopub is where floods come from, and there zeromq's receive() cost the
 * gateway more than everything else it does per message (a promise, and a Buffer with a finalizer for
 * every part over 128 bytes, made by the addon; measured ~20 µs of a small message's ~45). Here the
 * parts of a message are cut from the socket's reads: a few object allocations, no native call. The
 * request channels (shell, control, stdin) keep zeromq's DEALER: they carry little, and ROUTER routing
 * rules are worth a library.
 *
 * As libzmq does: the connection is retried every RECONNECT_MS until the publisher listens and after
 * it drops (a message cut by the drop is discarded); heartbeat PINGs are answered (a publisher with
 * ZMQ_HEARTBEAT_IVL drops a peer that does not); nothing is ever dropped for being slow to read.
 * A peer breaking the protocol is disconnected (reported once per connection) and retried.
 */
import { constants } from 'node:buffer';
import { connect, type Socket } from 'node:net';
import { IS_DENO } from './io.ts';

const RECONNECT_MS = 100;
/** Parts at least this long are filled as their bytes arrive; shorter ones are copied whole once all there. */
const BIG_PART_BYTES = 16 * 1024;
/** A frame's head: flags and a size of 1 or 8 bytes. */
const MAX_HEAD_BYTES = 9;
/** Parts up to this size get their Buffer as soon as their size is announced. */
const ONE_BUFFER_MAX = 64 * 1024 * 1024;
/** A message's last part at least this long can be followed while it arrives (onStream). */
export const STREAM_MIN_BYTES = 1024 * 1024;
/** While at least this much of a big part is still to come, the socket reads straight into its Buffer. */
const IN_PLACE_MIN_BYTES = 256 * 1024;
/** The largest part a Buffer can hold here. */
const MAX_PART_BYTES = Math.min(constants.MAX_LENGTH, Number.MAX_SAFE_INTEGER);
/** Reads from the socket go into one Buffer of this size, reused (the reader copies what it keeps). */
const READ_BUFFER_BYTES = 64 * 1024;
const EMPTY = Buffer.alloc(0);

const FLAG_MORE = 0x01;
const FLAG_LONG = 0x02;
const FLAG_COMMAND = 0x04;

/** Signature, version 3.0, mechanism NULL, as-server 0, filler (64 bytes). */
const GREETING = (() => {
  const bytes = Buffer.alloc(64);
  bytes[0] = 0xff;
  bytes[9] = 0x7f;
  bytes[10] = 3;
  bytes[11] = 0;
  bytes.write('NULL', 12, 'ascii');
  return bytes;
})();

/** A command frame (short form): the command's name, then `data`. */
function command(name: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from([name.length]), Buffer.from(name, 'ascii'), data]);
  return Buffer.concat([Buffer.from([FLAG_COMMAND, body.length]), body]);
}

/** The properties of a READY command (the NULL mechanism's metadata). */
function properties(values: Record<string, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [key, value] of Object.entries(values)) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(Buffer.byteLength(value), 0);
    parts.push(Buffer.from([key.length]), Buffer.from(key, 'ascii'), length, Buffer.from(value, 'utf8'));
  }
  return Buffer.concat(parts);
}

/**
 * What a SUB sends once it has the peer's greeting: READY, and a subscription to every topic. (libzmq
 * does not answer a READY that comes with the greeting's last bytes, so it waits for the peer's.)
 */
const AFTER_GREETING = Buffer.concat([command('READY', properties({ 'Socket-Type': 'SUB' })), Buffer.from([0x00, 0x01, 0x01])]);

export class ZmtpProtocolError extends Error {
  override name = 'ZmtpProtocolError';
}

/** Where to connect: `tcp://host:port` or `ipc://path`. */
function target(endpoint: string): { host: string; port: number } | { path: string } {
  const tcp = /^tcp:\/\/(.+):(\d+)$/.exec(endpoint);
  if (tcp) return { host: tcp[1].replace(/^\[(.*)\]$/, '$1'), port: Number(tcp[2]) };
  if (endpoint.startsWith('ipc://')) return { path: endpoint.slice('ipc://'.length) };
  throw new Error(`unsupported endpoint "${endpoint}" (tcp:// or ipc://)`);
}

/** A big part being filled as its bytes arrive: one Buffer of its size, or (past ONE_BUFFER_MAX) owned pieces. */
interface BigPart {
  size: number;
  filled: number;
  flags: number;
  buffer: Buffer | undefined;
  pieces: Buffer[];
  /** Where its bytes go as they arrive, when it is a message's last part. */
  stream: PartStream | undefined;
}

/**
 * A message whose last part is big, followed while that part arrives: so that work on its bytes (its
 * signature) is done while the rest is still on its way, instead of after the last byte.
 */
export interface PartStream {
  /** The part's next bytes: a view of memory the reader owns and does not overwrite. */
  data(piece: Buffer): void;
  /**
   * The part is all there: the whole message, as onMessage would have had it (onMessage does not).
   * When the connection ends first, nothing more comes.
   */
  end(parts: Buffer[]): void;
}

/** Asked when a message's last part of `size` bytes starts, after `parts` (read only): a PartStream to follow it, or none. */
export type StreamStart = (parts: readonly Buffer[], size: number) => PartStream | undefined;

/**
 * Reads ZMTP 3 frames from a byte stream; hands over every whole multipart message. It keeps nothing
 * of the Buffers it is given (the socket reads into one Buffer again and again): small parts are
 * copied out whole, a big part is copied into a Buffer of its own as its bytes arrive (so nothing is
 * left to join when its last byte comes), and the start of a frame cut by the end of a read is copied.
 * Or the socket reads the rest of a big part straight into its Buffer (readTarget, filledInPlace).
 */
export class ZmtpReader {
  readonly #greeting = Buffer.alloc(64);
  #greetingBytes = 0;
  #ready = false;
  /** The start of a frame that the last read cut (its head, or its head and part of a small body); owned. */
  #pending: Buffer = EMPTY;
  /** Set by #parse when it stopped at a frame that is not all there. */
  #short = false;
  #big: BigPart | undefined;
  #parts: Buffer[] = [];

  constructor(
    private readonly onMessage: (parts: Buffer[]) => void,
    private readonly onGreeted: () => void,
    /** The peer sent a heartbeat PING (ZMTP 3.1) with this context; it wants a PONG back. */
    private readonly onPing: (context: Buffer) => void = () => {},
    private readonly onStream?: StreamStart,
  ) {}

  /**
   * Where the next read from the socket should go: the rest of a big part still far from its end (the
   * socket fills it, and nothing is copied), or undefined for any Buffer (bytes then come to push()).
   */
  readTarget(): Buffer | undefined {
    const big = this.#big;
    if (!big?.buffer || big.size - big.filled < IN_PLACE_MIN_BYTES) return undefined;
    return big.buffer.subarray(big.filled);
  }

  /** `n` bytes were read into the Buffer readTarget() gave. */
  filledInPlace(n: number): void {
    const big = this.#big!;
    this.#filled(big, big.buffer!.subarray(big.filled, big.filled + n));
  }

  /** Takes the next bytes from the peer; throws ZmtpProtocolError when they break the protocol. */
  push(input: Buffer): void {
    let at = 0;
    if (this.#greetingBytes < 64) {
      at = input.copy(this.#greeting, this.#greetingBytes, 0, 64 - this.#greetingBytes);
      this.#greetingBytes += at;
      if (this.#greetingBytes < 64) return;
      this.#checkGreeting();
      this.onGreeted();
    }
    while (at < input.length) {
      if (this.#big) {
        at = this.#fillBig(input, at);
      } else if (this.#pending.length > 0) {
        // Complete the cut frame with what it needs of this read (at most a head and a small body).
        const old = this.#pending;
        const stitch = Buffer.concat([old, input.subarray(at, at + MAX_HEAD_BYTES + BIG_PART_BYTES)]);
        this.#pending = EMPTY;
        const used = this.#parse(stitch, 0, true);
        if (this.#short) {
          // Only when this read ended first: the stitch holds the rest of it.
          this.#pending = stitch.subarray(used);
          return;
        }
        at += used - old.length;
      } else {
        at = this.#parse(input, at, false);
        if (this.#short) {
          this.#pending = Buffer.from(input.subarray(at));
          return;
        }
      }
    }
  }

  #checkGreeting(): void {
    const peer = this.#greeting;
    if (peer[0] !== 0xff || peer[9] !== 0x7f) throw new ZmtpProtocolError('peer is not ZMTP 3 (bad signature)');
    if (peer[10] < 3) throw new ZmtpProtocolError(`peer speaks ZMTP ${peer[10]}.x; 3.0 or later is needed`);
    const mechanism = peer.subarray(12, 32).toString('ascii').replace(/\0+$/, '');
    if (mechanism !== 'NULL') throw new ZmtpProtocolError(`peer wants the ${mechanism} mechanism; only NULL is supported`);
  }

  /**
   * Frames from `buf` at `at` (only one if `one`); returns where it stopped. A frame that is not all
   * there stops it with #short set, unless it is a big part, which is started and filled with the rest.
   */
  #parse(buf: Buffer, at: number, one: boolean): number {
    this.#short = false;
    while (at < buf.length) {
      const available = buf.length - at;
      const flags = buf[at];
      const headBytes = flags & FLAG_LONG ? 9 : 2;
      if (available < headBytes) {
        this.#short = true;
        return at;
      }
      const size = flags & FLAG_LONG ? frameSize(buf, at + 1) : buf[at + 1];
      const bodyAt = at + headBytes;
      if (size >= BIG_PART_BYTES) {
        if (flags & FLAG_COMMAND) throw new ZmtpProtocolError(`command frame of ${size} bytes`);
        this.#startBig(size, flags);
        return this.#fillBig(buf, bodyAt);
      }
      if (buf.length - bodyAt < size) {
        this.#short = true;
        return at;
      }
      const body = buf.subarray(bodyAt, bodyAt + size);
      if (flags & FLAG_COMMAND) this.#onCommand(body);
      else this.#part(Buffer.from(body), flags);
      at = bodyAt + size;
      if (one) return at;
    }
    return at;
  }

  #startBig(size: number, flags: number): void {
    if (!this.#ready) throw new ZmtpProtocolError('message before the READY command');
    if (size > MAX_PART_BYTES) throw new ZmtpProtocolError(`message part of ${size} bytes (at most ${MAX_PART_BYTES})`);
    // Up to ONE_BUFFER_MAX the announced size is trusted at once; beyond, memory follows what arrives.
    const buffer = size <= ONE_BUFFER_MAX ? Buffer.allocUnsafeSlow(size) : undefined;
    const last = (flags & FLAG_MORE) === 0;
    const stream = last && size >= STREAM_MIN_BYTES ? this.onStream?.(this.#parts, size) : undefined;
    this.#big = { size, filled: 0, flags, buffer, pieces: [], stream };
  }

  #fillBig(buf: Buffer, at: number): number {
    const big = this.#big!;
    const n = Math.min(big.size - big.filled, buf.length - at);
    let piece: Buffer;
    if (big.buffer) {
      buf.copy(big.buffer, big.filled, at, at + n);
      piece = big.buffer.subarray(big.filled, big.filled + n);
    } else {
      piece = Buffer.from(buf.subarray(at, at + n));
      big.pieces.push(piece);
    }
    this.#filled(big, piece);
    return at + n;
  }

  /** `piece`, the big part's next bytes, is in its place. */
  #filled(big: BigPart, piece: Buffer): void {
    big.filled += piece.length;
    if (piece.length > 0) big.stream?.data(piece);
    if (big.filled === big.size) {
      this.#big = undefined;
      this.#part(big.buffer ?? Buffer.concat(big.pieces, big.size), big.flags, big.stream);
    }
  }

  #part(body: Buffer, flags: number, stream?: PartStream): void {
    if (!this.#ready) throw new ZmtpProtocolError('message before the READY command');
    this.#parts.push(body);
    if ((flags & FLAG_MORE) === 0) {
      const parts = this.#parts;
      this.#parts = [];
      if (stream) stream.end(parts);
      else this.onMessage(parts);
    }
  }

  #onCommand(body: Buffer): void {
    const nameLength = body[0] ?? 0;
    const name = body.subarray(1, 1 + nameLength).toString('ascii');
    if (name === 'READY') {
      this.#ready = true;
    } else if (name === 'PING') {
      // A PING has a 2-byte TTL, then up to 16 bytes of context to echo (libzmq sends them to 3.0 peers too,
      // and drops a peer that does not answer).
      this.onPing(Buffer.from(body.subarray(1 + nameLength + 2, 1 + nameLength + 2 + 16)));
    } else if (name === 'ERROR') {
      const reasonLength = body[1 + nameLength] ?? 0;
      throw new ZmtpProtocolError(`peer refused the connection: ${body.subarray(2 + nameLength, 2 + nameLength + reasonLength).toString('utf8')}`);
    }
    // Other commands (PONG and the like) need no answer.
  }
}

/** The 8-byte size of a long frame. */
function frameSize(buf: Buffer, at: number): number {
  const high = buf.readUInt32BE(at);
  if (high >= 0x20_0000) throw new ZmtpProtocolError('frame longer than 2^53 bytes');
  return high * 0x1_0000_0000 + buf.readUInt32BE(at + 4);
}

export interface ZmtpSubscriberOptions {
  endpoint: string;
  /** Every multipart message, as ZeroMQ would give it (the topic part first). */
  onMessage: (parts: Buffer[]) => void;
  /** A peer broke the protocol (the connection is retried), or the endpoint is unusable. */
  onError: (error: Error) => void;
  /**
   * A message's last part of STREAM_MIN_BYTES or more starts: a PartStream to follow it as it arrives
   * (its end then takes the message instead of onMessage), or none. What the stream throws is reported,
   * it is given nothing more, and the message then goes to onMessage.
   */
  onStream?: StreamStart;
}

/** A SUB socket connected to one publisher, subscribed to everything. */
export class ZmtpSubscriber {
  readonly #options: ZmtpSubscriberOptions;
  readonly #target: { host: string; port: number } | { path: string };
  #socket: Socket | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: ZmtpSubscriberOptions) {
    this.#options = options;
    this.#target = target(options.endpoint);
    this.#connect();
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#socket?.destroy();
    this.#socket = undefined;
  }

  #connect(): void {
    if (this.#closed) return;
    const { onMessage, onError, onStream } = this.#options;
    let socket: Socket | undefined;
    // A failure of what the message is handed to is not the connection's: it is reported, reading goes on.
    const deliver = (parts: Buffer[]) => {
      if (this.#socket !== socket) return; // closed by what an earlier message of the same read caused
      try {
        onMessage(parts);
      } catch (error) {
        onError(error as Error);
      }
    };
    // The same for a followed message (rare: no need to inline): a stream that throws is given nothing
    // more, and its message goes to onMessage whole.
    const reported = (action: () => void): boolean => {
      try {
        action();
        return true;
      } catch (error) {
        onError(error as Error);
        return false;
      }
    };
    const startStream: StreamStart | undefined =
      onStream &&
      ((parts, size) => {
        let stream: PartStream | undefined;
        if (this.#socket !== socket || !reported(() => (stream = onStream(parts, size))) || !stream) return undefined;
        const followed = stream;
        let failed = false;
        return {
          data: (piece) => {
            if (!failed) failed = !reported(() => followed.data(piece));
          },
          end: (whole) => {
            if (failed) deliver(whole);
            else if (this.#socket === socket) reported(() => followed.end(whole));
          },
        };
      });
    const reader = new ZmtpReader(
      deliver,
      () => socket?.write(AFTER_GREETING),
      (context) => socket?.write(command('PONG', context)),
      startStream,
    );
    // A read's bytes, or (a number) how many were read into reader.readTarget().
    const received = (chunk: Buffer | number) => {
      if (this.#socket !== socket) return;
      try {
        if (typeof chunk === 'number') reader.filledInPlace(chunk);
        else reader.push(chunk);
      } catch (error) {
        socket?.destroy();
        onError(error as Error);
      }
    };
    const where = 'path' in this.#target ? { path: this.#target.path } : { ...this.#target, noDelay: true };
    if (IS_DENO) {
      socket = connect(where);
      socket.on('data', received);
    } else {
      // Reads go into one Buffer shared by every subscriber (reads run one at a time, and the reader
      // keeps copies only) instead of a new one per read; or, in the middle of a big part, straight
      // into that part's own Buffer (a 50 MB output is then not copied once more).
      const shared = (readBuffer ??= Buffer.allocUnsafeSlow(READ_BUFFER_BYTES));
      socket = connect({
        ...where,
        onread: {
          buffer: () => reader.readTarget() ?? shared,
          callback: (n: number, buffer: Uint8Array) => {
            received(buffer === shared ? Buffer.from(buffer.buffer, buffer.byteOffset, n) : n);
            return true;
          },
        },
      });
    }
    this.#socket = socket;
    socket.write(GREETING);
    // A refused or dropped connection is retried as libzmq would; 'close' follows every ending.
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.#socket !== socket || this.#closed) return;
      this.#socket = undefined;
      this.#timer = setTimeout(() => this.#connect(), RECONNECT_MS);
    });
  }
}

let readBuffer: Buffer | undefined;
