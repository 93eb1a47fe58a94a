/**
 * Benchmark clients of one kernel, behind one interface so every workload runs unchanged over
 * direct ZeroMQ, the gateway's v1 binary WebSocket protocol and its legacy JSON protocol.
 * Each client does what a real one must: parse header and parent header of every message
 * (and verify the signature when it talks ZeroMQ); content is parsed only when read.
 */
import * as zmq from 'zeromq';
import WebSocket from 'ws';
import type { MessageHeader } from '../src/messaging/message.ts';
import { MessageFactory, Signer, parseSigned, serializeFrames } from '../src/messaging/session.ts';

export const V1_PROTOCOL = 'v1.kernel.websocket.jupyter.org';

/** A message from the kernel, as far as the workloads look at it. */
export interface Incoming {
  channel: string;
  msgType: string;
  parentId: string | undefined;
  content(): Record<string, unknown>;
}

/** A request built before it is sent, so listeners for its replies can be in place first. */
export interface Outgoing {
  msgId: string;
  header: MessageHeader;
  content: unknown;
}

type Listener = (message: Incoming) => void;

export abstract class KernelConnection {
  /** Set once the connection failed; every pending wait is told through onBroken. */
  broken: Error | undefined;
  protected closing = false;
  #listeners = new Map<string, Listener>();
  #onBroken = new Set<(error: Error) => void>();

  constructor(
    readonly label: string,
    readonly factory = new MessageFactory(),
  ) {}

  prepare(msgType: string, content: unknown): Outgoing {
    const header = this.factory.header(msgType);
    return { msgId: header.msg_id, header, content };
  }

