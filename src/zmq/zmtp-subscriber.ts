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
 * it drops (a message cut by the drop is discarded); nothing is ever dropped for being slow to read.
 * A peer breaking the protocol is disconnected (reported once per connection) and retried.
 */
import { connect, type Socket } from 'node:net';

const RECONNECT_MS = 100;
/** Message parts below this are copied out of the socket's read, so a kept part does not keep a whole read alive. */
const COPY_BELOW_BYTES = 16 * 1024;

const FLAG_MORE = 0x01;
const FLAG_LONG = 0x02;
const FLAG_COMMAND = 0x04;

/** Signature, version 3.0, mechanism NULL, as-server 0, filler (64 bytes). */
function greeting(): Buffer {
  const bytes = Buffer.alloc(64);
  bytes[0] = 0xff;
  bytes[9] = 0x7f;
  bytes[10] = 3;
  bytes[11] = 0;
  bytes.write('NULL', 12, 'ascii');
  return bytes;
}

/** A command frame (short form): name and properties, as the NULL mechanism's READY needs. */
function command(name: string, properties: Record<string, string>): Buffer {
  const parts: Buffer[] = [Buffer.from([name.length]), Buffer.from(name, 'ascii')];
  for (const [key, value] of Object.entries(properties)) {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(Buffer.byteLength(value), 0);
    parts.push(Buffer.from([key.length]), Buffer.from(key, 'ascii'), length, Buffer.from(value, 'utf8'));
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([FLAG_COMMAND, body.length]), body]);
}

/**
 * What a SUB sends once it has the peer's greeting: READY, and a subscription to every topic. (libzmq
 * does not answer a READY that comes with the greeting's last bytes, so it waits for the peer's.)
 */
const AFTER_GREETING = Buffer.concat([command('READY', { 'Socket-Type': 'SUB' }), Buffer.from([0x00, 0x01, 0x01])]);

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

/** Reads ZMTP 3 frames from a byte stream; hands over every whole multipart message. */
export class ZmtpReader {
  readonly #chunks: Buffer[] = [];
  #bytes = 0;
  #greeted = false;
  #ready = false;
  #parts: Buffer[] = [];

  constructor(
    private readonly onMessage: (parts: Buffer[]) => void,
    private readonly onGreeted: () => void,
  ) {}

  /** Takes the next bytes from the peer; throws ZmtpProtocolError when they break the protocol. */
  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    if (!this.#greeted) {
      if (this.#bytes < 64) return;
      const peer = this.#take(64);
      if (peer[0] !== 0xff || peer[9] !== 0x7f) throw new ZmtpProtocolError('peer is not ZMTP 3 (bad signature)');
      if (peer[10] < 3) throw new ZmtpProtocolError(`peer speaks ZMTP ${peer[10]}.x; 3.0 or later is needed`);
      const mechanism = peer.subarray(12, 32).toString('ascii').replace(/\0+$/, '');
      if (mechanism !== 'NULL') throw new ZmtpProtocolError(`peer wants the ${mechanism} mechanism; only NULL is supported`);
      this.#greeted = true;
      this.onGreeted();
    }
    for (;;) {
      if (this.#bytes < 2) return;
      const head = this.#peek(Math.min(this.#bytes, 9));
      const flags = head[0];
      const long = (flags & FLAG_LONG) !== 0;
      const headBytes = long ? 9 : 2;
      if (this.#bytes < headBytes) return;
      let size: number;
      if (long) {
        const high = head.readUInt32BE(1);
        // A part of 2^53 bytes or more cannot be held; libzmq's limit is memory too.
        if (high >= 0x20_0000) throw new ZmtpProtocolError('frame longer than 2^53 bytes');
        size = high * 0x1_0000_0000 + head.readUInt32BE(5);
      } else {
        size = head[1];
      }
      if (this.#bytes < headBytes + size) return;
      this.#skip(headBytes);
      const body = this.#take(size);
      if (flags & FLAG_COMMAND) {
        this.#onCommand(body);
        continue;
      }
      if (!this.#ready) throw new ZmtpProtocolError('message before the READY command');
      this.#parts.push(size < COPY_BELOW_BYTES && body.buffer.byteLength > size ? Buffer.from(body) : body);
      if ((flags & FLAG_MORE) === 0) {
        const parts = this.#parts;
        this.#parts = [];
        this.onMessage(parts);
      }
    }
  }

  #onCommand(body: Buffer): void {
    const nameLength = body[0] ?? 0;
    const name = body.subarray(1, 1 + nameLength).toString('ascii');
    if (name === 'READY') {
      this.#ready = true;
    } else if (name === 'ERROR') {
      const reasonLength = body[1 + nameLength] ?? 0;
      throw new ZmtpProtocolError(`peer refused the connection: ${body.subarray(2 + nameLength, 2 + nameLength + reasonLength).toString('utf8')}`);
    }
    // Other commands (PING and the like, from later ZMTP versions) need no answer from a ZMTP 3.0 peer.
  }

  /** The first `n` (≤ 9) unread bytes, without consuming them. */
  #peek(n: number): Buffer {
    const first = this.#chunks[0];
    if (first.length >= n) return first;
    return Buffer.concat(this.#chunks, Math.min(this.#bytes, 64)).subarray(0, n);
  }

  #skip(n: number): void {
    this.#take(n);
  }

  /** Consume `n` bytes (all present): a view of the read when they lie in one, else a copy. */
  #take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    this.#bytes -= n;
    const first = this.#chunks[0];
    if (first.length > n) {
      this.#chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    if (first.length === n) {
      this.#chunks.shift();
      return first;
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const chunk = this.#chunks[0];
      const use = Math.min(chunk.length, n - at);
      chunk.copy(out, at, 0, use);
      at += use;
      if (use === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(use);
    }
    return out;
  }
}

export interface ZmtpSubscriberOptions {
  endpoint: string;
  /** Every multipart message, as ZeroMQ would give it (the topic part first). */
  onMessage: (parts: Buffer[]) => void;
  /** A peer broke the protocol (the connection is retried), or the endpoint is unusable. */
  onError: (error: Error) => void;
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
    const socket = 'path' in this.#target ? connect({ path: this.#target.path }) : connect({ ...this.#target, noDelay: true });
    this.#socket = socket;
    const { onMessage, onError } = this.#options;
    // A failure of what the message is handed to is not the connection's: it is reported, reading goes on.
    const reader = new ZmtpReader(
      (parts) => {
        try {
          onMessage(parts);
        } catch (error) {
          onError(error as Error);
        }
      },
      () => socket.write(AFTER_GREETING),
    );
    socket.write(greeting());
    socket.on('data', (chunk: Buffer) => {
      if (this.#socket !== socket) return;
      try {
        reader.push(chunk);
      } catch (error) {
        socket.destroy();
        onError(error as Error);
      }
    });
    // A refused or dropped connection is retried as libzmq would; 'close' follows every ending.
    socket.on('error', () => {});
    socket.on('close', () => {
      if (this.#socket !== socket || this.#closed) return;
      this.#socket = undefined;
      this.#timer = setTimeout(() => this.#connect(), RECONNECT_MS);
    });
  }
}
