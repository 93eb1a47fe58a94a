/**
 * The Jupyter wire format over ZeroMQ: HMAC signing and verification, multipart framing, ids and dates.
 * No I/O here. Message content is never parsed: signatures cover the exact bytes on the wire.
 */
import { createHmac, getHashes, randomBytes, timingSafeEqual, type Hmac } from 'node:crypto';
import { PROTOCOL_VERSION, type MessageHeader, type RawMessage } from './message.ts';

export const DELIMITER = Buffer.from('<IDS|MSG>', 'ascii');
const EMPTY = Buffer.alloc(0);

export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/** HMAC signer for one kernel's key and signature scheme ("hmac-sha256" and friends). */
export class Signer {
  readonly #key: Buffer;
  readonly #digest: string;

  constructor(key: string, scheme = 'hmac-sha256') {
    if (!scheme.startsWith('hmac-')) throw new ProtocolError(`unsupported signature scheme "${scheme}": it must start with "hmac-"`);
    const digest = scheme.slice(5);
    if (!getHashes().includes(digest)) throw new ProtocolError(`unsupported signature scheme "${scheme}": no hash "${digest}"`);
    this.#key = Buffer.from(key, 'utf8');
    this.#digest = digest;
  }

  /** An empty key means signing is off (the signature frame is empty). */
  get enabled(): boolean {
    return this.#key.length > 0;
  }

  /** Lowercase hex digest, as ASCII bytes, of header ‖ parent ‖ metadata ‖ content. */
  sign(header: Buffer, parentHeader: Buffer, metadata: Buffer, content: Buffer): Buffer {
    if (!this.enabled) return EMPTY;
    const hmac = this.#begin(header, parentHeader, metadata);
    hmac.update(content);
    return hexDigest(hmac);
  }

  /** Constant-time check of a received signature. */
  verify(signature: Buffer, header: Buffer, parentHeader: Buffer, metadata: Buffer, content: Buffer): boolean {
    if (!this.enabled) return true;
    return matches(signature, this.sign(header, parentHeader, metadata, content));
  }

  /**
   * The same check for a message whose content is still arriving: give it the content's pieces as they
   * come, then the signature. (Only when signing is on.)
   */
  verifier(header: Buffer, parentHeader: Buffer, metadata: Buffer): ContentVerifier {
    const hmac = this.#begin(header, parentHeader, metadata);
    return {
      update: (piece) => void hmac.update(piece),
      matches: (signature) => matches(signature, hexDigest(hmac)),
    };
  }

  /** An HMAC over the parts before the content. */
  #begin(header: Buffer, parentHeader: Buffer, metadata: Buffer): Hmac {
    const hmac = createHmac(this.#digest, this.#key);
    hmac.update(header);
    hmac.update(parentHeader);
    hmac.update(metadata);
    return hmac;
  }
}

function hexDigest(hmac: Hmac): Buffer {
  return Buffer.from(hmac.digest('hex'), 'ascii');
}

export interface ContentVerifier {
  update(piece: Buffer): void;
  /** Once, after the last piece: whether `signature` is the message's. */
  matches(signature: Buffer): boolean;
}

function matches(signature: Buffer, expected: Buffer): boolean {
  return signature.length === expected.length && timingSafeEqual(signature, expected);
}

/** The parts of a multipart message: routing prefix, signature and the raw message. */
export interface Parsed extends RawMessage {
  identities: Buffer[];
  signature: Buffer;
}

/** Split ZeroMQ frames at the delimiter. Throws ProtocolError on a malformed message. */
export function parseFrames(frames: readonly Buffer[]): Parsed {
  let at = -1;
  for (let i = 0; i < frames.length; i++) {
    const frame = frames[i];
    if (frame.length === DELIMITER.length && frame.equals(DELIMITER)) {
      at = i;
      break;
    }
  }
  if (at < 0) throw new ProtocolError('malformed message: no <IDS|MSG> delimiter');
  if (frames.length - at - 1 < 5) throw new ProtocolError('malformed message: fewer than 5 frames after the delimiter');
  return {
    identities: frames.slice(0, at),
    signature: frames[at + 1],
    header: frames[at + 2],
    parentHeader: frames[at + 3],
    metadata: frames[at + 4],
    content: frames[at + 5],
    buffers: frames.slice(at + 6),
  };
}

/**
 * Parse frames and check the signature (with `verifier` when it was given the content as it arrived);
 * throws ProtocolError when either fails.
 */
export function parseSigned(frames: readonly Buffer[], signer: Signer, verifier?: ContentVerifier): Parsed {
  const parsed = parseFrames(frames);
  if (signer.enabled && parsed.signature.length === 0) throw new ProtocolError('unsigned message');
  const valid = verifier
    ? verifier.matches(parsed.signature)
    : signer.verify(parsed.signature, parsed.header, parsed.parentHeader, parsed.metadata, parsed.content);
  if (!valid) {
    throw new ProtocolError('invalid signature');
  }
  return parsed;
}

/** Frames for sending `message` with a fresh signature, optionally behind routing identities. */
export function serializeFrames(message: RawMessage, signer: Signer, identities: readonly Buffer[] = []): Buffer[] {
  const signature = signer.sign(message.header, message.parentHeader, message.metadata, message.content);
  return [
    ...identities,
    DELIMITER,
    signature,
    message.header,
    message.parentHeader,
    message.metadata,
    message.content,
    ...message.buffers,
  ];
}

/** A session id in jupyter_client's shape: 8 hex, '-', 24 hex. */
export function newSessionId(): string {
  const hex = randomBytes(16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8)}`;
}

/** ISO 8601 in UTC with microseconds and 'Z', as Python's isoformat gives and clients parse. */
export function isoNow(date = new Date()): string {
  return date.toISOString().replace('Z', '000Z');
}

/** Builds headers for messages the gateway itself sends, with jupyter_client's msg_id shape. */
export class MessageFactory {
  #counter = 0;
  constructor(
    readonly session: string = newSessionId(),
    readonly username: string = process.env.USER || 'username',
  ) {}

  header(msgType: string): MessageHeader {
    return {
      msg_id: `${this.session}_${process.pid}_${this.#counter++}`,
      msg_type: msgType,
      username: this.username,
      session: this.session,
      date: isoNow(),
      version: PROTOCOL_VERSION,
    };
  }

  /** A complete raw message with JSON-encoded parts. */
  message(msgType: string, content: unknown, parentHeader: unknown = {}): RawMessage & { msgId: string; fields: MessageHeader } {
    const header = this.header(msgType);
    return {
      msgId: header.msg_id,
      fields: header,
      header: Buffer.from(JSON.stringify(header)),
      parentHeader: Buffer.from(JSON.stringify(parentHeader ?? {})),
      metadata: Buffer.from('{}'),
      content: Buffer.from(JSON.stringify(content)),
      buffers: [],
    };
  }
}
