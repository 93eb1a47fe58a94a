/**
 * Seed notebooks: code cells that run in every new kernel of the notebook's language before the
 * kernel is handed out.
 */
import { MessageFactory } from '../messaging/session.ts';
import type { Kernel, KernelMessage, LifecycleEvent, Requester } from './kernel.ts';
import { parentOf } from './requests.ts';
import { NotebookError as SeedError, parseNotebook, readNotebookText, type NotebookDocument } from './notebook.ts';

export interface SeedNotebook {
  /** Where it came from, for messages. */
  uri: string;
  /** Lowercased language of the notebook (metadata.kernelspec.language or language_info.name). */
  language: string;
  /** The notebook's kernelspec name, if it names one. */
  kernelName: string | undefined;
  /** Each code cell, in order (empty ones left out), with its 1-based position in the notebook. */
  cells: Array<{ number: number; source: string }>;
}

/** Errors reading a seed notebook are NotebookErrors; seeding's callers know them by this name. */
export { SeedError };

/** Read and check a seed notebook from a local path (or file: URL) or an http(s) URL. */
export async function loadSeedNotebook(uri: string): Promise<SeedNotebook> {
  return parseSeedNotebook(await readNotebookText(uri), uri);
}

/** Parse nbformat 4 JSON into a SeedNotebook; throws SeedError saying what is wrong. */
export function parseSeedNotebook(text: string, uri: string): SeedNotebook {
  return seedFromNotebook(parseNotebook(text, uri));
}

/** The seed of a parsed notebook: its language and its non-empty code cells. */
export function seedFromNotebook(notebook: NotebookDocument): SeedNotebook {
  const language = notebook.kernelspecLanguage ?? notebook.languageInfoName;
  if (!language) throw new SeedError(`seed notebook ${notebook.uri} does not say its language (metadata.kernelspec.language or metadata.language_info.name)`);
  return {
    uri: notebook.uri,
    language: language.toLowerCase(),
    kernelName: notebook.kernelName,
    cells: notebook.cells.filter((cell) => cell.type === 'code' && cell.source.trim() !== '').map(({ number, source }) => ({ number, source })),
  };
}

/** Whether a kernel of this kernelspec language gets the seed. */
export function seedApplies(seed: SeedNotebook | undefined, kernel: Kernel): seed is SeedNotebook {
  return !!seed && seed.cells.length > 0 && seed.language === kernel.spec.spec.language.toLowerCase();
}

/**
 * Run every seed cell in a ready kernel, one after the other, as a sender of its own.
 * Throws SeedError naming the cell and the error when a cell fails or the kernel dies.
 */
export async function runSeed(kernel: Kernel, seed: SeedNotebook): Promise<void> {
  const factory = new MessageFactory();
  let waiting: { msgId: string; resolve: (reply: Record<string, unknown>) => void; reject: (error: Error) => void } | undefined;
  const requester: Requester = {
    label: 'the seed notebook',
    deliver: (message: KernelMessage) => {
      if (!waiting || message.header.msg_type !== 'execute_reply') return;
      if (parentOf(message)?.msg_id !== waiting.msgId) return;
      waiting.resolve(JSON.parse(message.parsed.content.toString('utf8')) as Record<string, unknown>);
    },
  };
  const onLifecycle = (event: LifecycleEvent) => {
    if (event !== 'restarted') waiting?.reject(new SeedError(`the kernel ${event === 'restarting' ? 'died' : event} while running the seed notebook`));
  };
  kernel.lifecycleListeners.add(onLifecycle);
  try {
    for (const cell of seed.cells) {
      const message = factory.message('execute_request', {
        code: cell.source,
        silent: false,
        store_history: false,
        user_expressions: {},
        allow_stdin: false,
        stop_on_error: true,
      });
      const reply = await new Promise<Record<string, unknown>>((resolve, reject) => {
        waiting = { msgId: message.msgId, resolve, reject };
        if (!kernel.send('shell', message, message.fields, requester)) reject(new SeedError('the kernel is gone'));
      });
      if (reply.status !== 'ok') {
        const detail = reply.status === 'error' ? `${reply.ename}: ${reply.evalue}` : `status ${String(reply.status)}`;
        throw new SeedError(`seed notebook ${seed.uri}: cell ${cell.number} failed: ${detail}`);
      }
    }
  } finally {
    waiting = undefined;
    kernel.lifecycleListeners.delete(onLifecycle);
    kernel.forget(requester);
  }
}
