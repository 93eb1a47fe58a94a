/**
 * Reading the notebook named by --seed-uri (nbformat 4 JSON) from a local path, a file: URL or an
 * http(s) URL. Seeding (seed.ts) and the notebook-http personality both start from this one reader.
 */
import { readFileSync } from 'node:fs';
import { isJsonObject } from '../messaging/message.ts';
import { errorMessage } from '../log.ts';

export interface NotebookCell {
  /** 1-based position in the notebook, for messages. */
  number: number;
  /** nbformat cell_type: 'code', 'markdown', 'raw'. */
  type: string;
  /** The source as one string (nbformat allows a list of lines). */
  source: string;
}

export interface NotebookDocument {
  /** Where it came from, for messages. */
  uri: string;
  /** The file's text exactly as read (served by notebook-http's /_api/source). */
  text: string;
  /** metadata.kernelspec.name, if any. */
  kernelName: string | undefined;
  /** metadata.kernelspec.language, as written. */
  kernelspecLanguage: string | undefined;
  /** metadata.language_info.name, as written (what the reference keys notebook-http syntax on). */
  languageInfoName: string | undefined;
  /** Every cell, in order, whatever its type. */
  cells: NotebookCell[];
}

export class NotebookError extends Error {}

/** Read a notebook's text; http(s) URLs are fetched (200 s timeout), anything else is a path. */
export async function readNotebookText(uri: string): Promise<string> {
  if (/^https?:\/\//i.test(uri)) {
    let response: Response;
    try {
      response = await fetch(uri, { signal: AbortSignal.timeout(200_000) });
    } catch (error) {
      throw new NotebookError(`cannot fetch seed notebook ${uri}: ${errorMessage(error)}`);
    }
    if (!response.ok) throw new NotebookError(`cannot fetch seed notebook ${uri}: HTTP ${response.status}`);
    return response.text();
  }
  const path = uri.startsWith('file://') ? new URL(uri).pathname : uri;
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new NotebookError(`cannot read seed notebook ${uri}: ${(error as NodeJS.ErrnoException).code ?? errorMessage(error)}`);
  }
}

export async function loadNotebook(uri: string): Promise<NotebookDocument> {
  return parseNotebook(await readNotebookText(uri), uri);
}

/** Parse nbformat 4 JSON; throws NotebookError saying what is wrong. */
export function parseNotebook(text: string, uri: string): NotebookDocument {
  let notebook: unknown;
  try {
    notebook = JSON.parse(text);
  } catch (error) {
    throw new NotebookError(`seed notebook ${uri} is not valid JSON: ${errorMessage(error)}`);
  }
  if (!isJsonObject(notebook) || !Array.isArray(notebook.cells)) throw new NotebookError(`seed notebook ${uri} has no "cells" list (nbformat 4 expected)`);
  if (typeof notebook.nbformat === 'number' && notebook.nbformat < 4) {
    throw new NotebookError(`seed notebook ${uri} is nbformat ${notebook.nbformat}; save it as nbformat 4`);
  }
  const metadata = isJsonObject(notebook.metadata) ? notebook.metadata : {};
  const kernelspec = isJsonObject(metadata.kernelspec) ? metadata.kernelspec : {};
  const languageInfo = isJsonObject(metadata.language_info) ? metadata.language_info : {};
  const cells = notebook.cells.map((cell, index): NotebookCell => {
    if (!isJsonObject(cell)) throw new NotebookError(`seed notebook ${uri}: cell ${index + 1} is not an object`);
    const source = Array.isArray(cell.source) ? cell.source.join('') : cell.source;
    const type = typeof cell.cell_type === 'string' ? cell.cell_type : '';
    if (typeof source !== 'string') {
      if (type === 'code') throw new NotebookError(`seed notebook ${uri}: cell ${index + 1} has no source`);
      return { number: index + 1, type, source: '' };
    }
    return { number: index + 1, type, source };
  });
  const nonEmpty = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  return {
    uri,
    text,
    kernelName: typeof kernelspec.name === 'string' ? kernelspec.name : undefined,
    kernelspecLanguage: nonEmpty(kernelspec.language),
    languageInfoName: nonEmpty(languageInfo.name),
    cells,
  };
}
