/**
 * A worker process of the load benchmark: opens its share of WebSocket clients, has each run one
 * small cell when told, and reports latencies and whether every client received every iopub
 * message of its kernel (judged by the idle status of every cell run on that kernel).
 *
 * Messages from the parent (IPC): {type: 'connect', ...}, {type: 'run'}, {type: 'close'}.
 */
import WebSocket from 'ws';
import { decodeV1, encodeV1, V1_PROTOCOL } from './connections.ts';

interface ConnectOrder {
  type: 'connect';
  wsBase: string;
  token: string;
  /** Kernel id of each client this worker opens. */
  kernels: string[];
  code: string;
  worker: number;
}

interface Client {
  ws: WebSocket;
  kernelId: string;
  v1: boolean;
  session: string;
  /** msg_ids of cells whose idle status this client saw. */
  idles: Set<string>;
  sentAt: number;
  msgId: string;
  latency?: number;
  replied: boolean;
  idleSeen: boolean;
}

let clients: Client[] = [];
let order: ConnectOrder;
let counter = 0;

function send(message: unknown): void {
  process.send!(message);
}

function header(session: string, msgType: string) {
  counter++;
  return { msg_id: `${session}-${counter}`, msg_type: msgType, username: 'bench', session, date: new Date().toISOString(), version: '5.3' };
}

function onMessage(client: Client, data: Buffer, isBinary: boolean): void {
  let msgType: string;
  let parentId: string | undefined;
  let channel: string;
  let content: Record<string, unknown> | undefined;
  if (client.v1 && isBinary) {
    const { channel: c, parts } = decodeV1(data);
    channel = c;
    msgType = JSON.parse(parts[0].toString()).msg_type;
    parentId = JSON.parse(parts[1].toString()).msg_id;
    if (msgType === 'status') content = JSON.parse(parts[3].toString());
  } else {
    const m = JSON.parse(data.toString());
    channel = m.channel;
    msgType = m.header.msg_type;
    parentId = m.parent_header?.msg_id;
    content = m.content;
  }
  if (msgType === 'status' && content?.execution_state === 'idle' && parentId) {
    client.idles.add(parentId);
    if (parentId === client.msgId) client.idleSeen = true;
  }
  if (channel === 'shell' && msgType === 'execute_reply' && parentId === client.msgId) client.replied = true;
  if (client.replied && client.idleSeen && client.latency === undefined) client.latency = performance.now() - client.sentAt;
}

async function connectAll(o: ConnectOrder): Promise<void> {
  order = o;
  let failed = 0;
  const errors: string[] = [];
  const batch = 100;
  for (let i = 0; i < o.kernels.length; i += batch) {
    await Promise.all(
      o.kernels.slice(i, i + batch).map(
        (kernelId, j) =>
          new Promise<void>((resolve) => {
            const v1 = (i + j) % 2 === 0;
            const session = `load-${o.worker}-${i + j}`;
            const ws = new WebSocket(`${o.wsBase}api/kernels/${kernelId}/channels?session_id=${session}&token=${o.token}`, v1 ? [V1_PROTOCOL] : [], {
              perMessageDeflate: false,
            });
            const client: Client = { ws, kernelId, v1, session, idles: new Set(), sentAt: 0, msgId: '', replied: false, idleSeen: false };
            ws.on('message', (data: Buffer, isBinary: boolean) => onMessage(client, data, isBinary));
            ws.once('open', () => {
              clients.push(client);
              resolve();
            });
            ws.on('error', (error) => {
              if (ws.readyState !== WebSocket.OPEN) {
                failed++;
                if (errors.length < 5) errors.push(error.message);
                resolve();
              }
            });
          }),
      ),
    );
  }
  send({ type: 'connected', opened: clients.length, failed, errors });
}

function runAll(): void {
  for (const client of clients) {
    const h = header(client.session, 'execute_request');
    client.msgId = h.msg_id;
    const content = { code: order.code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true };
    client.sentAt = performance.now();
    if (client.v1) {
      client.ws.send(encodeV1('shell', [h, {}, {}, content].map((p) => Buffer.from(JSON.stringify(p)))));
    } else {
      client.ws.send(JSON.stringify({ header: h, parent_header: {}, metadata: {}, content, channel: 'shell', buffers: [] }));
    }
  }
  send({ type: 'sent', count: clients.length });
}

/** Every client's latency (undefined: no reply) and the cells whose idle status it saw. */
function report(): void {
  send({
    type: 'report',
    clients: clients.map((c) => ({ kernelId: c.kernelId, msgId: c.msgId, latency: c.latency, idles: [...c.idles], open: c.ws.readyState === WebSocket.OPEN })),
  });
}

process.on('message', (message: { type: string } & Partial<ConnectOrder>) => {
  if (message.type === 'connect') void connectAll(message as ConnectOrder);
  else if (message.type === 'run') runAll();
  else if (message.type === 'progress') send({ type: 'progress', done: clients.filter((c) => c.latency !== undefined).length });
  else if (message.type === 'report') report();
  else if (message.type === 'close') {
    for (const c of clients) c.ws.close();
    clients = [];
    setTimeout(() => process.exit(0), 500);
  }
});
