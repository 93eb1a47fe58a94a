import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zmq from 'zeromq';
import { STREAM_MIN_BYTES, ZmtpReader, ZmtpSubscriber, type PartStream } from '../src/zmq/zmtp-subscriber.ts';
import { freePorts, sleep, waitUntil } from './helpers/processes.ts';

/** A subscriber collecting what it receives (but the probes of `joined`) and the errors it reports. */
function subscribe(endpoint: string) {
  const messages: Buffer[][] = [];
  const errors: Error[] = [];
  const probes = { seen: 0 };
  const subscriber = new ZmtpSubscriber({
    endpoint,
    onMessage: (parts) => (parts[0].toString() === 'probe' ? probes.seen++ : messages.push(parts)),
    onError: (error) => errors.push(error),
  });
  return { subscriber, messages, errors, probes };
}

/** Publishes probes until the subscriber has one (a subscription takes a moment to reach the publisher). */
async function joined(publisher: zmq.Publisher, probes: { seen: number }): Promise<void> {
  const before = probes.seen;
  await waitUntil(
    async () => {
      await publisher.send(['probe']);
      return probes.seen > before;
    },
    10_000,
    'the subscription to reach the publisher',
    20,
  );
}

test('messages from a real ZeroMQ publisher arrive whole and in order: every frame size, empty parts, big ones across reads', async () => {
  const [port] = await freePorts(1);
  const publisher = new zmq.Publisher({ linger: 0, sendHighWaterMark: 0 });
  await publisher.bind(`tcp://127.0.0.1:${port}`);
  const { subscriber, messages, errors, probes } = subscribe(`tcp://127.0.0.1:${port}`);
  try {
    await joined(publisher, probes);
    const sizes = [0, 1, 127, 128, 255, 256, 16 * 1024 - 1, 16 * 1024, 65_536, 200_000, 5_000_000];
    const sent: Buffer[][] = [];
    for (const [i, size] of sizes.entries()) {
      const parts = [Buffer.from(`topic-${i}`), Buffer.alloc(0), Buffer.alloc(size, i % 251), Buffer.from('{}')];
      sent.push(parts);
      await publisher.send(parts);
    }
    for (let i = 0; i < 2000; i++) {
      const parts = [Buffer.from('burst'), Buffer.from(String(i))];
      sent.push(parts);
      await publisher.send(parts);
    }
    await waitUntil(() => messages.length >= sent.length, 20_000, 'every message', 10);
    assert.is(messages.length, sent.length);
    messages.forEach((parts, i) => {
      assert.is(parts.length, sent[i].length, `message ${i}: parts`);
      parts.forEach((part, j) => assert.ok(part.equals(sent[i][j]), `message ${i}, part ${j} intact`));
    });
    assert.equal(errors, []);
  } finally {
    subscriber.close();
    publisher.close();
  }
});

test('it connects once the publisher listens, and again after the publisher restarts', async () => {
  const [port] = await freePorts(1);
  const endpoint = `tcp://127.0.0.1:${port}`;
  const { subscriber, messages, errors, probes } = subscribe(endpoint);
  try {
    await sleep(300); // refused a few times meanwhile
    let publisher = new zmq.Publisher({ linger: 0 });
    await publisher.bind(endpoint);
    await joined(publisher, probes);
    await publisher.send(['first']);
    await waitUntil(() => messages.length === 1, 5000, 'the first message');
    messages.length = 0;
    publisher.close();
    await sleep(300);
    publisher = new zmq.Publisher({ linger: 0 });
    await publisher.bind(endpoint);
    await joined(publisher, probes);
    await publisher.send(['second']);
    await waitUntil(() => messages.length === 1, 5000, 'the message after the restart');
    assert.is(messages[0][0].toString(), 'second');
    assert.equal(errors, []);
    publisher.close();
  } finally {
    subscriber.close();
  }
});

