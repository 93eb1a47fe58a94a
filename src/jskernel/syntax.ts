/**
 * Just enough JavaScript lexing for a notebook kernel, without a parser dependency:
 *  - a tokenizer that knows strings, template literals (with nested `${}`), comments, regex literals
 *    (by the usual previous-token heuristic) and bracket nesting;
 *  - is_complete classification ('complete' | 'incomplete' | 'invalid');
 *  - the rewrite of a cell into a script that keeps its top-level declarations across cells, in one
 *    of two shapes: a plain script, or (for top-level await) an async arrow that is called at once;
 *  - the name under the cursor, for completion and inspection.
 * V8 has the last word: every rewrite is compiled before it runs, and is_complete asks V8 too.
 */
import * as vm from 'node:vm';

export type TokenType = 'name' | 'number' | 'string' | 'template' | 'regex' | 'punct';

export interface Token {
  type: TokenType;
  value: string;
  start: number;
  /** Exclusive. */
  end: number;
  /** A line break between the previous token (or comment) and this one. */
  nlBefore: boolean;
  /** Brackets open around this token; an opening or closing bracket has the depth outside it. */
  depth: number;
  /** For brackets (and template parts opening or closing `${`): index of the partner token, or -1. */
  match: number;
}

export interface Scan {
  tokens: Token[];
  /** Input ended inside one of these. */
  unterminated?: 'string' | 'template' | 'comment' | 'regex';
  /** A quoted string was cut by a line break (a syntax error, unless the line ends in a backslash). */
  brokenString?: boolean;
  /** Brackets still open at the end, innermost last. */
  open: number[];
  /** A closing bracket that does not match (or has no) opener. */
  mismatch: boolean;
}

const PUNCTUATORS = [
  '>>>=', '...', '===', '!==', '**=', '<<=', '>>=', '>>>', '&&=', '||=', '??=',
  '=>', '==', '!=', '<=', '>=', '&&', '||', '??', '?.', '++', '--', '+=', '-=', '*=', '/=', '%=',
  '&=', '|=', '^=', '**', '<<', '>>',
];
const ID_START = /[\p{ID_Start}$_\\]/u;
const ID_PART = /[\p{ID_Continue}$_\u200c\u200d\\]/u;
const CLOSERS: Record<string, string> = { ')': '(', ']': '[', '}': '{' };

/** Keywords after which a `/` starts a regular expression. */
const REGEX_AFTER_KEYWORD = new Set([
  'return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield', 'await',
]);

/** Words that, as the previous token, cannot end an expression. */
const NON_ENDING_WORDS = new Set([
  ...REGEX_AFTER_KEYWORD, 'extends', 'var', 'let', 'const', 'if', 'for', 'while', 'with', 'switch', 'catch',
  'try', 'finally', 'export', 'import', 'function', 'class', 'async', 'debugger',
]);

function regexAllowed(prev: Token | undefined): boolean {
  if (!prev) return true;
  if (prev.type === 'name') return REGEX_AFTER_KEYWORD.has(prev.value);
  if (prev.type === 'punct') return ![')', ']', '}', '++', '--'].includes(prev.value);
  return prev.type === 'template' && prev.value.endsWith('${');
}

