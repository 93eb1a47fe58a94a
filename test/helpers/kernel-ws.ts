/**
 * A WebSocket client for /api/kernels/{id}/channels speaking either the legacy JSON protocol or
 * v1.kernel.websocket.jupyter.org. Frames are encoded and decoded with @jupyterlab/services' own
 * serializer (the real client's codec); independent hand-written codecs below check the layouts.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import type { KernelMessage } from '@jupyterlab/services';
import { serialize as jlSerialize, deserialize as jlDeserialize } from '@jupyterlab/services/lib/kernel/serialize.js';
import { validateMessage as jlValidateMessage } from '@jupyterlab/services/lib/kernel/validate.js';
import type { Gateway } from './gateway.ts';

export const V1_PROTOCOL = 'v1.kernel.websocket.jupyter.org';
export type Protocol = 'legacy' | 'v1';

export interface Header {
  msg_id: string;
  msg_type: string;
  username: string;
  session: string;
  date: string;
  version: string;
  [k: string]: unknown;
}

/** A message as a client sees it. */
export interface Msg {
  channel: string;
  header: Header;
  parent_header: Partial<Header>;
  metadata: Record<string, unknown>;
  content: any;
  buffers: Uint8Array[];
}

/** A received message plus facts about the frame it arrived in. */
export interface Received extends Msg {
  frame: { binary: boolean; data: Buffer; topKeys: string[] };
}

export function makeMsg(
  channel: string,
  msgType: string,
  content: unknown,
  session: string,
  extra: { buffers?: Uint8Array[]; parent?: Partial<Header>; metadata?: Record<string, unknown> } = {},
): Msg {
  return {
    channel,
    header: {
      msg_id: randomUUID(),
      msg_type: msgType,
      username: 'integration-test',
      session,
      date: new Date().toISOString(),
      version: '5.3',
    },
    parent_header: extra.parent ?? {},
    metadata: extra.metadata ?? {},
    content,
    buffers: extra.buffers ?? [],
  };
}

/** A fresh ArrayBuffer holding exactly the bytes of `u` (JupyterLab's codec copies whole backing buffers). */
function exactArrayBuffer(u: Uint8Array): ArrayBuffer {
  const ab = new ArrayBuffer(u.byteLength);
  new Uint8Array(ab).set(u);
  return ab;
}

function toArrayBuffer(b: Buffer): ArrayBuffer {
  return exactArrayBuffer(b);
}

/** Encodes with @jupyterlab/services' serializer. */
export function encodeWithJupyterLab(msg: Msg, protocol: Protocol): string | ArrayBuffer {
  const copy = { ...msg, buffers: msg.buffers.map((b) => exactArrayBuffer(b)) };
  return jlSerialize(copy as unknown as KernelMessage.IMessage, protocol === 'v1' ? V1_PROTOCOL : '');
}

// ---------------------------------------------------------------------------------------------
// Hand-written codecs (independent of JupyterLab's), used to check frame layouts byte by byte.

/** v1: u64 LE offset_number, u64 LE offsets, then channel, header, parent_header, metadata, content, buffers. */
export function encodeV1ByHand(msg: Msg): Buffer {
  const parts: Buffer[] = [
    Buffer.from(msg.channel, 'utf8'),
    Buffer.from(JSON.stringify(msg.header), 'utf8'),
    Buffer.from(JSON.stringify(msg.parent_header ?? {}), 'utf8'),
    Buffer.from(JSON.stringify(msg.metadata), 'utf8'),
    Buffer.from(JSON.stringify(msg.content), 'utf8'),
    ...msg.buffers.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength)),
  ];
  const offsetNumber = parts.length + 1; // one start per part plus the end
  const table = Buffer.alloc(8 * (offsetNumber + 1));
  table.writeBigUInt64LE(BigInt(offsetNumber), 0);
  let pos = table.length;
  for (let i = 0; i < parts.length; i++) {
    table.writeBigUInt64LE(BigInt(pos), 8 * (i + 1));
    pos += parts[i].length;
  }
  table.writeBigUInt64LE(BigInt(pos), 8 * offsetNumber);
  return Buffer.concat([table, ...parts]);
}

