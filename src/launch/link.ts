/**
 * One launcher connection, either end, once the handshake (handshake.ts) is done: encrypted records
 * carrying control messages (JSON objects) and the streams of streams.ts. What leaves goes through a small
 * scheduler: control frames first, then stream data round-robin, and only while the socket's own
 * buffer is short, so a burst on one stream neither starves control nor piles up in memory. Both
 * ends ping every few seconds; a connection silent for three intervals is declared lost.
 */
import type { Socket } from 'node:net';
import { decodeFrame, encodeFrame, FrameKind, LinkProtocolError, MAX_DATA_BYTES, RecordOpener, RecordSealer } from './protocol.ts';
import { StreamTable, type StreamCarrier } from './streams.ts';

export const HEARTBEAT_MS = 5000;
/** Bytes handed to the socket before the scheduler waits for 'drain'. */
const SOCKET_HIGH_WATER = 256 * 1024;
/** Record pieces smaller than this are copied together before they are written. */
const GATHER_LIMIT = 16 * 1024;
/** Control messages queued for a peer that does not read: beyond this the connection is given up. */
const MAX_QUEUED_CONTROL_BYTES = 16 * 1024 * 1024;

/** A control message as received: a JSON object with a type, otherwise unchecked. */
export type ControlMessage = Record<string, unknown> & { type: string };

/** A frame of a stream waiting to be sent: data (to which more data may still be added) or its close. */
interface QueuedData {
  parts: Buffer[];
  size: number;
  data: boolean;
}

export interface LinkOptions {
  heartbeatMs?: number;
}

export class Link implements StreamCarrier {
  readonly streams: StreamTable;
  onControl: (message: ControlMessage) => void = () => undefined;
  /** Settles with why the connection ended (undefined: closed in good order). */
  readonly closed: Promise<Error | undefined>;
  readonly #socket: Socket;
  readonly #sealer: RecordSealer;
  readonly #opener: RecordOpener;
  readonly #control: Buffer[][] = [];
  #controlBytes = 0;
  readonly #data = new Map<number, QueuedData[]>();
  /** Streams with data queued, in the order they are served. */
  readonly #turns: number[] = [];
  #pumpScheduled = false;
  #ending = false;
  #done = false;
  #resolveClosed!: (error: Error | undefined) => void;
  #lastHeard = Date.now();
  readonly #heartbeat: NodeJS.Timeout;
  #leftover: Buffer;
  #started = false;

