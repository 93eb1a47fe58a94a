/**
 * The `v1.kernel.websocket.jupyter.org` WebSocket protocol: always binary frames,
 *   u64le offset_number, u64le offsets[offset_number], then channel, header, parent_header,
 *   metadata, content, buffers... with offsets[0] = start of channel and the last offset = frame length.
 * Kernel JSON passes through byte for byte in both directions.
 */
import type { RawMessage } from '../messaging/message.ts';
import { ProtocolError } from '../messaging/session.ts';
import { gather } from './chunks.ts';

export const V1_PROTOCOL = 'v1.kernel.websocket.jupyter.org';

/** A message as one frame (for tests and small messages; the gateway sends encodeV1Chunks). */
export function encodeV1(channel: string, message: RawMessage): Buffer {
  const chunks = encodeV1Chunks(channel, message);
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}

/** The channel names, encoded once. */
const CHANNEL_BYTES = new Map(['shell', 'control', 'stdin', 'iopub'].map((name) => [name, Buffer.from(name, 'utf8')]));

/** `value` as a u64le, without the BigInt that writeBigUInt64LE needs (offsets are below 2^53). */
function writeU64LE(target: Buffer, value: number, at: number): void {
  target.writeUInt32LE(value % 0x1_0000_0000, at);
  target.writeUInt32LE(Math.floor(value / 0x1_0000_0000), at + 4);
}

/** A message as chunks (see chunks.ts): only the offset table is new; big parts are not copied. */
export function encodeV1Chunks(channel: string, message: RawMessage): Buffer[] {
  const channelBytes = CHANNEL_BYTES.get(channel) ?? Buffer.from(channel, 'utf8');
  const parts = [channelBytes, message.header, message.parentHeader, message.metadata, message.content, ...message.buffers];
  const offsetNumber = parts.length + 1;
  const tableBytes = 8 * (offsetNumber + 1);
  const table = Buffer.allocUnsafe(tableBytes);
  writeU64LE(table, offsetNumber, 0);
  let at = tableBytes;
  for (let i = 0; i < parts.length; i++) {
    writeU64LE(table, at, 8 * (i + 1));
    at += parts[i].length;
  }
  writeU64LE(table, at, 8 * offsetNumber);
  return gather([table, ...parts]);
}

/** Split a client's v1 frame; throws ProtocolError saying what is wrong with it. */
export function decodeV1(frame: Buffer): { channel: string; message: RawMessage } {
  if (frame.length < 8) throw new ProtocolError('v1 frame shorter than its offset count');
  const count = frame.readBigUInt64LE(0);
  // channel + 4 JSON parts need 6 offsets; the table itself must fit in the frame.
  if (count < 6n || 8n * (count + 1n) > BigInt(frame.length)) {
    throw new ProtocolError(`v1 frame has an impossible offset count (${count})`);
  }
  const offsetNumber = Number(count);
  const offsets: number[] = new Array(offsetNumber);
  let previous = 8 * (offsetNumber + 1);
  for (let i = 0; i < offsetNumber; i++) {
    const offset = frame.readBigUInt64LE(8 * (i + 1));
    if (offset < BigInt(previous) || offset > BigInt(frame.length)) {
      throw new ProtocolError(`v1 frame offset ${i} (${offset}) is out of order or past the end (${frame.length} bytes)`);
    }
    offsets[i] = previous = Number(offset);
  }
  if (offsets[0] !== 8 * (offsetNumber + 1)) throw new ProtocolError('v1 frame: the channel does not follow the offset table');
  const part = (i: number) => frame.subarray(offsets[i], i + 1 < offsetNumber ? offsets[i + 1] : frame.length);
  const buffers: Buffer[] = [];
  for (let i = 5; i < offsetNumber - 1; i++) buffers.push(part(i));
  return {
    channel: part(0).toString('utf8'),
    message: { header: part(1), parentHeader: part(2), metadata: part(3), content: part(4), buffers },
  };
}
