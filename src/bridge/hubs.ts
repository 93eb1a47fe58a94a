/** Every kernel's hub, made as kernels are handed out and dropped when they go. */
import type { Kernel } from '../kernels/kernel.ts';
import { KernelHub, type HubOptions } from './hub.ts';

export class Hubs {
  readonly #hubs = new Map<string, KernelHub>();

  constructor(private readonly options: HubOptions) {}

  /** A hub for a kernel that clients may now reach (call from the manager's addedListeners). */
  add(kernel: Kernel): void {
    this.#hubs.set(kernel.id, new KernelHub(kernel, this.options));
    kernel.lifecycleListeners.add((event) => {
      if (event === 'dead' || event === 'shutdown') this.#hubs.delete(kernel.id);
    });
  }

  get(kernelId: string): KernelHub | undefined {
    return this.#hubs.get(kernelId);
  }

  connectionsOf(kernelId: string): number {
    return this.#hubs.get(kernelId)?.connectionCount ?? 0;
  }

  /** Open connections of every kernel, by protocol. */
  connectionsByProtocol(): Record<string, number> {
    const counts: Record<string, number> = { v1: 0, json: 0 };
    for (const hub of this.#hubs.values()) hub.countByProtocol(counts);
    return counts;
  }

  closeAll(code: number, reason: string): void {
    for (const hub of this.#hubs.values()) hub.closeAll(code, reason);
  }
}
