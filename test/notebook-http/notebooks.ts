/** Notebook fixtures for notebook-http tests. */
import { parseNotebook, type NotebookDocument } from '../../src/kernels/notebook.ts';

export type CellSpec = string | { type: 'code' | 'markdown' | 'raw'; source: string | string[] };

/** nbformat 4 JSON text with these cells (strings are code cells). */
export function notebookText(cells: CellSpec[], language = 'python', kernelName = 'python3'): string {
  return JSON.stringify({
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: kernelName, display_name: kernelName, language },
      language_info: { name: language },
    },
    cells: cells.map((cell) => {
      const { type, source } = typeof cell === 'string' ? { type: 'code' as const, source: cell } : cell;
      return type === 'code'
        ? { cell_type: 'code', metadata: {}, execution_count: null, outputs: [], source }
        : { cell_type: type, metadata: {}, source };
    }),
  });
}

export function notebook(cells: CellSpec[], language = 'python', uri = '/notebooks/api.ipynb'): NotebookDocument {
  return parseNotebook(notebookText(cells, language), uri);
}
