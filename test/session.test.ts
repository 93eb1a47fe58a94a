import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DELIMITER,
  MessageFactory,
  ProtocolError,
  Signer,
  isoNow,
  newSessionId,
  parseFrames,
  parseSigned,
  serializeFrames,
} from '../src/messaging/session.ts';
import { PROTOCOL_VERSION, type RawMessage } from '../src/messaging/message.ts';

// ---------------------------------------------------------------------------------------------
// Known vectors, generated with Debian's python3 + jupyter_client 7.4.9:
//   hmac.new(key, header + parent + metadata + content, hashlib.sha256/sha512).hexdigest()
//   and Session(key=..., signature_scheme=...).sign([h, p, m, c]) (identical results).
// ---------------------------------------------------------------------------------------------
const H = Buffer.from(
  '{"msg_id":"a1","msg_type":"execute_request","username":"u","session":"s1","date":"2024-01-02T03:04:05.123456Z","version":"5.4"}',
  'utf8',
);
const P = Buffer.from('{}', 'utf8');
const M = Buffer.from('{}', 'utf8');
// The six characters backslash-u-0-0-e-9 (JSON escape), not the character itself.
const C = Buffer.from(String.raw`{"code":"print(\"h\u00e9llo\")","silent":false}`, 'utf8');

const KEY = 'secret-key';
const SHA256_HEX = 'c18df3043196e5b790fc9bfcfa6e31a6e86cb319951d0e535474d99b3b2e21a0';
const SHA512_HEX =
  'c1f452b54a75e9842b28c9f3d629098851cd559fc0c349ba69695743cc59260ab401207732c9ef726ced8c6ef841604dee1e1859f92c86a952f16c76b3dad3cb';
// key 'clé-🔑' as UTF-8 (b'cl\xc3\xa9-\xf0\x9f\x94\x91'), hmac-sha256
const NON_ASCII_KEY = 'clé-🔑';
const NON_ASCII_KEY_SHA256_HEX = '361db5e3f9d459d27f3c50ea8abab71ddad30aeb2c36d43a8bcc2a65c42e3082';
// key b'k' * 200 (longer than the sha512 block size), hmac-sha512
const LONG_KEY = 'k'.repeat(200);
const LONG_KEY_SHA512_HEX =
  '607bb9adcf61a56e4f8aafb372566f892828d6a7b0117a8b312e6fb6c6a05de39403b2f3d7b5ae40bb3bdaf2cb266766335758b6dcb53d7ebaa78d5abe5dc082';
// four empty parts, key 'secret-key', hmac-sha256
const EMPTY_PARTS_SHA256_HEX = '345fba21f06a4f75ed673fb93dc16cd47d8dc7a69f52e84e3016fcf69835fdb8';

const EMPTY = Buffer.alloc(0);

/** The ProtocolError message `fn` throws, or fails the test. */
function protocolError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.instance(err, ProtocolError);
    assert.is((err as Error).name, 'ProtocolError');
    assert.ok((err as Error).message.length > 0, 'error has a message');
    return (err as Error).message;
  }
  assert.unreachable('no ProtocolError thrown');
  return '';
}

const raw = (buffers: Buffer[] = []): RawMessage => ({ header: H, parentHeader: P, metadata: M, content: C, buffers });

// --- Signer -----------------------------------------------------------------------------------

test('Signer hmac-sha256 matches jupyter_client', () => {
  const signer = new Signer(KEY, 'hmac-sha256');
  assert.ok(signer.enabled);
  const sig = signer.sign(H, P, M, C);
  assert.instance(sig, Buffer);
  assert.is(sig.toString('latin1'), SHA256_HEX);
  assert.is(sig.length, 64);
});

test('Signer defaults to hmac-sha256', () => {
  assert.is(new Signer(KEY).sign(H, P, M, C).toString('latin1'), SHA256_HEX);
});

test('Signer hmac-sha512 matches jupyter_client', () => {
  const sig = new Signer(KEY, 'hmac-sha512').sign(H, P, M, C);
  assert.is(sig.toString('latin1'), SHA512_HEX);
  assert.is(sig.length, 128);
});

