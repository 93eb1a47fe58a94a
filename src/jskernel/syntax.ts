/**
 * JavaScript syntax for the notebook kernel, on the acorn parser:
 *  - planCell: the script a cell runs as, so that its top-level declarations persist across cells,
 *    top-level `await` works, and the last expression statement's value is the cell's result;
 *  - isComplete: Jupyter's is_complete ('complete' | 'incomplete' | 'invalid', with an indent);
 * (What is being typed, for completion and inspection, is tokens.ts's.)
 * Rewrites only insert or replace a few characters, so that line numbers (and most columns) in stack
 * traces are the cell's own.
 */
import { Parser, tokTypes as tt, type Pattern, type Program, type VariableDeclaration } from 'acorn';
import { base, recursive, type RecursiveVisitors } from 'acorn-walk';
import * as vm from 'node:vm';
import { CLOSERS, lex, OPENERS, OPTIONS, type AcornError } from './tokens.ts';

/** Parse a cell, with `await` allowed at the top level, or else as a plain script (where `await` may be a name). */
function parse(code: string): Program | AcornError {
  try {
    return Parser.parse(code, OPTIONS);
  } catch (error) {
    try {
      return Parser.parse(code, { ...OPTIONS, allowAwaitOutsideFunction: false });
    } catch {
      return error as AcornError;
    }
  }
}

