/**
 * Many senders, one kernel. Every client of a kernel (each WebSocket session, the seed runner, the
 * gateway itself) sends through the kernel's single shell, control and stdin sockets, so a client
 * costs no ZeroMQ socket. This module keeps that sharing correct and bounded:
 *
 * - Replies and `input_request`s are routed back by their parent's (session, msg_id) to the sender
 *   of the request; an `input_reply` is only passed on from the sender that was asked for input, so
 *   two clients answering at once cannot mix.
 * - Outgoing messages wait in a queue per sender and channel, taken round-robin when the socket can
 *   take more, so one sender's backlog does not stall another's request. Each sender's waiting bytes
 *   are counted: past a high mark it is told to stop reading its client, below a low mark to resume.
 * - While the kernel is not ready (starting, restarting) client messages wait; the gateway's own
 *   messages (kernel_info probes, interrupts, shutdown) go first and are never held.
 * - When a kernel process ends, every request it was given and never answered gets an error reply,
 *   so no sender waits forever for a reply that cannot come.
 */
import { errorMessage, type Logger } from '../log.ts';
import type { Channel, MessageHeader, RawMessage } from '../messaging/message.ts';
import { type MessageFactory, serializeFrames, type Signer } from '../messaging/session.ts';
import type { KernelMessage } from './kernel-message.ts';
import { RoundRobin } from './round-robin.ts';
import { metrics } from '../metrics/gateway-metrics.ts';

export type RequestChannel = 'shell' | 'control' | 'stdin';
export const REQUEST_CHANNELS: readonly RequestChannel[] = ['shell', 'control', 'stdin'];

/** Whoever sends messages to a kernel and receives the replies to them. */
export interface Requester {
  /** Replies and input requests for this sender's messages. */
  deliver(message: KernelMessage): void;
  /** This sender's messages waiting for the kernel passed the high mark (true) or fell below the low mark (false). */
  backlogChanged?(waiting: boolean): void;
  /** For log lines. */
  readonly label: string;
  /**
   * Who this sender is across reconnects (a client's session id): input the kernel asked of a sender
   * that left may be answered by a later sender with the same identity, and by nobody else.
   */
  readonly identity?: string;
}

/** The fields of a sent message's header that route its replies. */
export interface RequestHeader {
  msg_id: string;
  msg_type: string;
  session: string;
}

interface Outgoing {
  requester: Requester;
  message: RawMessage;
  header: RequestHeader;
  bytes: number;
}

interface Pending {
  requester: Requester;
  channel: RequestChannel;
  header: RequestHeader;
  headerBytes: Buffer;
  /** The kernel process it was handed to. */
  generation: number;
  /** The kernel published something for it (it began work on it). */
  started: boolean;
}

export interface RequestRouterOptions {
  kernelId: string;
  log: Logger;
  /** Makes the gateway's own messages (and the error replies it sends for lost requests). */
  factory: MessageFactory;
  /** A sender with more than this many bytes waiting is asked to stop reading its client... */
  highMarkBytes?: number;
  /** ...and to resume below this. */
  lowMarkBytes?: number;
  /** Requests awaiting a reply kept per sender; the oldest are forgotten beyond it. */
  maxPendingPerRequester?: number;
}

function keyOf(session: unknown, msgId: unknown): string {
  return `${String(session)}\u0000${String(msgId)}`;
}

/** The parent header's routing fields, or undefined when there is none. */
export function parentOf(message: KernelMessage): MessageHeader | undefined {
  const bytes = message.parsed.parentHeader;
  if (bytes.length <= 2) return undefined;
  try {
    const parent = JSON.parse(bytes.toString('utf8')) as MessageHeader;
    return typeof parent === 'object' && parent !== null ? parent : undefined;
  } catch {
    return undefined;
  }
}

export class RequestRouter {
  readonly #options: RequestRouterOptions;
  readonly #high: number;
  readonly #low: number;
  readonly #maxPending: number;
  readonly #queues: Record<RequestChannel, RoundRobin<Outgoing>> = { shell: new RoundRobin(), control: new RoundRobin(), stdin: new RoundRobin() };
  /** The gateway's own messages, already signed: never held, sent first. */
  readonly #urgent: Record<RequestChannel, Buffer[][]> = { shell: [], control: [], stdin: [] };
  readonly #pending = new Map<string, Pending>();
  readonly #pendingBy = new Map<Requester, Set<string>>();
  readonly #backlog = new Map<Requester, { bytes: number; waiting: boolean }>();
  /** Senders that were asked for input, with the keys of the requests that asked. */
  readonly #askedForInput = new Map<Requester, Set<string>>();
  /** Input asked of senders that left, by their identity, until someone of that identity answers (bounded). */
  readonly #orphanInput = new Map<string, number>();
  #open = false;
  /** Called when a channel has something new to send. */
  kick: (channel: RequestChannel) => void = () => undefined;