export interface V1Layout {
  offsetNumber: number;
  offsets: number[];
  channel: string;
  jsonParts: string[];
  buffers: Buffer[];
}

/** Decodes a v1 frame strictly; throws describing the first layout violation. */
export function decodeV1ByHand(frame: Buffer): V1Layout {
  if (frame.length < 8) throw new Error(`v1 frame of ${frame.length} bytes is too short`);
  const offsetNumber = Number(frame.readBigUInt64LE(0));
  if (offsetNumber < 6) throw new Error(`v1 offset_number ${offsetNumber} < 6`);
  if (8 * (offsetNumber + 1) > frame.length) throw new Error(`v1 offset table (${offsetNumber} entries) exceeds the frame (${frame.length} bytes)`);
  const offsets: number[] = [];
  for (let i = 0; i < offsetNumber; i++) offsets.push(Number(frame.readBigUInt64LE(8 * (i + 1))));
  if (offsets[0] !== 8 * (offsetNumber + 1)) throw new Error(`v1 offsets[0] = ${offsets[0]}, expected ${8 * (offsetNumber + 1)}`);
  for (let i = 1; i < offsets.length; i++) {
    if (offsets[i] < offsets[i - 1]) throw new Error(`v1 offsets not monotonic: ${offsets.join(',')}`);
  }
  if (offsets[offsets.length - 1] !== frame.length) throw new Error(`v1 last offset ${offsets[offsets.length - 1]} != frame length ${frame.length}`);
  const slice = (i: number) => frame.subarray(offsets[i], offsets[i + 1]);
  const channel = slice(0).toString('utf8');
  const jsonParts = [1, 2, 3, 4].map((i) => slice(i).toString('utf8'));
  const buffers: Buffer[] = [];
  for (let i = 5; i < offsets.length - 1; i++) buffers.push(Buffer.from(slice(i)));
  return { offsetNumber, offsets, channel, jsonParts, buffers };
}

/** Legacy binary: u32 BE nbufs, u32 BE offsets, JSON (without "buffers"), then the buffers. */
export function encodeLegacyBinaryByHand(msg: Msg): Buffer {
  const { buffers, ...rest } = msg;
  const parts = [Buffer.from(JSON.stringify(rest), 'utf8'), ...buffers.map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength))];
  const nbufs = parts.length;
  const table = Buffer.alloc(4 * (nbufs + 1));
  table.writeUInt32BE(nbufs, 0);
  let pos = table.length;
  for (let i = 0; i < nbufs; i++) {
    table.writeUInt32BE(pos, 4 * (i + 1));
    pos += parts[i].length;
  }
  return Buffer.concat([table, ...parts]);
}

export interface LegacyBinaryLayout {
  nbufs: number;
  offsets: number[];
  json: Record<string, unknown>;
  buffers: Buffer[];
}

export function decodeLegacyBinaryByHand(frame: Buffer): LegacyBinaryLayout {
  const nbufs = frame.readUInt32BE(0);
  if (nbufs < 2) throw new Error(`legacy binary nbufs ${nbufs} < 2`);
  if (4 * (nbufs + 1) > frame.length) throw new Error(`legacy offset table exceeds the frame`);
  const offsets: number[] = [];
  for (let i = 0; i < nbufs; i++) offsets.push(frame.readUInt32BE(4 * (i + 1)));
  if (offsets[0] !== 4 * (nbufs + 1)) throw new Error(`legacy offsets[0] = ${offsets[0]}, expected ${4 * (nbufs + 1)}`);
  for (let i = 1; i < offsets.length; i++) {
    if (offsets[i] < offsets[i - 1] || offsets[i] > frame.length) throw new Error(`legacy offsets invalid: ${offsets.join(',')} (frame ${frame.length} bytes)`);
  }
  const end = (i: number) => (i + 1 < offsets.length ? offsets[i + 1] : frame.length);
  const json = JSON.parse(frame.subarray(offsets[0], end(0)).toString('utf8')) as Record<string, unknown>;
  const buffers: Buffer[] = [];
  for (let i = 1; i < nbufs; i++) buffers.push(Buffer.from(frame.subarray(offsets[i], end(i))));
  return { nbufs, offsets, json, buffers };
}

