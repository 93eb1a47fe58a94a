/**
 * The launcher protocol's wire format, shared by the gateway and `kernelgateway launch`: the
 * handshake that proves to each side that the other holds the kernel's secret, the keys it derives,
 * the encrypted records every later byte travels in, and the frames inside them. No I/O here.
 *
 * Handshake (plain bytes; the secret never crosses the wire):
 *   launcher → gateway  "KGL1" ‖ u8 n ‖ kernel id (n ASCII bytes) ‖ nonce_l (32 random bytes)
 *   gateway  → launcher nonce_g (32) ‖ HMAC-SHA256(secret, GATEWAY_LABEL ‖ id ‖ nonce_l ‖ nonce_g)
 *   launcher → gateway  HMAC-SHA256(secret, LAUNCHER_LABEL ‖ id ‖ nonce_l ‖ nonce_g)
 * Each side checks the other's proof (constant time) before it sends anything else.
 *
 * Records: one key per direction, HKDF-SHA256(secret, salt nonce_l ‖ nonce_g, info label ‖ id),
 * so keys are fresh for every connection. Each record is
 *   u32 length (BE) ‖ AES-256-GCM(frame) ‖ 16-byte tag, with the length as associated data
 * and as nonce 4 zero bytes ‖ u64 record counter: the counter is never sent, so a replayed, dropped,
 * reordered or altered record fails authentication, and the connection ends.
 *
 * Frames: u8 kind ‖ u32 stream id (BE) ‖ payload.
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

export const MAGIC = Buffer.from('KGL1', 'ascii');
export const NONCE_BYTES = 32;
export const PROOF_BYTES = 32;
export const SECRET_BYTES = 32;
const TAG_BYTES = 16;
const LENGTH_BYTES = 4;
const MAX_ID_BYTES = 64;
const KERNEL_ID = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;

const GATEWAY_LABEL = 'kernelgateway-launch/1 gateway proof';
const LAUNCHER_LABEL = 'kernelgateway-launch/1 launcher proof';
const TO_LAUNCHER_LABEL = 'kernelgateway-launch/1 gateway->launcher';
const TO_GATEWAY_LABEL = 'kernelgateway-launch/1 launcher->gateway';

/** The largest frame a record may hold: the biggest control message (a kernel's environment) fits. */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;
/** Stream data is cut into frames of at most this size, so control frames can pass between them. */
export const MAX_DATA_BYTES = 64 * 1024;
/** What the gateway reads before a launcher has proved itself: the hello and its proof. */
export const MAX_HANDSHAKE_BYTES = MAGIC.length + 1 + MAX_ID_BYTES + NONCE_BYTES + PROOF_BYTES;

/** The peer broke the protocol (or is not who it says): the connection must end. */
export class LinkProtocolError extends Error {
  override name = 'LinkProtocolError';
}

// ---- handshake ----

export function encodeHello(kernelId: string, nonce: Buffer): Buffer {
  if (!KERNEL_ID.test(kernelId)) throw new LinkProtocolError(`not a kernel id: ${JSON.stringify(kernelId)}`);
  return Buffer.concat([MAGIC, Buffer.from([kernelId.length]), Buffer.from(kernelId, 'ascii'), nonce]);
}

/** The launcher's hello from the start of `data`: undefined while incomplete; throws when it cannot be one. */
export function decodeHello(data: Buffer): { kernelId: string; nonce: Buffer; bytes: number } | undefined {
  const known = Math.min(data.length, MAGIC.length);
  if (!data.subarray(0, known).equals(MAGIC.subarray(0, known))) throw new LinkProtocolError('not a launcher (bad magic)');
  if (data.length < MAGIC.length + 1) return undefined;
  const idLength = data[MAGIC.length];
  if (idLength === 0 || idLength > MAX_ID_BYTES) throw new LinkProtocolError(`bad kernel id length ${idLength}`);
  const bytes = MAGIC.length + 1 + idLength + NONCE_BYTES;
  if (data.length < bytes) return undefined;
  const kernelId = data.toString('latin1', MAGIC.length + 1, MAGIC.length + 1 + idLength);
  if (!KERNEL_ID.test(kernelId)) throw new LinkProtocolError('bad kernel id');
  return { kernelId, nonce: Buffer.from(data.subarray(bytes - NONCE_BYTES, bytes)), bytes };
}

export interface HandshakeNonces {
  kernelId: string;
  launcherNonce: Buffer;
  gatewayNonce: Buffer;
}

function proof(secret: Buffer, label: string, n: HandshakeNonces): Buffer {
  return createHmac('sha256', secret)
    .update(`${label}\0${n.kernelId}\0`)
    .update(n.launcherNonce)
    .update(n.gatewayNonce)
    .digest();
}

export const gatewayProof = (secret: Buffer, n: HandshakeNonces): Buffer => proof(secret, GATEWAY_LABEL, n);
export const launcherProof = (secret: Buffer, n: HandshakeNonces): Buffer => proof(secret, LAUNCHER_LABEL, n);

/** Constant-time comparison of a received proof with the expected one. */
export function proofMatches(received: Buffer, expected: Buffer): boolean {
  return received.length === expected.length && timingSafeEqual(received, expected);
}

export interface DirectionKeys {
  toLauncher: Buffer;
  toGateway: Buffer;
}

