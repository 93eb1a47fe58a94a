/**
 * The launcher protocol (src/launch/protocol.ts, link.ts, streams.ts) over real loopback sockets:
 * mutual authentication, records that cannot be altered, replayed or reordered, and flow control
 * that bounds what either side buffers.
 */
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { acceptLauncher, connectAsLauncher } from '../src/launch/handshake.ts';
import type { Link } from '../src/launch/link.ts';
import {
  decodeFrame,
  decodeHello,
  deriveKeys,
  encodeFrame,
  encodeHello,
  FrameKind,
  LinkProtocolError,
  MAX_DATA_BYTES,
  RecordOpener,
  RecordSealer,
} from '../src/launch/protocol.ts';
import { STREAM_WINDOW } from '../src/launch/streams.ts';

const test = suite('launcher protocol: handshake, records, streams');
const KERNEL = '0b7c1e4a-5f1d-4c55-9d8e-0123456789ab';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const servers: Server[] = [];
test.after(() => {
  for (const server of servers) server.close();
});

/** A listener on loopback whose accepted sockets go to `onSocket` (closed when the suite ends). */
async function listen(onSocket: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer(onSocket);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/** Both ends read once their handlers are in place. */
function startBoth(...links: Link[]): void {
  for (const link of links) link.start();
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** A gateway end and a launcher end of one link, authenticated with `secret` (the launcher may use another). */
async function pair(secret: Buffer, launcherSecret = secret, through?: (port: number) => Promise<number>) {
  let accepted!: Promise<{ kernelId: string; link: Link }>;
  const { server, port } = await listen((socket) => {
    accepted = acceptLauncher(socket, (id) => (id === KERNEL ? secret : undefined));
    accepted.catch(() => undefined);
  });
  const target = through ? await through(port) : port;
  const launcher = connectAsLauncher(await dial(target), KERNEL, launcherSecret);
  launcher.catch(() => undefined);
  await sleep(20);
  return { server, accepted: () => accepted, launcher };
}

test('both ends authenticate with the same secret, and control messages flow both ways', async () => {
  const secret = randomBytes(32);
  const { server, accepted, launcher } = await pair(secret);
  const launcherLink = await launcher;
  const { kernelId, link: gatewayLink } = await accepted();
  assert.is(kernelId, KERNEL);
  const atGateway: unknown[] = [];
  const atLauncher: unknown[] = [];
  gatewayLink.onControl = (m) => atGateway.push(m);
  launcherLink.onControl = (m) => atLauncher.push(m);
  startBoth(gatewayLink, launcherLink);
  launcherLink.send({ type: 'hello', n: 1 });
  gatewayLink.send({ type: 'start', argv: ['a'] });
  await sleep(50);
  assert.equal(atGateway, [{ type: 'hello', n: 1 }]);
  assert.equal(atLauncher, [{ type: 'start', argv: ['a'] }]);
  launcherLink.end();
  assert.is(await launcherLink.closed, undefined);
  assert.ok(await gatewayLink.closed, 'the gateway end notices the close');
  server.close();
});

test('a launcher with the wrong secret is refused, and learns nothing it could use', async () => {
  const { server, accepted, launcher } = await pair(randomBytes(32), randomBytes(32));
  const error = await launcher.then(() => undefined, (e: Error) => e);
  assert.instance(error, LinkProtocolError);
  assert.match(error!.message, /could not prove/);
  const refused = await accepted().then(() => undefined, (e: Error) => e);
  assert.ok(refused, 'the gateway end fails too');
  server.close();
});

test('an unknown kernel id is refused before any proof is sent', async () => {
  let result: Promise<unknown> | undefined;
  const { server, port } = await listen((socket) => {
    result = acceptLauncher(socket, () => undefined);
    result.catch(() => undefined);
  });
  const error = await connectAsLauncher(await dial(port), KERNEL, randomBytes(32)).then(() => undefined, (e: Error) => e);
  assert.ok(error);
  assert.match(String(await result!.catch((e: Error) => e.message)), /no kernel .* is waiting/);
  server.close();
});

test('garbage instead of a hello ends the connection at once', async () => {
  let result: Promise<unknown> | undefined;
  const { server, port } = await listen((socket) => {
    result = acceptLauncher(socket, () => randomBytes(32));
    result.catch(() => undefined);
  });
  const socket = await dial(port);
  socket.write('GET / HTTP/1.1\r\n\r\n');
  const closed = new Promise((resolve) => socket.on('close', resolve));
  await closed;
  assert.match(String(await result!.catch((e: Error) => e.message)), /bad magic/);
  server.close();
});

test('nothing reaches a handler before start(): a message sent at once waits for it', async () => {
  const { server, accepted, launcher } = await pair(randomBytes(32));
  const launcherLink = await launcher;
  launcherLink.start();
  launcherLink.send({ type: 'hello' });
  const { link: gatewayLink } = await accepted();
  await sleep(50); // the message has arrived, and waits
  const seen: unknown[] = [];
  gatewayLink.onControl = (m) => seen.push(m);
  gatewayLink.start();
  await sleep(20);
  assert.equal(seen, [{ type: 'hello' }]);
  launcherLink.destroy();
  server.close();
});

test('hello: encoded and decoded, incomplete is undefined, a bad id is refused', () => {
  const nonce = randomBytes(32);
  const hello = encodeHello(KERNEL, nonce);
  assert.is(decodeHello(hello.subarray(0, 10)), undefined);
  const decoded = decodeHello(Buffer.concat([hello, Buffer.from('more')]))!;
  assert.is(decoded.kernelId, KERNEL);
  assert.ok(decoded.nonce.equals(nonce));
  assert.is(decoded.bytes, hello.length);
  assert.throws(() => encodeHello('../etc', nonce), /not a kernel id/);
  const bad = Buffer.from(hello);
  bad[5] = 0x2f; // '/'
  assert.throws(() => decodeHello(bad), /bad kernel id/);
});

/** Sealed records of frames, for the record-level tests. */
function records(key: Buffer, payloads: string[]): Buffer[] {
  const sealer = new RecordSealer(key);
  return payloads.map((p) => Buffer.concat(sealer.seal(encodeFrame(FrameKind.control, 0, Buffer.from(p)))));
}

test('records: in order they open; split anywhere they still open', () => {
  const key = randomBytes(32);
  const sealed = records(key, ['one', 'two', 'three']);
  const opener = new RecordOpener(key);
  const all = Buffer.concat(sealed);
  const frames: Buffer[] = [];
  for (let i = 0; i < all.length; i += 7) frames.push(...opener.push(all.subarray(i, i + 7)));
  assert.equal(frames.map((f) => decodeFrame(f).payload.toString()), ['one', 'two', 'three']);
});

test('records: an altered byte, a replayed record, a reordered one, or another key are rejected', () => {
  const key = randomBytes(32);
  const [a, b] = records(key, ['first', 'second']);
  const altered = Buffer.from(a);
  altered[altered.length - 20] ^= 1;
  assert.throws(() => new RecordOpener(key).push(altered), /failed authentication/);
  const lengthChanged = Buffer.from(a);
  lengthChanged[3] ^= 1;
  assert.throws(() => new RecordOpener(key).push(Buffer.concat([lengthChanged, Buffer.alloc(64)])), /failed authentication/);
  const replay = new RecordOpener(key);
  replay.push(a);
  assert.throws(() => replay.push(a), /failed authentication/);
  assert.throws(() => new RecordOpener(key).push(b), /failed authentication/, 'the second record first');
  assert.throws(() => new RecordOpener(randomBytes(32)).push(a), /failed authentication/);
});

test('records: an oversized length is refused before anything is buffered', () => {
  const huge = Buffer.alloc(8);
  huge.writeUInt32BE(0xffffffff, 0);
  assert.throws(() => new RecordOpener(randomBytes(32)).push(huge), /announced/);
});

test('keys: one per direction, different for every connection', () => {
  const secret = randomBytes(32);
  const n = { kernelId: KERNEL, launcherNonce: randomBytes(32), gatewayNonce: randomBytes(32) };
  const k1 = deriveKeys(secret, n);
  const k2 = deriveKeys(secret, { ...n, gatewayNonce: randomBytes(32) });
  assert.not.ok(k1.toGateway.equals(k1.toLauncher));
  assert.not.ok(k1.toGateway.equals(k2.toGateway));
  assert.ok(deriveKeys(secret, n).toLauncher.equals(k1.toLauncher));
});

test('a tampered record on the wire ends the link (a relay that flips one byte after the handshake)', async () => {
  const secret = randomBytes(32);
  let relayed = 0;
  const relay = async (port: number) => {
    const { port: relayPort } = await listen((inbound) => {
      const outbound = connect(port, '127.0.0.1');
      inbound.on('data', (chunk: Buffer) => {
        relayed += chunk.length;
        // Past the hello (101 bytes) and the proof (32): flip a byte of the first record.
        if (relayed > 200 && relayed - chunk.length <= 200) {
          chunk = Buffer.from(chunk);
          chunk[chunk.length - 1] ^= 0x80;
        }
        outbound.write(chunk);
      });
      outbound.on('data', (chunk: Buffer) => inbound.write(chunk));
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
    });
    return relayPort;
  };
  const { server, accepted, launcher } = await pair(secret, secret, relay);
  const launcherLink = await launcher;
  const { link: gatewayLink } = await accepted();
  const seen: unknown[] = [];
  gatewayLink.onControl = (m) => seen.push(m);
  startBoth(gatewayLink, launcherLink);
  launcherLink.send({ type: 'padding', text: 'x'.repeat(300) });
  const error = await gatewayLink.closed;
  assert.instance(error, LinkProtocolError);
  assert.equal(seen, [], 'nothing of the altered record was delivered');
  launcherLink.destroy();
  server.close();
});

test('streams: data flows both ways, and a receiver that does not pass data on holds the sender to one window', async () => {
  const { server, accepted, launcher } = await pair(randomBytes(32));
  const launcherLink = await launcher;
  const { link: gatewayLink } = await accepted();
  let held: { chunk: Buffer; consumed: () => void }[] = [];
  let opened: Promise<void> = Promise.resolve();
  launcherLink.streams.onopen = (stream) => {
    assert.is(stream.label, 'iopub');
    stream.ondata = (chunk, consumed) => held.push({ chunk, consumed });
    opened = Promise.resolve();
    return true;
  };
  startBoth(gatewayLink, launcherLink);
  const stream = gatewayLink.streams.open('iopub')!;
  let drained = 0;
  stream.ondrain = () => drained++;
  const chunk = randomBytes(100 * 1024);
  let writes = 0;
  while (stream.write(chunk)) writes++;
  await opened;
  await sleep(100);
  const received = held.reduce((n, h) => n + h.chunk.length, 0);
  assert.ok(received <= STREAM_WINDOW, `received ${received} bytes, window ${STREAM_WINDOW}`);
  assert.ok(stream.pendingBytes <= chunk.length, `sender keeps at most the last write: ${stream.pendingBytes}`);
  assert.ok(held.every((h) => h.chunk.length <= MAX_DATA_BYTES));
  assert.is(writes, Math.floor(STREAM_WINDOW / chunk.length), 'write() says stop once the window is used');
  // Passing the data on grants the window again: everything arrives, then drain.
  for (const h of held) h.consumed();
  held = [];
  await sleep(100);
  assert.is(drained, 1);
  assert.is(stream.pendingBytes, 0);
  launcherLink.destroy();
  await gatewayLink.closed;
  assert.ok(stream.closed, 'streams end with their link');
  server.close();
});

test('streams: a peer sending beyond its window loses the connection', async () => {
  const { server, accepted, launcher } = await pair(randomBytes(32));
  const launcherLink = await launcher;
  const { link: gatewayLink } = await accepted();
  launcherLink.streams.onopen = (stream) => {
    stream.ondata = () => undefined; // never consumed
    return true;
  };
  startBoth(gatewayLink, launcherLink);
  const stream = gatewayLink.streams.open('shell')!;
  await sleep(20);
  // Bypass the stream's own accounting, as a broken or hostile peer would.
  for (let sent = 0; sent <= STREAM_WINDOW; sent += MAX_DATA_BYTES) gatewayLink.sendFrame(FrameKind.data, stream.id, Buffer.alloc(MAX_DATA_BYTES));
  const error = await launcherLink.closed;
  assert.instance(error, LinkProtocolError);
  assert.match(error!.message, /beyond the window/);
  server.close();
});

test('streams: control messages pass a stream that is flooding', async () => {
  const { server, accepted, launcher } = await pair(randomBytes(32));
  const launcherLink = await launcher;
  const { link: gatewayLink } = await accepted();
  let bytes = 0;
  let controlAt = -1;
  launcherLink.streams.onopen = (stream) => {
    stream.ondata = (chunk, consumed) => {
      bytes += chunk.length;
      consumed();
    };
    return true;
  };
  launcherLink.onControl = () => (controlAt = bytes);
  startBoth(gatewayLink, launcherLink);
  const stream = gatewayLink.streams.open('iopub')!;
  for (let i = 0; i < 8; i++) stream.write(Buffer.alloc(STREAM_WINDOW / 4));
  gatewayLink.send({ type: 'signal', signal: 'SIGINT' });
  await sleep(200);
  assert.ok(controlAt >= 0, 'the control message arrived');
  assert.ok(controlAt < 2 * STREAM_WINDOW, `it waited behind ${controlAt} bytes of data`);
  launcherLink.destroy();
  server.close();
});

test('streams: opens beyond the limit are refused, bad opens break the protocol', async () => {
  const { server, accepted, launcher } = await pair(randomBytes(32));
  const launcherLink = await launcher;
  const { link: gatewayLink } = await accepted();
  launcherLink.streams.onopen = () => true;
  startBoth(gatewayLink, launcherLink);
  const streams = Array.from({ length: 40 }, () => gatewayLink.streams.open('shell'));
  assert.is(streams.filter(Boolean).length, 32, 'an end opens at most 32 streams');
  await sleep(50);
  assert.is(launcherLink.streams.size, 32);
  // An even id is the gateway's to open: coming from the launcher, it breaks the protocol.
  launcherLink.sendFrame(FrameKind.open, 2, Buffer.from('x'));
  const error = await gatewayLink.closed;
  assert.match(error!.message, /bad stream open/);
  server.close();
});

test.run();