  /** Sees every message whose parent is `parentId`, on any channel. Returns the unsubscribe. */
  listen(parentId: string, listener: Listener): () => void {
    this.#listeners.set(parentId, listener);
    return () => {
      if (this.#listeners.get(parentId) === listener) this.#listeners.delete(parentId);
    };
  }

  onBroken(callback: (error: Error) => void): () => void {
    if (this.broken) {
      const error = this.broken;
      queueMicrotask(() => callback(error));
    }
    this.#onBroken.add(callback);
    return () => this.#onBroken.delete(callback);
  }

  /** Send on the shell channel. */
  abstract send(request: Outgoing): Promise<void>;
  abstract close(): Promise<void>;

  protected deliver(message: Incoming): void {
    if (message.parentId === undefined) return;
    this.#listeners.get(message.parentId)?.(message);
  }

  protected fail(error: Error): void {
    if (this.closing || this.broken) return;
    this.broken = error;
    for (const callback of [...this.#onBroken]) callback(error);
  }
}

/** Parses JSON once, on first use. */
function lazyJson(bytes: Buffer): () => Record<string, unknown> {
  let value: Record<string, unknown> | undefined;
  return () => (value ??= JSON.parse(bytes.toString('utf8')) as Record<string, unknown>);
}

function parentIdOf(parent: unknown): string | undefined {
  const id = (parent as { msg_id?: unknown } | null)?.msg_id;
  return typeof id === 'string' ? id : undefined;
}

import type { ConnectionInfo } from '../src/messaging/message.ts';
export type { ConnectionInfo };

/** A Dealer on shell and a Subscriber on iopub, as jupyter_client connects. */
export class DirectConnection extends KernelConnection {
  readonly #signer: Signer;
  readonly #shell: zmq.Dealer;
  readonly #iopub: zmq.Subscriber;
  /** zeromq allows one send in flight per socket: sends are chained. */
  #sending: Promise<void> = Promise.resolve();

  constructor(label: string, info: ConnectionInfo) {
    super(label);
    this.#signer = new Signer(info.key, info.signature_scheme);
    const base = `${info.transport}://${info.ip}:`;
    this.#shell = new zmq.Dealer({ routingId: this.factory.session, linger: 0 });
    this.#shell.connect(base + info.shell_port);
    // Unlimited receive queue: the kernel's PUB drops when a subscriber's pipe is full, and the
    // physical limit should not lose messages just because our event loop is busy for a moment.
    this.#iopub = new zmq.Subscriber({ receiveHighWaterMark: 0, linger: 0 });
    this.#iopub.subscribe();
    this.#iopub.connect(base + info.iopub_port);
    void this.#receive(this.#shell, 'shell');
    void this.#receive(this.#iopub, 'iopub');
  }

  async #receive(socket: zmq.Dealer | zmq.Subscriber, channel: string): Promise<void> {
    try {
      for await (const frames of socket) {
        const parsed = parseSigned(frames, this.#signer);
        const header = JSON.parse(parsed.header.toString('utf8')) as MessageHeader;
        const parent = JSON.parse(parsed.parentHeader.toString('utf8')) as unknown;
        this.deliver({ channel, msgType: header.msg_type, parentId: parentIdOf(parent), content: lazyJson(parsed.content) });
      }
    } catch (error) {
      this.fail(new Error(`${channel}: ${(error as Error).message}`));
    }
  }

  send(request: Outgoing): Promise<void> {
    const frames = serializeFrames(
      {
        header: Buffer.from(JSON.stringify(request.header)),
        parentHeader: Buffer.from('{}'),
        metadata: Buffer.from('{}'),
        content: Buffer.from(JSON.stringify(request.content)),
        buffers: [],
      },
      this.#signer,
    );
    const sent = this.#sending.then(() => this.#shell.send(frames));
    this.#sending = sent.catch(() => {});
    return sent;
  }

  async close(): Promise<void> {
    this.closing = true;
    this.#shell.close();
    this.#iopub.close();
  }
}

/** v1 framing: u64 LE count of offsets, the offsets (u64 LE), then channel and message parts. */
export function encodeV1(channel: string, parts: readonly Buffer[]): Buffer {
  const channelBytes = Buffer.from(channel, 'utf8');
  const count = parts.length + 2;
  const head = Buffer.alloc(8 * (1 + count));
  head.writeBigUInt64LE(BigInt(count), 0);
  let at = head.length;
  head.writeBigUInt64LE(BigInt(at), 8);
  at += channelBytes.length;
  head.writeBigUInt64LE(BigInt(at), 16);
  parts.forEach((part, i) => {
    at += part.length;
    head.writeBigUInt64LE(BigInt(at), 8 * (3 + i));
  });
  return Buffer.concat([head, channelBytes, ...parts]);
}

export function decodeV1(data: Buffer): { channel: string; parts: Buffer[] } {
  if (data.length < 8) throw new Error(`v1 frame of ${data.length} bytes`);
  const count = Number(data.readBigUInt64LE(0));
  if (count < 6 || 8 * (1 + count) > data.length) throw new Error(`v1 frame with ${count} offsets in ${data.length} bytes`);
  const offsets: number[] = [];
  for (let i = 0; i < count; i++) {
    const offset = Number(data.readBigUInt64LE(8 * (1 + i)));
    if (offset > data.length || (i > 0 && offset < offsets[i - 1])) throw new Error(`v1 frame with bad offset ${offset}`);
    offsets.push(offset);
  }
  const parts: Buffer[] = [];
  for (let i = 1; i < count - 1; i++) parts.push(data.subarray(offsets[i], offsets[i + 1]));
  return { channel: data.toString('utf8', offsets[0], offsets[1]), parts };
}

/** A WebSocket to /api/kernels/<id>/channels in either protocol. */
export class WsConnection extends KernelConnection {
  readonly #ws: WebSocket;
  readonly #v1: boolean;

  private constructor(label: string, factory: MessageFactory, ws: WebSocket, v1: boolean) {
    super(label, factory);
    this.#ws = ws;
    this.#v1 = v1;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      try {
        this.#onFrame(data, isBinary);
      } catch (error) {
        this.fail(new Error(`bad frame from the gateway: ${(error as Error).message}`));
      }
    });
    ws.on('close', (code, reason) => this.fail(new Error(`WebSocket closed by the gateway (code ${code}${reason.length ? `, ${reason.toString()}` : ''})`)));
    ws.on('error', (error) => this.fail(error));
  }

