/**
 * The gateway's ZeroMQ sockets on one kernel process: an iopub SUB subscribed from the start (the
 * gateway's own, zmq/zmtp-subscriber.ts: it carries the floods), and one shell, control and stdin
 * DEALER from zeromq shared by every client of the kernel (replies are routed by parent message, see
 * requests.ts). A new process gets new sockets, so nothing queued for a dead process can
 * reach its successor, and a restarted publisher is always met by a fresh subscription.
 *
 * zeromq is loaded when the first kernel needs it (loadZeromq), not at start-up: its native addon and
 * context cost start-up time and memory that a gateway with no kernel does not need.
 */
import type * as Zmq from 'zeromq';
import type { ConnectionInfo } from '../messaging/message.ts';
import type { RequestChannel } from './requests.ts';
import { IS_DENO, receiveLoop } from '../zmq/io.ts';
import { ZmtpSubscriber, type StreamStart } from '../zmq/zmtp-subscriber.ts';

export type KernelChannel = RequestChannel | 'iopub';

export interface KernelSocketsOptions {
  connection: ConnectionInfo;
  /** Shell and stdin must share it: the kernel sends input_request to the shell request's routing id. */
  routingId: string;
  /** Every multipart message from any of the four sockets. */
  onMessage: (channel: KernelChannel, frames: Buffer[]) => void;
  /** An iopub message with a big last part starts (see zmtp-subscriber.ts): how to follow its bytes as they arrive, if at all. */
  followIopubContent: StreamStart;
  onError: (channel: KernelChannel, error: Error) => void;
  /** The stdin socket finished its ZeroMQ handshake with the kernel (not reported under Deno). */
  onStdinConnected: () => void;
  /** The next signed frames to send on a channel, or undefined when there is nothing (or it must wait). */
  next: (channel: RequestChannel) => Buffer[] | undefined;
}

/**
 * Messages ZeroMQ may hold per DEALER when the kernel does not read. Kept small so that what waits
 * for a kernel waits in the gateway's own queues, where it is counted per client and pushes back.
 * Under Deno a send that has to wait for room may never be woken (see zmq/io.ts), so there ZeroMQ
 * holds whatever the kernel does not read (0: no limit).
 */
const SEND_HIGH_WATER_MARK = IS_DENO ? 0 : 2;

let zmq: typeof Zmq | undefined;
let loading: Promise<typeof Zmq> | undefined;

/** zeromq, once loadZeromq has loaded it. */
export function zeromqLoaded(): boolean {
  return zmq !== undefined;
}

/** Loads zeromq (once) for the gateway's kernel sockets. */
export function loadZeromq(): Promise<typeof Zmq> {
  loading ??= import('zeromq').then((module) => {
    // Each kernel costs four ZeroMQ sockets whatever its number of clients; libzmq's default of 1,023
    // per context would cap the gateway near 250 kernels.
    module.context.maxSockets = Math.min(module.context.maxSocketsLimit, 32_768);
    zmq = module;
    return module;
  });
  return loading;
}

export class KernelSockets {
  readonly #options: KernelSocketsOptions;
  readonly #iopub: ZmtpSubscriber;
  readonly #dealers: Record<RequestChannel, Zmq.Dealer>;
  readonly #pumping: Record<RequestChannel, boolean> = { shell: false, control: false, stdin: false };
  #closed = false;

  /** Needs zeromq loaded (loadZeromq). */
  constructor(options: KernelSocketsOptions) {
    if (!zmq) throw new Error('zeromq is not loaded yet (loadZeromq)');
    this.#options = options;
    const { connection, routingId, onMessage, onError } = options;
    // jupyter_client's endpoints: ipc names a path prefix, a dash and the port number.
    const endpoint = (channel: KernelChannel) =>
      connection.transport === 'ipc' ? `ipc://${connection.ip}-${connection[`${channel}_port`]}` : `tcp://${connection.ip}:${connection[`${channel}_port`]}`;
    // Nothing from the kernel waits in ZeroMQ: it is read at once, and the bridge applies explicit,
    // reported limits per client instead.
    this.#iopub = new ZmtpSubscriber({
      endpoint: endpoint('iopub'),
      onMessage: (frames) => onMessage('iopub', frames),
      onError: (e) => onError('iopub', e),
      onStream: options.followIopubContent,
    });
    const dealer = (channel: RequestChannel) => {
      const socket = new zmq!.Dealer({ routingId, linger: 0, receiveHighWaterMark: 0, sendHighWaterMark: SEND_HIGH_WATER_MARK });
      socket.connect(endpoint(channel));
      return socket;
    };
    this.#dealers = { shell: dealer('shell'), control: dealer('control'), stdin: dealer('stdin') };
    // The kernel's stdin ROUTER drops an input_request for a peer it has not met: readiness waits for this.
    if (!IS_DENO) this.#dealers.stdin.events.on('handshake', () => options.onStdinConnected());
    for (const channel of ['shell', 'control', 'stdin'] as const) {
      void receiveLoop(this.#dealers[channel], (frames) => onMessage(channel, frames), (e) => onError(channel, e));
    }
  }

  /** Something new may be waiting for `channel`: send until there is nothing or ZeroMQ must wait. */
  kick(channel: RequestChannel): void {
    if (!this.#pumping[channel] && !this.#closed) void this.#pump(channel);
  }

  async #pump(channel: RequestChannel): Promise<void> {
    const socket = this.#dealers[channel];
    this.#pumping[channel] = true;
    try {
      for (let frames = this.#options.next(channel); frames; frames = this.#closed ? undefined : this.#options.next(channel)) {
        await socket.send(frames);
      }
    } catch (error) {
      if (!this.#closed) this.#options.onError(channel, error as Error);
    } finally {
      this.#pumping[channel] = false;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#iopub.close();
    for (const socket of Object.values(this.#dealers)) socket.close();
  }
}