/** Tokenize `code`; never throws. */
export function scan(code: string): Scan {
  const tokens: Token[] = [];
  const stack: number[] = []; // indexes of opening tokens ('(', '[', '{', or a template part ending in '${')
  let mismatch = false;
  let nl = false;
  let i = 0;
  const n = code.length;

  const push = (type: TokenType, start: number, end: number): Token => {
    const token: Token = { type, value: code.slice(start, end), start, end, nlBefore: nl, depth: stack.length, match: -1 };
    tokens.push(token);
    nl = false;
    return token;
  };

  /** Scan template characters from `from` (just after '`' or a closing '}'); returns [end, kind]. */
  const templateRest = (from: number): [number, 'end' | 'expr' | 'eof'] => {
    let j = from;
    while (j < n) {
      const c = code[j];
      if (c === '\\') j += 2;
      else if (c === '`') return [j + 1, 'end'];
      else if (c === '$' && code[j + 1] === '{') return [j + 2, 'expr'];
      else j++;
    }
    return [n, 'eof'];
  };

  const templatePart = (start: number, from: number): Scan['unterminated'] | undefined => {
    const [end, kind] = templateRest(from);
    const token = push('template', start, end);
    if (kind === 'expr') {
      stack.push(tokens.length - 1);
      return undefined;
    }
    return kind === 'eof' ? 'template' : undefined;
  };

  while (i < n) {
    const c = code[i];
    // whitespace and line terminators
    if (c === '\n' || c === '\r' || c === '\u2028' || c === '\u2029') {
      nl = true;
      i++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\v' || c === '\f' || c === '\u00a0' || c === '\ufeff' || /\s/.test(c)) {
      i++;
      continue;
    }
    // comments (and a hashbang on the first line)
    if (c === '/' && code[i + 1] === '/') {
      while (i < n && code[i] !== '\n' && code[i] !== '\r') i++;
      continue;
    }
    if (c === '#' && i === 0 && code[1] === '!') {
      while (i < n && code[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && code[i + 1] === '*') {
      const close = code.indexOf('*/', i + 2);
      if (close < 0) return finish('comment');
      if (/[\n\r\u2028\u2029]/.test(code.slice(i, close))) nl = true;
      i = close + 2;
      continue;
    }
    const start = i;
    // strings
    if (c === '"' || c === "'") {
      i++;
      let closed = false;
      while (i < n) {
        const d = code[i];
        if (d === '\\') {
          i += code[i + 1] === '\r' && code[i + 2] === '\n' ? 3 : 2;
          continue;
        }
        if (d === c) {
          closed = true;
          i++;
          break;
        }
        if (d === '\n' || d === '\r') break;
        i++;
      }
      push('string', start, Math.min(i, n));
      if (!closed) {
        if (i >= n) return finish(code.endsWith('\\') ? 'string' : undefined, !code.endsWith('\\'));
        return finish(undefined, true);
      }
      continue;
    }
    // template literals
    if (c === '`') {
      const u = templatePart(start, i + 1);
      if (u) return finish(u);
      i = tokens[tokens.length - 1].end;
      continue;
    }
    if (c === '}' && stack.length > 0 && tokens[stack[stack.length - 1]].type === 'template') {
      const opener = stack.pop()!;
      const u = templatePart(start, i + 1);
      const part = tokens.length - 1;
      tokens[opener].match = part;
      if (!tokens[part].value.endsWith('${')) tokens[part].match = opener;
      if (u) return finish(u);
      i = tokens[part].end;
      continue;
    }
    // names and keywords (including #private)
    if (ID_START.test(c) || (c === '#' && i + 1 < n && ID_START.test(code[i + 1]))) {
      i++;
      while (i < n && ID_PART.test(code[i])) i++;
      push('name', start, i);
      continue;
    }
    // numbers
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(code[i + 1] ?? ''))) {
      i++;
      while (i < n) {
        const d = code[i];
        if (/[0-9a-zA-Z_.]/.test(d)) i++;
        else if ((d === '+' || d === '-') && /[eE]/.test(code[i - 1]) && !/^0[xX]/.test(code.slice(start, i))) i++;
        else break;
      }
      push('number', start, i);
      continue;
    }
    // regular expressions
    if (c === '/' && regexAllowed(tokens[tokens.length - 1])) {
      i++;
      let inClass = false;
      let closed = false;
      while (i < n) {
        const d = code[i];
        if (d === '\\') i += 2;
        else if (d === '\n' || d === '\r') break;
        else if (d === '[') (inClass = true), i++;
        else if (d === ']') (inClass = false), i++;
        else if (d === '/' && !inClass) {
          closed = true;
          i++;
          break;
        } else i++;
      }
      if (!closed) {
        push('regex', start, Math.min(i, n));
        return finish(i >= n ? 'regex' : undefined, i < n);
      }
      while (i < n && ID_PART.test(code[i])) i++;
      push('regex', start, i);
      continue;
    }
    // punctuators and brackets
    let p = PUNCTUATORS.find((q) => code.startsWith(q, i)) ?? c;
    if (p === '?.' && /[0-9]/.test(code[i + 2] ?? '')) p = '?';
    if (p === '(' || p === '[' || p === '{') {
      push('punct', start, i + 1);
      stack.push(tokens.length - 1);
      i++;
      continue;
    }
    if (p === ')' || p === ']' || p === '}') {
      const opener = stack.length > 0 ? tokens[stack[stack.length - 1]] : undefined;
      if (!opener || opener.value !== CLOSERS[p]) {
        mismatch = true;
        push('punct', start, i + 1);
        i++;
        continue;
      }
      const openIndex = stack.pop()!;
      const token = push('punct', start, i + 1);
      token.match = openIndex;
      tokens[openIndex].match = tokens.length - 1;
      i++;
      continue;
    }
    push('punct', start, i + p.length);
    i += p.length;
  }
  return finish(undefined);

  function finish(unterminated: Scan['unterminated'], brokenString = false): Scan {
    const result: Scan = { tokens, open: [...stack], mismatch };
    if (unterminated) result.unterminated = unterminated;
    if (brokenString) result.brokenString = true;
    return result;
  }
}

