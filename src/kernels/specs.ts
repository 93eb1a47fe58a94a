/**
 * Kernelspec discovery (protocol.md §3): the kernel.json files in the kernel search path (paths.ts),
 * how they are validated and normalized, and the REST model served under /api/kernelspecs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createLogger, errorMessage, type Logger } from '../log.ts';
import { isJsonObject } from '../messaging/message.ts';
import { DEFAULT_PROVISIONER } from './provisioners/provisioner.ts';

/** The normalized kernel.json, as served in REST "spec". */
export interface KernelSpecDict {
  argv: string[];
  env: Record<string, string>;
  display_name: string;
  language: string;
  interrupt_mode: 'signal' | 'message';
  metadata: Record<string, unknown>;
  kernel_protocol_version?: string;
}

export interface KernelSpec {
  /** The directory name, lowercased. */
  name: string;
  /** Absolute path of the spec's folder ('' for a built-in spec). */
  resourceDir: string;
  spec: KernelSpecDict;
  /** A built-in spec's resource files, name -> content (it has no folder). */
  files?: Record<string, string>;
}

/**
 * Validate and normalize a parsed kernel.json; a string is the reason it is rejected. A spec asking
 * for a provisioner not in `provisioners` is hidden, as Jupyter does for provisioners that are not installed.
 */
function normalize(name: string, raw: unknown, provisioners: readonly string[]): KernelSpecDict | string {
  if (!isJsonObject(raw)) return 'not a JSON object';
  const { argv, env, display_name, language, interrupt_mode, metadata, kernel_protocol_version } = raw;
  if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string')) return 'argv must be an array of strings';
  if (env !== undefined && (!isJsonObject(env) || !Object.values(env).every((v) => typeof v === 'string')))
    return 'env must be an object of strings';
  if (display_name !== undefined && typeof display_name !== 'string') return 'display_name must be a string';
  if (language !== undefined && typeof language !== 'string') return 'language must be a string';
  if (interrupt_mode !== undefined && typeof interrupt_mode !== 'string') return 'interrupt_mode must be a string';
  const mode = (interrupt_mode ?? 'signal').toLowerCase();
  if (mode !== 'signal' && mode !== 'message') return `invalid interrupt_mode ${JSON.stringify(interrupt_mode)}`;
  if (metadata !== undefined && !isJsonObject(metadata)) return 'metadata must be an object';
  const provisioner = metadata?.kernel_provisioner;
  if (provisioner !== undefined) {
    const pname = isJsonObject(provisioner) ? provisioner.provisioner_name : undefined;
    if (typeof pname !== 'string' || !provisioners.includes(pname)) return `unsupported kernel provisioner ${JSON.stringify(pname)}`;
  }
  if (kernel_protocol_version !== undefined && typeof kernel_protocol_version !== 'string')
    return 'kernel_protocol_version must be a string';

  const spec: KernelSpecDict = {
    argv: argv as string[],
    env: (env as Record<string, string> | undefined) ?? {},
    display_name: display_name ?? name,
    language: language ?? '',
    interrupt_mode: mode,
    metadata: metadata ?? {},
  };
  if (kernel_protocol_version !== undefined) spec.kernel_protocol_version = kernel_protocol_version;
  return spec;
}

/** Parsed kernel.json, keyed by path and reused while the file's mtime and size are unchanged. */
interface CacheEntry {
  mtimeMs: number;
  size: number;
  spec: KernelSpecDict | undefined;
}

const VALID_NAME = /^[a-z0-9._-]+$/i;

export class KernelSpecStore {
  private readonly dirs: string[];
  private readonly log: Logger;
  private readonly cache = new Map<string, CacheEntry>();
  private readonly warned = new Set<string>();

  private readonly builtins: KernelSpec[];

  private readonly provisioners: readonly string[];

  /**
   * `builtins` are listed after the folders' specs, and hidden by an installed spec of the same name;
   * `provisioners` are the provisioner names this gateway has.
   */
  constructor(dirs: string[], log: Logger = createLogger(), builtins: KernelSpec[] = [], provisioners: readonly string[] = [DEFAULT_PROVISIONER]) {
    this.dirs = dirs.map((d) => path.resolve(d));
    this.log = log;
    this.builtins = builtins;
    this.provisioners = provisioners;
  }

