/**
 * The built-in JavaScript kernel as a Jupyter client sees it: launched directly
 * (`node out/src/jskernel/cli-entry.js -f <connection file>`) and spoken to over ZeroMQ with the
 * project's session helpers. Every wait has a timeout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { freePorts } from '../helpers/processes.ts';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as zmq from 'zeromq';
import type { MessageHeader } from '../../src/messaging/message.ts';
import { MessageFactory, parseSigned, serializeFrames, Signer } from '../../src/messaging/session.ts';

const ENTRY = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'jskernel', 'cli-entry.js');
const WAIT_MS = 10_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

interface Msg {
  channel: string;
  header: MessageHeader;
  parent: Partial<MessageHeader>;
  content: Record<string, any>;
  identities: Buffer[];
}

/** A launched kernel process and its connection details. */
class KernelProcess {
  stdout = '';
  stderr = '';
  exitCode: number | null | undefined;
  readonly exited: Promise<number | null>;
  private constructor(
    readonly proc: ChildProcess,
    readonly ports: Record<'shell' | 'iopub' | 'stdin' | 'control' | 'hb', number>,
    readonly key: string,
    readonly dir: string,
  ) {
    proc.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => proc.once('exit', (code) => resolve((this.exitCode = code))));
  }

  static async launch(env: Record<string, string> = {}): Promise<KernelProcess> {
    const [shell, iopub, stdin, control, hb] = await freePorts(5);
    const key = randomBytes(16).toString('hex');
    const dir = mkdtempSync(join(tmpdir(), 'kg-jskernel-'));
    const file = join(dir, 'kernel.json');
    writeFileSync(
      file,
      JSON.stringify({
        shell_port: shell, iopub_port: iopub, stdin_port: stdin, control_port: control, hb_port: hb,
        ip: '127.0.0.1', key, transport: 'tcp', signature_scheme: 'hmac-sha256', kernel_name: 'javascript',
      }),
    );
    const proc = spawn(process.execPath, [ENTRY, '-f', file], {
      cwd: dir,
      env: { ...process.env, JPY_PARENT_PID: String(process.pid), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new KernelProcess(proc, { shell, iopub, stdin, control, hb }, key, dir);
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  async kill(): Promise<void> {
    if (this.running) {
      this.proc.kill('SIGKILL');
      await withTimeout(this.exited, WAIT_MS, 'kernel exit after SIGKILL');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One client: shell, control and stdin DEALERs sharing a routing id, an iopub SUB and a heartbeat REQ. */
class Client {
  readonly factory = new MessageFactory();
  readonly signer: Signer;
  readonly messages: Msg[] = [];
  private waiters: Array<() => void> = [];
  readonly shell: zmq.Dealer;
  readonly control: zmq.Dealer;
  readonly stdin: zmq.Dealer;
  readonly iopub: zmq.Subscriber;

  constructor(readonly kernel: KernelProcess, readonly routingId: string, key = kernel.key) {
    this.signer = new Signer(key);
    const url = (port: number) => `tcp://127.0.0.1:${port}`;
    const dealer = (port: number) => {
      const s = new zmq.Dealer({ routingId, linger: 0 });
      s.connect(url(port));
      return s;
    };
    this.shell = dealer(kernel.ports.shell);
    this.control = dealer(kernel.ports.control);
    this.stdin = dealer(kernel.ports.stdin);
    this.iopub = new zmq.Subscriber({ linger: 0 });
    this.iopub.subscribe();
    this.iopub.connect(url(kernel.ports.iopub));
    for (const [channel, socket] of [['shell', this.shell], ['control', this.control], ['stdin', this.stdin], ['iopub', this.iopub]] as const) {
      void this.receive(channel, socket);
    }
  }

  private async receive(channel: string, socket: zmq.Dealer | zmq.Subscriber): Promise<void> {
    try {
      for await (const frames of socket) {
        const parsed = parseSigned(frames, this.signer);
        this.messages.push({
          channel,
          header: JSON.parse(parsed.header.toString()),
          parent: JSON.parse(parsed.parentHeader.toString()),
          content: JSON.parse(parsed.content.toString()),
          identities: parsed.identities,
        });
        for (const wake of this.waiters.splice(0)) wake();
      }
    } catch {
      /* closed */
    }
  }

  send(channel: 'shell' | 'control' | 'stdin', msgType: string, content: unknown, parent: unknown = {}): string {
    const message = this.factory.message(msgType, content, parent);
    const socket = channel === 'shell' ? this.shell : channel === 'control' ? this.control : this.stdin;
    void socket.send(serializeFrames(message, this.signer));
    return message.msgId;
  }

  /** Wait for a message matching `pred` (looking at everything received so far, too). */
  async waitFor(pred: (m: Msg) => boolean, what: string, ms = WAIT_MS): Promise<Msg> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.messages.find(pred);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0 || !this.kernel.running) {
        if (!this.kernel.running) await sleep(100); // let its stderr arrive
        const seen = this.messages.map((m) => `${m.channel}:${m.header.msg_type}`).join(', ');
        const why = this.kernel.running ? `timed out after ${ms} ms` : `the kernel exited (${this.kernel.exitCode})`;
        throw new Error(`${why} waiting for ${what}; received: ${seen}\nkernel stderr:\n${this.kernel.stderr}`);
      }
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), sleep(Math.min(left, 200))]);
    }
  }

  reply(msgId: string, ms = WAIT_MS): Promise<Msg> {
    return this.waitFor((m) => (m.channel === 'shell' || m.channel === 'control') && m.parent.msg_id === msgId, `the reply to ${msgId}`, ms);
  }

  /** All iopub messages for `msgId`, once its status idle has arrived. */
  async iopubUntilIdle(msgId: string, ms = WAIT_MS): Promise<Msg[]> {
    await this.waitFor(
      (m) => m.channel === 'iopub' && m.parent.msg_id === msgId && m.header.msg_type === 'status' && m.content.execution_state === 'idle',
      `status idle for ${msgId}`,
      ms,
    );
    return this.messages.filter((m) => m.channel === 'iopub' && m.parent.msg_id === msgId);
  }

  async execute(code: string, extra: Record<string, unknown> = {}, ms = WAIT_MS): Promise<{ id: string; reply: Msg; iopub: Msg[] }> {
    const id = this.send('shell', 'execute_request', { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: true, stop_on_error: true, ...extra });
    const reply = await this.reply(id, ms);
    const iopub = await this.iopubUntilIdle(id, ms);
    return { id, reply, iopub };
  }

  /** kernel_info until iopub traffic shows the subscription is live. */
  async handshake(): Promise<Msg> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const id = this.send('shell', 'kernel_info_request', {});
      try {
        const reply = await this.reply(id, 1000);
        await this.waitFor((m) => m.channel === 'iopub' && m.parent.msg_id === id, 'iopub for kernel_info', 1000);
        return reply;
      } catch (error) {
        if (Date.now() > deadline || !this.kernel.running) throw error;
      }
    }
  }

  close(): void {
    for (const s of [this.shell, this.control, this.stdin, this.iopub]) s.close();
  }
}