test('Signer encodes the key as UTF-8', () => {
  assert.is(new Signer(NON_ASCII_KEY, 'hmac-sha256').sign(H, P, M, C).toString('latin1'), NON_ASCII_KEY_SHA256_HEX);
});

test('Signer handles keys longer than the hash block', () => {
  assert.is(new Signer(LONG_KEY, 'hmac-sha512').sign(H, P, M, C).toString('latin1'), LONG_KEY_SHA512_HEX);
});

test('Signer signs four empty parts', () => {
  assert.is(new Signer(KEY).sign(EMPTY, EMPTY, EMPTY, EMPTY).toString('latin1'), EMPTY_PARTS_SHA256_HEX);
});

test('Signer verify accepts the known signatures', () => {
  assert.ok(new Signer(KEY, 'hmac-sha256').verify(Buffer.from(SHA256_HEX, 'ascii'), H, P, M, C));
  assert.ok(new Signer(KEY, 'hmac-sha512').verify(Buffer.from(SHA512_HEX, 'ascii'), H, P, M, C));
});

test('Signer with an empty key: signing off, empty signature, verify always true', () => {
  const signer = new Signer('', 'hmac-sha256');
  assert.is(signer.enabled, false);
  const sig = signer.sign(H, P, M, C);
  assert.is(sig.length, 0);
  assert.ok(signer.verify(EMPTY, H, P, M, C));
  assert.ok(signer.verify(Buffer.from(SHA256_HEX, 'ascii'), H, P, M, C));
  assert.ok(signer.verify(Buffer.from('garbage'), H, P, M, Buffer.from('{"tampered":true}')));
});

test('Signer verify rejects a tampered content', () => {
  const signer = new Signer(KEY);
  const sig = Buffer.from(SHA256_HEX, 'ascii');
  assert.is(signer.verify(sig, H, P, M, Buffer.from(String.raw`{"code":"print(\"h\u00e9llo\")","silent":true}`)), false);
  // one flipped byte anywhere in any part
  for (const which of [0, 1, 2, 3]) {
    const parts = [H, P, M, C].map((b) => Buffer.from(b));
    parts[which][0] ^= 0x01;
    assert.is(signer.verify(sig, parts[0], parts[1], parts[2], parts[3]), false, `part ${which} tampered`);
  }
});

test('Signer verify rejects a signature made with another key', () => {
  assert.is(new Signer('other-key').verify(Buffer.from(SHA256_HEX, 'ascii'), H, P, M, C), false);
});

test('Signer verify rejects wrong-length signatures without throwing', () => {
  const signer = new Signer(KEY);
  assert.is(signer.verify(Buffer.from(SHA256_HEX.slice(0, 63), 'ascii'), H, P, M, C), false);
  assert.is(signer.verify(Buffer.from(SHA256_HEX + '0', 'ascii'), H, P, M, C), false);
  assert.is(signer.verify(EMPTY, H, P, M, C), false);
  // the sha512 digest under a sha256 signer
  assert.is(signer.verify(Buffer.from(SHA512_HEX, 'ascii'), H, P, M, C), false);
});

test('Signer verifier: the content given in pieces checks as verify does, right and wrong', () => {
  for (const scheme of ['hmac-sha256', 'hmac-sha512']) {
    const signer = new Signer(KEY, scheme);
    const signature = signer.sign(H, P, M, C);
    for (const cut of [0, 1, Math.floor(C.length / 2), C.length]) {
      const verifier = signer.verifier(H, P, M);
      verifier.update(C.subarray(0, cut));
      verifier.update(C.subarray(cut));
      assert.ok(verifier.matches(signature), `${scheme}, content cut at ${cut}`);
    }
    const tampered = signer.verifier(H, P, M);
    tampered.update(Buffer.concat([C, Buffer.from(' ')]));
    assert.is(tampered.matches(signature), false, `${scheme}: a tampered content`);
    const shorter = signer.verifier(H, P, M);
    shorter.update(C);
    assert.is(shorter.matches(signature.subarray(0, 10)), false, `${scheme}: a short signature, without throwing`);
  }
});

