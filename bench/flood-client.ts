/**
 * A worker process of the flood benchmark: holds its share of a kernel's clients (direct ZeroMQ
 * subscribers, or gateway WebSockets in either protocol), so that with 100 clients the receiving
 * side does not share the benchmark's own event loop. Each client does what a real one must for
 * every message: a direct one checks the signature, and every one parses header and parent header
 * (a legacy JSON client parses the whole message, as it has to).
 *
 * Clients come in named groups (one per kernel). Messages from the parent (IPC), each answered once:
 *   {type: 'open', group, mode, count, info | url}    -> {type: 'opened'}
 *   {type: 'expect', group, msgId}                    -> {type: 'expected'}, later {type: 'done', msgId, counts, idleAt}
 *   {type: 'send', group, msgId, msgType, content}    -> {type: 'sent', at}   (sent by the group's first client here)
 *   {type: 'status', group}                           -> {type: 'status', counts}
 *   {type: 'close', group}                            -> {type: 'closed'}
 * and at any time {type: 'broken', error} when a client's connection failed. The worker exits with its parent.
 * Times are wall-clock milliseconds (performance.timeOrigin + performance.now()), comparable between processes.
 */
import WebSocket from 'ws';
import * as zmq from 'zeromq';
import type { ConnectionInfo, MessageHeader } from '../src/messaging/message.ts';
import { isoNow, parseSigned, serializeFrames, Signer } from '../src/messaging/session.ts';
import { decodeV1, encodeV1, V1_PROTOCOL } from './connections.ts';

export type FloodMode = 'direct' | 'v1' | 'json';

export type FloodOrder =
  | { type: 'open'; group: string; mode: FloodMode; count: number; info?: ConnectionInfo; url?: string }
  | { type: 'expect'; group: string; msgId: string }
  | { type: 'send'; group: string; msgId: string; msgType: string; content: unknown }
  | { type: 'status'; group: string }
  | { type: 'close'; group: string };

interface Expectation {
  counts: number[];
  idleAt: (number | undefined)[];
  waiting: number;
}

interface Client {
  session: string;
  send(header: MessageHeader, content: unknown): Promise<void>;
  close(): void;
}

/** The clients of one kernel in this worker, and the runs they are counting. */
class Group {
  readonly clients: Client[] = [];
  readonly expectations = new Map<string, Expectation>();

  constructor(readonly name: string) {}

  /** What every client calls for each iopub message: count the flood, note the idle. */
  seen(client: number, msgType: string, parentId: unknown, content: () => { execution_state?: unknown }): void {
    if (typeof parentId !== 'string') return;
    const expectation = this.expectations.get(parentId);
    if (!expectation || expectation.idleAt[client] !== undefined) return;
    if (msgType === 'stream') {
      expectation.counts[client]++;
    } else if (msgType === 'status' && content().execution_state === 'idle') {
      expectation.idleAt[client] = now();
      if (--expectation.waiting === 0) {
        this.expectations.delete(parentId);
        reply({ type: 'done', msgId: parentId, counts: expectation.counts, idleAt: expectation.idleAt });
      }
    }
  }
}

const now = () => performance.timeOrigin + performance.now();
const groups = new Map<string, Group>();
const group = (name: string) => groups.get(name) ?? groups.set(name, new Group(name)).get(name)!;

function reply(message: object): void {
  process.send!(message);
}

/** A client whose connection failed, unless it was being closed on purpose. */
function broken(what: string, closing: boolean): void {
  if (!closing) reply({ type: 'broken', error: what });
}

const parentIdOf = (bytes: Buffer) => (JSON.parse(bytes.toString('utf8')) as { msg_id?: unknown }).msg_id;

function openDirect(g: Group, index: number, info: ConnectionInfo, session: string): void {
  const signer = new Signer(info.key, info.signature_scheme);
  const base = `${info.transport}://${info.ip}:`;
  const iopub = new zmq.Subscriber({ receiveHighWaterMark: 0, linger: 0 });
  iopub.subscribe();
  iopub.connect(base + info.iopub_port);
  const shell = index === 0 ? new zmq.Dealer({ linger: 0 }) : undefined;
  shell?.connect(base + info.shell_port);
  void (async () => {
    try {
      for await (const frames of iopub) {
        const parsed = parseSigned(frames, signer);
        const header = JSON.parse(parsed.header.toString('utf8')) as MessageHeader;
        g.seen(index, header.msg_type, parentIdOf(parsed.parentHeader), () => JSON.parse(parsed.content.toString('utf8')));
      }
    } catch (error) {
      broken(`${g.name} client ${index}: ${(error as Error).message}`, iopub.closed);
    }
  })();
  // The shell replies are not needed (the idle status ends a run): read and dropped.
  if (shell) {
    void (async () => {
      for await (const _ of shell);
    })().catch(() => {});
  }
  g.clients.push({
    session,
    async send(header, content) {
      const message = { header: Buffer.from(JSON.stringify(header)), parentHeader: Buffer.from('{}'), metadata: Buffer.from('{}'), content: Buffer.from(JSON.stringify(content)), buffers: [] };
      await shell!.send(serializeFrames(message, signer));
    },
    close() {
      iopub.close();
      shell?.close();
    },
  });
}