const result = (iopub: Msg[]): Record<string, any> | undefined => iopub.find((m) => m.header.msg_type === 'execute_result')?.content;
const textOf = (iopub: Msg[]) => result(iopub)?.data['text/plain'];
const streams = (iopub: Msg[], name: string) => iopub.filter((m) => m.header.msg_type === 'stream' && m.content.name === name).map((m) => m.content.text).join('');

// =============================================================================================

const test = suite('jskernel: the built-in JavaScript kernel over ZeroMQ');
let kernel: KernelProcess;
let client: Client;
const cleanup: Array<() => Promise<void> | void> = [];

test.before(async () => {
  assert.ok(existsSync(ENTRY), `${ENTRY} is missing: run npx tsc -p tsconfig.json first`);
  kernel = await KernelProcess.launch();
  client = new Client(kernel, 'client-A');
  cleanup.push(() => client.close(), () => kernel.kill());
});

test.after(async () => {
  for (const step of cleanup.reverse()) await step();
});

test('kernel_info on shell and on control', async () => {
  const reply = await client.handshake();
  const c = reply.content;
  assert.is(reply.header.msg_type, 'kernel_info_reply');
  assert.is(c.status, 'ok');
  assert.is(c.protocol_version, '5.3');
  assert.is(c.implementation, 'kernelgateway-javascript');
  assert.is(c.language_info.name, 'javascript');
  assert.is(c.language_info.version, process.versions.node);
  assert.is(c.language_info.mimetype, 'application/javascript');
  assert.is(c.language_info.file_extension, '.js');
  assert.type(c.banner, 'string');
  const id = client.send('control', 'kernel_info_request', {});
  const onControl = await client.reply(id);
  assert.is(onControl.channel, 'control');
  assert.is(onControl.header.msg_type, 'kernel_info_reply');
  assert.is(onControl.content.implementation, 'kernelgateway-javascript');
  // replies are signed with the connection key and carry the request as parent
  assert.is(onControl.parent.msg_id, id);
});

