/**
 * JavaScript as it is being typed, on acorn's tokenizer (code being typed rarely parses): the tokens
 * of any input, and what stands at the cursor, for completion and inspection.
 */
import { tokenizer, tokTypes as tt, type Comment, type Options, type Token } from 'acorn';

export const OPTIONS: Options = { ecmaVersion: 'latest', sourceType: 'script', allowHashBang: true, allowAwaitOutsideFunction: true };

/** The SyntaxError acorn throws: a message ending in "(line:column)", and where. */
export interface AcornError extends SyntaxError {
  pos: number;
  loc: { line: number; column: number };
}

// ---------------------------------------------------------------------------------------------
// Tokens

export const OPENERS = new Set([tt.parenL, tt.bracketL, tt.braceL, tt.dollarBraceL]);
export const CLOSERS = new Set([tt.parenR, tt.bracketR, tt.braceR]);

interface Lexed {
  tokens: Token[];
  comments: Comment[];
  /** Input ended inside a string, template, comment or regular expression. */
  unterminated: boolean;
}

/** acorn's tokens; past a bad character it carries on after it. Never throws. */
export function lex(code: string): Lexed {
  const result: Lexed = { tokens: [], comments: [], unterminated: false };
  let offset = 0;
  for (;;) {
    const shift = <T extends { start: number; end: number }>(item: T): T => Object.assign(item, { start: item.start + offset, end: item.end + offset });
    const comments: Comment[] = [];
    try {
      for (const token of tokenizer(code.slice(offset), { ...OPTIONS, onComment: comments })) result.tokens.push(shift(token));
      result.comments.push(...comments.map(shift));
      return { ...result, unterminated: inTemplateText(result.tokens) };
    } catch (error) {
      result.comments.push(...comments.map(shift));
      const { message, pos } = error as AcornError;
      if (/^Unterminated/.test(message) || typeof pos !== 'number') return { ...result, unterminated: true };
      offset += pos + 1;
    }
  }
}

/** The tokenizer stops without complaint when input ends in a template's text after a `${…}`. */
function inTemplateText(tokens: Token[]): boolean {
  const stack: boolean[] = []; // true: template text, false: brackets (or `${`)
  for (const t of tokens) {
    if (t.type === tt.backQuote) {
      if (stack[stack.length - 1]) stack.pop();
      else stack.push(true);
    } else if (OPENERS.has(t.type)) stack.push(false);
    else if (CLOSERS.has(t.type)) stack.pop();
  }
  return stack[stack.length - 1] === true;
}

function isWord(t: Token | undefined): boolean {
  return !!t && (t.type === tt.name || t.type.keyword !== undefined);
}

// ---------------------------------------------------------------------------------------------
// The expression at the cursor

export interface CursorTarget {
  /** The partial name at the cursor ('' right after a dot). */
  prefix: string;
  /** Start (UTF-16 index) of `prefix`. */
  start: number;
  /** The object expression before `.`/`?.` as source text (names, dots and literal subscripts only). */
  object?: string;
  /** The cursor is inside a string, template text, comment or regex. */
  inLiteral: boolean;
}

/** Find what is being typed at `cursor` (a UTF-16 index into `code`). */
export function cursorTarget(code: string, cursor: number): CursorTarget {
  const before = code.slice(0, cursor);
  const { tokens, comments, unterminated } = lex(before);
  if (unterminated || comments.some((c) => c.type === 'Line' && c.end === cursor)) return { prefix: '', start: cursor, inLiteral: true };
  let prefix = '';
  let start = cursor;
  let k = tokens.length - 1;
  const last = tokens[k];
  if (last && last.end === cursor) {
    if (isWord(last)) {
      prefix = before.slice(last.start);
      start = last.start;
      k--;
    } else if ([tt.num, tt.string, tt.regexp, tt.template, tt.backQuote, tt.privateId].includes(last.type)) {
      return { prefix: '', start: cursor, inLiteral: last.type !== tt.num };
    }
  }
  const plain = { prefix, start, inLiteral: false };
  const dot = tokens[k];
  if (!dot || (dot.type !== tt.dot && dot.type !== tt.questionDot) || !/^\s*$/.test(before.slice(dot.end, start))) return plain;
  // walk back over a chain of names, dots and literal subscripts; anything else (a call) is never evaluated
  let j = k - 1;
  let first = -1;
  while (j >= 0) {
    const t = tokens[j];
    if (t.type === tt.bracketR) {
      const literal = tokens[j - 1];
      if (!literal || (literal.type !== tt.string && literal.type !== tt.num) || tokens[j - 2]?.type !== tt.bracketL) return plain;
      j -= 3;
      continue;
    }
    if (t.type === tt.backQuote && tokens[j - 1]?.type === tt.template && tokens[j - 2]?.type === tt.backQuote) {
      first = j - 2;
      break;
    }
    if (!isWord(t) && t.type !== tt.string && t.type !== tt.num) return plain;
    first = j;
    const q = tokens[j - 1];
    if (!isWord(t) || !q || (q.type !== tt.dot && q.type !== tt.questionDot)) break;
    j -= 2;
  }
  if (first < 0 || ['super', 'new', 'function', 'class', 'import'].includes(before.slice(tokens[first].start, tokens[first].end))) return plain;
  return { prefix, start, object: before.slice(tokens[first].start, tokens[k - 1].end), inLiteral: false };
}

