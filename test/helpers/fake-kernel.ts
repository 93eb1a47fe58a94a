/**
 * A small Jupyter kernel in this process, on real ZeroMQ sockets with real signatures, and a
 * provisioner that "launches" it: enough to test the gateway's kernel and bridge layers without
 * Python. It answers kernel_info; `execute_request` publishes busy, execute_input, a stdout stream
 * of the code, the reply and idle; code `input:<prompt>` asks for input first and prints the answer;
 * code `hang` never answers; `forged:<text>` publishes a stdout stream of `<text>` with a wrong
 * signature before the right one; shutdown_request ends it.
 */
import * as zmq from 'zeromq';
import { choosePorts, releasePorts, type Ports } from '../../src/kernels/provisioners/ports.ts';
import type { ExitStatus, KernelProvisioner, LaunchedProcess, LaunchRequest } from '../../src/kernels/provisioners/provisioner.ts';
import type { ConnectionInfo } from '../../src/messaging/message.ts';
import { DELIMITER, MessageFactory, parseSigned, serializeFrames, Signer } from '../../src/messaging/session.ts';
import { receiveLoop } from '../../src/zmq/io.ts';

interface Incoming {
  identities: Buffer[];
  header: Record<string, unknown>;
  content: Record<string, unknown>;
}

