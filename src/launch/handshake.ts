/**
 * The launcher protocol's handshake, either end (the messages and proofs are protocol.ts's): plain
 * bytes, bounded in size and time, after which both ends hold the keys of one Link.
 */
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { Link, type LinkOptions } from './link.ts';
import {
  decodeHello,
  deriveKeys,
  encodeHello,
  gatewayProof,
  launcherProof,
  LinkProtocolError,
  MAX_HANDSHAKE_BYTES,
  NONCE_BYTES,
  PROOF_BYTES,
  proofMatches,
  type HandshakeNonces,
} from './protocol.ts';

const HANDSHAKE_TIMEOUT_MS = 10_000;
/** What a peer may have sent before the handshake is over (the messages, and a few reads of records after them). */
const MAX_HANDSHAKE_BUFFER = 256 * 1024;

/** The launcher's side: say who we are, check the gateway's proof, prove ourselves. */
export async function connectAsLauncher(socket: Socket, kernelId: string, secret: Buffer, options: LinkOptions = {}): Promise<Link> {
  const reader = new HandshakeReader(socket, HANDSHAKE_TIMEOUT_MS);
  try {
    const launcherNonce = randomBytes(NONCE_BYTES);
    socket.write(encodeHello(kernelId, launcherNonce));
    const reply = await reader.read((data) => (data.length >= NONCE_BYTES + PROOF_BYTES ? NONCE_BYTES + PROOF_BYTES : undefined));
    const nonces: HandshakeNonces = { kernelId, launcherNonce, gatewayNonce: reply.subarray(0, NONCE_BYTES) };
    if (!proofMatches(reply.subarray(NONCE_BYTES), gatewayProof(secret, nonces))) {
      throw new LinkProtocolError('the gateway could not prove it holds this kernel\'s secret');
    }
    socket.write(launcherProof(secret, nonces));
    const keys = deriveKeys(secret, nonces);
    return new Link(socket, keys.toGateway, keys.toLauncher, reader.finish(), 1, options);
  } catch (error) {
    reader.finish();
    socket.destroy();
    throw error;
  }
}

/**
 * The gateway's side: read the hello, look up the kernel's secret (undefined: not a kernel waiting
 * for its launcher), prove we hold it, check the launcher's proof.
 */
export async function acceptLauncher(
  socket: Socket,
  secretFor: (kernelId: string) => Buffer | undefined,
  options: LinkOptions = {},
): Promise<{ kernelId: string; link: Link }> {
  const reader = new HandshakeReader(socket, HANDSHAKE_TIMEOUT_MS);
  try {
    let hello: ReturnType<typeof decodeHello> = undefined;
    await reader.read((data) => (hello = decodeHello(data))?.bytes);
    const { kernelId, nonce: launcherNonce } = hello!;
    const secret = secretFor(kernelId);
    if (!secret) throw new LinkProtocolError(`no kernel ${kernelId} is waiting for its launcher`);
    const nonces: HandshakeNonces = { kernelId, launcherNonce, gatewayNonce: randomBytes(NONCE_BYTES) };
    socket.write(Buffer.concat([nonces.gatewayNonce, gatewayProof(secret, nonces)]));
    const received = await reader.read((data) => (data.length >= PROOF_BYTES ? PROOF_BYTES : undefined));
    if (!proofMatches(received, launcherProof(secret, nonces))) throw new LinkProtocolError(`wrong proof from a launcher for kernel ${kernelId}`);
    const keys = deriveKeys(secret, nonces);
    return { kernelId, link: new Link(socket, keys.toLauncher, keys.toGateway, reader.finish(), 0, options) };
  } catch (error) {
    reader.finish();
    socket.destroy();
    throw error;
  }
}

/** Reads the handshake's plain messages, bounded in size and time. */
class HandshakeReader {
  #buffered = Buffer.alloc(0);
  #wake: (() => void) | undefined;
  #failure: Error | undefined;
  readonly #timer: NodeJS.Timeout;
  readonly #onData = (chunk: Buffer) => {
    this.#buffered = Buffer.concat([this.#buffered, chunk]);
    // Records may follow the last handshake message in the same reads, but not many: each read is looked at.
    if (this.#buffered.length > MAX_HANDSHAKE_BUFFER) this.#fail(new LinkProtocolError('too much data during the handshake'));
    this.#wake?.();
  };
  readonly #onEnd = () => this.#fail(new LinkProtocolError('the connection closed during the handshake'));

  constructor(private readonly socket: Socket, timeoutMs: number) {
    this.#timer = setTimeout(() => this.#fail(new LinkProtocolError(`no handshake within ${timeoutMs / 1000} s`)), timeoutMs);
    socket.on('data', this.#onData);
    socket.on('close', this.#onEnd);
    socket.on('error', this.#onEnd);
  }

  /** The next message: `size` says how many bytes it takes of what has arrived (undefined: not all there). */
  async read(size: (data: Buffer) => number | undefined): Promise<Buffer> {
    for (;;) {
      if (this.#failure) throw this.#failure;
      const bytes = size(this.#buffered);
      if (bytes !== undefined) {
        const message = this.#buffered.subarray(0, bytes);
        this.#buffered = this.#buffered.subarray(bytes);
        return message;
      }
      if (this.#buffered.length >= MAX_HANDSHAKE_BYTES) throw new LinkProtocolError('handshake message too long');
      await new Promise<void>((resolve) => (this.#wake = resolve));
      this.#wake = undefined;
    }
  }

  /** Stop reading; what arrived after the handshake belongs to the link. */
  finish(): Buffer {
    clearTimeout(this.#timer);
    this.socket.pause();
    this.socket.off('data', this.#onData);
    this.socket.off('close', this.#onEnd);
    this.socket.off('error', this.#onEnd);
    return this.#buffered;
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    this.#wake?.();
  }
}
