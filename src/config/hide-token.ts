/**
 * Hides an auth token given on the command line from the process list. Setting process.title
 * rewrites the memory that /proc/<pid>/cmdline and ps read (libuv under Node, Deno alike), so the
 * title becomes the command line as shown before, with each token value replaced by ***. The token
 * is visible from the start of the process until this runs; KG_AUTH_TOKEN and --auth-token-file
 * never show it. Not on Windows, where the title is the console's and the process list keeps the
 * command line.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { ArgPlace } from './argv.ts';

export const HIDDEN = '***';

/** `args` with the token values at `places` replaced: a whole word, or what follows the `=` of `--auth-token=X`. */
export function withTokenHidden(args: readonly string[], places: readonly ArgPlace[]): string[] {
  const out = [...args];
  for (const { index, inline } of places) {
    out[index] = inline ? `${out[index].slice(0, out[index].indexOf('=') + 1)}${HIDDEN}` : HIDDEN;
  }
  return out;
}

/**
 * The title to show: the command line's words before `args` (node, its flags and the script, as the
 * process list showed them; else process.argv0), then `args` with the token hidden. `shown` is the
 * command line as /proc/self/cmdline gives it, if there is one.
 */
export function hiddenTitle(args: readonly string[], places: readonly ArgPlace[], shown: readonly string[] | undefined): string {
  const endsWithArgs = shown !== undefined && shown.length >= args.length && args.every((a, i) => shown[shown.length - args.length + i] === a);
  const head = endsWithArgs ? shown.slice(0, shown.length - args.length) : [process.argv0];
  return [...head, ...withTokenHidden(args, places)].join(' ');
}

/** The command line's words as the process list shows them (Linux); undefined elsewhere. */
function shownCommandLine(): string[] | undefined {
  try {
    const words = readFileSync('/proc/self/cmdline', 'utf8').split('\0');
    words.pop(); // after the last word's NUL
    return words;
  } catch {
    return undefined;
  }
}

/** /proc/self/comm, the process name (what top, pgrep and killall match), which setting the title changes too. */
function processName(): string | undefined {
  try {
    return readFileSync('/proc/self/comm', 'utf8').replace(/\n$/, '');
  } catch {
    return undefined;
  }
}

/** Replaces the token values at `places` of `args` (the arguments after node and script) by *** in the process list. */
export function hideTokenFromProcessList(args: readonly string[], places: readonly ArgPlace[]): void {
  if (places.length === 0 || process.platform === 'win32') return;
  const name = processName();
  try {
    process.title = hiddenTitle(args, places, shownCommandLine());
  } catch {
    return; // a runtime without a settable title: nothing more to do
  }
  if (name === undefined) return;
  try {
    writeFileSync('/proc/self/comm', name);
  } catch {
    /* the name stays the title's first 15 bytes */
  }
}
