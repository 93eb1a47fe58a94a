/**
 * Seed notebooks: code cells that run in every new kernel of the notebook's language before the
 * kernel is handed out.
 */
import { readFileSync } from 'node:fs';
import { MessageFactory } from '../messaging/session.ts';
import type { Kernel, KernelMessage, LifecycleEvent, Requester } from './kernel.ts';
import { isJsonObject } from '../messaging/message.ts';
import { errorMessage } from '../log.ts';

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

export class SeedError extends Error {}

/** Read and check a seed notebook from a local path (or file: URL) or an http(s) URL. */
export async function loadSeedNotebook(uri: string): Promise<SeedNotebook> {
  let text: string;
  if (/^https?:\/\//i.test(uri)) {
    let response: Response;
    try {
      response = await fetch(uri, { signal: AbortSignal.timeout(200_000) });
    } catch (error) {
      throw new SeedError(`cannot fetch seed notebook ${uri}: ${errorMessage(error)}`);
    }
    if (!response.ok) throw new SeedError(`cannot fetch seed notebook ${uri}: HTTP ${response.status}`);
    text = await response.text();
  } else {
    const path = uri.startsWith('file://') ? new URL(uri).pathname : uri;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw new SeedError(`cannot read seed notebook ${uri}: ${(error as NodeJS.ErrnoException).code ?? errorMessage(error)}`);
    }
  }
  return parseSeedNotebook(text, uri);
}

/** Parse nbformat 4 JSON into a SeedNotebook; throws SeedError saying what is wrong. */
export function parseSeedNotebook(text: string, uri: string): SeedNotebook {
  let notebook: unknown;
  try {
    notebook = JSON.parse(text);
  } catch (error) {
    throw new SeedError(`seed notebook ${uri} is not valid JSON: ${errorMessage(error)}`);
  }
  if (!isJsonObject(notebook) || !Array.isArray(notebook.cells)) throw new SeedError(`seed notebook ${uri} has no "cells" list (nbformat 4 expected)`);
  if (typeof notebook.nbformat === 'number' && notebook.nbformat < 4) {
    throw new SeedError(`seed notebook ${uri} is nbformat ${notebook.nbformat}; save it as nbformat 4`);
  }
  const metadata = isJsonObject(notebook.metadata) ? notebook.metadata : {};
  const kernelspec = isJsonObject(metadata.kernelspec) ? metadata.kernelspec : {};
  const languageInfo = isJsonObject(metadata.language_info) ? metadata.language_info : {};
  const language = [kernelspec.language, languageInfo.name].find((v): v is string => typeof v === 'string' && v !== '');
  if (!language) throw new SeedError(`seed notebook ${uri} does not say its language (metadata.kernelspec.language or metadata.language_info.name)`);
  const cells: SeedNotebook['cells'] = [];
  notebook.cells.forEach((cell, index) => {
    if (!isJsonObject(cell)) throw new SeedError(`seed notebook ${uri}: cell ${index + 1} is not an object`);
    if (cell.cell_type !== 'code') return;
    const source = Array.isArray(cell.source) ? cell.source.join('') : cell.source;
    if (typeof source !== 'string') throw new SeedError(`seed notebook ${uri}: cell ${index + 1} has no source`);
    if (source.trim() !== '') cells.push({ number: index + 1, source });
  });
  return {
    uri,
    language: language.toLowerCase(),
    kernelName: typeof kernelspec.name === 'string' ? kernelspec.name : undefined,
    cells,
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
      const parent = JSON.parse(message.parsed.parentHeader.toString('utf8')) as { msg_id?: string };
      if (parent.msg_id !== waiting.msgId) return;
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
