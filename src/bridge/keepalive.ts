/**
 * WebSocket pings for every client connection, from one timer: pings keep proxies from closing idle
 * sockets and find clients that vanished without a close. A client silent for max(3 intervals, 30 s)
 * is disconnected. A connection whose reading is paused (its kernel is not reading) cannot see pongs,
 * so it is not judged until it reads again.
 */
import { errorMessage, type Logger } from '../log.ts';
import type { ClientConnection } from './connection.ts';

export class Keepalive {
  readonly #connections = new Set<ClientConnection>();
  readonly #timer: NodeJS.Timeout | undefined;
  readonly #timeoutMs: number;

  constructor(intervalSeconds: number, private readonly log: Logger) {
    this.#timeoutMs = Math.max(3 * intervalSeconds * 1000, 30_000);
    if (intervalSeconds <= 0) return;
    this.#timer = setInterval(() => this.#tick(), intervalSeconds * 1000);
    this.#timer.unref();
  }

  add(connection: ClientConnection): void {
    if (this.#timer) this.#connections.add(connection);
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#connections.clear();
  }

  #tick(): void {
    const now = Date.now();
    for (const connection of this.#connections) {
      if (connection.closed) {
        this.#connections.delete(connection);
        continue;
      }
      if (connection.readingPaused) continue;
      try {
        if (now - connection.lastPong > this.#timeoutMs) {
          this.log.warn(`session ${connection.sessionId}: no pong for ${Math.round((now - connection.lastPong) / 1000)} s; closing`);
          connection.terminate();
          this.#connections.delete(connection);
          continue;
        }
        connection.socket.ping();
      } catch (error) {
        this.log.warn(`session ${connection.sessionId}: keepalive failed: ${errorMessage(error)}`);
      }
    }
  }
}