// ---------------------------------------------------------------------------------------------
// Statement boundaries (heuristic: ASI as a human reads it)

function endsExpression(t: Token): boolean {
  if (t.type === 'name') return !NON_ENDING_WORDS.has(t.value);
  if (t.type === 'template') return t.value.endsWith('`') && t.value.length > 1;
  if (t.type === 'punct') return [')', ']', '}', '++', '--'].includes(t.value);
  return true;
}

const CONTINUING_PUNCT = new Set([
  '.', '?.', '(', '[', ',', '?', ':', '=', '==', '===', '!=', '!==', '<', '>', '<=', '>=', '+', '-', '*', '/', '%', '**',
  '&', '|', '^', '&&', '||', '??', '<<', '>>', '>>>', '=>', '+=', '-=', '*=', '/=', '%=', '**=', '<<=', '>>=', '>>>=',
  '&=', '|=', '^=', '&&=', '||=', '??=', ')', ']', '}',
]);

function continuesExpression(t: Token): boolean {
  if (t.type === 'punct') return CONTINUING_PUNCT.has(t.value);
  if (t.type === 'name') return t.value === 'in' || t.value === 'instanceof' || t.value === 'of';
  return t.type === 'template'; // a tagged template
}

/** Is the `)` at `index` the end of an `if (…)`, `for (…)`, `while (…)` or `with (…)` head? */
function isControlHead(tokens: Token[], index: number): boolean {
  const close = tokens[index];
  if (close.value !== ')' || close.match < 0) return false;
  const before = tokens[close.match - 1];
  return !!before && before.type === 'name' && ['if', 'for', 'while', 'with', 'await'].includes(before.value);
}

/** Does a new statement start at top-level token `index` (judging from the token before it)? */
function boundaryBefore(tokens: Token[], index: number): boolean {
  const t = tokens[index];
  const p = tokens[index - 1];
  if (!p) return true;
  if (p.depth !== t.depth) return false;
  if (p.type === 'punct' && p.value === ';') return true;
  if (!(t.nlBefore || (p.type === 'punct' && p.value === '}'))) return false;
  if (!endsExpression(p) || isControlHead(tokens, index - 1)) return false;
  if (p.type === 'punct' && p.value === '}') {
    // `} else`, `} catch`, `} finally`, `} while (…)` (of do-while) belong to the statement before.
    if (t.type === 'name' && ['else', 'catch', 'finally', 'while'].includes(t.value)) return false;
  }
  return !continuesExpression(t);
}

// ---------------------------------------------------------------------------------------------
// Top-level declarations

export interface Declaration {
  kind: 'let' | 'const' | 'var' | 'class' | 'function';
  /** Token index of the keyword (`async` for async functions). */
  first: number;
  /** Token index just after the declaration (after its ';' if it has one). */
  after: number;
  names: string[];
  /** For let/const/var: each declarator's [first, after) token range (pattern plus initializer). */
  declarators: Array<[number, number]>;
}