// ---------------------------------------------------------------------------------------------
// The client

export interface ConnectOptions {
  protocol?: Protocol;
  sessionId?: string;
  /** How to authenticate: ?token= (default), Authorization header, or not at all. */
  auth?: 'query' | 'header' | 'none';
  /** Token to use instead of the gateway's. */
  token?: string;
  headers?: Record<string, string>;
  /** Extra query string appended to the URL (without '?'/'&'). */
  query?: string;
  timeoutMs?: number;
  /** TLS client options for wss:// (a CA to trust, a client certificate and key). */
  tls?: { ca?: string | Buffer; cert?: string | Buffer; key?: string | Buffer };
}

export interface CloseInfo {
  code: number;
  reason: string;
}

function channelsUrl(gw: Gateway, kernelId: string, opts: ConnectOptions, sessionId: string): string {
  let url = `${gw.wsUrl}api/kernels/${kernelId}/channels?session_id=${encodeURIComponent(sessionId)}`;
  const token = opts.token ?? gw.token;
  if ((opts.auth ?? 'query') === 'query' && token !== '') url += `&token=${encodeURIComponent(token)}`;
  if (opts.query) url += `&${opts.query}`;
  return url;
}

function wsOptions(gw: Gateway, opts: ConnectOptions): WebSocket.ClientOptions {
  const headers: Record<string, string> = { ...opts.headers };
  const token = opts.token ?? gw.token;
  if (opts.auth === 'header' && token !== '') headers.Authorization = `token ${token}`;
  return { headers, handshakeTimeout: opts.timeoutMs ?? 30000, ...opts.tls };
}

/**
 * Tries to open a channels WebSocket that is expected to be refused. Resolves with the HTTP status
 * of the refusal (and body), or with status 101 if the upgrade unexpectedly succeeded.
 */