  constructor(socket: Socket, sendKey: Buffer, receiveKey: Buffer, leftover: Buffer, parity: 0 | 1, options: LinkOptions = {}) {
    this.#socket = socket;
    this.#sealer = new RecordSealer(sendKey);
    this.#opener = new RecordOpener(receiveKey);
    this.streams = new StreamTable(this, parity);
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    socket.setNoDelay(true);
    socket.setKeepAlive(true, HEARTBEAT_MS);
    socket.on('data', (chunk: Buffer) => this.#receive(chunk));
    socket.on('drain', () => this.#pump());
    socket.on('error', (error) => this.destroy(error));
    socket.on('close', () => this.destroy(this.#ending ? undefined : new Error('the connection closed')));
    const heartbeatMs = options.heartbeatMs ?? HEARTBEAT_MS;
    this.#heartbeat = setInterval(() => {
      if (Date.now() - this.#lastHeard > 3 * heartbeatMs) return this.destroy(new Error(`no sign of life for ${(3 * heartbeatMs) / 1000} s`));
      this.sendFrame(FrameKind.ping, 0);
    }, heartbeatMs);
    this.#heartbeat.unref();
    this.#leftover = leftover;
  }

  /**
   * Begin reading, once whoever owns the link has set onControl and streams.onopen: nothing the peer
   * sent is handed to a handler before then.
   */
  start(): void {
    if (this.#started || this.#done) return;
    this.#started = true;
    // Records that came with the end of the handshake, then the rest as it comes.
    if (this.#leftover.length > 0) this.#receive(this.#leftover);
    this.#leftover = Buffer.alloc(0);
    this.#socket.resume();
  }

  get isOpen(): boolean {
    return !this.#done && !this.#ending;
  }

  /** The peer's address as this end sees it, and ours. */
  get remoteAddress(): string | undefined {
    return this.#socket.remoteAddress;
  }

  get localAddress(): string | undefined {
    return this.#socket.localAddress;
  }

  send<T extends { type: string }>(message: T): void {
    this.sendFrame(FrameKind.control, 0, Buffer.from(JSON.stringify(message), 'utf8'));
  }

  /**
   * Queue a frame (streams use this). Data frames wait behind control ones; a stream's close
   * follows its data.
   */
  sendFrame(kind: FrameKind, stream: number, payload?: Buffer): void {
    if (this.#done) return;
    if (kind === FrameKind.data || (kind === FrameKind.close && this.#data.has(stream))) {
      let queue = this.#data.get(stream);
      if (!queue) this.#data.set(stream, (queue = []));
      if (queue.length === 0) this.#turns.push(stream);
      const last = queue[queue.length - 1];
      const size = payload?.length ?? 0;
      // Small pieces of a stream still waiting here travel as one frame (a frame's payload is all its record holds).
      if (kind === FrameKind.data && last?.data && last.size + size <= MAX_DATA_BYTES) {
        last.parts.push(payload!);
        last.size += size;
      } else {
        queue.push({ parts: encodeFrame(kind, stream, payload), size, data: kind === FrameKind.data });
      }
    } else {
      const frame = encodeFrame(kind, stream, payload);
      this.#control.push(frame);
      this.#controlBytes += payload?.length ?? 0;
      if (this.#controlBytes > MAX_QUEUED_CONTROL_BYTES) return this.destroy(new Error('the peer does not read its control messages'));
    }
    if (!this.#pumpScheduled) {
      // Frames queued in the same turn of the event loop leave in one write.
      this.#pumpScheduled = true;
      queueMicrotask(() => this.#pump());
    }
  }

  violation(message: string): void {
    this.destroy(new LinkProtocolError(message));
  }

  /** Send what is queued, then close the connection in good order. */
  end(): void {
    if (this.#done || this.#ending) return;
    this.#ending = true;
    this.#pump();
  }

  destroy(error?: Error): void {
    if (this.#done) return;
    this.#done = true;
    clearInterval(this.#heartbeat);
    this.#socket.destroy();
    this.#control.length = 0;
    this.#data.clear();
    this.streams.lostAll(error ? error.message : 'the connection closed');
    this.#resolveClosed(error);
  }

  #receive(chunk: Buffer): void {
    if (this.#done) return;
    this.#lastHeard = Date.now();
    try {
      for (const record of this.#opener.push(chunk)) {
        const { kind, stream, payload } = decodeFrame(record);
        if (kind === FrameKind.control) this.onControl(parseControl(payload));
        else if (kind !== FrameKind.ping) this.streams.receive(kind, stream, payload);
        if (this.#done) return;
      }
    } catch (error) {
      this.destroy(error instanceof LinkProtocolError ? error : new LinkProtocolError((error as Error).message));
    }
  }

  #pump(): void {
    this.#pumpScheduled = false;
    if (this.#done) return;
    const socket = this.#socket;
    // Small records are gathered into one buffer: one write, instead of a writev of many pieces.
    let gathered: Buffer[] = [];
    let gatheredBytes = 0;
    const flush = () => {
      if (gathered.length > 0) socket.write(gathered.length === 1 ? gathered[0] : Buffer.concat(gathered, gatheredBytes));
      gathered = [];
      gatheredBytes = 0;
    };
    while (socket.writableLength + gatheredBytes < SOCKET_HIGH_WATER) {
      const frame = this.#next();
      if (!frame) break;
      for (const part of this.#sealer.seal(frame)) {
        if (part.length >= GATHER_LIMIT) {
          flush();
          socket.write(part);
        } else {
          gathered.push(part);
          gatheredBytes += part.length;
          if (gatheredBytes >= GATHER_LIMIT) flush();
        }
      }
    }
    flush();
    if (this.#ending && this.#control.length === 0 && this.#turns.length === 0) socket.end();
  }

  #next(): Buffer[] | undefined {
    const control = this.#control.shift();
    if (control) {
      this.#controlBytes -= control.length > 1 ? control[1].length : 0;
      return control;
    }
    const stream = this.#turns.shift();
    if (stream === undefined) return undefined;
    const queue = this.#data.get(stream)!;
    const frame = queue.shift()!;
    if (queue.length > 0) this.#turns.push(stream);
    else this.#data.delete(stream);
    return frame.parts;
  }
}

function parseControl(payload: Buffer): ControlMessage {
  let message: unknown;
  try {
    message = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new LinkProtocolError('a control message is not JSON');
  }
  if (typeof message !== 'object' || message === null || Array.isArray(message) || typeof (message as { type?: unknown }).type !== 'string') {
    throw new LinkProtocolError('a control message is not an object with a type');
  }
  return message as ControlMessage;
}
