/**
 * One client WebSocket on a kernel: decodes the client's frames and hands them to the kernel under
 * the client's session; encodes kernel messages in the protocol the client chose.
 *
 * Bounds in both directions: towards the client, a client that stops reading past
 * `clientBufferBytes` is disconnected (4008); towards the kernel, reading from the client pauses
 * while its messages wait for the kernel (TCP then pushes back on the client), and a client whose
 * waiting messages still pass `kernelBufferBytes` is disconnected (4009). Nothing the client sends,
 * at any moment, may throw out of here: a failure is logged and closes this connection only (1011).
 */
import type { WebSocket } from 'ws';
import type { KernelMessage, RequestChannel, RequestHeader } from '../kernels/kernel.ts';
import { errorDetail, errorMessage, type Logger } from '../log.ts';
import type { RawMessage } from '../messaging/message.ts';
import { MessageFactory, ProtocolError } from '../messaging/session.ts';
import { decodeJson, encodeJsonChunks } from './json-protocol.ts';
import { decodeV1, encodeV1Chunks } from './v1-protocol.ts';
import { BIG_MESSAGE_BYTES, bigMessageWritten } from '../zmq/message-memory.ts';
import { FrameWriter, OutgoingFrame } from './frame-writer.ts';
import { metrics } from '../metrics/gateway-metrics.ts';

export type WireProtocol = 'v1' | 'json';

/** A message encoded once per protocol, shared by every connection it goes to. */
export interface EncodedMessage {
  v1?: OutgoingFrame;
  json?: OutgoingFrame;
}

function jsonFrame(message: KernelMessage): OutgoingFrame {
  const { chunks, binary } = encodeJsonChunks(message.channel, message.parsed, String(message.header.msg_id ?? ''), message.header.msg_type);
  return new OutgoingFrame(chunks, binary);
}

/** Close codes the gateway uses (4000-4999 are for applications). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  internalError: 1011,
  tooSlow: 4008,
  kernelNotReading: 4009,
} as const;

const SENDABLE = new Set<string>(['shell', 'control', 'stdin']);

/** How long a client has to answer the gateway's close frame before its socket is dropped. */
const CLOSE_GRACE_MS = 2000;

/** Why the gateway closed a client, for /metrics. */
const CLOSE_REASONS: Record<number, string> = {
  [CLOSE.normal]: 'normal',
  [CLOSE.goingAway]: 'going_away',
  [CLOSE.internalError]: 'internal_error',
  [CLOSE.tooSlow]: 'not_reading',
  [CLOSE.kernelNotReading]: 'kernel_not_reading',
};

/** Where a connection's messages go: its session's way to the kernel. */
export interface KernelPort {
  /** False when the message was refused (the kernel is gone, or an input_reply nobody asked for). */
  send(channel: RequestChannel, message: RawMessage, header: RequestHeader): boolean;
  /** Bytes of this session's messages waiting for the kernel. */
  backlog(): number;
}

export interface ConnectionOptions {
  socket: WebSocket;
  protocol: WireProtocol;
  sessionId: string;
  kernelId: string;
  kernel: KernelPort;
  log: Logger;
  /** Bytes queued towards a client that does not read before it is disconnected. */
  clientBufferBytes: number;
  /** Bytes a client may have waiting for its kernel before it is disconnected. */
  kernelBufferBytes: number;
  onClose: (connection: ClientConnection) => void;
}

/** The header fields that route replies, from a v1 header the gateway otherwise passes on as bytes. */
function readHeader(header: Buffer): RequestHeader {
  let parsed: unknown;
  try {
    parsed = JSON.parse(header.toString('utf8'));
  } catch {
    throw new ProtocolError('header is not valid JSON');
  }
  return requestHeader(parsed);
}

function requestHeader(parsed: unknown): RequestHeader {
  if (typeof parsed !== 'object' || parsed === null || typeof (parsed as { msg_type?: unknown }).msg_type !== 'string') {
    throw new ProtocolError('header has no msg_type');
  }
  const { msg_id, msg_type, session } = parsed as { msg_id?: unknown; msg_type: string; session?: unknown };
  return { msg_id: String(msg_id ?? ''), msg_type, session: String(session ?? '') };
}

export class ClientConnection {
  readonly socket: WebSocket;
  readonly protocol: WireProtocol;
  readonly sessionId: string;
  readonly factory: MessageFactory;
  /** Reading from the client is paused while its messages wait for the kernel. */
  readingPaused = false;
  /** For the keepalive: when the client last answered a ping. */
  lastPong = Date.now();
  readonly #options: ConnectionOptions;
  readonly #writer: FrameWriter;
  readonly #log: Logger;
  #closed = false;