test('execute: stream stdout, execute_input, execute_result, busy/idle, execution_count', async () => {
  const r = await client.execute("console.log('hi'); 1+1");
  assert.is(r.reply.content.status, 'ok');
  const types = r.iopub.map((m) => m.header.msg_type);
  assert.is(types[0], 'status');
  assert.is(r.iopub[0].content.execution_state, 'busy');
  assert.is(types[types.length - 1], 'status');
  assert.ok(types.includes('execute_input'), types.join());
  assert.is(streams(r.iopub, 'stdout'), 'hi\n');
  assert.is(textOf(r.iopub), '2');
  const count = r.reply.content.execution_count;
  assert.is(result(r.iopub)?.execution_count, count);
  assert.is(r.iopub.find((m) => m.header.msg_type === 'execute_input')!.content.execution_count, count);
  const r2 = await client.execute('3');
  assert.is(r2.reply.content.execution_count, count + 1);
  // stderr stream, and no execute_result for undefined
  const r3 = await client.execute("console.error('bad', 42); console.warn('careful')");
  assert.is(streams(r3.iopub, 'stderr'), 'bad 42\ncareful\n');
  assert.is(result(r3.iopub), undefined);
});

test('declarations persist across cells (let, const, function, class) and cells can be re-run', async () => {
  const r1 = await client.execute('let x = 5');
  assert.is(r1.reply.content.status, 'ok');
  assert.is(result(r1.iopub), undefined);
  assert.is(textOf((await client.execute('x*2')).iopub), '10');
  await client.execute("const greeting = 'hello'; function twice(n) { return 2 * n } class Point { constructor(x) { this.x = x } }");
  assert.is(textOf((await client.execute('[greeting, twice(x), new Point(3).x]')).iopub), "[ 'hello', 10, 3 ]");
  const again = await client.execute('let x = 6; const greeting = "again"; class Point {}; x');
  assert.is(again.reply.content.status, 'ok', JSON.stringify(again.reply.content));
  assert.is(textOf(again.iopub), '6');
});

test('top-level await, with declarations that persist', async () => {
  const r = await client.execute('await new Promise(r => setTimeout(r, 50)); 7');
  assert.is(r.reply.content.status, 'ok', JSON.stringify(r.reply.content));
  assert.is(textOf(r.iopub), '7');
  await client.execute('const later = await Promise.resolve(41)');
  assert.is(textOf((await client.execute('later + 1')).iopub), '42');
});

test('parsed cells: destructuring across cells, an object literal cell, regex and division, syntax error positions', async () => {
  await client.execute('const {alpha1, beta1: [gamma1]} = { alpha1: 1, beta1: [2] }');
  assert.is(textOf((await client.execute('alpha1 + gamma1')).iopub), '3');
  assert.is(textOf((await client.execute('{a: 1}')).iopub), '{ a: 1 }');
  assert.is(textOf((await client.execute("const divided = 12 / 3 / 2\ndivided === 2 && /b+/g.test('abb') && divided // note")).iopub), '2');
  const bad = await client.execute('await 1\nlet = ;');
  assert.is(bad.reply.content.ename, 'SyntaxError');
  const [where, line, caret] = bad.reply.content.traceback;
  assert.match(where, /^<cell \d+>:2$/);
  assert.equal([line, caret], ['let = ;', '      ^']);
});

test('display(), display.html() and objects with their own mime bundle', async () => {
  const r = await client.execute("display.html('<b>bold</b>'); display({ a: 1 }); ({ [Symbol.for('jupyter.mime')]() { return { 'text/markdown': '*hi*' } } })");
  const shown = r.iopub.filter((m) => m.header.msg_type === 'display_data');
  assert.is(shown.length, 2);
  assert.is(shown[0].content.data['text/html'], '<b>bold</b>');
  assert.is(shown[1].content.data['text/plain'], '{ a: 1 }');
  assert.is(result(r.iopub)?.data['text/markdown'], '*hi*');
});