test('Signer verify rejects an uppercase-hex signature', () => {
  assert.is(new Signer(KEY).verify(Buffer.from(SHA256_HEX.toUpperCase(), 'ascii'), H, P, M, C), false);
});

test('Signer verify rejects a flipped last character', () => {
  const bad = SHA256_HEX.slice(0, 63) + (SHA256_HEX.endsWith('0') ? '1' : '0');
  assert.is(new Signer(KEY).verify(Buffer.from(bad, 'ascii'), H, P, M, C), false);
});

test("Signer rejects 'sha256' (no hmac- prefix)", () => {
  const message = protocolError(() => new Signer(KEY, 'sha256'));
  assert.match(message, 'sha256');
});

test("Signer rejects 'hmac-nosuchhash'", () => {
  const message = protocolError(() => new Signer(KEY, 'hmac-nosuchhash'));
  assert.match(message, 'nosuchhash');
});

test('Signer rejects an empty scheme and a bare hmac- prefix', () => {
  protocolError(() => new Signer(KEY, ''));
  protocolError(() => new Signer(KEY, 'hmac-'));
});

// --- parseFrames ------------------------------------------------------------------------------

const SIG = Buffer.from(SHA256_HEX, 'ascii');

test('DELIMITER is <IDS|MSG>', () => {
  assert.ok(DELIMITER.equals(Buffer.from([0x3c, 0x49, 0x44, 0x53, 0x7c, 0x4d, 0x53, 0x47, 0x3e])));
});

test('parseFrames with identities before the delimiter', () => {
  const id1 = Buffer.from('client-1');
  const id2 = Buffer.from([0x00, 0x80, 0xff]);
  const parsed = parseFrames([id1, id2, Buffer.from('<IDS|MSG>'), SIG, H, P, M, C]);
  assert.is(parsed.identities.length, 2);
  assert.ok(parsed.identities[0].equals(id1));
  assert.ok(parsed.identities[1].equals(id2));
  assert.ok(parsed.signature.equals(SIG));
  assert.ok(parsed.header.equals(H));
  assert.ok(parsed.parentHeader.equals(P));
  assert.ok(parsed.metadata.equals(M));
  assert.ok(parsed.content.equals(C));
  assert.equal(parsed.buffers, []);
});

test('parseFrames without identities', () => {
  const parsed = parseFrames([Buffer.from('<IDS|MSG>'), SIG, H, P, M, C]);
  assert.equal(parsed.identities, []);
  assert.ok(parsed.signature.equals(SIG));
  assert.ok(parsed.header.equals(H));
  assert.ok(parsed.content.equals(C));
  assert.equal(parsed.buffers, []);
});

test('parseFrames with buffers after the content', () => {
  const b0 = Buffer.from([1, 2, 3]);
  const b1 = Buffer.alloc(0);
  const b2 = Buffer.from('<IDS|MSG>'); // a buffer that happens to look like the delimiter
  const parsed = parseFrames([Buffer.from('id'), Buffer.from('<IDS|MSG>'), SIG, H, P, M, C, b0, b1, b2]);
  assert.is(parsed.identities.length, 1);
  assert.ok(parsed.content.equals(C));
  assert.is(parsed.buffers.length, 3);
  assert.ok(parsed.buffers[0].equals(b0));
  assert.is(parsed.buffers[1].length, 0);
  assert.ok(parsed.buffers[2].equals(b2));
});

test('parseFrames with an empty signature frame', () => {
  const parsed = parseFrames([Buffer.from('<IDS|MSG>'), EMPTY, H, P, M, C]);
  assert.is(parsed.signature.length, 0);
  assert.ok(parsed.header.equals(H));
});

test('parseFrames: missing delimiter is a ProtocolError', () => {
  protocolError(() => parseFrames([SIG, H, P, M, C]));
  protocolError(() => parseFrames([]));
  // near misses are not the delimiter
  protocolError(() => parseFrames([Buffer.from('<IDS|MSG'), SIG, H, P, M, C]));
  protocolError(() => parseFrames([Buffer.from('<ids|msg>'), SIG, H, P, M, C]));
  protocolError(() => parseFrames([Buffer.from('<IDS|MSG> '), SIG, H, P, M, C]));
});