  constructor(options: ConnectionOptions) {
    this.#options = options;
    this.#log = options.log.with({ kernel_id: options.kernelId, session_id: options.sessionId });
    this.socket = options.socket;
    this.#writer = new FrameWriter(options.socket);
    this.protocol = options.protocol;
    this.sessionId = options.sessionId;
    this.factory = new MessageFactory(options.sessionId);
    const socket = options.socket;
    socket.on('message', (data: Buffer, isBinary: boolean) => this.#guard('a frame', () => this.#onFrame(data, isBinary)));
    socket.on('close', () => this.#guard('the close', () => this.#closeOnce()));
    socket.on('pong', () => (this.lastPong = Date.now()));
    socket.on('error', (error) => this.#log.warn(`${this.#who()}: socket error: ${error.message}`));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Send a kernel message, encoding it for this protocol unless another connection already did. */
  send(message: KernelMessage, encoded: EncodedMessage = {}): void {
    if (this.#closed) return;
    // #guard's work inline: this runs once per message and client.
    try {
      const out =
        this.protocol === 'v1'
          ? (encoded.v1 ??= new OutgoingFrame(encodeV1Chunks(message.channel, message.parsed), true))
          : (encoded.json ??= jsonFrame(message));
      if (this.#write(out)) metrics.count('to_client', message.channel, out.bytes);
    } catch (error) {
      this.#failed('a kernel message', error);
    }
  }

  /** A status or stream message made by the gateway itself (restarting, dead, notices). */
  sendOwn(msgType: string, content: unknown, parentHeader: unknown = {}): void {
    const raw = this.factory.message(msgType, content, parentHeader);
    this.send({ channel: 'iopub', header: raw.fields, parsed: { ...raw, identities: [], signature: Buffer.alloc(0) } });
  }

  /** Stop or resume reading the client's socket (backpressure towards the kernel). */
  pauseReading(paused: boolean): void {
    if (this.#closed || paused === this.readingPaused) return;
    this.readingPaused = paused;
    if (paused) {
      this.socket.pause();
    } else {
      // The client could not answer pings while we did not read it.
      this.lastPong = Date.now();
      this.socket.resume();
    }
  }

  close(code: number, reason: string): void {
    if (this.#closed) return;
    metrics.closes.labels({ reason: CLOSE_REASONS[code] ?? String(code) }).inc();
    try {
      this.socket.close(code, reason);
      // A client that does not answer the close (it does not read) is not waited for long.
      setTimeout(() => this.socket.terminate(), CLOSE_GRACE_MS).unref();
    } catch {
      this.socket.terminate();
    }
    this.#closeOnce();
  }

  /** Drop the TCP connection at once (a client that stopped answering pings). */
  terminate(): void {
    if (!this.#closed) metrics.closes.labels({ reason: 'no_pong' }).inc();
    this.socket.terminate();
    this.#closeOnce();
  }

  /** False when the client was disconnected instead (it does not read). */
  #write(frame: OutgoingFrame): boolean {
    // Never drop a message for a slow client: past the limit the client is disconnected, and told why.
    const limit = this.#options.clientBufferBytes;
    if (this.socket.bufferedAmount > limit) {
      this.#log.error(
        `${this.#who()}: client is not reading (${this.socket.bufferedAmount} bytes waiting, limit ${limit}); disconnecting it`,
      );
      this.close(CLOSE.tooSlow, 'client too slow: send buffer limit reached');
      return false;
    }
    const { chunks, bytes } = frame;
    this.#writer.send(frame, bytes >= BIG_MESSAGE_BYTES ? () => bigMessageWritten(chunks, bytes) : undefined);
    return true;
  }

  #onFrame(data: Buffer, isBinary: boolean): void {
    if (this.#closed) return;
    let channel: string | undefined;
    let message: RawMessage;
    let header: RequestHeader;
    try {
      if (this.protocol === 'v1') {
        if (!isBinary) throw new ProtocolError('text frame on a v1 connection (v1 frames are binary)');
        ({ channel, message } = decodeV1(data));
        header = readHeader(message.header);
      } else {
        let parsedHeader: unknown;
        ({ channel, message, header: parsedHeader } = decodeJson(data, isBinary));
        header = requestHeader(parsedHeader);
        if (channel === undefined) {
          this.#log.warn(`${this.#who()}: message without a channel; sending it on shell`);
          channel = 'shell';
        }
      }
    } catch (error) {
      this.#log.warn(`${this.#who()}: refused a frame: ${errorMessage(error)}`);
      return;
    }
    if (!SENDABLE.has(channel)) {
      this.#log.warn(`${this.#who()}: refused a message for unknown channel ${JSON.stringify(channel)}`);
      return;
    }
    const kernel = this.#options.kernel;
    metrics.count('from_client', channel, data.length);
    kernel.send(channel as RequestChannel, message, header);
    const waiting = kernel.backlog();
    if (waiting > this.#options.kernelBufferBytes) {
      this.#log.error(
        `${this.#who()}: the kernel is not reading and ${waiting} bytes from this client wait for it ` +
          `(limit ${this.#options.kernelBufferBytes}, --kernel-buffer-bytes); disconnecting the client`,
      );
      this.close(CLOSE.kernelNotReading, 'kernel not reading: buffer limit reached');
    }
  }

  /** Contain any failure to this connection: log it and close the connection, never the gateway. */
  #guard(what: string, action: () => void): void {
    try {
      action();
    } catch (error) {
      this.#failed(what, error);
    }
  }

  #failed(what: string, error: unknown): void {
    this.#log.error(`${this.#who()}: internal error handling ${what}: ${errorDetail(error)}`);
    if (this.#closed) return;
    try {
      this.close(CLOSE.internalError, 'internal error');
    } catch {
      /* the socket is beyond saving; its close event will follow */
    }
  }

  #closeOnce(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#options.onClose(this);
  }

  #who(): string {
    return `kernel ${this.#options.kernelId}, session ${this.sessionId}`;
  }
}