test('errors: iopub error and execute_reply with ename, evalue, traceback', async () => {
  const r = await client.execute("throw new Error('boom')");
  assert.is(r.reply.content.status, 'error');
  assert.is(r.reply.content.ename, 'Error');
  assert.is(r.reply.content.evalue, 'boom');
  assert.ok(Array.isArray(r.reply.content.traceback));
  assert.is(r.reply.content.traceback[0], 'Error: boom');
  assert.ok(r.reply.content.traceback.some((l: string) => l.includes('<cell ')), r.reply.content.traceback.join('\n'));
  const error = r.iopub.find((m) => m.header.msg_type === 'error')!;
  assert.is(error.content.ename, 'Error');
  assert.is(error.content.evalue, 'boom');
  assert.ok(!r.reply.content.traceback.some((l: string) => l.includes('jskernel')), 'no kernel frames in the traceback');
});

test('stop_on_error aborts the queued cells; stop_on_error false does not', async () => {
  const bad = client.send('shell', 'execute_request', { code: "throw new Error('first')", silent: false, stop_on_error: true });
  const next = client.send('shell', 'execute_request', { code: '1', silent: false });
  assert.is((await client.reply(bad)).content.status, 'error');
  assert.is((await client.reply(next)).content.status, 'aborted');
  await client.iopubUntilIdle(next);
  const bad2 = client.send('shell', 'execute_request', { code: "throw new Error('second')", silent: false, stop_on_error: false });
  const next2 = client.send('shell', 'execute_request', { code: '1', silent: false });
  assert.is((await client.reply(bad2)).content.status, 'error');
  assert.is((await client.reply(next2)).content.status, 'ok');
  await client.iopubUntilIdle(next2);
});

test('input(): input_request goes to the requesting client only; the reply is the value', async () => {
  const other = new Client(kernel, 'client-B');
  try {
    await other.handshake();
    const id = client.send('shell', 'execute_request', { code: "const who = await input('who? '); who.toUpperCase()", silent: false, allow_stdin: true });
    const request = await client.waitFor((m) => m.channel === 'stdin' && m.header.msg_type === 'input_request', 'input_request');
    assert.is(request.content.prompt, 'who? ');
    assert.is(request.content.password, false);
    assert.is(request.parent.msg_id, id);
    await sleep(100);
    assert.not.ok(other.messages.some((m) => m.channel === 'stdin'), 'the other client got no input_request');
    client.send('stdin', 'input_reply', { value: 'ada' }, request.header);
    const reply = await client.reply(id);
    assert.is(reply.content.status, 'ok');
    assert.is(textOf(await client.iopubUntilIdle(id)), "'ADA'");
  } finally {
    other.close();
  }
  const refused = await client.execute("await input('no stdin')", { allow_stdin: false });
  assert.is(refused.reply.content.status, 'error');
  assert.is(refused.reply.content.ename, 'StdinNotImplementedError');
});

test('SIGINT interrupts a synchronous endless loop; the kernel keeps working', async () => {
  const id = client.send('shell', 'execute_request', { code: 'while (true) {}', silent: false });
  await client.waitFor((m) => m.parent.msg_id === id && m.header.msg_type === 'execute_input', 'execute_input of the loop');
  await sleep(200);
  kernel.proc.kill('SIGINT');
  const reply = await client.reply(id);
  assert.is(reply.content.status, 'error');
  assert.is(reply.content.ename, 'KeyboardInterrupt');
  await client.iopubUntilIdle(id);
  assert.is(textOf((await client.execute('x + 1')).iopub), '7');
});

test('interrupt_request interrupts an await that never ends', async () => {
  const id = client.send('shell', 'execute_request', { code: 'await new Promise(() => {})', silent: false });
  await client.waitFor((m) => m.parent.msg_id === id && m.header.msg_type === 'execute_input', 'execute_input');
  await sleep(100);
  const interrupt = client.send('control', 'interrupt_request', {});
  const ack = await client.reply(interrupt);
  assert.is(ack.header.msg_type, 'interrupt_reply');
  assert.is(ack.content.status, 'ok');
  const reply = await client.reply(id);
  assert.is(reply.content.status, 'error');
  assert.is(reply.content.ename, 'KeyboardInterrupt');
  await client.iopubUntilIdle(id);
  assert.is(textOf((await client.execute('2 * 21')).iopub), '42');
});

