/**
 * What notebook-http needs to know about a notebook's language: the comment token its annotations
 * start with, and how to assign the REQUEST string in it.
 *
 * The language is the notebook's metadata.language_info.name (as the reference), or its
 * kernelspec.language when the notebook was saved without language_info.
 */
import type { NotebookDocument } from '../kernels/notebook.ts';

/**
 * Comment tokens of languages whose comments do not start with `#`. The reference knows only Scala;
 * the others are languages in which a `#` annotation could never have worked.
 */
export const DEFAULT_COMMENT_PREFIXES: Readonly<Record<string, string>> = {
  scala: '//',
  javascript: '//',
  typescript: '//',
  java: '//',
  kotlin: '//',
  groovy: '//',
  c: '//',
  'c++': '//',
  'c#': '//',
  csharp: '//',
  'f#': '//',
  fsharp: '//',
  go: '//',
  rust: '//',
  swift: '//',
  dart: '//',
  sql: '--',
  haskell: '--',
  lua: '--',
  matlab: '%',
  clojure: ';',
  scheme: ';',
  racket: ';',
};

/** The language notebook-http keys its syntax on, or undefined when the notebook does not say. */
export function notebookLanguage(notebook: NotebookDocument): string | undefined {
  return notebook.languageInfoName ?? notebook.kernelspecLanguage;
}

/**
 * The comment token for `language`: the configured table first (exact name, then lowercased), then the
 * defaults, else `#`.
 */
export function commentPrefixFor(language: string | undefined, configured: Readonly<Record<string, string>> = {}): string {
  if (language === undefined) return '#';
  const lower = language.toLowerCase();
  return configured[language] ?? configured[lower] ?? DEFAULT_COMMENT_PREFIXES[language] ?? DEFAULT_COMMENT_PREFIXES[lower] ?? '#';
}

/**
 * The statement that sets REQUEST to the JSON text `requestJson` in `language`.
 *
 * The value is a string literal whose contents are exactly `requestJson`. JSON outside printable ASCII
 * is first escaped (\uXXXX inside JSON strings, which JSON parsers decode), so the literal holds only
 * printable ASCII and each language needs to escape just its own special characters:
 *  - Python, R, JavaScript, Scala and most others: `REQUEST = "..."` with `\` and `"` escaped (the
 *    reference's form, byte for byte).
 *  - Perl: `my $REQUEST = '...'` and Ruby: `REQUEST = '...'`, single-quoted so that `$`, `@` and `#{`
 *    in a header or body are not interpolated (the reference writes Perl with double quotes).
 *  - Bash and other POSIX shells: `REQUEST='...'`, single-quoted so that `$(...)`, backquotes and `!`
 *    stay text (the reference's `REQUEST="..."` lets a client run shell commands through a header).
 *  - Julia: `REQUEST = "..."` with `$` escaped too (Julia interpolates `$` in strings).
 */
export function requestAssignment(language: string | undefined, requestJson: string): string {
  const json = asciiJson(requestJson);
  switch ((language ?? '').toLowerCase()) {
    case 'perl':
      return `my $REQUEST = '${json.replace(/[\\']/g, '\\$&')}'`;
    case 'ruby':
      return `REQUEST = '${json.replace(/[\\']/g, '\\$&')}'`;
    case 'bash':
    case 'sh':
    case 'shell':
    case 'zsh':
      return `REQUEST='${json.replace(/'/g, `'\\''`)}'`;
    case 'julia':
      return `REQUEST = "${json.replace(/[\\"$]/g, '\\$&')}"`;
    default:
      return `REQUEST = "${json.replace(/[\\"]/g, '\\$&')}"`;
  }
}

/**
 * The REQUEST assignment and an endpoint's code as one execution, where that is the same as the
 * reference's two executions one after the other, so a request costs the kernel one execution instead
 * of two. Python only (ipykernel's execution round trip is most of a request's time there), and only when
 * the result cannot differ:
 *  - the assignment goes on the code's first line, in front of the annotation comment that both cell
 *    parsers guarantee is there, so line numbers in errors and tracebacks stay those of the cell (IPython's
 *    input transformers look at the first line only for a cell magic, an indent or a prompt, which an
 *    annotation line never is);
 *  - the code has a statement besides comments (with none, IPython configured to show a last assignment
 *    would show REQUEST), and no `from __future__` import (which must be the code's first statement);
 *  - assigning a string literal cannot fail, so the code never runs where the reference would have stopped.
 * What differs: a syntax error's message names the cell by a hash of the code run (`(1234.py, line 2)`),
 * which now changes with every request; and a cell that does not compile leaves REQUEST as the previous
 * request set it, which nothing can read before the next request assigns it again.
 * undefined: assign REQUEST in an execution of its own first.
 */
export function assignedSource(language: string | undefined, assignment: string, source: string): string | undefined {
  if ((language ?? '').toLowerCase() !== 'python' || !source.startsWith('#') || /\b__future__\b/.test(source)) return undefined;
  if (source.split('\n').every((line) => /^\s*(#.*)?$/.test(line))) return undefined;
  return `${assignment} ${source}`;
}

/**
 * JSON text in printable ASCII: tabs and line breaks, which valid JSON has only between tokens, become
 * spaces; any other character outside printable ASCII can only stand inside a JSON string, where a
 * \u escape means the same.
 */
function asciiJson(json: string): string {
  return json.replace(/[^\x20-\x7e]/g, (c) => (c === '\t' || c === '\n' || c === '\r' ? ' ' : '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')));
}
