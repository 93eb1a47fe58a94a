/**
 * The gateway's connection to one kernel, whatever process currently runs it: the HMAC key, the
 * sockets of the current process (new ones for every process), message checking, and the request
 * routing every sender shares (requests.ts). The kernel's lifecycle is kernel.ts's business; this
 * is the part that speaks the wire protocol.
 */
import { errorMessage, type Logger } from '../log.ts';
import type { ConnectionInfo, MessageHeader, RawMessage } from '../messaging/message.ts';
import { MessageFactory, newSessionId, parseFrames, parseSigned, ProtocolError, Signer, type ContentVerifier } from '../messaging/session.ts';
import { byteLength } from '../zmq/io.ts';
import type { KernelMessage } from './kernel-message.ts';
import type { PartStream } from '../zmq/zmtp-subscriber.ts';
import { KernelSockets, loadZeromq, zeromqLoaded, type KernelChannel } from './kernel-sockets.ts';
import { parentOf, REQUEST_CHANNELS, RequestRouter, type RequestChannel, type RequestHeader, type Requester } from './requests.ts';
import { metrics } from '../metrics/gateway-metrics.ts';

export interface KernelConnectionOptions {
  kernelId: string;
  log: Logger;
  /** Every iopub message, checked, with its parent header when it has one. */
  onIopub: (message: KernelMessage, parent: MessageHeader | undefined) => void;
  /** Replies to the gateway's own requests (kernel_info probes, interrupt, shutdown). */
  onOwnReply: (message: KernelMessage) => void;
  /** The current process's stdin socket is connected (see KernelSockets). */
  onStdinConnected: () => void;
}

export class KernelConnection {
  /** The HMAC key the kernel is started with. */
  readonly key: string;
  /** The gateway's own session: its probes and the traffic they cause are recognised by it. */
  readonly factory = new MessageFactory();
  readonly #options: KernelConnectionOptions;
  readonly #signer: Signer;
  readonly #router: RequestRouter;
  readonly #self: Requester;
  #sockets: KernelSockets | undefined;
  /** A process is connected (its sockets may still wait for zeromq to load). */
  #connected = false;
  #generation = 0;
  /** When the last iopub message arrived (to let a dying process's last messages drain). */
  #lastIopubAt = 0;
  #lastParent: { bytes: Buffer; header: MessageHeader | undefined } | undefined;

  constructor(options: KernelConnectionOptions) {
    this.#options = options;
    this.key = newSessionId();
    this.#signer = new Signer(this.key, 'hmac-sha256');
    this.#router = new RequestRouter({ kernelId: options.kernelId, log: options.log, factory: this.factory });
    this.#router.kick = (channel) => this.#sockets?.kick(channel);
    this.#self = { label: 'the gateway', deliver: (message) => options.onOwnReply(message) };
  }

  get signatureScheme(): string {
    return 'hmac-sha256';
  }

  /**
   * Sockets for a new kernel process; what its predecessor was sent no longer matters to them. The
   * first kernel waits a moment for zeromq to load; what is sent meanwhile waits in the queues.
   */
  connect(connection: ConnectionInfo): void {
    this.#sockets?.close();
    this.#sockets = undefined;
    this.#connected = true;
    const generation = ++this.#generation;
    const open = () => {
      if (generation !== this.#generation || !this.#connected) return;
      this.#sockets = new KernelSockets({
        connection,
        routingId: `gateway-${this.factory.session}`,
        onMessage: (channel, frames) => this.#onMessage(channel, frames),
        followIopubContent: (frames) => this.#followIopubContent(frames),
        onError: (channel, error) => this.#options.log.error(`kernel ${this.#options.kernelId}: ${channel} socket error: ${error.message}`),
        next: (channel) => this.#router.next(channel, this.#signer, generation),
        onStdinConnected: () => {
          if (generation === this.#generation) this.#options.onStdinConnected();
        },
      });
      for (const channel of REQUEST_CHANNELS) this.#sockets.kick(channel);
    };
    if (zeromqLoaded()) open();
    else {
      loadZeromq().then(open, (error: Error) =>
        this.#options.log.critical(`kernel ${this.#options.kernelId}: cannot load ZeroMQ, so no kernel can be reached: ${error.message}`),
      );
    }
  }