const ID_PART = /[\p{ID_Continue}$_\u200c\u200d\\]/u;

/** The identifier chain (a.b.c) around `cursor`, for inspection. */
export function expressionAt(code: string, cursor: number): string | undefined {
  let end = cursor;
  while (end < code.length && ID_PART.test(code[end])) end++;
  const at = (position: number): string | undefined => {
    const target = cursorTarget(code, position);
    if (target.inLiteral || !target.prefix) return undefined;
    return target.object ? `${target.object}.${target.prefix}` : target.prefix;
  };
  const found = at(end);
  if (found) return found;
  // `foo(|` or `foo( |`: the function being called
  let back = cursor;
  while (back > 0 && /\s/.test(code[back - 1])) back--;
  if (code[back - 1] !== '(') return undefined;
  back--;
  while (back > 0 && /\s/.test(code[back - 1])) back--;
  return at(back);
}

/** Names a cell declares anywhere (top-level or not), for completing names not yet defined; works on unfinished code. */
export function namesInCode(code: string): string[] {
  const { tokens } = lex(code);
  const names = new Set<string>();
  const text = (t: Token | undefined) => (t ? code.slice(t.start, t.end) : '');
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.type === tt._function || t.type === tt._class) {
      const name = tokens[i + 1]?.type === tt.star ? tokens[i + 2] : tokens[i + 1];
      if (name?.type === tt.name) names.add(text(name));
    } else if (t.type === tt._var || t.type === tt._const || (t.type === tt.name && text(t) === 'let')) {
      const next = tokens[i + 1];
      if (next?.type === tt.name) names.add(text(next));
      if (next?.type !== tt.braceL && next?.type !== tt.bracketL) continue;
      // a destructuring pattern: its names, less object keys (a name followed by ':')
      for (let j = i + 1, depth = 0; j < tokens.length; j++) {
        const p = tokens[j];
        if (OPENERS.has(p.type)) depth++;
        else if (CLOSERS.has(p.type) && --depth === 0) break;
        else if (p.type === tt.name && tokens[j + 1]?.type !== tt.colon && tokens[j - 1]?.type !== tt.dot) names.add(text(p));
      }
    }
  }
  return [...names];
}

export const KEYWORDS = [
  'async', 'await', 'break', 'case', 'catch', 'class', 'const', 'continue', 'debugger', 'default', 'delete', 'do',
  'else', 'export', 'extends', 'false', 'finally', 'for', 'function', 'if', 'import', 'in', 'instanceof', 'let',
  'new', 'null', 'of', 'return', 'static', 'super', 'switch', 'this', 'throw', 'true', 'try', 'typeof', 'undefined',
  'var', 'void', 'while', 'with', 'yield',
];

/** Convert between Jupyter's cursor positions (Unicode code points) and JavaScript string indexes. */
export function codePointToIndex(text: string, cursor: number): number {
  let index = 0;
  for (let cp = 0; cp < cursor && index < text.length; cp++) {
    const c = text.codePointAt(index)!;
    index += c > 0xffff ? 2 : 1;
  }
  return Math.min(index, text.length);
}

export function indexToCodePoint(text: string, index: number): number {
  let cp = 0;
  for (let i = 0; i < index && i < text.length; cp++) {
    const c = text.codePointAt(i)!;
    i += c > 0xffff ? 2 : 1;
  }
  return cp;
}