  constructor(options: RequestRouterOptions) {
    this.#options = options;
    this.#high = options.highMarkBytes ?? 1024 * 1024;
    this.#low = options.lowMarkBytes ?? Math.floor(this.#high / 4);
    this.#maxPending = options.maxPendingPerRequester ?? 10_000;
  }

  /** Client messages flow (the kernel is ready). */
  open(): void {
    this.#open = true;
    for (const channel of REQUEST_CHANNELS) this.kick(channel);
  }

  /** Client messages wait (the kernel is starting or restarting). */
  hold(): void {
    this.#open = false;
  }

  /** Bytes of `requester`'s messages not yet handed to the kernel's sockets. */
  backlog(requester: Requester): number {
    return this.#backlog.get(requester)?.bytes ?? 0;
  }

  /**
   * Queue a message for the kernel. Returns false (and drops it, with a log line) for an
   * `input_reply` from a sender that was not asked for input.
   */
  send(channel: RequestChannel, message: RawMessage, header: RequestHeader, requester: Requester): boolean {
    if (channel === 'stdin' && header.msg_type === 'input_reply' && !this.#takeInputTurn(requester)) {
      this.#options.log.warn(
        `kernel ${this.#options.kernelId}: dropped an input_reply from ${requester.label}: the kernel did not ask it for input`,
      );
      return false;
    }
    const bytes = message.header.length + message.parentHeader.length + message.metadata.length + message.content.length +
      message.buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    this.#queues[channel].push({ requester, message, header, bytes });
    this.#account(requester, bytes);
    if (this.#open) this.kick(channel);
    return true;
  }

  /** Send one of the gateway's own messages now, whatever the kernel's state; replies go to `requester`. */
  sendUrgent(channel: RequestChannel, message: RawMessage & { fields: MessageHeader }, requester: Requester, signer: Signer, generation: number): void {
    this.#remember(channel, message.fields, message.header, requester, generation);
    this.#urgent[channel].push(serializeFrames(message, signer));
    this.kick(channel);
  }

