/**
 * A client fuzzer for /api/kernels/{id}/channels: WebSockets that open, send valid and malformed
 * frames, and close (or vanish) at random moments, in both protocols, with session ids reused so
 * that connections replace each other. Reproducible from its seed.
 */
import { randomBytes } from 'node:crypto';
import { connect as tcpConnect } from 'node:net';
import WebSocket from 'ws';
import { encodeWithJupyterLab, makeMsg, V1_PROTOCOL, type Protocol } from './kernel-ws.ts';

/** mulberry32: small, fast, seeded. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FuzzTarget {
  /** ws://host:port/base/ */
  wsUrl: string;
  port: number;
  token: string;
  kernelIds: () => string[];
}

export interface FuzzStats {
  opened: number;
  refused: number;
  framesSent: number;
  closedByServer: Record<string, number>;
}

const SESSION_POOL = Array.from({ length: 6 }, (_, i) => `fuzz-session-${i}`);

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)];
}

/** A frame to send: valid, subtly wrong, or garbage. */
function frame(random: () => number, protocol: Protocol, session: string): { data: string | Buffer; binary: boolean } {
  const r = random();
  const message = (channel: string, type: string, content: unknown) => makeMsg(channel, type, content, session);
  const encode = (m: ReturnType<typeof makeMsg>) => {
    const data = encodeWithJupyterLab(m, protocol);
    return typeof data === 'string' ? { data, binary: false } : { data: Buffer.from(data), binary: true };
  };
  if (r < 0.25) return encode(message('shell', 'execute_request', { code: pick(random, ['1+1', 'print("x")', 'import time; time.sleep(0.2)', 'input("?")', '1/0']), silent: false, store_history: false, user_expressions: {}, allow_stdin: random() < 0.5, stop_on_error: false }));
  if (r < 0.32) return encode(message('shell', 'kernel_info_request', {}));
  if (r < 0.36) return encode(message('stdin', 'input_reply', { status: 'ok', value: 'fuzz' }));
  if (r < 0.4) return encode(message(pick(random, ['iopub', 'hb', 'nope', '']), 'execute_request', {}));
  if (r < 0.44) return encode(message('control', pick(random, ['interrupt_request', 'debug_request', 'no_such_request']), {}));
  if (r < 0.52) return { data: randomBytes(Math.floor(random() * 300)), binary: true };
  if (r < 0.6) return { data: randomBytes(Math.floor(random() * 300)).toString('latin1'), binary: false };
  if (r < 0.7) {
    return {
      data: pick(random, ['null', '[]', '{}', '{"header": 5}', '{"header": {"msg_type": 1}}', '{"header": {"msg_type": "x"}, "channel": 7}', '{"header": {"msg_type": "x"}, "content": []}', '"', '{"header":{"msg_type":"execute_request"},"channel":"shell","content":{"code":"1"}}']),
      binary: false,
    };
  }
  if (r < 0.8) {
    // A v1 offset table with random (often impossible) numbers.
    const count = Math.floor(random() * 12);
    const table = Buffer.alloc(8 * (count + 1) + Math.floor(random() * 64));
    table.writeBigUInt64LE(BigInt(random() < 0.2 ? 2 ** 40 : count), 0);
    for (let i = 0; i < count; i++) table.writeBigUInt64LE(BigInt(Math.floor(random() * 200)), 8 * (i + 1));
    return { data: table, binary: true };
  }
  if (r < 0.86) {
    // A legacy binary frame with a random buffer table.
    const n = Math.floor(random() * 5);
    const out = Buffer.alloc(4 * (n + 1) + 40);
    out.writeUInt32BE(random() < 0.2 ? 0xffffffff : n, 0);
    for (let i = 0; i < n; i++) out.writeUInt32BE(Math.floor(random() * 100), 4 * (i + 1));
    return { data: out, binary: true };
  }
  if (r < 0.93) {
    // A valid message whose frame is cut short.
    const whole = encode(message('shell', 'execute_request', { code: '2+2' }));
    const bytes = Buffer.isBuffer(whole.data) ? whole.data : Buffer.from(whole.data);
    return { data: bytes.subarray(0, Math.floor(random() * bytes.length)), binary: whole.binary };
  }
  // Larger than a small --max-message-size.
  return { data: Buffer.alloc(80 * 1024 + Math.floor(random() * 1024), 0x7b), binary: true };
}

