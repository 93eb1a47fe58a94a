/**
 * notebook-http's kernels, from the kernel manager: a fresh kernel of the notebook's kernelspec
 * (--force-kernel-name applies), seeded with the notebook's setup cells, and an execution that
 * collects the outputs of one request.
 */
import type { Kernel, KernelMessage, LifecycleEvent, Requester } from '../kernels/kernel.ts';
import type { KernelManager } from '../kernels/manager.ts';
import { parentOf } from '../kernels/requests.ts';
import { runSeed, type SeedNotebook } from '../kernels/seed.ts';
import { MessageFactory } from '../messaging/session.ts';
import type { KernelOutput, KernelSource, KernelSourceFactory, PoolKernel } from './pool-kernel.ts';

/** What kernelspecs can be chosen from, for a notebook that names none. */
export interface KernelChoice {
  /** The installed kernelspecs: name and language. */
  specs: () => ReadonlyArray<{ name: string; spec: { language: string } }>;
  /** --force-kernel-name ('' : not forced). */
  forced: string;
}

/**
 * The kernelspec to ask for: the notebook's own; for a notebook that names none, the default kernel if
 * it speaks the notebook's language, else the first kernelspec that does. (The reference stops on such a
 * notebook; starting the default kernel whatever the language would run, say, JavaScript cells in Python.)
 * undefined: the kernel manager's choice (forced, or the default for a notebook that says no language).
 */
export function notebookKernelName(seed: SeedNotebook, choice: KernelChoice, defaultName: string): string | undefined {
  if (seed.kernelName !== undefined || choice.forced || seed.language === '') return seed.kernelName;
  const specs = choice.specs();
  const speaks = specs.filter((spec) => spec.spec.language.toLowerCase() === seed.language);
  const chosen = speaks.find((spec) => spec.name === defaultName) ?? speaks[0];
  if (chosen) return chosen.name;
  throw new Error(
    `${seed.uri} names no kernelspec and no installed kernelspec speaks its language, ${seed.language} ` +
      `(installed: ${specs.map((spec) => `${spec.name} (${spec.spec.language})`).join(', ') || 'none'}); ` +
      'name one in its metadata.kernelspec.name or use --force-kernel-name',
  );
}

/** Kernels for notebook-http, started by `manager`. */
export function managedKernels(manager: KernelManager, choice: KernelChoice): KernelSourceFactory {
  return (seed: SeedNotebook): KernelSource => ({
    async start(): Promise<PoolKernel> {
      // The pool replaces a kernel that dies (and seeds the new one): no restart in between.
      const kernel = await manager.start({ name: notebookKernelName(seed, choice, manager.defaultKernelName), autoRestart: false });
      try {
        await runSeed(kernel, seed);
      } catch (error) {
        await manager.shutdown(kernel.id);
        throw error;
      }
      return new ManagedPoolKernel(kernel, manager);
    },
  });
}

interface Execution {
  msgId: string;
  outputs: KernelOutput[];
  resolve: (outputs: KernelOutput[]) => void;
  reject: (error: Error) => void;
}

/** One pool kernel: one execution at a time, its iopub outputs collected by parent message. */
class ManagedPoolKernel implements PoolKernel {
  readonly #kernel: Kernel;
  readonly #manager: KernelManager;
  readonly #factory = new MessageFactory();
  readonly #requester: Requester;
  readonly #deathCallbacks: Array<() => void> = [];
  #alive = true;
  #execution: Execution | undefined;