  /** `url` without session_id; `v1` offers the binary subprotocol, else the legacy JSON one is used. */
  static open(label: string, url: string, v1: boolean, timeoutMs: number): Promise<WsConnection> {
    const factory = new MessageFactory();
    const full = `${url}${url.includes('?') ? '&' : '?'}session_id=${factory.session}`;
    const ws = v1 ? new WebSocket(full, [V1_PROTOCOL]) : new WebSocket(full);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`${label}: WebSocket to ${url} did not open within ${timeoutMs} ms`));
      }, timeoutMs);
      ws.once('unexpected-response', (_request, response) => {
        clearTimeout(timer);
        ws.terminate();
        reject(new Error(`${label}: WebSocket upgrade refused with HTTP ${response.statusCode}`));
      });
      ws.once('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`${label}: WebSocket failed to open: ${error.message}`));
      });
      ws.once('open', () => {
        clearTimeout(timer);
        const expected = v1 ? V1_PROTOCOL : '';
        if (ws.protocol !== expected) {
          ws.terminate();
          reject(new Error(`${label}: gateway chose subprotocol "${ws.protocol}", expected "${expected}"`));
          return;
        }
        // Headers carry the session of the URL, as a browser client's do.
        resolve(new WsConnection(label, factory, ws, v1));
      });
    });
  }

  #onFrame(data: Buffer, isBinary: boolean): void {
    if (this.#v1) {
      if (!isBinary) throw new Error('text frame on a v1 connection');
      const { channel, parts } = decodeV1(data);
      if (parts.length < 4) throw new Error(`v1 message with ${parts.length} parts`);
      const header = JSON.parse(parts[0].toString('utf8')) as MessageHeader;
      const parent = JSON.parse(parts[1].toString('utf8')) as unknown;
      this.deliver({ channel, msgType: header.msg_type, parentId: parentIdOf(parent), content: lazyJson(parts[3]) });
      return;
    }
    // Legacy: JSON text, or (when there are buffers) u32 BE count, u32 BE offsets, JSON, buffers.
    let text: string;
    if (isBinary) {
      const count = data.readUInt32BE(0);
      const start = data.readUInt32BE(4);
      const end = count > 1 ? data.readUInt32BE(8) : data.length;
      text = data.toString('utf8', start, end);
    } else {
      text = data.toString('utf8');
    }
    const message = JSON.parse(text) as {
      channel: string;
      msg_type?: string;
      header: MessageHeader;
      parent_header: unknown;
      content: Record<string, unknown>;
    };
    this.deliver({
      channel: message.channel,
      msgType: message.msg_type ?? message.header.msg_type,
      parentId: parentIdOf(message.parent_header),
      content: () => message.content,
    });
  }

  send(request: Outgoing): Promise<void> {
    let data: Buffer | string;
    if (this.#v1) {
      data = encodeV1('shell', [
        Buffer.from(JSON.stringify(request.header)),
        Buffer.from('{}'),
        Buffer.from('{}'),
        Buffer.from(JSON.stringify(request.content)),
      ]);
    } else {
      data = JSON.stringify({ header: request.header, parent_header: {}, metadata: {}, content: request.content, channel: 'shell', buffers: [] });
    }
    return new Promise((resolve, reject) => this.#ws.send(data, (error) => (error ? reject(error) : resolve())));
  }

  close(): Promise<void> {
    this.closing = true;
    if (this.#ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#ws.terminate();
        resolve();
      }, 2000);
      this.#ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      this.#ws.close(1000);
    });
  }
}
