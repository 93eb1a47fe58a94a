/**
 * The legacy WebSocket protocol (no subprotocol): one JSON text frame per message, or, for messages
 * with buffers, a binary frame: u32be nbufs (= 1 + buffers), u32be offsets[nbufs], the JSON without
 * "buffers", then each buffer.
 * Towards the client the kernel's JSON parts are spliced into the envelope, not parsed and re-written.
 */
import { isUtf8 } from 'node:buffer';
import { isJsonObject, type RawMessage } from '../messaging/message.ts';
import { ProtocolError } from '../messaging/session.ts';
import { byteLength } from '../zmq/io.ts';
import { gather } from './chunks.ts';
import { errorMessage } from '../log.ts';

const EMPTY_OBJECT = Buffer.from('{}');

/** Text frames must be valid UTF-8 or browsers drop the connection: repair a part only when needed. */
function utf8Part(part: Buffer): Buffer {
  if (part.length === 0) return EMPTY_OBJECT;
  return isUtf8(part) ? part : Buffer.from(part.toString('utf8'), 'utf8');
}

const HEADER = Buffer.from('{"header":');
const METADATA = Buffer.from(',"metadata":');
const CONTENT = Buffer.from(',"content":');

/**
 * Encode a kernel message for a legacy client as one frame (for tests; the gateway sends
 * encodeJsonChunks). `msgId` and `msgType` come from the header (already read).
 */
export function encodeJson(channel: string, message: RawMessage, msgId: string, msgType: string): { data: Buffer; binary: boolean } {
  const { chunks, binary } = encodeJsonChunks(channel, message, msgId, msgType);
  return { data: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks), binary };
}

/** The same as chunks (see chunks.ts), with whether the message must go as binary. */
export function encodeJsonChunks(channel: string, message: RawMessage, msgId: string, msgType: string): { chunks: Buffer[]; binary: boolean } {
  const binary = message.buffers.length > 0;
  // The envelope's own fields, each run of them as one piece.
  const ids = `,"msg_id":${JSON.stringify(msgId)},"msg_type":${JSON.stringify(msgType)},"parent_header":`;
  const tail = `${binary ? '' : ',"buffers":[]'},"channel":${JSON.stringify(channel)}}`;
  const json = [
    HEADER, utf8Part(message.header),
    Buffer.from(ids), utf8Part(message.parentHeader),
    METADATA, utf8Part(message.metadata),
    CONTENT, utf8Part(message.content),
    Buffer.from(tail),
  ];
  if (!binary) return { chunks: gather(json), binary: false };
  const nbufs = 1 + message.buffers.length;
  const table = Buffer.allocUnsafe(4 * (nbufs + 1));
  table.writeUInt32BE(nbufs, 0);
  let at = table.length;
  table.writeUInt32BE(at, 4);
  at += byteLength(json);
  for (let i = 0; i < message.buffers.length; i++) {
    table.writeUInt32BE(at, 4 * (i + 2));
    at += message.buffers[i].length;
  }
  return { chunks: gather([table, ...json, ...message.buffers]), binary: true };
}

export interface DecodedClientMessage {
  /** undefined when the client gave none (the caller defaults to shell, with a warning). */
  channel: string | undefined;
  message: RawMessage;
  /** The header as parsed (it has a string msg_type). */
  header: Record<string, unknown>;
}

/** Decode a client's text or binary frame; throws ProtocolError saying what is wrong with it. */
export function decodeJson(data: Buffer, isBinary: boolean): DecodedClientMessage {
  let jsonBytes = data;
  let buffers: Buffer[] = [];
  if (isBinary) {
    if (data.length < 8) throw new ProtocolError('binary frame shorter than its offset table');
    const nbufs = data.readUInt32BE(0);
    if (nbufs < 1 || 4 * (nbufs + 1) > data.length) throw new ProtocolError(`binary frame has an impossible buffer count (${nbufs})`);
    const offsets: number[] = [];
    for (let i = 0; i < nbufs; i++) {
      const offset = data.readUInt32BE(4 * (i + 1));
      const floor = i === 0 ? 4 * (nbufs + 1) : offsets[i - 1];
      if (offset < floor || offset > data.length) throw new ProtocolError(`binary frame offset ${i} (${offset}) is out of order or past the end`);
      offsets.push(offset);
    }
    const part = (i: number) => data.subarray(offsets[i], i + 1 < nbufs ? offsets[i + 1] : data.length);
    jsonBytes = part(0);
    buffers = offsets.slice(1).map((_, i) => part(i + 1));
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(jsonBytes.toString('utf8'));
  } catch (error) {
    throw new ProtocolError(`frame is not valid JSON: ${errorMessage(error)}`);
  }
  if (!isJsonObject(parsed)) throw new ProtocolError('frame is not a JSON object');
  const { header, parent_header, metadata, content, channel } = parsed;
  if (!isJsonObject(header) || typeof header.msg_type !== 'string') throw new ProtocolError('message has no header with a msg_type');
  if (channel !== undefined && typeof channel !== 'string') throw new ProtocolError('channel must be a string');
  // Be lenient where Jupyter Server is not: missing parent_header, metadata or content become {}.
  const part = (value: unknown, name: string): Buffer => {
    if (value === undefined || value === null) return EMPTY_OBJECT;
    if (!isJsonObject(value)) throw new ProtocolError(`${name} must be an object`);
    return Buffer.from(JSON.stringify(value), 'utf8');
  };
  return {
    channel,
    header,
    message: {
      header: Buffer.from(JSON.stringify(header), 'utf8'),
      parentHeader: part(parent_header, 'parent_header'),
      metadata: part(metadata, 'metadata'),
      content: part(content, 'content'),
      buffers,
    },
  };
}