function isName(t: Token | undefined, value?: string): boolean {
  return !!t && t.type === 'name' && (value === undefined || t.value === value);
}
function isPunct(t: Token | undefined, value: string): boolean {
  return !!t && t.type === 'punct' && t.value === value;
}

/** The end (exclusive index) of an expression starting at `from`, stopping at ',' or ';' or an ASI break at `depth`. */
function expressionEnd(tokens: Token[], from: number, depth: number): number {
  let k = from;
  while (k < tokens.length) {
    const t = tokens[k];
    if (t.depth < depth) break;
    if (t.depth === depth) {
      if (isPunct(t, ',') || isPunct(t, ';')) break;
      if (k > from && boundaryBefore(tokens, k)) break;
      if (t.match > k) {
        k = t.match + 1;
        continue;
      }
    }
    k++;
  }
  return k;
}

/** Binding names in the pattern tokens [from, to). */
function patternNames(tokens: Token[], from: number, to: number): string[] {
  const first = tokens[from];
  if (!first || from >= to) return [];
  if (first.type === 'name') return [first.value];
  if (!isPunct(first, '{') && !isPunct(first, '[')) return [];
  const close = first.match < 0 ? to : Math.min(first.match, to);
  const inner = first.depth + 1;
  // split the elements at commas of the inner depth
  const elements: Array<[number, number]> = [];
  let s = from + 1;
  for (let k = from + 1; k <= close; k++) {
    if (k === close || (tokens[k].depth === inner && isPunct(tokens[k], ','))) {
      elements.push([s, k]);
      s = k + 1;
    }
  }
  const names: string[] = [];
  for (const [a, b] of elements) {
    if (a >= b) continue;
    if (isPunct(tokens[a], '...')) {
      names.push(...patternNames(tokens, a + 1, b));
      continue;
    }
    let eq = -1;
    let colon = -1;
    for (let k = a; k < b; k++) {
      const t = tokens[k];
      if (t.depth !== inner) continue;
      if (eq < 0 && isPunct(t, '=')) eq = k;
      if (colon < 0 && eq < 0 && isPunct(t, ':')) colon = k;
    }
    if (isPunct(first, '{')) {
      if (colon >= 0) names.push(...patternNames(tokens, colon + 1, eq >= 0 ? eq : b));
      else if (isName(tokens[a])) names.push(tokens[a].value);
    } else {
      names.push(...patternNames(tokens, a, eq >= 0 ? eq : b));
    }
  }
  return names;
}

/** Does a top-level statement start at `index`? (`index` has depth 0.) */
function statementStart(tokens: Token[], index: number): boolean {
  return boundaryBefore(tokens, index) || (tokens[index - 1]?.depth === 0 && isPunct(tokens[index - 1], '}'));
}

