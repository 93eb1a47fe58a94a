/**
 * Values as Jupyter mime bundles: util.inspect for text/plain, an object's own bundle when it has one
 * (`[Symbol.for('jupyter.mime')]()` or `_toMime()`), and the `display` global with its helpers.
 */
import { inspect, types } from 'node:util';

export type MimeBundle = Record<string, unknown>;

export interface DisplayMessage {
  data: MimeBundle;
  metadata: Record<string, unknown>;
  transient: Record<string, unknown>;
  /** update_display_data rather than display_data. */
  update: boolean;
}

/** The symbol an object can implement to give its own mime bundle. */
export const MIME_SYMBOL = Symbol.for('jupyter.mime');

/** How values are shown as text/plain (Node REPL style, without colors). */
export const INSPECT_OPTIONS = { depth: 4, colors: false, maxArrayLength: 100, maxStringLength: 10_000, breakLength: 100 } as const;

export function formatValue(value: unknown): string {
  return inspect(value, INSPECT_OPTIONS);
}

const isObject = (v: unknown): v is Record<string | symbol, unknown> =>
  (typeof v === 'object' && v !== null) || typeof v === 'function';

function checkBundle(bundle: unknown, from: string): MimeBundle {
  if (!isObject(bundle) || Array.isArray(bundle)) throw new TypeError(`${from} must return a mime bundle object like {'text/html': '<b>hi</b>'}`);
  const out: MimeBundle = {};
  for (const [mime, data] of Object.entries(bundle)) {
    if (!mime.includes('/')) throw new TypeError(`${from}: ${JSON.stringify(mime)} is not a mime type`);
    const jsonType = mime === 'application/json' || mime.endsWith('+json');
    if (!jsonType && typeof data !== 'string') throw new TypeError(`${from}: the data for ${mime} must be a string`);
    out[mime] = jsonType ? JSON.parse(JSON.stringify(data ?? null)) : data;
  }
  return out;
}

/** The object's own mime bundle, or undefined when it has none. Errors from its method propagate. */
export function ownMimeBundle(value: unknown): MimeBundle | undefined {
  if (!isObject(value)) return undefined;
  let method: unknown;
  let from: string;
  try {
    method = value[MIME_SYMBOL];
    from = "[Symbol.for('jupyter.mime')]()";
    if (typeof method !== 'function') {
      method = value._toMime;
      from = '_toMime()';
    }
  } catch {
    return undefined; // a throwing getter or a revoked proxy: just inspect it
  }
  if (typeof method !== 'function') return undefined;
  return checkBundle((method as () => unknown).call(value), from);
}

/** A value's bundle: its own (plus text/plain if missing) or text/plain from inspect. */
export function mimeBundle(value: unknown): MimeBundle {
  const own = ownMimeBundle(value);
  if (!own) return { 'text/plain': formatValue(value) };
  if (!('text/plain' in own)) own['text/plain'] = formatValue(value);
  return own;
}

function base64(data: unknown, what: string): string {
  if (typeof data === 'string') return data.replace(/\s+/g, '');
  if (types.isUint8Array(data) || types.isArrayBuffer(data)) return Buffer.from(data as Uint8Array).toString('base64');
  throw new TypeError(`display.${what}() needs base64 text, a Buffer or a Uint8Array`);
}

function text(data: unknown, what: string): string {
  if (typeof data !== 'string') throw new TypeError(`display.${what}() needs a string`);
  return data;
}

/** Bundles for the `display.<kind>(…)` helpers. */
export const helperBundles = {
  html: (s: unknown): MimeBundle => ({ 'text/html': text(s, 'html'), 'text/plain': text(s, 'html') }),
  markdown: (s: unknown): MimeBundle => ({ 'text/markdown': text(s, 'markdown'), 'text/plain': text(s, 'markdown') }),
  svg: (s: unknown): MimeBundle => ({ 'image/svg+xml': text(s, 'svg'), 'text/plain': '<SVG image>' }),
  latex: (s: unknown): MimeBundle => ({ 'text/latex': text(s, 'latex'), 'text/plain': text(s, 'latex') }),
  text: (s: unknown): MimeBundle => ({ 'text/plain': typeof s === 'string' ? s : formatValue(s) }),
  json: (value: unknown): MimeBundle => {
    const json = JSON.stringify(value);
    if (json === undefined) throw new TypeError('display.json() needs a JSON-serializable value');
    return { 'application/json': JSON.parse(json), 'text/plain': JSON.stringify(value, null, 2) };
  },
  png: (data: unknown): MimeBundle => ({ 'image/png': base64(data, 'png'), 'text/plain': '<PNG image>' }),
  jpeg: (data: unknown): MimeBundle => ({ 'image/jpeg': base64(data, 'jpeg'), 'text/plain': '<JPEG image>' }),
  mime: (bundle: unknown): MimeBundle => checkBundle(bundle, 'display.mime()'),
};

export interface DisplayOptions {
  metadata?: Record<string, unknown>;
  /** Names the output so `display.update(…, {display_id})` can replace it later. */
  display_id?: string;
  /** Treat the value as a mime bundle. */
  raw?: boolean;
}

export type DisplayFunction = ((value: unknown, options?: DisplayOptions) => void) & {
  [K in keyof typeof helperBundles]: (data: unknown, options?: DisplayOptions) => void;
} & { update: (value: unknown, options: DisplayOptions & { display_id: string }) => void };

/** Build the `display` global; each call hands a display_data (or update) to `emit`. */
export function createDisplay(emit: (message: DisplayMessage) => void): DisplayFunction {
  const send = (data: MimeBundle, options: DisplayOptions | undefined, update: boolean): void => {
    const metadata = isObject(options?.metadata) ? (JSON.parse(JSON.stringify(options.metadata)) as Record<string, unknown>) : {};
    const transient: Record<string, unknown> = {};
    if (options?.display_id !== undefined) transient.display_id = String(options.display_id);
    emit({ data, metadata, transient, update });
  };
  const display = ((value: unknown, options?: DisplayOptions): void => {
    send(options?.raw ? helperBundles.mime(value) : mimeBundle(value), options, false);
  }) as DisplayFunction;
  for (const [name, bundle] of Object.entries(helperBundles)) {
    Object.defineProperty(display, name, {
      value: (data: unknown, options?: DisplayOptions) => send(bundle(data), options, false),
      enumerable: true,
    });
  }
  Object.defineProperty(display, 'update', {
    value: (value: unknown, options: DisplayOptions & { display_id: string }): void => {
      if (options?.display_id === undefined) throw new TypeError('display.update() needs {display_id}');
      send(options.raw ? helperBundles.mime(value) : mimeBundle(value), options, true);
    },
    enumerable: true,
  });
  return display;
}