test('parseFrames: fewer than 5 frames after the delimiter is a ProtocolError', () => {
  protocolError(() => parseFrames([Buffer.from('<IDS|MSG>'), SIG, H, P, M]));
  protocolError(() => parseFrames([Buffer.from('id'), Buffer.from('<IDS|MSG>'), SIG, H, P, M]));
  protocolError(() => parseFrames([Buffer.from('<IDS|MSG>')]));
  protocolError(() => parseFrames([Buffer.from('id'), Buffer.from('<IDS|MSG>')]));
});

// --- parseSigned ------------------------------------------------------------------------------

test('parseSigned accepts a correctly signed message', () => {
  const parsed = parseSigned([Buffer.from('id'), Buffer.from('<IDS|MSG>'), SIG, H, P, M, C], new Signer(KEY));
  assert.ok(parsed.content.equals(C));
  assert.ok(parsed.identities[0].equals(Buffer.from('id')));
});

test('parseSigned rejects an unsigned message when a key is set', () => {
  protocolError(() => parseSigned([Buffer.from('<IDS|MSG>'), EMPTY, H, P, M, C], new Signer(KEY)));
});

test('parseSigned rejects a bad signature', () => {
  const tampered = Buffer.from(C.toString('latin1').replace('false', 'true!'), 'latin1');
  protocolError(() => parseSigned([Buffer.from('<IDS|MSG>'), SIG, H, P, M, tampered], new Signer(KEY)));
  protocolError(() => parseSigned([Buffer.from('<IDS|MSG>'), Buffer.from(SHA256_HEX.toUpperCase()), H, P, M, C], new Signer(KEY)));
});

test('parseSigned rejects malformed frames', () => {
  protocolError(() => parseSigned([SIG, H, P, M, C], new Signer(KEY)));
});

test('parseSigned with signing off accepts unsigned and any-signed messages', () => {
  const off = new Signer('');
  assert.ok(parseSigned([Buffer.from('<IDS|MSG>'), EMPTY, H, P, M, C], off).content.equals(C));
  assert.ok(parseSigned([Buffer.from('<IDS|MSG>'), Buffer.from('junk'), H, P, M, C], off).content.equals(C));
});

// --- serializeFrames --------------------------------------------------------------------------

test('serializeFrames lays out delimiter, known signature and parts', () => {
  const b0 = Buffer.from([9, 8, 7]);
  const frames = serializeFrames(raw([b0]), new Signer(KEY));
  assert.is(frames.length, 7);
  assert.ok(frames[0].equals(DELIMITER));
  assert.is(frames[1].toString('latin1'), SHA256_HEX);
  assert.ok(frames[2].equals(H));
  assert.ok(frames[3].equals(P));
  assert.ok(frames[4].equals(M));
  assert.ok(frames[5].equals(C));
  assert.ok(frames[6].equals(b0));
});

test('serializeFrames with signing off gives an empty signature frame', () => {
  const frames = serializeFrames(raw(), new Signer(''));
  assert.is(frames.length, 6);
  assert.is(frames[1].length, 0);
});

test('serializeFrames -> parseSigned round trip', () => {
  for (const scheme of ['hmac-sha256', 'hmac-sha512']) {
    const signer = new Signer(KEY, scheme);
    const bufs = [Buffer.from([0, 1, 2]), Buffer.alloc(0), Buffer.from('xyz')];
    const parsed = parseSigned(serializeFrames(raw(bufs), signer), signer);
    assert.equal(parsed.identities, []);
    assert.is(parsed.signature.toString('latin1'), scheme === 'hmac-sha256' ? SHA256_HEX : SHA512_HEX);
    assert.ok(parsed.header.equals(H));
    assert.ok(parsed.parentHeader.equals(P));
    assert.ok(parsed.metadata.equals(M));
    assert.ok(parsed.content.equals(C));
    assert.is(parsed.buffers.length, 3);
    bufs.forEach((b, i) => assert.ok(parsed.buffers[i].equals(b), `buffer ${i}`));
  }
});