test('interrupt_request interrupts a synchronous endless loop too (sockets in a worker thread)', async () => {
  const id = client.send('shell', 'execute_request', { code: 'let spins = 0; while (true) { spins++ }', silent: false });
  await client.waitFor((m) => m.parent.msg_id === id && m.header.msg_type === 'execute_input', 'execute_input');
  await sleep(200);
  const interrupt = client.send('control', 'interrupt_request', {});
  const reply = await client.reply(id);
  assert.is(reply.content.ename, 'KeyboardInterrupt');
  assert.is((await client.reply(interrupt)).content.status, 'ok');
  await client.iopubUntilIdle(id);
  assert.ok(Number(textOf((await client.execute('spins')).iopub)) > 0);
});

test('heartbeat echoes, even while a cell is busy', async () => {
  const hb = new zmq.Request({ linger: 0, receiveTimeout: 5000 });
  hb.connect(`tcp://127.0.0.1:${kernel.ports.hb}`);
  try {
    await hb.send('ping-1');
    assert.is((await hb.receive())[0].toString(), 'ping-1');
    const id = client.send('shell', 'execute_request', { code: 'const until = Date.now() + 1500; while (Date.now() < until) {}', silent: false });
    await client.waitFor((m) => m.parent.msg_id === id && m.header.msg_type === 'execute_input', 'execute_input');
    const started = Date.now();
    await hb.send('ping-2');
    assert.is((await hb.receive())[0].toString(), 'ping-2');
    assert.ok(Date.now() - started < 1000, 'the echo did not wait for the cell');
    await client.reply(id);
    await client.iopubUntilIdle(id);
  } finally {
    hb.close();
  }
});

test('is_complete: complete, incomplete (with indent), invalid', async () => {
  const ask = async (code: string) => (await client.reply(client.send('shell', 'is_complete_request', { code }))).content;
  assert.equal(await ask('1 + 1'), { status: 'complete' });
  assert.equal(await ask('function f() {'), { status: 'incomplete', indent: '  ' });
  assert.is((await ask('let s = `abc')).status, 'incomplete');
  assert.is((await ask('await fetchSomething()')).status, 'complete');
  assert.equal(await ask('let x = 5 5'), { status: 'invalid' });
  assert.equal(await ask('foo(]'), { status: 'invalid' });
});

test('complete: names in scope and in the code, properties after a dot', async () => {
  const ask = async (code: string, cursor_pos = [...code].length) =>
    (await client.reply(client.send('shell', 'complete_request', { code, cursor_pos }))).content;
  const c1 = await ask('let alpha = 1; al');
  assert.is(c1.status, 'ok');
  assert.ok(c1.matches.includes('alpha'), c1.matches.join());
  assert.is(c1.cursor_start, 15);
  assert.is(c1.cursor_end, 17);
  const c2 = await ask('Math.ma');
  assert.equal(c2.matches, ['max']);
  assert.is(c2.cursor_start, 5);
  const c3 = await ask('greeting.toUpp');
  assert.equal(c3.matches, ['toUpperCase']);
  const c4 = await ask('twi');
  assert.ok(c4.matches.includes('twice'));
  // cursor positions count code points
  const c5 = await ask("'🎉'; Math.ab");
  assert.equal(c5.matches, ['abs']);
  assert.is(c5.cursor_start, 10);
});

test('inspect, comm_info, history; unknown requests get no reply but status still goes busy/idle', async () => {
  const inspect = (await client.reply(client.send('shell', 'inspect_request', { code: 'twice', cursor_pos: 3, detail_level: 0 }))).content;
  assert.is(inspect.status, 'ok');
  assert.is(inspect.found, true);
  assert.match(inspect.data['text/plain'], /function twice/);
  const missing = (await client.reply(client.send('shell', 'inspect_request', { code: 'nothingHere', cursor_pos: 3 }))).content;
  assert.is(missing.found, false);
  assert.equal((await client.reply(client.send('shell', 'comm_info_request', {}))).content, { status: 'ok', comms: {} });
  assert.equal((await client.reply(client.send('shell', 'history_request', { hist_access_type: 'tail', n: 10 }))).content, { status: 'ok', history: [] });
  const unknown = client.send('shell', 'frobnicate_request', {});
  await client.iopubUntilIdle(unknown);
  assert.not.ok(client.messages.some((m) => m.channel === 'shell' && m.parent.msg_id === unknown));
});