  /** Let the iopub messages a process sent before it exited arrive (at most 300 ms). */
  async drainIopub(): Promise<void> {
    const until = Date.now() + 300;
    while (Date.now() < until && Date.now() - this.#lastIopubAt < 50) await new Promise((r) => setTimeout(r, 20));
  }

  /**
   * The process is over: close its sockets. With `why`, every request it was given and never
   * answered gets an error reply saying the kernel `why` (e.g. "died").
   */
  disconnect(why?: string): void {
    this.#sockets?.close();
    this.#sockets = undefined;
    this.#connected = false;
    if (why) this.#router.processEnded(this.#generation, why);
  }

  /** Client messages flow (the kernel is ready) or wait (it is starting or restarting). */
  setOpen(open: boolean): void {
    if (open) this.#router.open();
    else this.#router.hold();
  }

  send(channel: RequestChannel, message: RawMessage, header: RequestHeader, requester: Requester): boolean {
    return this.#router.send(channel, message, header, requester);
  }

  /** One of the gateway's own messages, sent at once whatever the kernel's state. */
  sendOwn(channel: RequestChannel, msgType: string, content: unknown): void {
    if (!this.#connected) return;
    this.#router.sendUrgent(channel, this.factory.message(msgType, content), this.#self, this.#signer, this.#generation);
  }

  backlog(requester: Requester): number {
    return this.#router.backlog(requester);
  }

  forget(requester: Requester): { messages: number; bytes: number } {
    return this.#router.forget(requester);
  }

  /**
   * The message's parent header, parsed once for a run of messages answering the same request (every
   * output of a cell has the same parent bytes). Shared between them: read only.
   */
  #parentOf(message: KernelMessage): MessageHeader | undefined {
    const bytes = message.parsed.parentHeader;
    const last = this.#lastParent;
    if (last && last.bytes.equals(bytes)) return last.header;
    const header = parentOf(message);
    this.#lastParent = { bytes, header };
    return header;
  }

  /**
   * A big iopub content starts arriving after `frames` (the message's other parts): its signature is
   * computed as its bytes come, while the gateway would otherwise wait for them, instead of after its
   * last byte (~33 ms for 50 MB here). Anything unusual (a malformed message, buffers after the
   * content, signing off) is left to the whole message's usual path.
   */
  #followIopubContent(frames: readonly Buffer[]): PartStream | undefined {
    if (!this.#signer.enabled) return undefined;
    let parsed;
    try {
      parsed = parseFrames([...frames, Buffer.alloc(0)]);
    } catch {
      return undefined;
    }
    if (parsed.buffers.length > 0) return undefined;
    const verifier = this.#signer.verifier(parsed.header, parsed.parentHeader, parsed.metadata);
    return {
      data: (piece) => verifier.update(piece),
      end: (parts) => this.#onMessage('iopub', parts, verifier),
    };
  }

  /** Parse and check a message from one of the kernel's sockets, or log why not. */
  #read(channel: KernelChannel, frames: Buffer[], verifier?: ContentVerifier): KernelMessage | undefined {
    try {
      const parsed = parseSigned(frames, this.#signer, verifier);
      const header = JSON.parse(parsed.header.toString('utf8')) as MessageHeader;
      if (typeof header !== 'object' || header === null || typeof header.msg_type !== 'string') {
        throw new ProtocolError('header has no msg_type');
      }
      return { channel, parsed, header };
    } catch (error) {
      this.#options.log.warn(`kernel ${this.#options.kernelId}: dropped a ${channel} message: ${errorMessage(error)}`);
      return undefined;
    }
  }

  /** A whole message from one of the kernel's sockets; `verifier` was given its content as it arrived. */
  #onMessage(channel: KernelChannel, frames: Buffer[], verifier?: ContentVerifier): void {
    if (channel === 'iopub') this.#lastIopubAt = Date.now();
    const bytes = byteLength(frames);
    metrics.count('from_kernel', channel, bytes);
    const message = this.#read(channel, frames, verifier);
    if (!message) return;
    const parent = this.#parentOf(message);
    if (channel === 'iopub') {
      this.#router.markStarted(parent);
      this.#options.onIopub(message, parent);
      return;
    }
    const requester = this.#router.route(message, parent);
    if (!requester) {
      this.#options.log.debug(`kernel ${this.#options.kernelId}: a ${message.header.msg_type} on ${channel} for a request nobody awaits; dropped`);
      return;
    }
    requester.deliver(message);
  }
}
