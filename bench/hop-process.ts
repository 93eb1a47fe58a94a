/**
 * The processes of hop-ceiling.ts, one role each (the first argument), driven over the fork IPC channel:
 *
 *   writer PORT SIZE COUNT   connects, and on {go} writes COUNT messages of SIZE bytes as fast as TCP takes them
 *   reader SIZE verify|count N  listens for N connections; counts what arrives on each (verify: also checks an
 *                             HMAC-SHA256 of every SIZE bytes, as a direct client checks each message's signature)
 *   relay SIZE PORT:N ...    listens; every byte it reads goes into an HMAC of its message and on, as it
 *                             comes, to N connections to each PORT (the least a gateway can do)
 *
 * Each says {ready, port?} when it can start and {done, cpuUs} when its part is over.
 */
import { createHmac, type Hmac } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';

export const HOP_KEY = Buffer.from('hop-ceiling-key-0123456789abcdef');

type Report = { type: 'ready'; port?: number } | { type: 'done'; cpuUs: number; bytes?: number };

const send = (report: Report) => process.send!(report);
const cpuUs = () => {
  const { user, system } = process.cpuUsage();
  return user + system;
};

/** Feeds a byte stream into one HMAC per `size` bytes. */
function signatures(size: number): (chunk: Buffer) => void {
  let hmac: Hmac = createHmac('sha256', HOP_KEY);
  let left = size;
  return (chunk) => {
    for (let at = 0; at < chunk.length; ) {
      const n = Math.min(left, chunk.length - at);
      hmac.update(chunk.subarray(at, at + n));
      at += n;
      left -= n;
      if (left === 0) {
        hmac.digest();
        hmac = createHmac('sha256', HOP_KEY);
        left = size;
      }
    }
  };
}

function writer(port: number, size: number, count: number): void {
  const message = Buffer.alloc(size, 0x78);
  const socket = connect({ port, host: '127.0.0.1', noDelay: true }, () => send({ type: 'ready' }));
  process.on('message', () => {
    const start = cpuUs();
    let written = 0;
    const pump = () => {
      while (written < count) {
        written++;
        if (!socket.write(message)) return void socket.once('drain', pump);
      }
      socket.end(() => send({ type: 'done', cpuUs: cpuUs() - start }));
    };
    pump();
  });
}

/** Listens; `done` once the `expected` connections have ended, with the bytes they brought. */
function reader(size: number, verify: boolean, expected: number): void {
  let accepted = 0;
  let ended = 0;
  let bytes = 0;
  let start = 0;
  const server = createServer((socket) => {
    if (accepted++ === 0) start = cpuUs();
    const check = verify ? signatures(size) : undefined;
    socket.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      check?.(chunk);
    });
    socket.on('end', () => {
      if (++ended === expected) send({ type: 'done', cpuUs: cpuUs() - start, bytes });
    });
  });
  server.listen(0, '127.0.0.1', () => send({ type: 'ready', port: (server.address() as { port: number }).port }));
}

function relay(size: number, targets: string[]): void {
  const outs: Socket[] = [];
  let connecting = 0;
  const server = createServer((input) => {
    const start = cpuUs();
    const check = signatures(size);
    let waiting = 0;
    const drained = () => {
      if (--waiting === 0) input.resume();
    };
    input.on('data', (chunk: Buffer) => {
      check(chunk);
      for (const out of outs) {
        if (!out.write(chunk)) {
          waiting++;
          out.once('drain', drained);
        }
      }
      if (waiting > 0) input.pause();
    });
    input.on('end', () => {
      let ending = outs.length;
      for (const out of outs) out.end(() => --ending === 0 && send({ type: 'done', cpuUs: cpuUs() - start }));
    });
  });
  const listening = () => server.listen(0, '127.0.0.1', () => send({ type: 'ready', port: (server.address() as { port: number }).port }));
  for (const target of targets) {
    const [port, n] = target.split(':').map(Number);
    for (let i = 0; i < n; i++) {
      connecting++;
      outs.push(connect({ port, host: '127.0.0.1', noDelay: true }, () => --connecting === 0 && listening()));
    }
  }
}

const [role, ...rest] = process.argv.slice(2);
if (role === 'writer') writer(Number(rest[0]), Number(rest[1]), Number(rest[2]));
else if (role === 'reader') reader(Number(rest[0]), rest[1] === 'verify', Number(rest[2]));
else if (role === 'relay') relay(Number(rest[0]), rest.slice(1));
else throw new Error(`hop-process: unknown role "${role}"`);
process.on('disconnect', () => process.exit(0));