/** The top-level (depth 0) declarations in `tokens`. */
export function topLevelDeclarations(tokens: Token[]): Declaration[] {
  const found: Declaration[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.depth !== 0 || t.type !== 'name') continue;
    if (!['let', 'const', 'var', 'class', 'function', 'async'].includes(t.value)) continue;
    if (!statementStart(tokens, i)) continue;
    const next = tokens[i + 1];
    if (t.value === 'let' || t.value === 'const' || t.value === 'var') {
      if (!next || !(next.type === 'name' || isPunct(next, '[') || isPunct(next, '{'))) continue;
      if (t.value === 'let' && next.type === 'name' && ['in', 'instanceof', 'of'].includes(next.value)) continue;
      const declarators: Array<[number, number]> = [];
      const names: string[] = [];
      let k = i + 1;
      for (;;) {
        const pattern = tokens[k];
        if (!pattern) break;
        const patternAfter = pattern.type === 'name' ? k + 1 : pattern.match >= 0 ? pattern.match + 1 : tokens.length;
        names.push(...patternNames(tokens, k, patternAfter));
        let end = patternAfter;
        if (isPunct(tokens[end], '=')) end = expressionEnd(tokens, end + 1, 0);
        declarators.push([k, end]);
        if (isPunct(tokens[end], ',')) {
          k = end + 1;
          continue;
        }
        k = end;
        break;
      }
      const after = isPunct(tokens[k], ';') ? k + 1 : k;
      found.push({ kind: t.value, first: i, after, names, declarators });
      i = after - 1;
      continue;
    }
    if (t.value === 'class') {
      if (!isName(next) || next.value === 'extends') continue;
      let k = i + 2;
      while (k < tokens.length && !(tokens[k].depth === 0 && isPunct(tokens[k], '{'))) k++;
      const body = tokens[k];
      if (!body || body.match < 0) continue;
      found.push({ kind: 'class', first: i, after: body.match + 1, names: [next.value], declarators: [] });
      i = body.match;
      continue;
    }
    // function declarations: [async] function [*] name ( … ) { … }
    let k = i;
    if (t.value === 'async') {
      if (!isName(next, 'function') || next.nlBefore) continue;
      k = i + 1;
    }
    let nameAt = k + 1;
    if (isPunct(tokens[nameAt], '*')) nameAt++;
    const name = tokens[nameAt];
    if (!isName(name) || !isPunct(tokens[nameAt + 1], '(')) continue;
    const params = tokens[nameAt + 1];
    const body = tokens[params.match + 1];
    if (params.match < 0 || !isPunct(body, '{') || body.match < 0) continue;
    found.push({ kind: 'function', first: i, after: body.match + 1, names: [name.value], declarators: [] });
    i = body.match;
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// Top-level await

/** Is the `{` at `index` the body of a function, method or arrow? */
function isFunctionBody(tokens: Token[], index: number): boolean {
  const prev = tokens[index - 1];
  if (!prev) return false;
  if (isPunct(prev, '=>')) return true;
  if (!isPunct(prev, ')') || prev.match < 0) return false;
  const beforeParen = tokens[prev.match - 1];
  if (!beforeParen) return false;
  if (beforeParen.type === 'name') return !['if', 'for', 'while', 'switch', 'catch', 'with', 'await'].includes(beforeParen.value);
  return isPunct(beforeParen, '*') || isPunct(beforeParen, ']'); // generator or computed method name
}

/** True when an `await` appears outside every function (so the cell needs an async wrapper). */
export function hasTopLevelAwait(tokens: Token[]): boolean {
  // the function-body braces enclosing each token, tracked with a stack of booleans
  const inFunction: boolean[] = [];
  let functionDepth = 0;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.type === 'punct' && (t.value === '{' || t.value === '(' || t.value === '[')) {
      const body = t.value === '{' && isFunctionBody(tokens, i);
      inFunction.push(body);
      if (body) functionDepth++;
      continue;
    }
    if (t.type === 'template' && t.value.endsWith('${')) {
      if (t.value.startsWith('}')) inFunction.pop(); // closes the previous `${`
      inFunction.push(false);
      continue;
    }
    if ((t.type === 'punct' && (t.value === '}' || t.value === ')' || t.value === ']')) || (t.type === 'template' && t.value.startsWith('}'))) {
      if (inFunction.pop()) functionDepth--;
      continue;
    }
    if (!isName(t, 'await') || functionDepth > 0) continue;
    const prev = tokens[i - 1];
    if (prev && (isPunct(prev, '.') || isPunct(prev, '?.'))) continue; // a property named await
    // an arrow function's expression body: look back through the same expression for '=>'
    let arrow = false;
    for (let k = i - 1; k >= 0; k--) {
      const q = tokens[k];
      if (q.depth < t.depth) break;
      if (q.depth > t.depth) continue;
      if (isPunct(q, ',') || isPunct(q, ';') || boundaryBefore(tokens, k + 1)) break;
      if (isPunct(q, '=>')) {
        arrow = true;
        break;
      }
    }
    if (!arrow) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Cell plans

export interface CellPlan {
  /** Run `source` as an async arrow called with the global object: the script's value is a Promise. */
  async: boolean;
  /** The script to compile. */
  source: string;
  /** Pass as vm.Script's lineOffset so line numbers match the cell. */
  lineOffset: number;
  /** Top-level names the cell declares. */
  declared: string[];
  /** Async only: whether the last expression's value is returned. */
  returnsValue: boolean;
}

/** The name of the wrapper's parameter holding the global object; unlikely to clash with user code. */
export const GLOBAL_PARAM = '__kgGlobal__';

interface Edit {
  at: number;
  remove: number;
  insert: string;
}

/** Apply edits to `code`; inserts at one position come out in the order they were listed. */
function applyEdits(code: string, edits: Edit[]): string {
  let out = code;
  const ordered = edits.map((e, index) => ({ ...e, index })).sort((a, b) => b.at - a.at || b.index - a.index);
  for (const e of ordered) {
    out = out.slice(0, e.at) + e.insert + out.slice(e.at + e.remove);
  }
  return out;
}

/** Statement keywords: a top-level statement starting with one of these is not an expression. */
const STATEMENT_WORDS = new Set([
  'if', 'else', 'for', 'while', 'do', 'try', 'catch', 'finally', 'switch', 'case', 'default', 'return', 'throw', 'break',
  'continue', 'var', 'let', 'const', 'class', 'function', 'debugger', 'with', 'import', 'export',
]);

/** Token range [first, after) of the last top-level statement, if it is an expression statement. */
function lastExpression(tokens: Token[]): [number, number] | undefined {
  let end = tokens.length;
  while (end > 0 && isPunct(tokens[end - 1], ';') && tokens[end - 1].depth === 0) end--;
  if (end === 0) return undefined;
  let start = end - 1;
  while (start > 0 && !(tokens[start].depth === 0 && boundaryBefore(tokens, start))) start--;
  const first = tokens[start];
  if (first.depth !== 0) return undefined;
  if (first.type === 'punct' && first.value === '{') return undefined;
  if (first.type === 'name') {
    if (STATEMENT_WORDS.has(first.value) && !(first.value === 'import' && isPunct(tokens[start + 1], '('))) return undefined;
    if (first.value === 'async' && isName(tokens[start + 1], 'function')) return undefined;
    if (isPunct(tokens[start + 1], ':')) return undefined; // a label
  }
  return [start, end];
}

/**
 * Plan a cell. Top-level let/const become var and class declarations become var assignments, so that
 * re-running a cell never meets "Identifier has already been declared". With top-level await, the
 * code runs inside an async arrow: declarations become assignments to globals declared by a `var`
 * after the arrow, function declarations are copied to the global object at the start, and the last
 * expression statement is returned (if `returnLast`).
 */
export function planCell(code: string, options: { forceAsync?: boolean; returnLast?: boolean } = {}): CellPlan {
  const { tokens } = scan(code);
  const decls = topLevelDeclarations(tokens);
  const declared = [...new Set(decls.flatMap((d) => d.names))];
  const isAsync = options.forceAsync ?? hasTopLevelAwait(tokens);
  const edits: Edit[] = [];

  if (!isAsync) {
    for (const d of decls) {
      const first = tokens[d.first];
      if (d.kind === 'let' || d.kind === 'const') {
        edits.push({ at: first.start, remove: first.value.length, insert: 'var'.padEnd(first.value.length) });
      } else if (d.kind === 'class') {
        edits.push({ at: first.start, remove: 0, insert: `var ${d.names[0]} = ` });
        edits.push({ at: tokens[d.after - 1].end, remove: 0, insert: ';' });
      }
    }
    return { async: false, source: applyEdits(code, edits), lineOffset: 0, declared, returnsValue: false };
  }

  const functions: string[] = [];
  for (const d of decls) {
    const first = tokens[d.first];
    if (d.kind === 'function') {
      functions.push(d.names[0]);
      continue;
    }
    if (d.kind === 'class') {
      edits.push({ at: first.start, remove: 0, insert: `void (${d.names[0]} = ` });
      edits.push({ at: tokens[d.after - 1].end, remove: 0, insert: ');' });
      continue;
    }
    // let/const/var: `let a = 1, {b} = o;` -> `;(  a = 1, {b} = o);` (same columns up to the last
    // declarator); a bare `let a` resets a to undefined, a bare `var a` keeps its value.
    for (const [a, b] of d.declarators) {
      const pattern = tokens[a];
      const hasInit = tokens.slice(a + 1, b).some((t) => t.depth === 0 && isPunct(t, '='));
      if (!hasInit && pattern.type === 'name' && b === a + 1 && d.kind !== 'var') {
        edits.push({ at: pattern.end, remove: 0, insert: ' = undefined' });
      }
    }
    const lastToken = tokens[d.declarators.length ? d.declarators[d.declarators.length - 1][1] - 1 : d.first];
    edits.push({ at: first.start, remove: first.value.length, insert: ';('.padEnd(first.value.length) });
    edits.push({ at: lastToken.end, remove: 0, insert: isPunct(tokens[d.after - 1], ';') && d.after - 1 > d.first ? ')' : ');' });
  }

  let returnsValue = false;
  let header = '';
  if (options.returnLast !== false) {
    const last = lastExpression(tokens);
    const inDecl = last && decls.some((d) => last[0] >= d.first && last[0] < d.after);
    if (last && !inDecl) {
      // `return (` goes at the end of the line before when the statement starts its line (and no
      // comment is in the way), so the statement keeps its columns in stack traces.
      const start = tokens[last[0]].start;
      const gapFrom = last[0] > 0 ? tokens[last[0] - 1].end : 0;
      const gap = code.slice(gapFrom, start);
      const lineStart = code.lastIndexOf('\n', start - 1) + 1;
      const startsLine = /^[ \t]*$/.test(code.slice(lineStart, start)) && !gap.includes('//') && !gap.includes('/*');
      if (startsLine && lineStart === 0) header = 'return (';
      else if (startsLine) edits.push({ at: code[lineStart - 2] === '\r' ? lineStart - 2 : lineStart - 1, remove: 0, insert: ' ;return (' });
      else edits.push({ at: start, remove: 0, insert: 'return (' });
      edits.push({ at: tokens[last[1] - 1].end, remove: 0, insert: ')' });
      returnsValue = true;
    }
  }

  const copyFunctions = functions.map((f) => `${GLOBAL_PARAM}.${f} = ${f}; `).join('');
  const hoisted = declared.length > 0 ? `\nvar ${declared.join(', ')};` : '';
  const source = `(async (${GLOBAL_PARAM}) => { ${copyFunctions}${header}\n${applyEdits(code, edits)}\n})(this);${hoisted}`;
  return { async: true, source, lineOffset: -1, declared, returnsValue };
}

/**
 * Compile `code` the way the kernel would run it; returns the SyntaxError, or undefined when it compiles.
 * Nothing is run.
 */
export function syntaxError(code: string, filename = '<cell>'): Error | undefined {
  const plan = planCell(code, { returnLast: false });
  try {
    new vm.Script(plan.source, { filename, lineOffset: plan.lineOffset });
    return undefined;
  } catch (error) {
    if (plan.async) return error as Error;
    // `await` in a cell the heuristics judged synchronous: give the async form a chance
    if (!scan(code).tokens.some((t) => isName(t, 'await'))) return error as Error;
    try {
      const forced = planCell(code, { forceAsync: true, returnLast: false });
      new vm.Script(forced.source, { filename, lineOffset: forced.lineOffset });
      return undefined;
    } catch {
      return error as Error;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// is_complete

export interface Completeness {
  status: 'complete' | 'incomplete' | 'invalid';
  indent?: string;
}

/** Jupyter's is_complete: can this be run as it is, would more lines help, or is it broken for good? */
export function isComplete(code: string): Completeness {
  if (code.trim() === '') return { status: 'complete' };
  const s = scan(code);
  if (s.mismatch || s.brokenString) return { status: 'invalid' };
  if (s.unterminated === 'template' || s.unterminated === 'comment' || s.unterminated === 'string') {
    return { status: 'incomplete', indent: '' };
  }
  if (s.unterminated === 'regex') return { status: 'invalid' };
  if (s.open.length > 0) return { status: 'incomplete', indent: '  '.repeat(s.open.length) };
  // A trailing backslash outside a string cannot be continued.
  const error = syntaxError(code);
  if (!error) return { status: 'complete' };
  if (/Unexpected end of input/.test(error.message)) return { status: 'incomplete', indent: '' };
  return { status: 'invalid' };
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
  const s = scan(before);
  const tokens = s.tokens;
  const last = tokens[tokens.length - 1];
  if (s.unterminated || s.brokenString) return { prefix: '', start: cursor, inLiteral: true };
  // a `//` comment running to the cursor leaves no token there but the text says so
  const lineStart = before.lastIndexOf('\n') + 1;
  if (commentOpenAt(before, lineStart, last)) return { prefix: '', start: cursor, inLiteral: true };
  let prefix = '';
  let start = cursor;
  let k = tokens.length - 1;
  if (last && last.end === cursor && last.type === 'name') {
    prefix = last.value;
    start = last.start;
    k--;
  } else if (last && last.end === cursor && last.type !== 'punct') {
    return { prefix: '', start: cursor, inLiteral: last.type !== 'number' };
  }
  const dot = tokens[k];
  if (!dot || !(isPunct(dot, '.') || isPunct(dot, '?.')) || (prefix === '' && dot.end !== cursor && !/^\s*$/.test(code.slice(dot.end, cursor)))) {
    return { prefix, start, inLiteral: false };
  }
  // walk back over a chain of names, dots and bracketed literals
  let j = k - 1;
  let first = -1;
  for (;;) {
    const t = tokens[j];
    if (!t) break;
    if (t.type === 'name' || t.type === 'string' || t.type === 'number' || (t.type === 'template' && t.value.startsWith('`') && t.value.endsWith('`'))) {
      first = j;
      const q = tokens[j - 1];
      if (q && (isPunct(q, '.') || isPunct(q, '?.')) && t.type === 'name') {
        j -= 2;
        continue;
      }
      break;
    }
    if (isPunct(t, ']') && t.match >= 0) {
      const inner = tokens.slice(t.match + 1, j);
      if (inner.length !== 1 || !(inner[0].type === 'string' || inner[0].type === 'number')) break;
      first = t.match;
      j = t.match - 1;
      const q = tokens[j];
      if (q && (q.type === 'name' || isPunct(q, ']'))) continue;
      first = -1;
      break;
    }
    if (isPunct(t, ')') && t.match >= 0 && tokens.slice(t.match + 1, j).length === 0) break; // a call: never evaluated
    break;
  }
  if (first < 0 || first > k - 1) return { prefix, start, inLiteral: false };
  const firstToken = tokens[first];
  if (firstToken.type === 'name' && ['super', 'new', 'function', 'class', 'import'].includes(firstToken.value)) {
    return { prefix, start, inLiteral: false };
  }
  const object = code.slice(firstToken.start, tokens[k - 1].end);
  return { prefix, start, object, inLiteral: false };
}

function commentOpenAt(before: string, lineStart: number, last: Token | undefined): boolean {
  const from = Math.max(lineStart, last ? last.end : 0);
  const tail = before.slice(from);
  return tail.includes('//');
}

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

/** Names a cell declares anywhere (top-level or not), for completing names not yet defined. */
export function namesInCode(code: string): string[] {
  const { tokens } = scan(code);
  const names = new Set<string>();
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t.type !== 'name') continue;
    if (t.value === 'let' || t.value === 'const' || t.value === 'var') {
      const next = tokens[i + 1];
      if (!next) continue;
      const after = next.type === 'name' ? i + 2 : next.match >= 0 ? next.match + 1 : tokens.length;
      for (const name of patternNames(tokens, i + 1, after)) names.add(name);
    } else if (t.value === 'function' || t.value === 'class') {
      let k = i + 1;
      if (isPunct(tokens[k], '*')) k++;
      if (isName(tokens[k]) && tokens[k].value !== 'extends') names.add(tokens[k].value);
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
