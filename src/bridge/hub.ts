/**
 * All clients of one kernel. Each client session (a WebSocket `session_id`) is one sender to the
 * kernel, whose replies come back to whichever connection holds the session now (a reconnect with
 * the same id takes over, replies in flight included). iopub is fanned out to every connection,
 * encoded once per protocol. The last session to leave keeps receiving into an offline buffer,
 * replayed if it comes back. The gateway's own status messages (restarting, dead) go out from here.
 */
import type { WebSocket } from 'ws';
import type { Kernel, KernelMessage, LifecycleEvent, Requester } from '../kernels/kernel.ts';
import type { Logger } from '../log.ts';
import { ClientConnection, CLOSE, type EncodedMessage, type WireProtocol } from './connection.ts';
import { metrics } from '../metrics/gateway-metrics.ts';

export interface HubOptions {
  log: Logger;
  /** Bytes kept for the last client while it is away. */
  offlineLimitBytes: number;
  /** Bytes queued towards a client that does not read before it is disconnected. */
  clientBufferBytes: number;
  /** Bytes a client may have waiting for its kernel before it is disconnected. */
  kernelBufferBytes: number;
}

interface OfflineBuffer {
  messages: KernelMessage[];
  bytes: number;
  dropped: number;
}

/** One client session: the kernel's sender for its messages, and where its replies go. */
class ClientSession implements Requester {
  connection: ClientConnection | undefined;
  offline: OfflineBuffer | undefined;
  /** The kernel asked this sender to stop reading its client (its messages wait for the kernel). */
  waiting = false;

  constructor(
    readonly id: string,
    private readonly keep: (session: ClientSession, message: KernelMessage) => void,
  ) {}

  get label(): string {
    return `session ${this.id}`;
  }

  get identity(): string {
    return this.id;
  }

  deliver(message: KernelMessage): void {
    if (this.connection) this.connection.send(message);
    else if (this.offline) this.keep(this, message);
  }

  backlogChanged(waiting: boolean): void {
    this.waiting = waiting;
    this.connection?.pauseReading(waiting);
  }
}

function messageBytes(message: KernelMessage): number {
  const p = message.parsed;
  let total = p.header.length + p.parentHeader.length + p.metadata.length + p.content.length;
  for (const buffer of p.buffers) total += buffer.length;
  return total;
}

export class KernelHub {
  /** Sessions with a live connection. */
  readonly #sessions = new Map<string, ClientSession>();
  /** The last session that left, kept for its return. */
  #offline: ClientSession | undefined;
  readonly #options: HubOptions;
  readonly #log: Logger;

