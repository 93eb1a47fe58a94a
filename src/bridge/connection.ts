/**
 * One client WebSocket on a kernel: decodes the client's frames and routes them to the kernel under
 * the connection's routing id; encodes kernel messages in the protocol the client chose.
 */
import type { WebSocket } from 'ws';
import type { ClientChannels, KernelMessage } from '../kernels/kernel.ts';
import type { Logger } from '../log.ts';
import type { RawMessage } from '../messaging/message.ts';
import { MessageFactory, ProtocolError } from '../messaging/session.ts';
import { decodeJson, encodeJson } from './json-protocol.ts';
import { decodeV1, encodeV1 } from './v1-protocol.ts';

export type WireProtocol = 'v1' | 'json';

/** A message encoded once per protocol, shared by every connection it goes to. */
export interface EncodedMessage {
  v1?: Buffer;
  json?: { data: Buffer; binary: boolean };
}

/** Close codes the gateway uses (4000-4999 are for applications). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  tooSlow: 4008,
} as const;

const SENDABLE = new Set(['shell', 'control', 'stdin']);

/** v1 parts go to the kernel as they are; a header that is not a JSON object with a msg_type is refused here. */
function checkHeader(header: Buffer): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(header.toString('utf8'));
  } catch {
    throw new ProtocolError('header is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || typeof (parsed as { msg_type?: unknown }).msg_type !== 'string') {
    throw new ProtocolError('header has no msg_type');
  }
}

export class ClientConnection {
  channels!: ClientChannels;
  readonly factory: MessageFactory;
  #closed = false;
  #pinger: NodeJS.Timeout | undefined;
  onClose: () => void = () => undefined;

  constructor(
    readonly socket: WebSocket,
    readonly protocol: WireProtocol,
    readonly sessionId: string,
    private readonly kernelId: string,
    private readonly log: Logger,
    private readonly maxBufferedBytes: number,
    pingIntervalSeconds = 0,
  ) {
    this.factory = new MessageFactory(sessionId);
    socket.on('message', (data: Buffer, isBinary: boolean) => this.#onFrame(data, isBinary));
    socket.on('close', () => this.#closeOnce());
    if (pingIntervalSeconds > 0) this.#keepAlive(pingIntervalSeconds * 1000);
    socket.on('error', (error) => this.log.warn(`${this.#who()}: socket error: ${error.message}`));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Send a kernel message, encoding it for this protocol unless another connection already did. */
  send(message: KernelMessage, encoded: EncodedMessage = {}): void {
    if (this.#closed) return;
    if (this.protocol === 'v1') {
      encoded.v1 ??= encodeV1(message.channel, message.parsed);
      this.#write(encoded.v1, true);
    } else {
      encoded.json ??= encodeJson(message.channel, message.parsed, String(message.header.msg_id ?? ''), message.header.msg_type);
      this.#write(encoded.json.data, encoded.json.binary);
    }
  }

  /** A status or stream message made by the gateway itself (restarting, dead, notices). */
  sendOwn(msgType: string, content: unknown, parentHeader: unknown = {}): void {
    const raw = this.factory.message(msgType, content, parentHeader);
    this.send({ channel: 'iopub', header: raw.fields, parsed: { ...raw, identities: [], signature: Buffer.alloc(0) } });
  }

  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.socket.close(code, reason);
    this.#closeOnce();
  }

  #write(data: Buffer, binary: boolean): void {
    // Never drop a message for a slow client: past the limit the client is disconnected, and told why.
    if (this.socket.bufferedAmount > this.maxBufferedBytes) {
      this.log.error(
        `${this.#who()}: client is not reading (${this.socket.bufferedAmount} bytes waiting, limit ${this.maxBufferedBytes}); disconnecting it`,
      );
      this.close(CLOSE.tooSlow, 'client too slow: send buffer limit reached');
      return;
    }
    this.socket.send(data, { binary });
  }

  #onFrame(data: Buffer, isBinary: boolean): void {
    let channel: string | undefined;
    let message: RawMessage;
    try {
      if (this.protocol === 'v1') {
        if (!isBinary) throw new ProtocolError('text frame on a v1 connection (v1 frames are binary)');
        ({ channel, message } = decodeV1(data));
        checkHeader(message.header);
      } else {
        ({ channel, message } = decodeJson(data, isBinary));
        if (channel === undefined) {
          this.log.warn(`${this.#who()}: message without a channel; sending it on shell`);
          channel = 'shell';
        }
      }
    } catch (error) {
      this.log.warn(`${this.#who()}: refused a frame: ${(error as Error).message}`);
      return;
    }
    if (!SENDABLE.has(channel)) {
      this.log.warn(`${this.#who()}: refused a message for unknown channel ${JSON.stringify(channel)}`);
      return;
    }
    this.channels.send(channel as 'shell' | 'control' | 'stdin', message);
  }

  /** Pings keep proxies from closing idle sockets, and find clients that vanished without a close. */
  #keepAlive(intervalMs: number): void {
    const timeoutMs = Math.max(3 * intervalMs, 30_000);
    let lastPong = Date.now();
    this.socket.on('pong', () => (lastPong = Date.now()));
    this.#pinger = setInterval(() => {
      if (Date.now() - lastPong > timeoutMs) {
        this.log.warn(`${this.#who()}: no pong for ${Math.round((Date.now() - lastPong) / 1000)} s; closing`);
        this.socket.terminate();
        this.#closeOnce();
        return;
      }
      this.socket.ping();
    }, intervalMs);
    this.#pinger.unref();
  }

  #closeOnce(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#pinger);
    this.onClose();
  }

  #who(): string {
    return `kernel ${this.kernelId}, session ${this.sessionId}`;
  }
}