export class FakeKernel {
  readonly #signer: Signer;
  readonly #factory = new MessageFactory();
  readonly #shell = new zmq.Router();
  readonly #control = new zmq.Router();
  readonly #stdin = new zmq.Router();
  readonly #iopub = new zmq.Publisher();
  readonly #sending = new Map<zmq.Socket, Promise<unknown>>();
  #count = 0;
  #closed = false;
  #pendingInput: ((value: string) => void) | undefined;
  /** Every request seen, for assertions: [channel, msg_type]. */
  readonly received: Array<[string, string]> = [];
  #exit!: (status: ExitStatus) => void;
  readonly exited: Promise<ExitStatus> = new Promise((resolve) => (this.#exit = resolve));

  constructor(readonly connection: ConnectionInfo) {
    this.#signer = new Signer(connection.key, connection.signature_scheme);
  }

  async start(): Promise<void> {
    const at = (port: number) => `tcp://${this.connection.ip}:${port}`;
    await Promise.all([
      this.#shell.bind(at(this.connection.shell_port)),
      this.#control.bind(at(this.connection.control_port)),
      this.#stdin.bind(at(this.connection.stdin_port)),
      this.#iopub.bind(at(this.connection.iopub_port)),
    ]);
    void receiveLoop(this.#shell, (frames) => void this.#onRequest('shell', this.#shell, frames), () => undefined);
    void receiveLoop(this.#control, (frames) => void this.#onRequest('control', this.#control, frames), () => undefined);
    void receiveLoop(this.#stdin, (frames) => this.#onInput(frames), () => undefined);
  }

  /** The process "dies": sockets close at once, `exited` settles. */
  die(status: ExitStatus = { code: null, signal: 'SIGKILL' }): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const socket of [this.#shell, this.#control, this.#stdin, this.#iopub]) socket.close();
    this.#exit(status);
  }

  #read(frames: Buffer[]): Incoming {
    const parsed = parseSigned(frames, this.#signer);
    return {
      identities: parsed.identities,
      header: JSON.parse(parsed.header.toString()) as Record<string, unknown>,
      content: JSON.parse(parsed.content.toString()) as Record<string, unknown>,
    };
  }

  #send(
    socket: zmq.Socket & zmq.Writable,
    msgType: string,
    content: unknown,
    parent: Record<string, unknown>,
    identities: Buffer[] = [],
    forged = false,
  ): Promise<void> {
    const message = this.#factory.message(msgType, content, parent);
    const frames = serializeFrames(message, this.#signer, socket === this.#iopub ? [Buffer.from(`kernel.${msgType}`)] : identities);
    if (forged) {
      const at = frames.indexOf(DELIMITER) + 1;
      frames[at] = Buffer.from(frames[at].toString().replace(/^./, (c) => (c === '0' ? '1' : '0')));
    }
    // zeromq v6 allows one send in flight per socket.
    const next = (this.#sending.get(socket) ?? Promise.resolve()).then(() => (this.#closed ? undefined : socket.send(frames)));
    this.#sending.set(socket, next.catch(() => undefined));
    return next.catch(() => undefined);
  }

  async #onRequest(channel: string, socket: zmq.Router, frames: Buffer[]): Promise<void> {
    const { identities, header, content } = this.#read(frames);
    const type = String(header.msg_type);
    this.received.push([channel, type]);
    const replyType = type.replace(/_request$/, '_reply');
    await this.#send(this.#iopub, 'status', { execution_state: 'busy' }, header);
    if (type === 'kernel_info_request') {
      await this.#send(socket, replyType, { status: 'ok', protocol_version: '5.3', implementation: 'fake', language_info: { name: 'fake' } }, header, identities);
    } else if (type === 'execute_request') {
      const code = String(content.code ?? '');
      if (code === 'hang') return;
      const count = ++this.#count;
      await this.#send(this.#iopub, 'execute_input', { code, execution_count: count }, header);
      let text = code;
      if (code.startsWith('forged:')) {
        text = code.slice('forged:'.length);
        await this.#send(this.#iopub, 'stream', { name: 'stdout', text: `forged ${text}` }, header, [], true);
      }
      if (code.startsWith('input:')) {
        const answer = new Promise<string>((resolve) => (this.#pendingInput = resolve));
        await this.#send(this.#stdin, 'input_request', { prompt: code.slice(6), password: false }, header, identities);
        text = await answer;
      }
      await this.#send(this.#iopub, 'stream', { name: 'stdout', text }, header);
      await this.#send(socket, replyType, { status: 'ok', execution_count: count }, header, identities);
    } else if (type === 'shutdown_request') {
      await this.#send(socket, replyType, { status: 'ok', restart: content.restart }, header, identities);
      await this.#send(this.#iopub, 'status', { execution_state: 'idle' }, header);
      setTimeout(() => this.die({ code: 0, signal: null }), 20);
      return;
    } else {
      await this.#send(socket, replyType, { status: 'ok' }, header, identities);
    }
    await this.#send(this.#iopub, 'status', { execution_state: 'idle' }, header);
  }

  #onInput(frames: Buffer[]): void {
    const { header, content } = this.#read(frames);
    this.received.push(['stdin', String(header.msg_type)]);
    const answer = this.#pendingInput;
    this.#pendingInput = undefined;
    answer?.(String(content.value ?? ''));
  }
}

/** A provisioner whose "processes" are FakeKernels in this process. */
export class FakeProvisioner implements KernelProvisioner {
  readonly name = 'fake-provisioner';
  readonly kernels: FakeKernel[] = [];
  #ports: Ports | undefined;
  #current: FakeKernel | undefined;
  launches = 0;
  cleanedUp = false;

  get current(): FakeKernel | undefined {
    return this.#current;
  }

  async launch(request: LaunchRequest): Promise<LaunchedProcess> {
    this.launches++;
    if (!this.#ports || request.newPorts) this.#ports = await choosePorts('127.0.0.1');
    const connection: ConnectionInfo = { ...this.#ports, ip: '127.0.0.1', key: request.key, transport: 'tcp', signature_scheme: request.signatureScheme };
    const kernel = new FakeKernel(connection);
    await kernel.start();
    this.#current = kernel;
    this.kernels.push(kernel);
    return { connection, exited: kernel.exited };
  }

  async signal(signal: NodeJS.Signals): Promise<void> {
    if (signal === 'SIGKILL' || signal === 'SIGTERM') this.#current?.die({ code: null, signal });
  }

  async cleanup(): Promise<void> {
    this.cleanedUp = true;
    this.#current?.die();
    if (this.#ports) releasePorts(this.#ports);
  }

  killNow(): void {
    this.#current?.die();
  }

  lastOutput(): string {
    return '';
  }
}