  constructor(kernel: Kernel, manager: KernelManager) {
    this.#kernel = kernel;
    this.#manager = manager;
    this.#requester = { label: 'notebook-http', deliver: (message) => this.#onReply(message) };
    kernel.iopubListeners.add((message) => this.#onIopub(message));
    kernel.lifecycleListeners.add((event: LifecycleEvent) => {
      // A restart, whoever caused it, loses the setup cells' state: for the pool the kernel is dead.
      if (event === 'restarting' || event === 'dead' || event === 'shutdown') this.#died(`the kernel ${event === 'restarting' ? 'died' : event === 'dead' ? 'is dead' : 'was shut down'}`);
    });
  }

  get id(): string {
    return this.#kernel.id;
  }

  get alive(): boolean {
    return this.#alive;
  }

  execute(code: string, signal: AbortSignal): Promise<KernelOutput[]> {
    if (signal.aborted) return Promise.reject(new Error('aborted'));
    if (!this.#alive) return Promise.reject(new Error('the kernel is gone'));
    const message = this.#factory.message('execute_request', {
      code,
      silent: false,
      store_history: false,
      user_expressions: {},
      allow_stdin: false,
      // The pool sends one execution at a time, so there is never a queued one to stop. With true,
      // ipykernel aborts whatever arrives just after an error: the next request's code would not run.
      stop_on_error: false,
    });
    return new Promise<KernelOutput[]>((resolve, reject) => {
      const execution: Execution = { msgId: message.msgId, outputs: [], resolve, reject };
      const finish = () => {
        signal.removeEventListener('abort', onAbort);
        if (this.#execution === execution) this.#execution = undefined;
      };
      const onAbort = () => {
        finish();
        reject(new Error('aborted'));
      };
      execution.resolve = (outputs) => {
        finish();
        resolve(outputs);
      };
      execution.reject = (error) => {
        finish();
        reject(error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#execution = execution;
      if (!this.#kernel.send('shell', message, message.fields, this.#requester)) execution.reject(new Error('the kernel is gone'));
    });
  }

  interrupt(): Promise<void> {
    return this.#kernel.interrupt();
  }

  onDeath(callback: () => void): void {
    if (!this.#alive) callback();
    else this.#deathCallbacks.push(callback);
  }

  async shutdown(): Promise<void> {
    this.#alive = false;
    this.#kernel.forget(this.#requester);
    await this.#manager.shutdown(this.#kernel.id).catch(() => undefined);
  }

  #current(message: KernelMessage): Execution | undefined {
    const execution = this.#execution;
    if (!execution) return undefined;
    return parentOf(message)?.msg_id === execution.msgId ? execution : undefined;
  }

  #onIopub(message: KernelMessage): void {
    const execution = this.#current(message);
    if (!execution) return;
    const type = message.header.msg_type;
    if (type !== 'stream' && type !== 'execute_result' && type !== 'error' && type !== 'status') return;
    const content = JSON.parse(message.parsed.content.toString('utf8')) as Record<string, unknown>;
    if (type === 'status') {
      if (content.execution_state === 'idle') execution.resolve(execution.outputs);
    } else if (type === 'stream') {
      execution.outputs.push({ type, name: typeof content.name === 'string' ? content.name : undefined, text: String(content.text ?? '') });
    } else if (type === 'execute_result') {
      execution.outputs.push({ type, data: (content.data ?? {}) as Record<string, unknown> });
    } else {
      execution.outputs.push({ type, ename: String(content.ename ?? ''), evalue: String(content.evalue ?? ''), traceback: content.traceback as string[] | undefined });
    }
  }

  #onReply(message: KernelMessage): void {
    const execution = this.#current(message);
    if (!execution || message.header.msg_type !== 'execute_reply') return;
    const content = JSON.parse(message.parsed.content.toString('utf8')) as Record<string, unknown>;
    // The kernel did not run the code (ipykernel aborts what arrives just after an error when asked to
    // stop on errors; another client may have asked): an error, not an empty success.
    if (content.status === 'aborted') {
      execution.outputs.push({ type: 'error', ename: 'ExecutionAborted', evalue: 'the kernel aborted the execution without running it' });
      execution.resolve(execution.outputs);
    }
    // The gateway's own error reply: the kernel died before it answered.
    else if (content.ename === 'KernelGatewayError') execution.reject(new Error(String(content.evalue)));
  }

  #died(why: string): void {
    if (!this.#alive) return;
    this.#alive = false;
    this.#execution?.reject(new Error(why));
    for (const callback of this.#deathCallbacks.splice(0)) callback();
  }
}