test('a message signed with another key is dropped; the kernel goes on', async () => {
  const intruder = new Client(kernel, 'intruder', 'not-the-key');
  try {
    const id = intruder.send('shell', 'execute_request', { code: 'globalThis.pwned = true', silent: false });
    await sleep(300);
    assert.not.ok(intruder.messages.some((m) => m.parent.msg_id === id));
  } finally {
    intruder.close();
  }
  assert.is(textOf((await client.execute("typeof pwned")).iopub), "'undefined'");
  assert.match(kernel.stderr, /invalid signature/);
});

test('nothing but logs: the kernel writes nothing to stdout', async () => {
  await client.execute("process.stdout.write('via process.stdout\\n')").then((r) => {
    assert.is(streams(r.iopub, 'stdout'), 'via process.stdout\n');
  });
  assert.is(kernel.stdout, '');
});

test('shutdown_request: shutdown_reply on control and iopub, then the process exits', async () => {
  const id = client.send('control', 'shutdown_request', { restart: false });
  const reply = await client.reply(id);
  assert.is(reply.header.msg_type, 'shutdown_reply');
  assert.equal(reply.content, { status: 'ok', restart: false });
  await client.waitFor((m) => m.channel === 'iopub' && m.header.msg_type === 'shutdown_reply', 'shutdown_reply on iopub');
  const code = await withTimeout(kernel.exited, WAIT_MS, 'kernel exit after shutdown_request');
  assert.is(code, 0);
  assert.not.match(kernel.stderr, /Aborted|terminate called/);
});

test.run();

// =============================================================================================

const direct = suite('jskernel: sockets in the main thread (KG_JSKERNEL_IO_THREAD=0)');
let k2: KernelProcess;
let c2: Client;

direct.before(async () => {
  k2 = await KernelProcess.launch({ KG_JSKERNEL_IO_THREAD: '0' });
  c2 = new Client(k2, 'direct-client');
});

direct.after(async () => {
  c2?.close();
  await k2?.kill();
});

direct('execute, SIGINT of a loop, interrupt_request of an await, shutdown', async () => {
  await c2.handshake();
  assert.match(k2.stderr, /sockets in the main thread/);
  assert.is(textOf((await c2.execute('let y = 20; y + 1')).iopub), '21');
  const loop = c2.send('shell', 'execute_request', { code: 'while (true) {}', silent: false });
  await c2.waitFor((m) => m.parent.msg_id === loop && m.header.msg_type === 'execute_input', 'execute_input');
  await sleep(200);
  k2.proc.kill('SIGINT');
  assert.is((await c2.reply(loop)).content.ename, 'KeyboardInterrupt');
  await c2.iopubUntilIdle(loop);
  const wait = c2.send('shell', 'execute_request', { code: 'await new Promise(() => {})', silent: false });
  await c2.waitFor((m) => m.parent.msg_id === wait && m.header.msg_type === 'execute_input', 'execute_input');
  c2.send('control', 'interrupt_request', {});
  assert.is((await c2.reply(wait)).content.ename, 'KeyboardInterrupt');
  await c2.iopubUntilIdle(wait);
  assert.is(textOf((await c2.execute('y')).iopub), '20');
  const bye = c2.send('control', 'shutdown_request', { restart: true });
  assert.equal((await c2.reply(bye)).content, { status: 'ok', restart: true });
  assert.is(await withTimeout(k2.exited, WAIT_MS, 'exit after shutdown'), 0);
});

direct.run();

// =============================================================================================

const orphan = suite('jskernel: exits when its parent dies');

orphan('JPY_PARENT_PID gone: the kernel exits', async () => {
  const parent = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
  const k = await KernelProcess.launch({ JPY_PARENT_PID: String(parent.pid) });
  try {
    const c = new Client(k, 'orphan-client');
    try {
      await c.handshake();
    } finally {
      c.close();
    }
    parent.kill('SIGKILL');
    const code = await withTimeout(k.exited, WAIT_MS, 'kernel exit after its parent died');
    assert.is(code, 0);
    assert.match(k.stderr, /parent process \d+ is gone/);
  } finally {
    parent.kill('SIGKILL');
    await k.kill();
  }
});

orphan.run();
