/** Shared pieces of the wire-format unit tests: byte conversions for JupyterLab's codec, error checks. */
import * as assert from 'uvu/assert';
import type { serialize } from '@jupyterlab/services/lib/kernel/serialize.js';
import { ProtocolError } from '../../src/messaging/session.ts';

/** A message as JupyterLab's serializer takes it. */
export type JlMessage = Parameters<typeof serialize>[0];

/** A copy of exactly the frame's bytes as a standalone ArrayBuffer (Node buffers may share a pool). */
export const toArrayBuffer = (b: Buffer): ArrayBuffer => {
  const out = new ArrayBuffer(b.length);
  new Uint8Array(out).set(b);
  return out;
};

/** The bytes of a DataView/typed array JupyterLab hands back, as a Buffer (no copy). */
export const dvBytes = (v: unknown): Buffer => {
  const view = v as ArrayBufferView;
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
};

/** Runs `fn`, which must throw a ProtocolError with a message; returns the message. */
export function protocolError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.instance(err, ProtocolError);
    assert.ok((err as Error).message.length > 0, 'error has a message');
    return (err as Error).message;
  }
  assert.unreachable('no ProtocolError thrown');
  return '';
}