/** Does V8 itself compile `code` as a script? (For syntax acorn does not know yet.) */
function compiles(code: string): boolean {
  try {
    new vm.Script(code);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Declarations and top-level await

export interface Declaration {
  kind: 'let' | 'const' | 'var' | 'class' | 'function';
  names: string[];
  start: number;
}

function patternNames(pattern: Pattern, out: string[] = []): string[] {
  switch (pattern.type) {
    case 'Identifier':
      out.push(pattern.name);
      break;
    case 'ObjectPattern':
      for (const p of pattern.properties) patternNames(p.type === 'RestElement' ? p.argument : p.value, out);
      break;
    case 'ArrayPattern':
      for (const element of pattern.elements) if (element) patternNames(element, out);
      break;
    case 'RestElement':
      patternNames(pattern.argument, out);
      break;
    case 'AssignmentPattern':
      patternNames(pattern.left, out);
      break;
  }
  return out;
}

const REWRITTEN_KINDS = new Set(['let', 'const', 'var']);

/** The cell's own top-level declarations (not those in blocks, loops or functions). */
export function topLevelDeclarations(code: string | Program): Declaration[] {
  const program = typeof code === 'string' ? parse(code) : code;
  if (program instanceof Error) return [];
  const found: Declaration[] = [];
  for (const node of program.body) {
    if (node.type === 'VariableDeclaration' && REWRITTEN_KINDS.has(node.kind)) {
      const names = node.declarations.flatMap((d) => patternNames(d.id));
      found.push({ kind: node.kind as Declaration['kind'], names, start: node.start });
    } else if (node.type === 'ClassDeclaration' || node.type === 'FunctionDeclaration') {
      found.push({ kind: node.type === 'ClassDeclaration' ? 'class' : 'function', names: [node.id.name], start: node.start });
    }
  }
  return found;
}

/** Where a `var` declaration stands, which decides how it becomes an assignment. */
type VarSite = 'list' | 'single' | 'for-init' | 'for-left';

interface Outside {
  /** An `await` (or `for await`) outside every function. */
  awaits: boolean;
  /** `var` declarations outside every function. */
  vars: Array<{ node: VariableDeclaration; site: VarSite }>;
}

/** Walk the code outside functions (and class static blocks): top-level await, and `var`s. */
function outsideFunctions(program: Program): Outside {
  const found: Outside = { awaits: false, vars: [] };
  const inList = new Set<unknown>(program.body);
  const forInit = new Set<unknown>();
  const forLeft = new Set<unknown>();
  const skip = () => undefined;
  const visitors: RecursiveVisitors<undefined> = {
    Function: skip,
    StaticBlock: skip,
    AwaitExpression(node, state, c) {
      found.awaits = true;
      c(node.argument, state);
    },
    ForOfStatement(node, state, c) {
      if (node.await) found.awaits = true;
      forLeft.add(node.left);
      base.ForOfStatement!(node, state, c);
    },
    ForInStatement(node, state, c) {
      forLeft.add(node.left);
      base.ForInStatement!(node, state, c);
    },
    ForStatement(node, state, c) {
      forInit.add(node.init);
      base.ForStatement!(node, state, c);
    },
    BlockStatement(node, state, c) {
      for (const statement of node.body) inList.add(statement);
      base.BlockStatement!(node, state, c);
    },
    SwitchCase(node, state, c) {
      for (const statement of node.consequent) inList.add(statement);
      base.SwitchCase!(node, state, c);
    },
    VariableDeclaration(node, state, c) {
      if (node.kind === 'var') {
        const site = forLeft.has(node) ? 'for-left' : forInit.has(node) ? 'for-init' : inList.has(node) ? 'list' : 'single';
        found.vars.push({ node, site });
      }
      base.VariableDeclaration!(node, state, c);
    },
  };
  recursive(program, undefined, visitors);
  return found;
}

/** True when `await` appears outside every function, so the cell must run in an async function. */
export function hasTopLevelAwait(code: string | Program): boolean {
  const program = typeof code === 'string' ? parse(code) : code;
  return !(program instanceof Error) && outsideFunctions(program).awaits;
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
  /** Names the cell declares outside functions (they become properties of the global object). */
  declared: string[];
  /** The script's value (its completion value, or for an async plan what its promise resolves to) is the cell's result. */
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
  for (const e of ordered) out = out.slice(0, e.at) + e.insert + out.slice(e.at + e.remove);
  return out;
}

/**
 * A cell that starts with `{` and ends with `}` is an object literal if it parses as one, as in
 * Node's REPL (`{a: 1}` shows the object rather than running a block with a label).
 */
function asObjectLiteral(code: string): string | undefined {
  if (!/^\s*\{/.test(code) || !/\}\s*$/.test(code)) return undefined;
  const wrapped = `(${code})`;
  const program = parse(wrapped);
  if (program instanceof Error || program.body.length !== 1) return undefined;
  const [statement] = program.body;
  return statement.type === 'ExpressionStatement' && statement.expression.type === 'ObjectExpression' ? wrapped : undefined;
}

/**
 * Plan a cell. Top-level let/const/class declarations become `var`s (so a later cell sees them, can
 * assign them and can declare them again). A cell with top-level await runs inside an async arrow:
 * its declarations (and `var`s in its blocks) become assignments to globals declared by a `var` after
 * the arrow, its function declarations are copied to the global object at the start, and its last
 * expression statement is returned. A cell that does not parse throws the SyntaxError to report.
 */
export function planCell(code: string, options: { returnLast?: boolean; filename?: string } = {}): CellPlan {
  code = asObjectLiteral(code) ?? code;
  const program = parse(code);
  if (program instanceof Error) {
    // V8 may know syntax that acorn does not: then the cell runs as it is.
    if (compiles(code)) return { async: false, source: code, lineOffset: 0, declared: [], returnsValue: options.returnLast !== false };
    throw cellSyntaxError(code, program, options.filename ?? '<cell>');
  }
  const outside = outsideFunctions(program);
  const decls = topLevelDeclarations(program);
  const named = [...decls, ...outside.vars.map(({ node }) => ({ start: node.start, names: node.declarations.flatMap((d) => patternNames(d.id)) }))];
  const declared = [...new Set(named.sort((a, b) => a.start - b.start).flatMap((d) => d.names))];
  const statements = program.body.filter((s) => s.type !== 'EmptyStatement');
  const last = statements[statements.length - 1];
  const returnsValue = options.returnLast !== false && last?.type === 'ExpressionStatement';
  const edits: Edit[] = [];
  const edit = (at: number, remove: number, insert: string) => edits.push({ at, remove, insert });
  // A bare `let x` in a new cell starts x afresh, as a new declaration would.
  const resetBare = (node: VariableDeclaration) => {
    if (node.kind !== 'let') return;
    for (const d of node.declarations) if (!d.init) edit(d.id.end, 0, ' = undefined');
  };

  if (!outside.awaits) {
    // A script: `var` and function declarations already make globals; its completion value is the result.
    for (const node of program.body) {
      if (node.type === 'VariableDeclaration' && (node.kind === 'let' || node.kind === 'const')) {
        edit(node.start, node.kind.length, 'var'.padEnd(node.kind.length));
        resetBare(node);
      } else if (node.type === 'ClassDeclaration') {
        edit(node.start, 0, `var ${node.id.name} = `);
        edit(node.end, 0, ';');
      }
    }
    return { async: false, source: applyEdits(code, edits), lineOffset: 0, declared, returnsValue };
  }

  // `let a = 1, {b} = o;` -> `;(  a = 1, {b} = o);`: the same columns up to the last declarator.
  const toAssignment = (node: VariableDeclaration, site: VarSite) => {
    const length = node.kind.length;
    if (site === 'for-left') return edit(node.start, length, ' '.repeat(length)); // for (var x of xs)
    resetBare(node);
    edit(node.start, length, (site === 'list' ? ';(' : '(').padEnd(length));
    const close = site === 'for-init' || code[node.end - 1] === ';' ? ')' : ');';
    edit(node.declarations[node.declarations.length - 1].end, 0, close);
  };
  for (const { node, site } of outside.vars) toAssignment(node, site);
  const functions: string[] = [];
  for (const node of program.body) {
    if (node.type === 'VariableDeclaration' && (node.kind === 'let' || node.kind === 'const')) toAssignment(node, 'list');
    else if (node.type === 'FunctionDeclaration') functions.push(node.id.name);
    else if (node.type === 'ClassDeclaration') {
      edit(node.start, 0, `void (${node.id.name} = `);
      edit(node.end, 0, ');');
    }
  }

  let header = '';
  if (returnsValue && last.type === 'ExpressionStatement') {
    // `return (` goes at the end of the line before when the statement starts its line (and no
    // comment is in the way), so the statement keeps its columns in stack traces.
    const index = program.body.indexOf(last);
    const gap = code.slice(index > 0 ? program.body[index - 1].end : 0, last.start);
    const lineStart = code.lastIndexOf('\n', last.start - 1) + 1;
    const startsLine = /^[ \t]*$/.test(code.slice(lineStart, last.start)) && !gap.includes('/');
    if (startsLine && lineStart === 0) header = 'return (';
    else if (startsLine) edit(code[lineStart - 2] === '\r' ? lineStart - 2 : lineStart - 1, 0, ' ;return (');
    else edit(last.start, 0, 'return (');
    edit(last.expression.end, 0, ')');
  }
  const copyFunctions = functions.map((f) => `${GLOBAL_PARAM}.${f} = ${f}; `).join('');
  const hoisted = declared.length > 0 ? `\nvar ${declared.join(', ')};` : '';
  const source = `(async (${GLOBAL_PARAM}) => { ${copyFunctions}${header}\n${applyEdits(code, edits)}\n})(this);${hoisted}`;
  return { async: true, source, lineOffset: -1, declared, returnsValue };
}

/**
 * The SyntaxError for a cell that does not parse, shaped like V8's for a script: where, the line,
 * a caret, then the message (with V8's wording for unexpected tokens).
 */
function cellSyntaxError(code: string, error: AcornError, filename: string): SyntaxError {
  let message = error.message.replace(/ \(\d+:\d+\)$/, '');
  if (message === 'Unexpected token') message = unexpected(code, error.pos);
  const { line, column } = error.loc;
  const text = code.split(/\r\n|[\n\r\u2028\u2029]/)[line - 1] ?? '';
  const syntaxError = new SyntaxError(message);
  syntaxError.stack = `${filename}:${line}\n${text}\n${' '.repeat(column)}^\n\nSyntaxError: ${message}`;
  return syntaxError;
}

function unexpected(code: string, pos: number): string {
  const token = lex(code.slice(pos)).tokens[0];
  if (!token) return 'Unexpected end of input';
  const text = code.slice(pos + token.start, pos + token.end);
  if (token.type === tt.name) return `Unexpected identifier '${text}'`;
  if (token.type === tt.num) return 'Unexpected number';
  if (token.type === tt.string) return 'Unexpected string';
  if (token.type === tt.backQuote) return 'Unexpected template string';
  return `Unexpected token '${text}'`;
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
  const program = parse(code);
  if (!(program instanceof Error)) return { status: 'complete' };
  const { message, pos } = program;
  let more: boolean;
  if (/^Unterminated (template|comment)/.test(message)) more = true;
  // a string goes on to the next line only after a backslash
  else if (/^Unterminated string/.test(message)) more = /^(?:[^\\\n\r]|\\[^])*\\$/.test(code.slice(pos + 1));
  else if (/^Unterminated/.test(message)) more = false;
  else more = pos >= code.length; // the parser wanted more and met the end
  if (more) {
    let open = 0;
    for (const t of lex(code).tokens) {
      if (OPENERS.has(t.type)) open++;
      else if (CLOSERS.has(t.type) && open > 0) open--;
    }
    return { status: 'incomplete', indent: '  '.repeat(open) };
  }
  return { status: compiles(code) ? 'complete' : 'invalid' };
}