  /**
   * All usable specs, sorted by name. Rescans the folders on every call (kernels may be installed
   * while we run); only kernel.json files whose mtime or size changed are re-read.
   */
  list(): KernelSpec[] {
    const found = new Map<string, KernelSpec | undefined>();
    for (const dir of this.dirs) {
      let entries: string[];
      try {
        entries = fs.readdirSync(dir);
      } catch {
        continue; // missing or unreadable search dirs are normal
      }
      for (const entry of entries) {
        const name = entry.toLowerCase();
        if (found.has(name)) continue;
        const resourceDir = path.join(dir, entry);
        const file = path.join(resourceDir, 'kernel.json');
        let stat: fs.Stats;
        try {
          stat = fs.statSync(file);
        } catch {
          continue;
        }
        if (!stat.isFile()) continue;
        // As in Jupyter, the first kernel.json for a name claims it even if it turns out invalid.
        const spec = this.load(name, file, stat);
        found.set(name, spec && { name, resourceDir, spec });
      }
    }
    for (const builtin of this.builtins) if (!found.has(builtin.name)) found.set(builtin.name, builtin);
    return [...found.values()]
      .filter((s): s is KernelSpec => s !== undefined)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Case-insensitive lookup. */
  get(name: string): KernelSpec | undefined {
    const wanted = name.toLowerCase();
    return this.list().find((s) => s.name === wanted);
  }

  names(): string[] {
    return this.list().map((s) => s.name);
  }

  /** Resource files of a spec for REST, key -> file name: kernel.js, kernel.css and logo-* files. */
  resources(spec: KernelSpec): Record<string, string> {
    let files: string[];
    try {
      files = spec.files ? Object.keys(spec.files).sort() : fs.readdirSync(spec.resourceDir).sort();
    } catch {
      return {};
    }
    const out: Record<string, string> = {};
    for (const file of files) {
      let key: string;
      if (file === 'kernel.js' || file === 'kernel.css') key = file;
      else if (file.startsWith('logo-')) key = file.slice(0, file.length - path.extname(file).length);
      else continue;
      // Only advertise what the static handler will actually serve.
      if (spec.files || containedFile(spec.resourceDir, file) !== undefined) out[key] = file;
    }
    return out;
  }

  /** Absolute path of a regular file inside the named spec's folder, or undefined (missing, escaping, built-in). */
  resolveResource(name: string, file: string): string | undefined {
    const spec = this.get(name);
    return spec && !spec.files ? containedFile(spec.resourceDir, file) : undefined;
  }

  /** The content of a built-in spec's resource file, or undefined. */
  builtinResource(name: string, file: string): string | undefined {
    const files = this.get(name)?.files;
    return files && Object.hasOwn(files, file) ? files[file] : undefined;
  }

  /** Read and validate one kernel.json, warning once per bad file version. */
  private load(name: string, file: string, stat: fs.Stats): KernelSpecDict | undefined {
    const cached = this.cache.get(file);
    if (cached && cached.mtimeMs === stat.mtimeMs && cached.size === stat.size) return cached.spec;
    let result: KernelSpecDict | string;
    try {
      result = normalize(name, JSON.parse(fs.readFileSync(file, 'utf8')), this.provisioners);
    } catch (e) {
      result = `cannot read: ${errorMessage(e)}`;
    }
    const spec = typeof result === 'string' ? undefined : result;
    this.cache.set(file, { mtimeMs: stat.mtimeMs, size: stat.size, spec });
    if (typeof result === 'string') this.warnOnce(file, `Skipping kernelspec ${name} (${file}): ${result}`);
    else if (!VALID_NAME.test(name))
      this.warnOnce(file, `Kernelspec name ${JSON.stringify(name)} should match ${VALID_NAME.source}`);
    return spec;
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.log.warn(message);
  }
}

/**
 * `dir/file` if it is a regular file that stays inside `dir`: no absolute paths, no `..` escapes,
 * and no symlinks resolving outside (checked on real paths, so a link inside pointing out is refused).
 */
function containedFile(dir: string, file: string): string | undefined {
  if (file === '' || file.includes('\0') || path.isAbsolute(file) || path.win32.isAbsolute(file)) return undefined;
  const full = path.resolve(dir, file);
  if (!inside(dir, full)) return undefined;
  try {
    if (!inside(fs.realpathSync(dir), fs.realpathSync(full))) return undefined;
    return fs.statSync(full).isFile() ? full : undefined;
  } catch {
    return undefined;
  }
}

function inside(dir: string, target: string): boolean {
  const rel = path.relative(dir, target);
  return rel !== '' && rel !== '..' && !rel.startsWith('..' + path.sep) && !path.isAbsolute(rel);
}

/** REST model {name, spec, resources}; `name` is echoed as requested and used in the resource URLs. */
export function kernelSpecModel(
  spec: KernelSpec,
  requestedName: string,
  baseUrl: string,
  store: KernelSpecStore,
): { name: string; spec: KernelSpecDict; resources: Record<string, string> } {
  const resources: Record<string, string> = {};
  for (const [key, file] of Object.entries(store.resources(spec))) {
    resources[key] = `${baseUrl}kernelspecs/${encodeURIComponent(requestedName)}/${encodeURIComponent(file)}`;
  }
  // A copy, so callers can't alter the store's cached spec.
  return { name: requestedName, spec: structuredClone(spec.spec), resources };
}

/** `configured` if non-empty, else 'python3' if installed, else the first installed spec, else a built-in one. */
export function defaultKernelName(store: KernelSpecStore, configured: string): string {
  if (configured) return configured;
  const specs = store.list();
  if (specs.some((spec) => spec.name === 'python3')) return 'python3';
  // A built-in kernel is the default only when nothing is installed.
  return (specs.find((spec) => !spec.files) ?? specs[0])?.name ?? 'python3';
}
