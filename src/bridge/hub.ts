/**
 * All client connections of one kernel: iopub fan-out, the offline buffer for a client that is away,
 * and the gateway's own status messages (restarting, dead).
 */
import type { Kernel, KernelMessage, LifecycleEvent } from '../kernels/kernel.ts';
import type { ClientChannels } from '../kernels/kernel.ts';
import type { Logger } from '../log.ts';
import { CLOSE, type ClientConnection, type EncodedMessage } from './connection.ts';

/** Everything kept for the last client while it is away, replayed if it comes back with the same session_id. */
interface OfflineBuffer {
  sessionId: string;
  channels: ClientChannels;
  messages: KernelMessage[];
  bytes: number;
  dropped: number;
}

function messageBytes(message: KernelMessage): number {
  const p = message.parsed;
  let total = p.header.length + p.parentHeader.length + p.metadata.length + p.content.length;
  for (const buffer of p.buffers) total += buffer.length;
  return total;
}

export class KernelHub {
  readonly #connections = new Map<string, ClientConnection>();
  #offline: OfflineBuffer | undefined;

  constructor(
    readonly kernel: Kernel,
    private readonly log: Logger,
    private readonly offlineLimitBytes: number,
  ) {
    kernel.iopubListeners.add((message) => this.#onIopub(message));
    kernel.lifecycleListeners.add((event) => this.#onLifecycle(event));
  }

  /** Wire a new client connection, replacing a stale one with the same session_id. */
  attach(connection: ClientConnection): void {
    const stale = this.#connections.get(connection.sessionId);
    if (stale) {
      // The network-drop reconnect: the new socket takes over the old one's kernel sockets (same routing
      // id), so no reply on its way to this session is lost in between.
      this.log.info(`kernel ${this.kernel.id}: replacing stale connection for session ${connection.sessionId}`);
      connection.channels = stale.channels;
      connection.channels.deliver = (message) => connection.send(message);
      this.#connections.set(connection.sessionId, connection);
      connection.onClose = () => this.#detach(connection);
      stale.close(CLOSE.normal, 'replaced by a newer connection with the same session_id');
      return;
    }
    const offline = this.#offline;
    this.#offline = undefined;
    let replay: KernelMessage[] = [];
    if (offline && offline.sessionId === connection.sessionId) {
      connection.channels = offline.channels;
      replay = offline.messages;
      if (offline.dropped > 0) {
        this.log.warn(`kernel ${this.kernel.id}: session ${connection.sessionId} missed ${offline.dropped} messages (offline buffer limit)`);
      }
      this.log.info(`kernel ${this.kernel.id}: replaying ${replay.length} messages to session ${connection.sessionId}`);
    } else {
      if (offline) {
        this.log.info(`kernel ${this.kernel.id}: discarding ${offline.messages.length} messages kept for session ${offline.sessionId}`);
        offline.channels.close();
      }
      connection.channels = this.kernel.openChannels(connection.sessionId, () => undefined);
    }
    connection.channels.deliver = (message) => connection.send(message);
    this.#connections.set(connection.sessionId, connection);
    this.kernel.connections = this.#connections.size;
    connection.onClose = () => this.#detach(connection);
    for (const message of replay) connection.send(message);
    if (offline && offline.dropped > 0 && offline.sessionId === connection.sessionId) {
      connection.sendOwn('stream', {
        name: 'stderr',
        text:
          `kernelgateway: ${offline.dropped} messages were not kept while this client was away ` +
          `(offline buffer limit ${this.offlineLimitBytes} bytes, --offline-buffer-bytes).\n`,
      });
    }
  }

  /** Close every connection (kernel gone or gateway stopping). */
  closeAll(code: number, reason: string): void {
    for (const connection of [...this.#connections.values()]) connection.close(code, reason);
    this.#dropOffline();
  }

  #detach(connection: ClientConnection): void {
    if (this.#connections.get(connection.sessionId) !== connection) {
      // Replaced by a newer connection that took over the session (and perhaps these channels).
      if (connection.channels && !this.#usesChannels(connection.channels)) connection.channels.close();
      return;
    }
    this.#connections.delete(connection.sessionId);
    this.kernel.connections = this.#connections.size;
    if (this.#connections.size > 0 || this.kernel.executionState === 'dead') {
      connection.channels.close();
      return;
    }
    // The last client left: keep its sockets and everything the kernel sends, for its return.
    this.#dropOffline();
    const offline: OfflineBuffer = { sessionId: connection.sessionId, channels: connection.channels, messages: [], bytes: 0, dropped: 0 };
    offline.channels.deliver = (message) => this.#keep(offline, message);
    this.#offline = offline;
  }

  #usesChannels(channels: ClientChannels): boolean {
    for (const connection of this.#connections.values()) if (connection.channels === channels) return true;
    return this.#offline?.channels === channels;
  }

  #keep(offline: OfflineBuffer, message: KernelMessage): void {
    const bytes = messageBytes(message);
    if (offline.bytes + bytes > this.offlineLimitBytes) {
      offline.dropped++;
      if (offline.dropped === 1) {
        this.log.warn(
          `kernel ${this.kernel.id}: offline buffer for session ${offline.sessionId} is full (${this.offlineLimitBytes} bytes); ` +
            'further messages are not kept',
        );
      }
      return;
    }
    offline.bytes += bytes;
    offline.messages.push(message);
  }

  #dropOffline(): void {
    if (!this.#offline) return;
    this.#offline.channels.close();
    this.#offline = undefined;
  }

  #onIopub(message: KernelMessage): void {
    if (this.#connections.size === 0) {
      if (this.#offline) this.#keep(this.#offline, message);
      return;
    }
    const encoded: EncodedMessage = {};
    for (const connection of this.#connections.values()) connection.send(message, encoded);
  }

  #onLifecycle(event: LifecycleEvent): void {
    if (event === 'restarting' || event === 'dead') {
      for (const connection of this.#connections.values()) connection.sendOwn('status', { execution_state: event });
    }
    if (event === 'dead') this.closeAll(CLOSE.normal, 'kernel is dead');
    if (event === 'shutdown') this.closeAll(CLOSE.normal, 'kernel was shut down');
  }
}
