/** Queues per sender, served in turn, so that one sender's backlog does not hold back another's. */
import type { Requester } from './requests.ts';

/** A FIFO without Array#shift's copying. */
class Fifo<T> {
  #items: T[] = [];
  #head = 0;
  get length(): number {
    return this.#items.length - this.#head;
  }
  push(item: T): void {
    this.#items.push(item);
  }
  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined as T;
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
  drain(): T[] {
    const rest = this.#items.slice(this.#head);
    this.#items = [];
    this.#head = 0;
    return rest;
  }
}

/** Per-sender queues of one channel, served round-robin. */
export class RoundRobin<T extends { requester: Requester }> {
  readonly #queues = new Map<Requester, Fifo<T>>();
  #ring: Requester[] = [];
  #at = 0;

  push(item: T): void {
    let queue = this.#queues.get(item.requester);
    if (!queue) {
      queue = new Fifo();
      this.#queues.set(item.requester, queue);
    }
    if (queue.length === 0) this.#ring.push(item.requester);
    queue.push(item);
  }

  next(): T | undefined {
    if (this.#ring.length === 0) return undefined;
    if (this.#at >= this.#ring.length) this.#at = 0;
    const requester = this.#ring[this.#at];
    const queue = this.#queues.get(requester)!;
    const item = queue.shift();
    if (queue.length === 0) {
      this.#ring.splice(this.#at, 1);
      this.#queues.delete(requester);
    } else {
      this.#at++;
    }
    return item;
  }

  /** Remove and return everything a sender has queued here. */
  remove(requester: Requester): T[] {
    const queue = this.#queues.get(requester);
    if (!queue) return [];
    this.#queues.delete(requester);
    const at = this.#ring.indexOf(requester);
    if (at >= 0) {
      this.#ring.splice(at, 1);
      if (this.#at > at) this.#at--;
    }
    return queue.drain();
  }
}