test("a publisher with ZeroMQ heartbeats gets its PINGs answered: it keeps the connection, and nothing is lost", async () => {
  const [port] = await freePorts(1);
  const endpoint = `tcp://127.0.0.1:${port}`;
  // libzmq drops a peer that does not answer a PING within the timeout.
  const publisher = new zmq.Publisher({ linger: 0, heartbeatInterval: 50, heartbeatTimeout: 150 });
  await publisher.bind(endpoint);
  let accepted = 0;
  let dropped = 0;
  void (async () => {
    for await (const event of publisher.events) {
      if (event.type === 'accept') accepted++;
      if (event.type === 'disconnect') dropped++;
    }
  })();
  const { subscriber, messages, errors, probes } = subscribe(endpoint);
  try {
    await joined(publisher, probes);
    for (let i = 0; i < 30; i++) {
      await publisher.send(['beat', String(i)]);
      await sleep(40); // 1.2 s: many heartbeat timeouts long
    }
    await waitUntil(() => messages.length === 30, 5000, 'every message');
    assert.equal(messages.map((m) => m[1].toString()), Array.from({ length: 30 }, (_, i) => String(i)));
    assert.is(accepted, 1, 'one connection all along');
    assert.is(dropped, 0);
    assert.equal(errors, []);
  } finally {
    subscriber.close();
    publisher.close();
  }
});

