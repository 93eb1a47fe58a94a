/**
 * The flood kernel: a tiny Jupyter kernel for the benchmark that produces iopub messages far faster
 * than ipykernel (about 2,500 messages/s here), so that what is measured is the transport.
 *
 *   node out/bench/flood-kernel.js -f <connection file>
 *
 * Real ZeroMQ sockets (ROUTER shell/control/stdin, PUB iopub without a high-water mark, heartbeat
 * echo) and real HMAC signatures. It answers kernel_info_request, shutdown_request (and exits),
 * interrupt_request, any other request with an empty ok reply, and execute_request whose code is
 *
 *   <count> <bytes>
 *
 * by publishing busy, then `count` stream messages whose content is `bytes` long (the header adds
 * about 300 bytes), each handed to ZeroMQ as soon as it takes it, then idle, then the execute_reply.
 */
import { parseArgs } from 'node:util';
import * as zmq from 'zeromq';
import { endpoint, readConnectionFile } from '../src/jskernel/server.ts';
import type { MessageHeader, RawMessage } from '../src/messaging/message.ts';
import { isoNow, MessageFactory, parseSigned, serializeFrames, Signer } from '../src/messaging/session.ts';

const { values } = parseArgs({ options: { f: { type: 'string' } } });
if (!values.f) {
  process.stderr.write('usage: flood-kernel -f <connection file>\n');
  process.exit(2);
}
const info = readConnectionFile(values.f);
const signer = new Signer(info.key, info.signature_scheme);
const factory = new MessageFactory(undefined, 'flood');
const EMPTY = Buffer.from('{}');

const shell = new zmq.Router({ linger: 0, sendHighWaterMark: 0, receiveHighWaterMark: 0, handover: true });
const control = new zmq.Router({ linger: 0, sendHighWaterMark: 0, receiveHighWaterMark: 0, handover: true });
const stdin = new zmq.Router({ linger: 0, handover: true });
const iopub = new zmq.Publisher({ linger: 0, sendHighWaterMark: 0 });
const hb = new zmq.Router({ linger: 0 });
await Promise.all([
  shell.bind(endpoint(info, 'shell')),
  control.bind(endpoint(info, 'control')),
  stdin.bind(endpoint(info, 'stdin')),
  iopub.bind(endpoint(info, 'iopub')),
  hb.bind(endpoint(info, 'hb')),
]);

function raw(msgType: string, content: Buffer | unknown, parent: Buffer): RawMessage {
  return {
    header: Buffer.from(JSON.stringify(factory.header(msgType))),
    parentHeader: parent,
    metadata: EMPTY,
    content: Buffer.isBuffer(content) ? content : Buffer.from(JSON.stringify(content)),
    buffers: [],
  };
}

/** One send at a time per socket (zeromq v6): every sender awaits its turn on the socket's chain. */
const chains = new Map<zmq.Socket, Promise<void>>();
function send(socket: zmq.Router | zmq.Publisher, frames: Buffer[]): Promise<void> {
  const next = (chains.get(socket) ?? Promise.resolve()).then(() => socket.send(frames));
  chains.set(socket, next.catch(() => {}));
  return next;
}

const publish = (msgType: string, content: unknown, parent: Buffer) => send(iopub, serializeFrames(raw(msgType, content, parent), signer));
const status = (state: string, parent: Buffer) => publish('status', { execution_state: state }, parent);

/**
 * The flood: `count` stream messages with one content buffer, each with its own header and signature.
 * The header is written from a template (JSON.stringify per message would be the kernel's main cost).
 */
async function flood(count: number, bytes: number, parent: Buffer): Promise<void> {
  const text = 'x'.repeat(Math.max(0, bytes - '{"name":"stdout","text":""}'.length));
  const content = Buffer.from(JSON.stringify({ name: 'stdout', text }));
  const session = factory.session;
  const prefix = `{"msg_id":"${session}_flood_`;
  const suffix = `","msg_type":"stream","username":"flood","session":"${session}","date":"${isoNow()}","version":"5.4"}`;
  for (let i = 0; i < count; i++) {
    const header = Buffer.from(prefix + i + suffix);
    await send(iopub, serializeFrames({ header, parentHeader: parent, metadata: EMPTY, content, buffers: [] }, signer));
  }
}

const KERNEL_INFO = {
  status: 'ok',
  protocol_version: '5.4',
  implementation: 'flood',
  implementation_version: '1.0',
  language_info: { name: 'flood', version: '1.0', mimetype: 'text/plain', file_extension: '.txt' },
  banner: 'the benchmark flood kernel',
  help_links: [],
};

let executionCount = 0;

async function handle(socket: zmq.Router, frames: Buffer[]): Promise<void> {
  const parsed = parseSigned(frames, signer);
  const header = JSON.parse(parsed.header.toString('utf8')) as MessageHeader;
  const type = header.msg_type;
  const reply = (content: unknown) => send(socket, serializeFrames(raw(type.replace(/_request$/, '_reply'), content, parsed.header), signer, parsed.identities));
  await status('busy', parsed.header);
  if (type === 'kernel_info_request') {
    await reply(KERNEL_INFO);
  } else if (type === 'execute_request') {
    const { code } = JSON.parse(parsed.content.toString('utf8')) as { code: string };
    executionCount++;
    await publish('execute_input', { code, execution_count: executionCount }, parsed.header);
    const [count, bytes] = code.trim().split(/\s+/).map(Number);
    if (Number.isInteger(count) && Number.isInteger(bytes)) {
      await flood(count, bytes, parsed.header);
      await status('idle', parsed.header);
      await reply({ status: 'ok', execution_count: executionCount, user_expressions: {}, payload: [] });
      return;
    }
    await status('idle', parsed.header);
    await reply({ status: 'error', execution_count: executionCount, ename: 'FloodError', evalue: `code must be "<count> <bytes>", not ${JSON.stringify(code)}`, traceback: [] });
    return;
  } else if (type === 'shutdown_request') {
    await reply({ status: 'ok', restart: false });
    await status('idle', parsed.header);
    setTimeout(() => process.exit(0), 50);
    return;
  } else if (type.endsWith('_request')) {
    await reply({ status: 'ok' });
  }
  await status('idle', parsed.header);
}

/** Requests are handled one at a time, in order, as a kernel's main thread does. */
let queue: Promise<void> = Promise.resolve();
async function serve(socket: zmq.Router): Promise<void> {
  for await (const frames of socket) {
    queue = queue.then(() => handle(socket, frames)).catch((error: Error) => {
      process.stderr.write(`flood kernel: ${error.message}\n`);
    });
  }
}
void serve(shell);
void serve(control);
void (async () => {
  for await (const frames of hb) await hb.send(frames);
})();
// SIGINT is an interrupt (nothing to interrupt here); SIGTERM ends the kernel.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => process.exit(0));
process.stderr.write(`flood kernel ${process.pid} ready\n`);