test('serializeFrames -> parseSigned round trip with identities', () => {
  const signer = new Signer(KEY);
  const ids = [Buffer.from('router-id'), Buffer.from([0x00, 0xaa, 0xff])];
  const frames = serializeFrames(raw(), signer, ids);
  assert.is(frames.length, 8);
  assert.ok(frames[0].equals(ids[0]));
  assert.ok(frames[1].equals(ids[1]));
  assert.ok(frames[2].equals(DELIMITER));
  const parsed = parseSigned(frames, signer);
  assert.is(parsed.identities.length, 2);
  assert.ok(parsed.identities[0].equals(ids[0]));
  assert.ok(parsed.identities[1].equals(ids[1]));
  assert.ok(parsed.content.equals(C));
});

test('serializeFrames output fails verification under another key', () => {
  protocolError(() => parseSigned(serializeFrames(raw(), new Signer(KEY)), new Signer('different')));
});

// --- Frames produced by Python's Session.serialize --------------------------------------------
// Session(key=b'0123456789abcdef', signature_scheme='hmac-sha256',
//         session='11111111-222222222222222222222222', username='py')
// msg = s.msg('kernel_info_request', content={'x': 'é'}, parent={}, metadata={'m': 1}) with
// msg_id 'abc_1_0', date '2024-01-02T03:04:05.123456Z'; frames = s.serialize(msg, ident=[b'ident-1', b'\x00\x80\xffid'])
// plus one buffer frame b'\x00\x01\xff' (Session.send appends buffers unsigned after serialize's frames).
const PY_KEY = '0123456789abcdef';
const PY_FRAMES: Buffer[] = [
  Buffer.from('ident-1', 'latin1'),
  Buffer.from('0080ff6964', 'hex'),
  Buffer.from('<IDS|MSG>', 'latin1'),
  Buffer.from('7a7d25fd70678bed33e0d62a4dc32503f341280927a6d7ef1d8975cdd5ded85d', 'latin1'),
  Buffer.from(
    '{"msg_id": "abc_1_0", "msg_type": "kernel_info_request", "username": "py", "session": "11111111-222222222222222222222222", "date": "2024-01-02T03:04:05.123456Z", "version": "5.3"}',
    'latin1',
  ),
  Buffer.from('{}', 'latin1'),
  Buffer.from('{"m": 1}', 'latin1'),
  Buffer.from('7b2278223a2022c3a9227d', 'hex'), // {"x": "é"} in UTF-8
  Buffer.from('0001ff', 'hex'),
];

test("a frame list from Python's Session.serialize parses and verifies", () => {
  const parsed = parseSigned(PY_FRAMES, new Signer(PY_KEY, 'hmac-sha256'));
  assert.is(parsed.identities.length, 2);
  assert.is(parsed.identities[0].toString('latin1'), 'ident-1');
  assert.is(parsed.identities[1].toString('hex'), '0080ff6964');
  assert.is(parsed.signature.toString('latin1'), '7a7d25fd70678bed33e0d62a4dc32503f341280927a6d7ef1d8975cdd5ded85d');
  assert.equal(JSON.parse(parsed.header.toString('utf8')).msg_type, 'kernel_info_request');
  assert.equal(JSON.parse(parsed.content.toString('utf8')), { x: 'é' });
  assert.equal(JSON.parse(parsed.metadata.toString('utf8')), { m: 1 });
  assert.is(parsed.buffers.length, 1);
  assert.is(parsed.buffers[0].toString('hex'), '0001ff');
});

test("re-serializing Python's message reproduces Python's frames", () => {
  const signer = new Signer(PY_KEY);
  const parsed = parseSigned(PY_FRAMES, signer);
  const again = serializeFrames(parsed, signer, parsed.identities);
  assert.is(again.length, PY_FRAMES.length);
  again.forEach((frame, i) => assert.ok(frame.equals(PY_FRAMES[i]), `frame ${i}`));
});