  constructor(
    readonly kernel: Kernel,
    options: HubOptions,
  ) {
    this.#options = options;
    this.#log = options.log.with({ kernel_id: kernel.id });
    kernel.iopubListeners.add((message) => this.#onIopub(message));
    kernel.lifecycleListeners.add((event) => this.#onLifecycle(event));
  }

  get connectionCount(): number {
    return this.#sessions.size;
  }

  /** Open connections by protocol (for /metrics). */
  countByProtocol(counts: Record<string, number>): void {
    for (const session of this.#sessions.values()) {
      const protocol = session.connection?.protocol;
      if (protocol) counts[protocol] = (counts[protocol] ?? 0) + 1;
    }
  }

  /**
   * A new client WebSocket, complete from the start: it takes over a stale connection of the same
   * session, or the offline buffer kept for it (replayed first).
   */
  connect(socket: WebSocket, protocol: WireProtocol, sessionId: string): ClientConnection {
    const kernel = this.kernel;
    let session = this.#sessions.get(sessionId);
    const stale = session?.connection;
    let replay: OfflineBuffer | undefined;
    if (!session) {
      const offline = this.#offline;
      this.#offline = undefined;
      if (offline && offline.id === sessionId) {
        session = offline;
        replay = offline.offline;
        offline.offline = undefined;
      } else {
        if (offline) this.#discardOffline(offline, `session ${sessionId} connected`);
        session = new ClientSession(sessionId, (s, m) => this.#keep(s, m));
      }
      this.#sessions.set(sessionId, session);
    }
    const owner = session;
    const connection = new ClientConnection({
      socket,
      protocol,
      sessionId,
      kernelId: kernel.id,
      kernel: {
        send: (channel, message, header) => kernel.send(channel, message, header, owner),
        backlog: () => kernel.backlog(owner),
      },
      log: this.#log,
      clientBufferBytes: this.#options.clientBufferBytes,
      kernelBufferBytes: this.#options.kernelBufferBytes,
      onClose: (closed) => this.#detach(owner, closed),
    });
    owner.connection = connection;
    if (owner.waiting) connection.pauseReading(true);
    if (stale) {
      // The network-drop reconnect: replies on their way to this session now reach the new socket.
      this.#log.info(`kernel ${kernel.id}: replacing stale connection for session ${sessionId}`);
      stale.close(CLOSE.normal, 'replaced by a newer connection with the same session_id');
    }
    if (replay) {
      this.#log.info(`kernel ${kernel.id}: replaying ${replay.messages.length} messages to session ${sessionId}`);
      for (const message of replay.messages) connection.send(message);
      if (replay.dropped > 0) {
        this.#log.warn(`kernel ${kernel.id}: session ${sessionId} missed ${replay.dropped} messages (offline buffer limit)`);
        connection.sendOwn('stream', {
          name: 'stderr',
          text:
            `kernelgateway: ${replay.dropped} messages were not kept while this client was away ` +
            `(offline buffer limit ${this.#options.offlineLimitBytes} bytes, --offline-buffer-bytes).\n`,
        });
      }
    }
    return connection;
  }

  /** Close every connection (kernel gone or gateway stopping). */
  closeAll(code: number, reason: string): void {
    for (const session of [...this.#sessions.values()]) session.connection?.close(code, reason);
    if (this.#offline) this.#discardOffline(this.#offline, reason);
    this.#offline = undefined;
  }

  #detach(session: ClientSession, connection: ClientConnection): void {
    // Replaced by a newer connection that took over the session: nothing changes.
    if (session.connection !== connection) return;
    session.connection = undefined;
    this.#sessions.delete(session.id);
    if (this.#sessions.size > 0 || this.kernel.gone) {
      this.#forget(session);
      return;
    }
    // The last client left: keep everything the kernel sends it, for its return.
    if (this.#offline) this.#discardOffline(this.#offline, `session ${session.id} left last`);
    session.offline = { messages: [], bytes: 0, dropped: 0 };
    this.#offline = session;
  }

  /** A session is over: what it still had queued for the kernel, and the replies it awaited, go. */
  #forget(session: ClientSession): void {
    const { messages, bytes } = this.kernel.forget(session);
    if (messages > 0) {
      this.#log.info(
        `kernel ${this.kernel.id}: session ${session.id} left; dropped ${messages} of its messages (${bytes} bytes) the kernel had not taken yet`,
      );
    }
  }

  #discardOffline(session: ClientSession, why: string): void {
    const count = session.offline?.messages.length ?? 0;
    if (count > 0) this.#log.info(`kernel ${this.kernel.id}: discarding ${count} messages kept for session ${session.id} (${why})`);
    session.offline = undefined;
    this.#forget(session);
  }

  #keep(session: ClientSession, message: KernelMessage): void {
    const offline = session.offline!;
    const bytes = messageBytes(message);
    if (offline.bytes + bytes > this.#options.offlineLimitBytes) {
      offline.dropped++;
      metrics.offlineDropped.labels().inc();
      if (offline.dropped === 1) {
        this.#log.warn(
          `kernel ${this.kernel.id}: offline buffer for session ${session.id} is full (${this.#options.offlineLimitBytes} bytes); ` +
            'further messages are not kept',
        );
      }
      return;
    }
    offline.bytes += bytes;
    offline.messages.push(message);
  }

  #onIopub(message: KernelMessage): void {
    if (this.#sessions.size === 0) {
      if (this.#offline) this.#keep(this.#offline, message);
      return;
    }
    const encoded: EncodedMessage = {};
    for (const session of this.#sessions.values()) session.connection?.send(message, encoded);
  }

  #onLifecycle(event: LifecycleEvent): void {
    if (event === 'restarting' || event === 'dead') {
      for (const session of this.#sessions.values()) session.connection?.sendOwn('status', { execution_state: event });
    }
    if (event === 'dead') this.closeAll(CLOSE.normal, 'kernel is dead');
    if (event === 'shutdown') this.closeAll(CLOSE.normal, 'kernel was shut down');
  }
}