function openWs(g: Group, index: number, url: string, v1: boolean, session: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let closing = false;
    const ws = new WebSocket(`${url}${url.includes('?') ? '&' : '?'}session_id=${session}`, v1 ? [V1_PROTOCOL] : [], { perMessageDeflate: false });
    ws.once('error', reject);
    ws.once('open', () => {
      ws.off('error', reject);
      ws.on('error', (error) => broken(`${g.name} client ${index}: ${error.message}`, closing));
      ws.on('close', (code, reason) => broken(`${g.name} client ${index}: closed by the gateway (${code} ${reason.toString()})`, closing));
      resolve();
    });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      try {
        if (v1) {
          const { channel, parts } = decodeV1(data);
          if (channel !== 'iopub') return;
          const header = JSON.parse(parts[0].toString('utf8')) as MessageHeader;
          g.seen(index, header.msg_type, parentIdOf(parts[1]), () => JSON.parse(parts[3].toString('utf8')));
        } else {
          const text = isBinary ? data.toString('utf8', data.readUInt32BE(4), data.readUInt32BE(0) > 1 ? data.readUInt32BE(8) : data.length) : data.toString('utf8');
          const message = JSON.parse(text) as { channel: string; header: MessageHeader; parent_header: { msg_id?: unknown }; content: { execution_state?: unknown } };
          if (message.channel !== 'iopub') return;
          g.seen(index, message.header.msg_type, message.parent_header.msg_id, () => message.content);
        }
      } catch (error) {
        broken(`${g.name} client ${index}: bad frame: ${(error as Error).message}`, closing);
      }
    });
    g.clients.push({
      session,
      send(header, content) {
        const data = v1
          ? encodeV1('shell', [Buffer.from(JSON.stringify(header)), Buffer.from('{}'), Buffer.from('{}'), Buffer.from(JSON.stringify(content))])
          : JSON.stringify({ header, parent_header: {}, metadata: {}, content, channel: 'shell', buffers: [] });
        return new Promise((done, fail) => ws.send(data, (error) => (error ? fail(error) : done())));
      },
      close() {
        closing = true;
        ws.close(1000);
      },
    });
  });
}

async function open(order: Extract<FloodOrder, { type: 'open' }>): Promise<void> {
  const g = group(order.group);
  const opening: Promise<void>[] = [];
  for (let i = 0; i < order.count; i++) {
    const session = `flood-${process.pid}-${order.group}-${i}`;
    if (order.mode === 'direct') openDirect(g, i, order.info!, session);
    else opening.push(openWs(g, i, order.url!, order.mode === 'v1', session));
  }
  await Promise.all(opening);
}

process.on('message', (order: FloodOrder) => {
  const g = group(order.group);
  switch (order.type) {
    case 'open':
      open(order).then(
        () => reply({ type: 'opened' }),
        (error: Error) => reply({ type: 'broken', error: `opening ${order.group} clients: ${error.message}` }),
      );
      break;
    case 'expect':
      g.expectations.set(order.msgId, { counts: g.clients.map(() => 0), idleAt: g.clients.map(() => undefined), waiting: g.clients.length });
      reply({ type: 'expected' });
      break;
    case 'send': {
      // The header carries the client's session, as a browser's does.
      const header = { msg_id: order.msgId, msg_type: order.msgType, username: 'bench', session: g.clients[0].session, date: isoNow(), version: '5.4' };
      const at = now();
      g.clients[0].send(header, order.content).then(
        () => reply({ type: 'sent', at }),
        (error: Error) => broken(`${g.name}: sending: ${error.message}`, false),
      );
      break;
    }
    case 'status':
      reply({ type: 'status', counts: [...g.expectations.values()].map((e) => e.counts) });
      break;
    case 'close':
      for (const client of g.clients) client.close();
      groups.delete(g.name);
      setTimeout(() => reply({ type: 'closed' }), 300);
      break;
  }
});
process.on('disconnect', () => process.exit(0));