test("Python's frames fail under a wrong key or tampered content", () => {
  protocolError(() => parseSigned(PY_FRAMES, new Signer('0123456789abcdeF')));
  const tampered = PY_FRAMES.slice();
  tampered[7] = Buffer.from('{"x": "e"}', 'latin1');
  protocolError(() => parseSigned(tampered, new Signer(PY_KEY)));
  // buffers are not covered by the signature (as in jupyter_client)
  const otherBuffer = PY_FRAMES.slice();
  otherBuffer[8] = Buffer.from('changed');
  assert.is(parseSigned(otherBuffer, new Signer(PY_KEY)).buffers[0].toString(), 'changed');
});

// --- ids and dates ----------------------------------------------------------------------------

test('newSessionId has jupyter_client shape and is random', () => {
  const ids = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const id = newSessionId();
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{24}$/);
    ids.add(id);
  }
  assert.is(ids.size, 50);
});

test('isoNow formats a fixed date with 6 fractional digits and Z', () => {
  assert.is(isoNow(new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 123))), '2024-01-02T03:04:05.123000Z');
  assert.is(isoNow(new Date(Date.UTC(1999, 11, 31, 23, 59, 59, 0))), '1999-12-31T23:59:59.000000Z');
  assert.is(isoNow(new Date(Date.UTC(2030, 5, 15, 0, 0, 0, 7))), '2030-06-15T00:00:00.007000Z');
});

test('isoNow without argument is the current UTC time', () => {
  const before = Date.now();
  const now = isoNow();
  const after = Date.now();
  assert.match(now, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
  const t = Date.parse(now);
  assert.ok(t >= before && t <= after, `${now} within [${before}, ${after}]`);
});

test('MessageFactory header shape', () => {
  const session = '0123abcd-0123456789abcdef01234567';
  const factory = new MessageFactory(session, 'alice');
  const before = Date.now();
  const h0 = factory.header('kernel_info_request');
  const h1 = factory.header('status');
  assert.equal(Object.keys(h0).sort(), ['date', 'msg_id', 'msg_type', 'session', 'username', 'version']);
  assert.is(h0.msg_id, `${session}_${process.pid}_0`);
  assert.is(h1.msg_id, `${session}_${process.pid}_1`);
  assert.is(h0.msg_type, 'kernel_info_request');
  assert.is(h1.msg_type, 'status');
  assert.is(h0.username, 'alice');
  assert.is(h0.session, session);
  assert.match(h0.date, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
  assert.ok(Date.parse(h0.date) >= before - 1);
  assert.is(typeof h0.version, 'string');
  assert.match(h0.version, /^5\.\d+$/);
  assert.is(h0.version, PROTOCOL_VERSION);
});

test('MessageFactory defaults: a fresh session id and a username', () => {
  const factory = new MessageFactory();
  assert.match(factory.session, /^[0-9a-f]{8}-[0-9a-f]{24}$/);
  assert.is(factory.username, process.env.USER || 'username');
  const h = factory.header('x');
  assert.match(h.msg_id, new RegExp(`^${factory.session}_${process.pid}_0$`));
  assert.is.not(new MessageFactory().session, factory.session);
});

test('MessageFactory message builds JSON parts and shares the counter', () => {
  const factory = new MessageFactory('aaaaaaaa-bbbbbbbbbbbbbbbbbbbbbbbb', 'bob');
  factory.header('first');
  const msg = factory.message('execute_request', { code: 'é' }, { msg_id: 'parent' });
  assert.is(msg.msgId, `aaaaaaaa-bbbbbbbbbbbbbbbbbbbbbbbb_${process.pid}_1`);
  const header = JSON.parse(msg.header.toString('utf8'));
  assert.is(header.msg_id, msg.msgId);
  assert.is(header.msg_type, 'execute_request');
  assert.is(msg.parentHeader.toString('utf8'), '{"msg_id":"parent"}');
  assert.is(msg.metadata.toString('utf8'), '{}');
  assert.is(msg.content.toString('hex'), Buffer.from('{"code":"é"}', 'utf8').toString('hex'));
  assert.equal(msg.buffers, []);
  assert.is(factory.message('x', {}).parentHeader.toString(), '{}');
  assert.is(factory.message('x', {}, null).parentHeader.toString(), '{}');
});

test.run();