/**
 * Runs `actions` random client actions, up to `concurrency` at a time. Never throws for what the
 * server does (refusals, closes): those are counted. Between actions, `chaos` may act on kernels.
 */
export async function fuzzClients(
  target: FuzzTarget,
  options: { seed: number; actions: number; concurrency: number; chaos?: (random: () => number) => Promise<void> },
): Promise<FuzzStats> {
  const random = seededRandom(options.seed);
  const stats: FuzzStats = { opened: 0, refused: 0, framesSent: 0, closedByServer: {} };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  async function oneClient(): Promise<void> {
    const kernels = target.kernelIds();
    const kernelId = kernels.length > 0 ? pick(random, kernels) : '00000000-0000-0000-0000-000000000000';
    const protocol: Protocol = random() < 0.5 ? 'v1' : 'legacy';
    const session = random() < 0.8 ? pick(random, SESSION_POOL) : `fuzz-${Math.floor(random() * 1e9)}`;
    const style = random();
    if (style < 0.08) return rawUpgradeAndVanish(random);
    const url = `${target.wsUrl}api/kernels/${kernelId}/channels?session_id=${encodeURIComponent(session)}&token=${encodeURIComponent(target.token)}`;
    const ws = new WebSocket(url, protocol === 'v1' ? [V1_PROTOCOL] : [], { handshakeTimeout: 30000 });
    ws.on('message', () => undefined);
    ws.on('error', () => undefined);
    const closed = new Promise<void>((resolve) => ws.on('close', (code) => {
      stats.closedByServer[code] = (stats.closedByServer[code] ?? 0) + 1;
      resolve();
    }));
    if (style < 0.16) {
      // Gone before the handshake completes.
      await sleep(random() * 30);
      ws.terminate();
      await closed;
      return;
    }
    const opened = await new Promise<boolean>((resolve) => {
      ws.once('open', () => resolve(true));
      ws.once('unexpected-response', (req) => {
        req.destroy();
        resolve(false);
      });
      ws.once('close', () => resolve(false));
    });
    if (!opened) {
      stats.refused++;
      return;
    }
    stats.opened++;
    const frames = Math.floor(random() * 12);
    for (let i = 0; i < frames && ws.readyState === WebSocket.OPEN; i++) {
      const { data, binary } = frame(random, protocol, session);
      ws.send(data, { binary });
      stats.framesSent++;
      if (random() < 0.1) ws.ping();
      if (random() < 0.5) await sleep(random() * 20);
    }
    const end = random();
    if (end < 0.4) ws.close(pick(random, [1000, 1001, 3000, 4999]));
    else if (end < 0.7) ws.terminate();
    else {
      // Linger a little, then close while traffic may still be on its way.
      await sleep(random() * 300);
      ws.close();
    }
    await Promise.race([closed, sleep(5000).then(() => ws.terminate())]);
  }

  /** An upgrade request written in pieces over TCP, dropped half way. */
  async function rawUpgradeAndVanish(r: () => number): Promise<void> {
    await new Promise<void>((resolve) => {
      const socket = tcpConnect(target.port, '127.0.0.1', () => {
        const request =
          `GET /api/kernels/${pick(r, target.kernelIds().concat(['x']))}/channels?token=${target.token} HTTP/1.1\r\n` +
          `Host: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n` +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n';
        socket.write(request.slice(0, Math.floor(r() * request.length)));
        setTimeout(() => {
          socket.destroy();
          resolve();
        }, r() * 50);
      });
      socket.on('error', () => resolve());
    });
  }

  const running = new Set<Promise<void>>();
  for (let i = 0; i < options.actions; i++) {
    while (running.size >= options.concurrency) await Promise.race(running);
    const task = oneClient().finally(() => running.delete(task));
    running.add(task);
    if (options.chaos && random() < 0.03) await options.chaos(random);
    if (random() < 0.3) await sleep(random() * 10);
  }
  await Promise.all(running);
  return stats;
}
