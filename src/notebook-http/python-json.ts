/**
 * JSON text laid out as Python's json.dumps writes it (", " and ": " separators, every character
 * outside printable ASCII escaped as \uXXXX). The reference builds the REQUEST value, execute_result
 * bodies and swagger.json with json.dumps, and being ASCII-only is what lets the REQUEST value be
 * written as a string literal in any kernel language without encoding concerns.
 */

/** json.dumps(value) for plain JSON data (objects keep their key order). */
export function pythonJsonDumps(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError(`cannot serialise ${typeof value} as JSON`);
  return pythonJsonLayout(text);
}

/**
 * Re-lay out valid JSON text: insignificant whitespace dropped, Python's separators, non-printable and
 * non-ASCII characters escaped. Numbers and the escapes already present are kept as written, so a
 * client's JSON body passes through without losing the precision of its numbers.
 */
export function pythonJsonLayout(json: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (inString) {
      if (c === '\\') {
        out += c + json[++i];
        continue;
      }
      if (c === '"') inString = false;
      out += asciiChar(c);
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c === ',') out += ', ';
    else if (c === ':') out += ': ';
    else if (c !== ' ' && c !== '\t' && c !== '\n' && c !== '\r') out += c;
  }
  return out;
}

/** One UTF-16 code unit as it may appear in an ASCII JSON string (astral characters become two escapes, as in Python). */
function asciiChar(c: string): string {
  const code = c.charCodeAt(0);
  return code >= 0x20 && code <= 0x7e ? c : '\\u' + code.toString(16).padStart(4, '0');
}