export function deriveKeys(secret: Buffer, n: HandshakeNonces): DirectionKeys {
  const salt = Buffer.concat([n.launcherNonce, n.gatewayNonce]);
  const key = (label: string) => Buffer.from(hkdfSync('sha256', secret, salt, `${label}\0${n.kernelId}`, 32));
  return { toLauncher: key(TO_LAUNCHER_LABEL), toGateway: key(TO_GATEWAY_LABEL) };
}

/** The per-kernel secret as the job's environment carries it (64 hex digits). */
export function parseSecret(text: string | undefined): Buffer | undefined {
  return text && /^[0-9a-f]{64}$/.test(text) ? Buffer.from(text, 'hex') : undefined;
}

// ---- records ----

function recordNonce(counter: bigint): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64BE(counter, 4);
  return nonce;
}

/** Encrypts frames into records, in order, for one direction of one connection. */
export class RecordSealer {
  #counter = 0n;
  constructor(private readonly key: Buffer) {}

  /** The record of a frame given in parts, as buffers to write in this order (length, ciphertext, tag). */
  seal(parts: readonly Buffer[]): Buffer[] {
    let size = 0;
    for (const part of parts) size += part.length;
    if (size > MAX_FRAME_BYTES) throw new LinkProtocolError(`frame of ${size} bytes is too large`);
    const length = Buffer.alloc(LENGTH_BYTES);
    length.writeUInt32BE(size);
    const cipher = createCipheriv('aes-256-gcm', this.key, recordNonce(this.#counter++));
    cipher.setAAD(length);
    const record = [length];
    for (const part of parts) if (part.length > 0) record.push(cipher.update(part));
    const tail = cipher.final();
    if (tail.length > 0) record.push(tail);
    record.push(cipher.getAuthTag());
    return record;
  }
}

/**
 * Cuts the incoming byte stream into records and decrypts them, in order. Holds at most one
 * record's bytes; throws LinkProtocolError for an oversized or unauthentic record.
 */
export class RecordOpener {
  #counter = 0n;
  #chunks: Buffer[] = [];
  #buffered = 0;
  constructor(private readonly key: Buffer) {}

  /** Every complete frame the new bytes finish. */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    const frames: Buffer[] = [];
    while (this.#buffered >= LENGTH_BYTES) {
      const head = this.#peek(LENGTH_BYTES);
      const length = head.readUInt32BE(0);
      if (length > MAX_FRAME_BYTES) throw new LinkProtocolError(`record of ${length} bytes announced (at most ${MAX_FRAME_BYTES})`);
      const total = LENGTH_BYTES + length + TAG_BYTES;
      if (this.#buffered < total) break;
      const record = this.#take(total);
      frames.push(this.#open(record.subarray(0, LENGTH_BYTES), record.subarray(LENGTH_BYTES, total - TAG_BYTES), record.subarray(total - TAG_BYTES)));
    }
    return frames;
  }

  #open(length: Buffer, body: Buffer, tag: Buffer): Buffer {
    const decipher = createDecipheriv('aes-256-gcm', this.key, recordNonce(this.#counter++));
    decipher.setAAD(length);
    decipher.setAuthTag(tag);
    try {
      const plain = decipher.update(body);
      const tail = decipher.final();
      return tail.length > 0 ? Buffer.concat([plain, tail]) : plain;
    } catch {
      throw new LinkProtocolError('a record failed authentication (altered, replayed, reordered or wrong key)');
    }
  }

  #peek(bytes: number): Buffer {
    return this.#chunks[0].length >= bytes ? this.#chunks[0] : Buffer.concat(this.#chunks).subarray(0, bytes);
  }

  #take(bytes: number): Buffer {
    const all = this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks);
    const rest = all.subarray(bytes);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#buffered = rest.length;
    return all.subarray(0, bytes);
  }
}

// ---- frames ----

/** What a frame carries. */
export const FrameKind = {
  /** A JSON object on stream 0. */
  control: 0,
  /** Opens a byte stream; the payload names what it carries (a kernel channel, stdout, stderr). */
  open: 1,
  /** Bytes of a stream, within the window the receiver granted. */
  data: 2,
  /** u32: bytes of a stream the receiver has passed on, granted again to the sender. */
  ack: 3,
  /** The stream is over, in both directions. */
  close: 4,
  /** Keeps a quiet connection known to be alive. */
  ping: 5,
} as const;
export type FrameKind = (typeof FrameKind)[keyof typeof FrameKind];

export interface Frame {
  kind: FrameKind;
  stream: number;
  payload: Buffer;
}

const FRAME_HEADER_BYTES = 5;

/** A frame as the parts RecordSealer.seal takes (the payload is not copied). */
export function encodeFrame(kind: FrameKind, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer[] {
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header[0] = kind;
  header.writeUInt32BE(stream, 1);
  return payload.length > 0 ? [header, payload] : [header];
}

export function decodeFrame(frame: Buffer): Frame {
  if (frame.length < FRAME_HEADER_BYTES) throw new LinkProtocolError(`frame of ${frame.length} bytes is too short`);
  const kind = frame[0];
  if (kind > FrameKind.ping) throw new LinkProtocolError(`unknown frame kind ${kind}`);
  return { kind: kind as FrameKind, stream: frame.readUInt32BE(1), payload: frame.subarray(FRAME_HEADER_BYTES) };
}