test('over ipc too', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kg-zmtp-'));
  const endpoint = `ipc://${join(dir, 'kernel')}-5`;
  const publisher = new zmq.Publisher({ linger: 0 });
  await publisher.bind(endpoint);
  const { subscriber, messages, probes } = subscribe(endpoint);
  try {
    await joined(publisher, probes);
    await publisher.send(['over', 'ipc']);
    await waitUntil(() => messages.length === 1, 5000, 'the message');
    assert.equal(messages[0].map(String), ['over', 'ipc']);
  } finally {
    subscriber.close();
    publisher.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/** A TCP server that answers every connection with `bytes`, counting connections. */
async function rogue(bytes: Buffer): Promise<{ port: number; connections: () => number; close(): void }> {
  let count = 0;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    count++;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.write(bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => count,
    close: () => {
      server.close();
      sockets.forEach((s) => s.destroy());
    },
  };
}

const greeting = (major = 3, mechanism = 'NULL') => {
  const bytes = Buffer.alloc(64);
  bytes[0] = 0xff;
  bytes[9] = 0x7f;
  bytes[10] = major;
  bytes.write(mechanism, 12, 'ascii');
  return bytes;
};

test('a peer that breaks the protocol is reported and disconnected, and retried; nothing throws', async () => {
  const cases: [string, Buffer, RegExp][] = [
    ['not ZMTP', Buffer.from('HTTP/1.1 200 OK\r\n\r\n'.padEnd(64, ' ')), /bad signature/],
    ['ZMTP 2', greeting(1), /ZMTP 1\.x/],
    ['CURVE', greeting(3, 'CURVE'), /CURVE mechanism/],
    ['a message before READY', Buffer.concat([greeting(), Buffer.from([0x00, 0x02, 0x68, 0x69])]), /before the READY/],
    ['a frame of 2^60 bytes', Buffer.concat([greeting(), Buffer.from([0x06, 0x10, 0, 0, 0, 0, 0, 0, 0])]), /2\^53/],
    ['an ERROR command', Buffer.concat([greeting(), Buffer.from([0x04, 0x0b, 5, ...Buffer.from('ERROR'), 4, ...Buffer.from('nope')])]), /refused the connection: nope/],
  ];
  for (const [what, bytes, expected] of cases) {
    const peer = await rogue(bytes);
    const { subscriber, messages, errors } = subscribe(`tcp://127.0.0.1:${peer.port}`);
    try {
      await waitUntil(() => errors.length >= 2 && peer.connections() >= 2, 5000, `${what}: two reports and a retry`);
      assert.match(errors[0].message, expected, what);
      assert.equal(messages, [], what);
    } finally {
      subscriber.close();
      peer.close();
    }
  }
});

test('after close() it connects no more', async () => {
  const peer = await rogue(Buffer.from('x'.repeat(64)));
  const { subscriber } = subscribe(`tcp://127.0.0.1:${peer.port}`);
  try {
    await waitUntil(() => peer.connections() >= 1, 5000, 'a connection');
    subscriber.close();
    const count = peer.connections();
    await sleep(400);
    assert.is(peer.connections(), count);
    assert.ok(subscriber.closed);
  } finally {
    peer.close();
  }
});

/** `body` as one ZMTP frame with `flags` (the long form when it needs it). */
function zmtpFrame(flags: number, body: Buffer): Buffer {
  if (body.length < 256) return Buffer.concat([Buffer.from([flags, body.length]), body]);
  const head = Buffer.alloc(9);
  head[0] = flags | 0x02;
  head.writeBigUInt64BE(BigInt(body.length), 1);
  return Buffer.concat([head, body]);
}

const READY_FROM_PUB = Buffer.from([0x04, 0x19, 5, ...Buffer.from('READY'), 11, ...Buffer.from('Socket-Type'), 0, 0, 0, 3, ...Buffer.from('PUB')]);

test('ZmtpReader: the same messages whatever way the bytes are split, from a read Buffer it reuses', () => {
  const frame = zmtpFrame;
  const big = Buffer.alloc(70_000);
  for (let i = 0; i < big.length; i++) big[i] = i % 253;
  const stream = Buffer.concat([
    greeting(),
    READY_FROM_PUB,
    frame(0x01, Buffer.from('topic')),
    frame(0x01, Buffer.alloc(0)),
    frame(0x00, Buffer.alloc(300, 'y')),
    frame(0x04, Buffer.from([4, ...Buffer.from('PING'), 0, 0])), // a later version's command: ignored
    frame(0x00, Buffer.from('single')),
    frame(0x01, Buffer.alloc(16 * 1024 - 1, 's')),
    frame(0x01, Buffer.alloc(16 * 1024, 'b')),
    frame(0x00, big),
  ]);
  const expected = [
    ['topic', '', 'y'.repeat(300)].map((text) => Buffer.from(text)),
    [Buffer.from('single')],
    [Buffer.alloc(16 * 1024 - 1, 's'), Buffer.alloc(16 * 1024, 'b'), big],
  ];
  const scratch = Buffer.alloc(stream.length);
  for (const step of [1, 2, 3, 7, 63, 64, 65, 1000, 16 * 1024 + 5, 65_536, stream.length]) {
    const got: Buffer[][] = [];
    let greeted = 0;
    const reader = new ZmtpReader((parts) => got.push(parts), () => greeted++);
    for (let at = 0; at < stream.length; at += step) {
      // As a socket reading into one Buffer: each read overwrites the last.
      const n = stream.copy(scratch, 0, at, at + step);
      reader.push(scratch.subarray(0, n));
      scratch.fill(0xee);
    }
    assert.is(got.length, expected.length, `split every ${step} bytes: messages`);
    got.forEach((parts, i) => {
      assert.is(parts.length, expected[i].length, `split every ${step} bytes: message ${i}`);
      parts.forEach((part, j) => assert.ok(part.equals(expected[i][j]), `split every ${step} bytes: message ${i}, part ${j}`));
    });
    assert.is(greeted, 1);
  }
});

test('ZmtpReader follows a big last part as it arrives: its pieces in order, then the whole message to the stream only', () => {
  const big = Buffer.alloc(STREAM_MIN_BYTES + 12_345);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 251;
  const notLast = Buffer.alloc(STREAM_MIN_BYTES, 'n');
  const bytes = Buffer.concat([
    greeting(),
    READY_FROM_PUB,
    zmtpFrame(0x01, Buffer.from('topic')),
    zmtpFrame(0x00, big), // followed
    zmtpFrame(0x01, notLast), // big but not last: not followed
    zmtpFrame(0x00, Buffer.from('end')),
    zmtpFrame(0x00, Buffer.alloc(STREAM_MIN_BYTES - 1, 's')), // last but below the size: not followed
  ]);
  for (const step of [1000, 65_536, 300_000, bytes.length]) {
    const messages: Buffer[][] = [];
    const starts: Array<{ before: string[]; size: number }> = [];
    const pieces: Buffer[] = [];
    const ended: Buffer[][] = [];
    const reader = new ZmtpReader(
      (parts) => messages.push(parts),
      () => {},
      () => {},
      (before, size): PartStream => {
        starts.push({ before: before.map((part) => part.toString()), size });
        return { data: (piece) => pieces.push(Buffer.from(piece)), end: (parts) => ended.push(parts) };
      },
    );
    for (let at = 0; at < bytes.length; at += step) reader.push(bytes.subarray(at, at + step));
    assert.equal(starts, [{ before: ['topic'], size: big.length }], `split every ${step}: one message followed`);
    assert.ok(Buffer.concat(pieces).equals(big), `split every ${step}: the pieces make the part`);
    assert.is(ended.length, 1);
    assert.is(ended[0][0].toString(), 'topic');
    assert.ok(ended[0][1].equals(big));
    assert.is(messages.length, 2, `split every ${step}: the others go to onMessage, the followed one does not`);
    assert.ok(messages[0][0].equals(notLast));
    assert.is(messages[1][0].length, STREAM_MIN_BYTES - 1);
  }
});

test('ZmtpSubscriber: a followed message whose stream throws is reported and still delivered whole; big parts read in place arrive intact', async () => {
  const [port] = await freePorts(1);
  const publisher = new zmq.Publisher({ linger: 0 });
  await publisher.bind(`tcp://127.0.0.1:${port}`);
  const messages: Buffer[][] = [];
  const errors: Error[] = [];
  const pieces: number[] = [];
  let streams = 0;
  let probes = 0;
  const subscriber = new ZmtpSubscriber({
    endpoint: `tcp://127.0.0.1:${port}`,
    onMessage: (parts) => (parts[0].toString() === 'probe' ? probes++ : messages.push(parts)),
    onError: (error) => errors.push(error),
    onStream: () => {
      const which = ++streams;
      let seen = 0;
      return {
        data: (piece) => {
          seen += piece.length;
          // The second followed message's stream fails part way.
          if (which === 2 && seen > STREAM_MIN_BYTES) throw new Error('stream failure');
        },
        end: (parts) => {
          pieces.push(seen);
          messages.push(parts);
        },
      };
    },
  });
  try {
    await waitUntil(async () => { await publisher.send(['probe']); return probes > 0; }, 10_000, 'the subscription', 20);
    const bigs = [3, 5, 9].map((mb) => {
      const part = Buffer.alloc(mb * 1024 * 1024 + 17);
      for (let i = 0; i < part.length; i += 4096) part[i] = (i / 4096 + mb) % 256;
      return part;
    });
    for (const part of bigs) await publisher.send(['topic', part]);
    await waitUntil(() => messages.length >= 3, 10_000, 'the three messages');
    messages.forEach((parts, i) => {
      assert.is(parts[0].toString(), 'topic');
      assert.ok(parts[1].equals(bigs[i]), `message ${i} intact`);
    });
    assert.equal(pieces, [bigs[0].length, bigs[2].length], 'the first and third ended at their streams, after all their bytes');
    assert.is(errors.length, 1);
    assert.is(errors[0].message, 'stream failure');
  } finally {
    subscriber.close();
    publisher.close();
  }
});

test('a connection that ends in the middle of a big part: the part is dropped (its stream never ends), whole messages before it arrive, the subscriber reconnects', async () => {
  const whole = Buffer.alloc(3 * 1024 * 1024, 'w');
  const cut = Buffer.alloc(5 * 1024 * 1024, 'c');
  const bytes = Buffer.concat([greeting(), READY_FROM_PUB, zmtpFrame(0x00, whole), zmtpFrame(0x00, cut).subarray(0, 9 + 2 * 1024 * 1024)]);
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    socket.on('error', () => {});
    socket.end(bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const messages: Buffer[][] = [];
  const errors: Error[] = [];
  const streams = { started: 0, bytes: 0, ended: 0 };
  const subscriber = new ZmtpSubscriber({
    endpoint: `tcp://127.0.0.1:${port}`,
    onMessage: (parts) => messages.push(parts),
    onError: (error) => errors.push(error),
    onStream: () => {
      streams.started++;
      return {
        data: (piece) => (streams.bytes += piece.length),
        end: (parts) => {
          streams.ended++;
          messages.push(parts);
        },
      };
    },
  });
  try {
    await waitUntil(() => connections >= 3 && messages.length >= 3, 10_000, 'three connections, each with its whole message');
    subscriber.close();
    assert.ok(messages.every((parts) => parts.length === 1 && parts[0].equals(whole)), 'only whole messages, intact');
    assert.ok(streams.started >= 2 * messages.length - 1, `both big parts of every connection were followed (${streams.started})`);
    assert.is(streams.ended, messages.length, 'only the whole ones ended');
    // Every connection but the last (whose cut part may still have been arriving) gave its 2 MB.
    assert.ok(streams.bytes >= messages.length * whole.length + (messages.length - 1) * 2 * 1024 * 1024, 'the cut parts were followed as far as they came');
    assert.equal(errors, [], 'a connection that ends is no protocol error');
  } finally {
    subscriber.close();
    server.close();
  }
});

test.run();