  /** The next frames for a channel's socket, signed; registers what replies to expect. */
  next(channel: RequestChannel, signer: Signer, generation: number): Buffer[] | undefined {
    const urgent = this.#urgent[channel].shift();
    if (urgent) return urgent;
    if (!this.#open) return undefined;
    const item = this.#queues[channel].next();
    if (!item) return undefined;
    this.#account(item.requester, -item.bytes);
    metrics.count('to_kernel', channel, item.bytes);
    if (channel !== 'stdin' && item.header.msg_type.endsWith('_request')) {
      this.#remember(channel, item.header, item.message.header, item.requester, generation);
    }
    return serializeFrames(item.message, signer);
  }

  /** Who a reply or input request from the kernel is for (undefined: nobody we know). */
  route(message: KernelMessage, parent: MessageHeader | undefined): Requester | undefined {
    if (!parent) return undefined;
    const key = keyOf(parent.session, parent.msg_id);
    const entry = this.#pending.get(key);
    if (!entry) return undefined;
    if (message.channel === 'stdin') {
      if (message.header.msg_type === 'input_request') {
        let asked = this.#askedForInput.get(entry.requester);
        if (!asked) this.#askedForInput.set(entry.requester, (asked = new Set()));
        asked.add(key);
      }
    } else if (message.header.msg_type.endsWith('_reply')) {
      this.#forgetPending(key, entry);
    }
    return entry.requester;
  }

  /** The kernel published something in answer to a request: it began work on it. */
  markStarted(parent: MessageHeader | undefined): void {
    if (!parent) return;
    const entry = this.#pending.get(keyOf(parent.session, parent.msg_id));
    if (entry) entry.started = true;
  }

  /**
   * A kernel process ended: every request it was handed and did not answer gets an error reply
   * now (after the clients were told `restarting`), instead of never.
   */
  processEnded(generation: number, why: string): void {
    for (const [key, entry] of [...this.#pending]) {
      if (entry.generation !== generation) continue;
      this.#forgetPending(key, entry);
      const reply = this.#errorReply(entry, why);
      try {
        entry.requester.deliver(reply);
      } catch (error) {
        this.#options.log.error(`kernel ${this.#options.kernelId}: could not tell ${entry.requester.label} about a lost request: ${errorMessage(error)}`);
      }
    }
    for (const channel of REQUEST_CHANNELS) this.#urgent[channel].length = 0;
    // Nobody can answer what a dead process asked.
    this.#orphanInput.clear();
    for (const asked of this.#askedForInput.values()) asked.clear();
  }

  /** Drop everything of a sender that left: its queued messages, its awaited replies. Returns what was dropped. */
  forget(requester: Requester): { messages: number; bytes: number } {
    let messages = 0;
    let bytes = 0;
    for (const channel of REQUEST_CHANNELS) {
      for (const item of this.#queues[channel].remove(requester)) {
        messages++;
        bytes += item.bytes;
      }
    }
    this.#backlog.delete(requester);
    for (const key of this.#pendingBy.get(requester) ?? []) this.#pending.delete(key);
    this.#pendingBy.delete(requester);
    const asked = this.#askedForInput.get(requester)?.size ?? 0;
    if (asked > 0 && requester.identity !== undefined) {
      // A client that reconnects (a network blip) may still answer the prompt it was shown.
      this.#orphanInput.delete(requester.identity);
      this.#orphanInput.set(requester.identity, asked);
      if (this.#orphanInput.size > 100) this.#orphanInput.delete(this.#orphanInput.keys().next().value as string);
    }
    this.#askedForInput.delete(requester);
    return { messages, bytes };
  }

  #remember(channel: RequestChannel, header: RequestHeader, headerBytes: Buffer, requester: Requester, generation: number): void {
    const key = keyOf(header.session, header.msg_id);
    const previous = this.#pending.get(key);
    if (previous) this.#forgetPending(key, previous);
    this.#pending.set(key, { requester, channel, header, headerBytes, generation, started: false });
    let keys = this.#pendingBy.get(requester);
    if (!keys) this.#pendingBy.set(requester, (keys = new Set()));
    keys.add(key);
    if (keys.size > this.#maxPending) {
      // Requests the kernel never answers (unknown types) must not pile up: forget the oldest.
      const oldest = keys.values().next().value as string;
      this.#forgetPending(oldest, this.#pending.get(oldest)!);
      this.#options.log.debug(`kernel ${this.#options.kernelId}: ${requester.label} has over ${this.#maxPending} unanswered requests; forgot the oldest`);
    }
  }

  #forgetPending(key: string, entry: Pending): void {
    this.#pending.delete(key);
    this.#pendingBy.get(entry.requester)?.delete(key);
    this.#askedForInput.get(entry.requester)?.delete(key);
  }

  #takeInputTurn(requester: Requester): boolean {
    const identity = requester.identity;
    const orphaned = identity === undefined ? 0 : (this.#orphanInput.get(identity) ?? 0);
    if (orphaned > 0) {
      if (orphaned === 1) this.#orphanInput.delete(identity!);
      else this.#orphanInput.set(identity!, orphaned - 1);
      return true;
    }
    const asked = this.#askedForInput.get(requester);
    if (!asked || asked.size === 0) return false;
    asked.delete(asked.values().next().value as string);
    return true;
  }

  #account(requester: Requester, delta: number): void {
    let state = this.#backlog.get(requester);
    if (!state) {
      if (delta <= 0) return;
      this.#backlog.set(requester, (state = { bytes: 0, waiting: false }));
    }
    state.bytes += delta;
    if (!state.waiting && state.bytes > this.#high) {
      state.waiting = true;
      requester.backlogChanged?.(true);
    } else if (state.waiting && state.bytes < this.#low) {
      state.waiting = false;
      requester.backlogChanged?.(false);
    }
    if (state.bytes <= 0 && !state.waiting) this.#backlog.delete(requester);
  }

  /** An error reply in the request's own reply type, as a kernel would send it. */
  #errorReply(entry: Pending, why: string): KernelMessage {
    const replyType = entry.header.msg_type.replace(/_request$/, '_reply');
    const evalue = entry.started ? `the kernel ${why} while handling this request` : `the kernel ${why} before it handled this request`;
    const content: Record<string, unknown> = { status: 'error', ename: 'KernelGatewayError', evalue, traceback: [] };
    if (replyType === 'execute_reply') content.execution_count = null;
    const raw = this.#options.factory.message(replyType, content);
    return {
      channel: entry.channel as Channel,
      header: raw.fields,
      parsed: { ...raw, parentHeader: entry.headerBytes, identities: [], signature: Buffer.alloc(0) },
    };
  }
}