export function connectExpectingRefusal(
  gw: Gateway,
  kernelId: string,
  opts: ConnectOptions = {},
): Promise<{ status: number; body: string; protocol?: string }> {
  const sessionId = opts.sessionId ?? randomUUID();
  const protocols = opts.protocol === 'v1' ? [V1_PROTOCOL] : [];
  const ws = new WebSocket(channelsUrl(gw, kernelId, opts, sessionId), protocols, wsOptions(gw, opts));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no answer to the WebSocket upgrade within ${opts.timeoutMs ?? 30000} ms`));
    }, opts.timeoutMs ?? 30000);
    ws.on('error', (err) => {
      clearTimeout(timer);
      const m = /Unexpected server response: (\d+)/.exec(err.message);
      if (m) resolve({ status: Number(m[1]), body: '' });
      else reject(new Error(`WebSocket upgrade failed without an HTTP status: ${err.message}`));
    });
    ws.on('unexpected-response', (req, res) => {
      clearTimeout(timer);
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
        req.destroy();
      });
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.on('open', () => {
      clearTimeout(timer);
      const protocol = ws.protocol;
      ws.close(1000);
      resolve({ status: 101, body: '', protocol });
    });
  });
}

interface Waiter {
  pred: (m: Received) => boolean;
  resolve: (m: Received) => void;
  reject: (e: Error) => void;
  what: string;
  timer: NodeJS.Timeout;
}

export class KernelClient {
  readonly messages: Received[] = [];
  readonly decodeErrors: string[] = [];
  /** Messages JupyterLab's own validator (kernel/validate.ts) rejects. */
  readonly validationErrors: string[] = [];
  closeInfo: CloseInfo | undefined;
  private waiters: Waiter[] = [];
  private closeWaiters: ((c: CloseInfo) => void)[] = [];

  private constructor(
    readonly ws: WebSocket,
    readonly protocol: Protocol,
    readonly sessionId: string,
    readonly kernelId: string,
    readonly label: string,
  ) {
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => this.onFrame(data, isBinary));
    ws.on('close', (code: number, reason: Buffer) => this.onClose({ code, reason: reason.toString() }));
    ws.on('error', () => {
      /* 'close' follows */
    });
  }

  /** Opens /api/kernels/{id}/channels; rejects with the HTTP status if the upgrade is refused. */
  static async connect(gw: Gateway, kernelId: string, opts: ConnectOptions = {}): Promise<KernelClient> {
    const protocol = opts.protocol ?? 'legacy';
    const sessionId = opts.sessionId ?? randomUUID();
    const url = channelsUrl(gw, kernelId, opts, sessionId);
    const ws = new WebSocket(url, protocol === 'v1' ? [V1_PROTOCOL] : [], wsOptions(gw, opts));
    // Listen before 'open': frames that arrive together with the 101 are emitted before an
    // awaited 'open' resumes us (the server may replay buffered messages right away).
    const client = new KernelClient(ws, protocol, sessionId, kernelId, `${protocol}:${sessionId.slice(0, 8)}`);
    const timeoutMs = opts.timeoutMs ?? 30000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`WebSocket to kernel ${kernelId} did not open within ${timeoutMs} ms`));
      }, timeoutMs);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`WebSocket to kernel ${kernelId} (${protocol}) failed to open: ${err.message}`));
      });
    });
    const expected = protocol === 'v1' ? V1_PROTOCOL : '';
    if (ws.protocol !== expected) {
      client.close();
      throw new Error(`server selected subprotocol ${JSON.stringify(ws.protocol)}, expected ${JSON.stringify(expected)}`);
    }
    return client;
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  private onFrame(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    let decoded: KernelMessage.IMessage;
    let topKeys: string[] = [];
    try {
      if (this.protocol === 'v1') {
        if (!isBinary) throw new Error(`text frame on a v1 connection: ${buf.toString('utf8').slice(0, 200)}`);
        decoded = jlDeserialize(toArrayBuffer(buf), V1_PROTOCOL);
      } else if (isBinary) {
        decoded = jlDeserialize(toArrayBuffer(buf), '');
        topKeys = Object.keys(decodeLegacyBinaryByHand(buf).json);
      } else {
        const text = buf.toString('utf8');
        decoded = jlDeserialize(text as unknown as ArrayBuffer, '');
        topKeys = Object.keys(JSON.parse(text) as object);
      }
    } catch (err) {
      this.decodeErrors.push(`${(err as Error).message} (frame of ${buf.length} bytes, binary=${isBinary})`);
      return;
    }
    try {
      jlValidateMessage(decoded);
    } catch (err) {
      const h = (decoded as { header?: { msg_type?: string } }).header;
      this.validationErrors.push(`${h?.msg_type ?? '?'}: ${(err as Error).message}`);
    }
    const d = decoded as unknown as Record<string, unknown>;
    const rawBuffers = (d.buffers as (DataView | ArrayBuffer)[] | undefined) ?? [];
    const msg: Received = {
      channel: d.channel as string,
      header: d.header as Header,
      parent_header: (d.parent_header ?? {}) as Partial<Header>,
      metadata: (d.metadata ?? {}) as Record<string, unknown>,
      content: d.content,
      buffers: rawBuffers.map((b) =>
        b instanceof DataView ? new Uint8Array(b.buffer, b.byteOffset, b.byteLength) : new Uint8Array(b),
      ),
      frame: { binary: isBinary, data: buf, topKeys },
    };
    this.messages.push(msg);
    for (const w of [...this.waiters]) {
      let hit = false;
      try {
        hit = w.pred(msg);
      } catch {
        hit = false;
      }
      if (hit) {
        clearTimeout(w.timer);
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(msg);
      }
    }
  }

  private onClose(info: CloseInfo): void {
    this.closeInfo = info;
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(new Error(`[${this.label}] connection closed (code ${info.code} ${JSON.stringify(info.reason)}) while waiting for ${w.what}; received: ${this.summary()}`));
    }
    for (const cw of this.closeWaiters.splice(0)) cw(info);
  }

  /** One line per recent message, for failure messages. */
  summary(last = 20): string {
    const items = this.messages.slice(-last).map((m) => {
      let s = `${m.channel}/${m.header?.msg_type}`;
      if (m.header?.msg_type === 'status') s += `(${m.content?.execution_state})`;
      if (m.parent_header?.msg_type) s += `<-${m.parent_header.msg_type}`;
      return s;
    });
    let errs = this.decodeErrors.length > 0 ? `; DECODE ERRORS: ${this.decodeErrors.join(' | ')}` : '';
    if (this.validationErrors.length > 0) errs += `; INVALID (per JupyterLab): ${this.validationErrors.join(' | ')}`;
    return `${this.messages.length} messages [${items.join(', ')}]${errs}`;
  }

  /** Throws if any received frame could not be decoded or fails JupyterLab's message validation. */
  assertClean(): void {
    if (this.decodeErrors.length > 0 || this.validationErrors.length > 0) {
      throw new Error(`[${this.label}] bad frames received: decode errors [${this.decodeErrors.join(' | ')}], invalid messages [${this.validationErrors.join(' | ')}]`);
    }
  }

  /** Resolves with the first message (already received or future) matching `pred`. */
  waitFor(pred: (m: Received) => boolean, timeoutMs: number, what: string): Promise<Received> {
    const existing = this.messages.find((m) => {
      try {
        return pred(m);
      } catch {
        return false;
      }
    });
    if (existing) return Promise.resolve(existing);
    if (this.closeInfo) {
      return Promise.reject(new Error(`[${this.label}] connection already closed (code ${this.closeInfo.code}) while waiting for ${what}; received: ${this.summary()}`));
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = {
        pred,
        resolve,
        reject,
        what,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(w), 1);
          reject(new Error(`[${this.label}] timed out after ${timeoutMs} ms waiting for ${what}; received: ${this.summary()}`));
        }, timeoutMs),
      };
      this.waiters.push(w);
    });
  }

  /** Resolves when the server (or we) closed the connection. */
  waitForClose(timeoutMs: number): Promise<CloseInfo> {
    if (this.closeInfo) return Promise.resolve(this.closeInfo);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`[${this.label}] not closed within ${timeoutMs} ms`)), timeoutMs);
      this.closeWaiters.push((c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
  }

  /** Sends a message encoded with JupyterLab's serializer for this connection's protocol. */
  send(msg: Msg): void {
    this.sendRaw(encodeWithJupyterLab(msg, this.protocol));
  }

  sendRaw(data: string | ArrayBuffer | Buffer): void {
    if (!this.isOpen) throw new Error(`[${this.label}] cannot send: connection is not open (close ${JSON.stringify(this.closeInfo)})`);
    this.ws.send(data);
  }

  /** Builds a message in this client's session, sends it, and returns it. */
  request(channel: string, msgType: string, content: unknown, extra: Parameters<typeof makeMsg>[4] = {}): Msg {
    const msg = makeMsg(channel, msgType, content, this.sessionId, extra);
    this.send(msg);
    return msg;
  }

  close(code = 1000): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code);
  }

  /** Closes and waits for the closing handshake (terminates after 5 s). */
  async closeAndWait(): Promise<void> {
    if (this.closeInfo) return;
    this.close();
    try {
      await this.waitForClose(5000);
    } catch {
      this.ws.terminate();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Conversations

export const isReplyTo = (m: Received, req: Msg, msgType: string, channel = 'shell'): boolean =>
  m.channel === channel && m.header.msg_type === msgType && m.parent_header?.msg_id === req.header.msg_id;

export const isStatus = (m: Received, req: Msg | undefined, state: string): boolean =>
  m.channel === 'iopub' &&
  m.header.msg_type === 'status' &&
  m.content?.execution_state === state &&
  (req === undefined || m.parent_header?.msg_id === req.header.msg_id);

export interface ExecuteResult {
  request: Msg;
  reply: Received;
  /** iopub messages whose parent is the request. */
  iopub: Received[];
  /** Concatenated stdout stream text. */
  stdout: string;
}

/**
 * execute_request content. Note ipykernel's stop_on_error: after an error reply it aborts execute
 * requests that reach it in the next instants (status "aborted"), so requests that are expected to
 * fail and are followed by more code use stopOnError = false.
 */
export function executeContent(code: string, allowStdin = false, stopOnError = true) {
  return { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: allowStdin, stop_on_error: stopOnError };
}

/** Sends execute_request and waits for both execute_reply and the iopub idle it caused. */
export async function execute(c: KernelClient, code: string, timeoutMs = 20000, stopOnError = true): Promise<ExecuteResult> {
  const request = c.request('shell', 'execute_request', executeContent(code, false, stopOnError));
  return finishExecute(c, request, timeoutMs);
}

export async function finishExecute(c: KernelClient, request: Msg, timeoutMs = 20000): Promise<ExecuteResult> {
  const what = `execute ${JSON.stringify(request.content.code)}`;
  const [reply] = await Promise.all([
    c.waitFor((m) => isReplyTo(m, request, 'execute_reply'), timeoutMs, `execute_reply to ${what}`),
    c.waitFor((m) => isStatus(m, request, 'idle'), timeoutMs, `iopub status idle after ${what}`),
  ]);
  const iopub = c.messages.filter((m) => m.channel === 'iopub' && m.parent_header?.msg_id === request.header.msg_id);
  const stdout = iopub
    .filter((m) => m.header.msg_type === 'stream' && m.content.name === 'stdout')
    .map((m) => m.content.text as string)
    .join('');
  return { request, reply, iopub, stdout };
}

/** Sends kernel_info_request every second until one is answered (e.g. while a kernel restarts). */
export async function waitForKernelInfo(c: KernelClient, timeoutMs = 30000): Promise<Received> {
  const deadline = Date.now() + timeoutMs;
  const sent = new Set<string>();
  for (;;) {
    const req = c.request('shell', 'kernel_info_request', {});
    sent.add(req.header.msg_id);
    const left = deadline - Date.now();
    try {
      return await c.waitFor(
        (m) => m.channel === 'shell' && m.header.msg_type === 'kernel_info_reply' && sent.has(m.parent_header?.msg_id as string),
        Math.max(1, Math.min(1000, left)),
        'kernel_info_reply',
      );
    } catch (err) {
      if (c.closeInfo || Date.now() >= deadline) {
        throw new Error(`kernel did not answer kernel_info_request within ${timeoutMs} ms: ${(err as Error).message}`);
      }
    }
  }
}

/** Bytes that are not valid UTF-8 and cover every byte value. */
export function testBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 7 + seed) & 0xff;
  if (n > 2) {
    out[0] = 0xff;
    out[1] = 0xfe;
    out[2] = 0x00;
  }
  return out;
}

/** Python that registers comm target 'echo': it answers open with {'opened': True} + the open's buffers, and echoes every comm_msg's data and buffers. */
export const ECHO_COMM_TARGET_CODE = [
  'def _kg_echo_target(comm, msg):',
  "    comm.on_msg(lambda m: comm.send(m['content']['data'], buffers=m['buffers']))",
  "    comm.send({'opened': True}, buffers=msg['buffers'])",
  "get_ipython().kernel.comm_manager.register_target('echo', _kg_echo_target)",
].join('\n');

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/**
 * Connects to `kernelId`, runs `code`, closes, and returns what it printed on stdout. Throws (with the
 * reply) when the execution does not end with status ok.
 */
export async function runInKernel(gw: Gateway, kernelId: string, code: string, opts: ConnectOptions = {}, timeoutMs = 20000): Promise<string> {
  const c = await KernelClient.connect(gw, kernelId, { timeoutMs, ...opts });
  try {
    const r = await execute(c, code, timeoutMs);
    if (r.reply.content.status !== 'ok') {
      const err = r.reply.content as { ename?: string; evalue?: string };
      throw new Error(`running ${JSON.stringify(code)} in kernel ${kernelId}: status ${r.reply.content.status} ${err.ename ?? ''}: ${err.evalue ?? ''}`);
    }
    return r.stdout;
  } finally {
    await c.closeAndWait();
  }
}
