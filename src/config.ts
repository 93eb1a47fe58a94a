/**
 * The gateway's configuration: the Config type and its defaults.
 * Parsing (KG_* environment variables, --KernelGatewayApp.x=y flags, config files, validation),
 * --generate-config and --help-all texts live below.
 */
import { accessSync, constants as fsConstants, readFileSync, statSync } from 'node:fs';
import { posix as pathPosix, win32 as pathWin32 } from 'node:path';
import type { LogLevel } from './log.ts';
import { CONFIG_FILE_NAME, configSearchPath, defaultConfigFilePath, type PathOptions } from './paths.ts';

export interface Config {
  /** Interface to listen on. */
  ip: string;
  /** Port to listen on (0 = any free port). */
  port: number;
  /** Further ports to try when `port` is taken. */
  portRetries: number;
  /** undefined: generate one at start-up; '': auth off (with a warning); else the token. */
  authToken: string | undefined;
  allowOrigin: string;
  allowHeaders: string;
  allowMethods: string;
  allowCredentials: string;
  exposeHeaders: string;
  maxAge: string;
  /** Always starts and ends with '/'. */
  baseUrl: string;
  /** '' means: python3 if installed, else the first kernelspec found. */
  defaultKernelName: string;
  /** Allow GET /api/kernels without a token. */
  listKernels: boolean;
  logLevel: LogLevel;
  /** Seconds a kernel may take to answer its first kernel_info before clients are let in anyway. */
  kernelInfoTimeout: number;
  /** Largest WebSocket frame accepted from a client, bytes. */
  maxMessageSize: number;
  /** Bytes kept for a client that is away (replayed on reconnect with the same session_id). */
  offlineBufferBytes: number;
  /** Bytes queued towards one slow client before that client is disconnected (never silently dropped). */
  clientBufferBytes: number;
  /** Seconds between WebSocket pings (0: none); a client silent for max(3 pings, 30 s) is disconnected. */
  wsPingInterval: number;
  /** Kernels of the default kernelspec started at launch and handed out by POST /api/kernels. */
  prespawnCount: number;
  /** When set, every kernel start uses this kernelspec whatever the request names. */
  forceKernelName: string;
  /** 0: unbounded; else starts beyond this many running kernels are refused with 403. */
  maxKernels: number;
  /** Serve /api/kernelspecs and /kernelspecs/...; false answers 404 there. */
  exposeKernelspecs: boolean;
  /** Notebook (.ipynb path or http(s) URL) whose code cells run in every new kernel of its language. */
  seedUri: string;
  /** Client env variables (besides KERNEL_*) a start request may pass to its kernel. */
  envWhitelist: string[];
  /** Gateway env variables passed to kernels whose start request carries an env. */
  envProcessWhitelist: string[];
  /** Kernels' working directories must lie inside this folder ('' = the current directory). */
  rootDir: string;
  /** TLS: certificate and key (PEM files); with clientCa, clients must present a certificate signed by it. */
  certfile: string;
  keyfile: string;
  clientCa: string;
  /** Culling (as Jupyter Server): seconds idle before a kernel is shut down (0: never), sweep interval. */
  cullIdleTimeout: number;
  cullInterval: number;
  cullConnected: boolean;
  cullBusy: boolean;
  /** Honour X-Forwarded-For / X-Real-Ip and X-Forwarded-Proto / X-Scheme (behind a proxy). */
  trustXheaders: boolean;
  /** Seconds a new kernel has to answer kernel_info before it is killed and its start fails. */
  kernelStartupTimeout: number;
}

export const DEFAULTS: Config = {
  ip: '127.0.0.1',
  port: 8888,
  portRetries: 50,
  authToken: undefined,
  allowOrigin: '',
  allowHeaders: '',
  allowMethods: '',
  allowCredentials: '',
  exposeHeaders: '',
  maxAge: '',
  baseUrl: '/',
  defaultKernelName: '',
  listKernels: false,
  logLevel: 'INFO',
  kernelInfoTimeout: 60,
  maxMessageSize: 64 * 1024 * 1024,
  offlineBufferBytes: 256 * 1024 * 1024,
  clientBufferBytes: 128 * 1024 * 1024,
  wsPingInterval: 30,
  prespawnCount: 0,
  forceKernelName: '',
  maxKernels: 0,
  exposeKernelspecs: true,
  seedUri: '',
  envWhitelist: [],
  envProcessWhitelist: [],
  rootDir: '',
  certfile: '',
  keyfile: '',
  clientCa: '',
  cullIdleTimeout: 0,
  cullInterval: 300,
  cullConnected: false,
  cullBusy: false,
  trustXheaders: false,
  kernelStartupTimeout: 60,
};

// ---------------------------------------------------------------------------------------------
// Option table
// ---------------------------------------------------------------------------------------------

export type OptionType = 'string' | 'int' | 'bool' | 'loglevel' | 'list';

export interface OptionSpec {
  key: keyof Config;
  /** The reference's traitlets name, used as `--<Class>.<trait>=value` and in config files. */
  trait: string;
  /**
   * Classes under which the reference spelling is accepted (command line and config file).
   * The first one is the reference's own class: --generate-config lists the option under it.
   */
  classes: readonly string[];
  /** Our short flag. */
  flag: string;
  /** Environment variable supplying the default; none for log_level (the reference has none). */
  env?: string;
  type: OptionType;
  help: string;
  /** Inclusive bounds for int options. */
  min?: number;
  max?: number;
  /** For string options: returns a problem ("is …; expected …") or undefined. */
  check?: (value: string) => string | undefined;
  /** For string options: canonical form of an accepted value. */
  normalize?: (value: string) => string;
}

const APP = ['KernelGatewayApp'] as const;
/** Options the reference takes from jupyter_server's kernel manager; we also take the app spelling. */
const KERNEL_MANAGER = ['MappingKernelManager', 'KernelGatewayApp'] as const;
const PERSONALITY = ['JupyterWebsocketPersonality', 'KernelGatewayApp'] as const;

/** The classes --generate-config writes, in this order; every option's first class is one of them. */
export const CONFIG_SECTIONS = ['KernelGatewayApp', 'JupyterWebsocketPersonality', 'MappingKernelManager'] as const;

/** Seconds options that end up in a timer: Node's timers take at most 2^31-1 ms. */
const MAX_TIMER_SECONDS = Math.floor(2 ** 31 / 1000) - 1;

/** '/', 'api', '//a//b' → '/', '/api/', '/a/b/': a leading and trailing slash, no doubled ones. */
export function normalizeBaseUrl(value: string): string {
  return `/${value}/`.replace(/\/{2,}/g, '/');
}

/** '' (unset) passes; else the path must name an existing directory. */
function checkDirectory(value: string): string | undefined {
  if (value === '') return undefined;
  let st;
  try {
    st = statSync(value);
  } catch (err) {
    return `${fsProblem(err)}; expected an existing directory`;
  }
  return st.isDirectory() ? undefined : 'is not a directory; expected an existing directory';
}

/** '' (unset) passes; else the path must name a file this process can read. */
function checkReadableFile(value: string): string | undefined {
  if (value === '') return undefined;
  try {
    if (!statSync(value).isFile()) return 'is not a file; expected a readable PEM file';
    accessSync(value, fsConstants.R_OK);
  } catch (err) {
    return `${fsProblem(err)}; expected a readable PEM file`;
  }
  return undefined;
}

/** "does not exist", "cannot be read (permission denied)", …: what is wrong with a path, for messages. */
function fsProblem(err: unknown): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'ENOTDIR') return 'does not exist (a part of the path is not a directory)';
  if (code === 'EACCES' || code === 'EPERM') return 'cannot be read (permission denied)';
  return `cannot be read (${err instanceof Error ? err.message : String(err)})`;
}

export const optionTable: readonly OptionSpec[] = [
  { key: 'ip', trait: 'ip', classes: APP, flag: '--ip', env: 'KG_IP', type: 'string', help: 'Interface to listen on',
    // Node (like tornado) treats an empty host as "all interfaces": too easy to do by accident.
    check: (v) => (v.trim() === '' ? 'is empty; expected an address such as 127.0.0.1, 0.0.0.0 or ::' : undefined) },
  { key: 'port', trait: 'port', classes: APP, flag: '--port', env: 'KG_PORT', type: 'int', min: 0, max: 65535,
    help: 'Port to listen on (0: any free port)' },
  { key: 'portRetries', trait: 'port_retries', classes: APP, flag: '--port-retries', env: 'KG_PORT_RETRIES', type: 'int',
    min: 0, help: 'Further ports to try when the port is taken' },
  { key: 'authToken', trait: 'auth_token', classes: APP, flag: '--auth-token', env: 'KG_AUTH_TOKEN', type: 'string',
    help: "Token clients must send; unset: one is generated at start-up; '': auth off" },
  { key: 'allowOrigin', trait: 'allow_origin', classes: APP, flag: '--allow-origin', env: 'KG_ALLOW_ORIGIN', type: 'string',
    help: "Access-Control-Allow-Origin value and allowed origin ('*': any)" },
  { key: 'allowHeaders', trait: 'allow_headers', classes: APP, flag: '--allow-headers', env: 'KG_ALLOW_HEADERS',
    type: 'string', help: 'Access-Control-Allow-Headers value' },
  { key: 'allowMethods', trait: 'allow_methods', classes: APP, flag: '--allow-methods', env: 'KG_ALLOW_METHODS',
    type: 'string', help: 'Access-Control-Allow-Methods value' },
  { key: 'allowCredentials', trait: 'allow_credentials', classes: APP, flag: '--allow-credentials',
    env: 'KG_ALLOW_CREDENTIALS', type: 'string', help: 'Access-Control-Allow-Credentials value' },
  { key: 'exposeHeaders', trait: 'expose_headers', classes: APP, flag: '--expose-headers', env: 'KG_EXPOSE_HEADERS',
    type: 'string', help: 'Access-Control-Expose-Headers value' },
  { key: 'maxAge', trait: 'max_age', classes: APP, flag: '--max-age', env: 'KG_MAX_AGE', type: 'string',
    help: 'Access-Control-Max-Age value' },
  { key: 'baseUrl', trait: 'base_url', classes: APP, flag: '--base-url', env: 'KG_BASE_URL', type: 'string',
    normalize: normalizeBaseUrl, help: 'Prefix of every route' },
  { key: 'defaultKernelName', trait: 'default_kernel_name', classes: APP, flag: '--default-kernel-name',
    env: 'KG_DEFAULT_KERNEL_NAME', type: 'string', help: "Kernel started when none is named ('': python3 if installed)" },
  // The reference trait lives on the personality; we also take the KernelGatewayApp spelling.
  { key: 'listKernels', trait: 'list_kernels', classes: PERSONALITY,
    flag: '--list-kernels', env: 'KG_LIST_KERNELS', type: 'bool', help: 'Allow listing kernels and sessions' },
  { key: 'logLevel', trait: 'log_level', classes: ['KernelGatewayApp', 'Application'], flag: '--log-level',
    type: 'loglevel', help: 'DEBUG, INFO, WARN, ERROR or CRITICAL (or 10..50)' },
  { key: 'kernelInfoTimeout', trait: 'kernel_info_timeout', classes: KERNEL_MANAGER, flag: '--kernel-info-timeout',
    env: 'KG_KERNEL_INFO_TIMEOUT', type: 'int', min: 1, max: MAX_TIMER_SECONDS,
    help: 'Seconds to wait for a new kernel’s first kernel_info' },
  { key: 'maxMessageSize', trait: 'max_message_size', classes: APP, flag: '--max-message-size',
    env: 'KG_MAX_MESSAGE_SIZE', type: 'int', min: 1, help: 'Largest WebSocket frame accepted from a client, bytes' },
  { key: 'offlineBufferBytes', trait: 'offline_buffer_bytes', classes: APP, flag: '--offline-buffer-bytes',
    env: 'KG_OFFLINE_BUFFER_BYTES', type: 'int', min: 0, help: 'Bytes kept for a disconnected client, replayed on reconnect' },
  { key: 'clientBufferBytes', trait: 'client_buffer_bytes', classes: APP, flag: '--client-buffer-bytes',
    env: 'KG_CLIENT_BUFFER_BYTES', type: 'int', min: 1, help: 'Bytes queued for a slow client before it is disconnected' },
  { key: 'wsPingInterval', trait: 'ws_ping_interval', classes: APP, flag: '--ws-ping-interval', env: 'KG_WS_PING_INTERVAL_SECS',
    type: 'int', min: 0, max: MAX_TIMER_SECONDS, help: 'Seconds between WebSocket keep-alive pings (0: none)' },
  { key: 'prespawnCount', trait: 'prespawn_count', classes: APP, flag: '--prespawn-count', env: 'KG_PRESPAWN_COUNT',
    type: 'int', min: 0, help: 'Kernels of the default kernelspec started at launch (at most --max-kernels)' },
  { key: 'forceKernelName', trait: 'force_kernel_name', classes: APP, flag: '--force-kernel-name',
    env: 'KG_FORCE_KERNEL_NAME', type: 'string', help: "Kernelspec every kernel start uses, whatever is asked for ('': off)" },
  { key: 'maxKernels', trait: 'max_kernels', classes: APP, flag: '--max-kernels', env: 'KG_MAX_KERNELS', type: 'int',
    min: 0, help: 'Most kernels running at once; further starts get 403 (0: unbounded)' },
  { key: 'exposeKernelspecs', trait: 'expose_kernelspecs', classes: APP, flag: '--expose-kernelspecs',
    env: 'KG_EXPOSE_KERNELSPECS', type: 'bool', help: 'Serve /api/kernelspecs and /kernelspecs/ (false: 404 there)' },
  { key: 'seedUri', trait: 'seed_uri', classes: APP, flag: '--seed-uri', env: 'KG_SEED_URI', type: 'string',
    help: 'Notebook (path or http(s) URL) whose code cells run in each new kernel of its kernelspec' },
  { key: 'envWhitelist', trait: 'env_whitelist', classes: PERSONALITY, flag: '--env-whitelist', env: 'KG_ENV_WHITELIST',
    type: 'list', help: 'Client env variables (besides KERNEL_*) a kernel start may pass; comma-separated' },
  { key: 'envProcessWhitelist', trait: 'env_process_whitelist', classes: APP, flag: '--env-process-whitelist',
    env: 'KG_ENV_PROCESS_WHITELIST', type: 'list',
    help: 'Gateway env variables given to kernels whose start request has an env; comma-separated' },
  { key: 'rootDir', trait: 'root_dir', classes: ['MappingKernelManager', 'ServerApp', 'KernelGatewayApp'],
    flag: '--root-dir', env: 'KG_ROOT_DIR', type: 'string', check: checkDirectory,
    help: "Existing folder kernels' working directories must lie in ('': the current directory)" },
  { key: 'certfile', trait: 'certfile', classes: APP, flag: '--certfile', env: 'KG_CERTFILE', type: 'string',
    check: checkReadableFile, help: 'TLS certificate, PEM file (needs --keyfile)' },
  { key: 'keyfile', trait: 'keyfile', classes: APP, flag: '--keyfile', env: 'KG_KEYFILE', type: 'string',
    check: checkReadableFile, help: 'TLS private key, PEM file (needs --certfile)' },
  { key: 'clientCa', trait: 'client_ca', classes: APP, flag: '--client-ca', env: 'KG_CLIENT_CA', type: 'string',
    check: checkReadableFile, help: 'CA bundle, PEM file: clients must present a certificate it signed (needs TLS)' },
  { key: 'cullIdleTimeout', trait: 'cull_idle_timeout', classes: KERNEL_MANAGER, flag: '--cull-idle-timeout',
    env: 'KG_CULL_IDLE_TIMEOUT', type: 'int', min: 0, help: 'Seconds a kernel may stay idle before it is shut down (0: never)' },
  { key: 'cullInterval', trait: 'cull_interval', classes: KERNEL_MANAGER, flag: '--cull-interval', env: 'KG_CULL_INTERVAL',
    type: 'int', max: MAX_TIMER_SECONDS, help: 'Seconds between checks for idle kernels (<= 0: 300)' },
  { key: 'cullConnected', trait: 'cull_connected', classes: KERNEL_MANAGER, flag: '--cull-connected',
    env: 'KG_CULL_CONNECTED', type: 'bool', help: 'Also cull idle kernels that have WebSocket connections' },
  { key: 'cullBusy', trait: 'cull_busy', classes: KERNEL_MANAGER, flag: '--cull-busy', env: 'KG_CULL_BUSY', type: 'bool',
    help: 'Also cull kernels that are busy' },
  { key: 'trustXheaders', trait: 'trust_xheaders', classes: APP, flag: '--trust-xheaders', env: 'KG_TRUST_XHEADERS',
    type: 'bool', help: 'Trust X-Forwarded-For/X-Real-Ip and X-Forwarded-Proto/X-Scheme (behind a proxy)' },
  { key: 'kernelStartupTimeout', trait: 'kernel_startup_timeout', classes: APP, flag: '--kernel-startup-timeout',
    env: 'KG_KERNEL_STARTUP_TIMEOUT', type: 'int', min: 1, max: MAX_TIMER_SECONDS,
    help: 'Seconds a new kernel has to answer kernel_info before its start fails' },
];

/** A bad value, an unknown `--KernelGatewayApp.x` option or a bad config file; the message is ready for the user. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

// ---------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------

type Value = Config[keyof Config];

const BOOL_WORDS: Record<string, boolean> = { true: true, false: false, yes: true, no: false, '1': true, '0': false };

function parseBool(raw: string): boolean | undefined {
  return BOOL_WORDS[raw.trim().toLowerCase()];
}

const LEVEL_NAMES: Record<string, LogLevel> = {
  DEBUG: 'DEBUG', INFO: 'INFO', WARN: 'WARN', WARNING: 'WARN', ERROR: 'ERROR', CRITICAL: 'CRITICAL',
};
const LEVEL_BY_NUMBER: LogLevel[] = ['DEBUG', 'INFO', 'WARN', 'ERROR', 'CRITICAL'];

function parseLogLevel(raw: string): LogLevel | undefined {
  const text = raw.trim();
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    // Like Python logging, a number in between behaves as the next named level up (15 → INFO).
    return n >= 10 && n <= 50 ? LEVEL_BY_NUMBER[Math.ceil(n / 10) - 1] : undefined;
  }
  return LEVEL_NAMES[text.toUpperCase()];
}

/** 'A, B,,C ' → ['A', 'B', 'C']: comma-separated, trimmed, empty items dropped. */
export function splitList(raw: string): string[] {
  return raw.split(',').map((s) => s.trim()).filter((s) => s !== '');
}

/** Items of a list given as an array (config file, or `["A","B"]` as text): strings, trimmed, empties dropped. */
function listFromArray(items: unknown[]): { value: string[] } | { problem: string } {
  if (!items.every((item) => typeof item === 'string')) return { problem: 'is not a list of strings' };
  return { value: (items as string[]).map((s) => s.trim()).filter((s) => s !== '') };
}

/** Parses one raw text value for `spec`; returns the value, or a problem text ("is not …"). */
function parseValue(spec: OptionSpec, raw: string): { value: Value } | { problem: string } {
  switch (spec.type) {
    case 'string': {
      const problem = spec.check?.(raw);
      if (problem) return { problem };
      return { value: spec.normalize ? spec.normalize(raw) : raw };
    }
    case 'bool': {
      const value = parseBool(raw);
      return value === undefined ? { problem: 'is not a boolean; expected true/false, yes/no or 1/0' } : { value };
    }
    case 'loglevel': {
      const value = parseLogLevel(raw);
      return value === undefined
        ? { problem: 'is not a log level; expected DEBUG, INFO, WARN, ERROR, CRITICAL or a number 10..50' }
        : { value };
    }
    case 'list': {
      const text = raw.trim();
      if (!text.startsWith('[')) return { value: splitList(raw) };
      // `["A", "B"]` (as the reference's command line allows): a JSON array of strings.
      let items: unknown;
      try {
        items = JSON.parse(text);
      } catch {
        return { problem: 'is not a list; expected comma-separated names or a JSON array of strings' };
      }
      return Array.isArray(items) ? listFromArray(items) : { problem: 'is not a list' };
    }
    case 'int': {
      const text = raw.trim();
      if (!/^[+-]?\d+$/.test(text)) return { problem: 'is not an integer' };
      const value = Number(text);
      const min = spec.min ?? Number.MIN_SAFE_INTEGER;
      const max = spec.max ?? Number.MAX_SAFE_INTEGER;
      if (value < min || value > max) {
        let range: string;
        if (spec.min !== undefined && spec.max !== undefined) range = `${min}..${max}`;
        else if (value < min) range = `at least ${min}`;
        else range = `at most ${max}`;
        return { problem: `is out of range; expected ${range}` };
      }
      return { value };
    }
  }
}

function jsonKind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'number') return 'a number';
  if (typeof value === 'boolean') return 'a boolean';
  return `a ${typeof value}`;
}

const EXPECTED_JSON: Record<OptionType, string> = {
  string: 'a string',
  int: 'an integer (a number or a numeric string)',
  bool: 'true or false (or the strings "true"/"false")',
  loglevel: 'a level name such as "INFO" (or a number 10..50)',
  list: 'an array of strings or a comma-separated string',
};

/** Parses one config-file (JSON) value for `spec`. */
function parseJsonValue(spec: OptionSpec, value: unknown): { value: Value } | { problem: string } {
  if (typeof value === 'string') return parseValue(spec, value);
  const wrongType = { problem: `is ${jsonKind(value)}; expected ${EXPECTED_JSON[spec.type]}` };
  switch (spec.type) {
    case 'int':
      if (typeof value !== 'number') return wrongType;
      return Number.isInteger(value) ? parseValue(spec, String(value)) : { problem: 'is not an integer' };
    case 'loglevel':
      return typeof value === 'number' && Number.isInteger(value) ? parseValue(spec, String(value)) : wrongType;
    case 'bool':
      return typeof value === 'boolean' ? { value } : wrongType;
    case 'list':
      return Array.isArray(value) ? listFromArray(value) : wrongType;
    case 'string':
      return wrongType;
  }
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

/** A raw value and the spelling it came with, for messages ("--port", "KG_PORT", "<file>: KernelGatewayApp.port"). */
export interface Given {
  raw: string;
  source: string;
}

/** What the command line says, before config files and the environment are consulted. */
export interface CommandLine {
  /** The raw command-line value of each option given (the last one given wins). */
  values: Map<OptionSpec, Given>;
  /** `--config FILE` / `--KernelGatewayApp.config_file=FILE`. */
  configFile?: Given;
  /** `--generate-config`: write a config file with every default, then exit. */
  generateConfig: boolean;
  /** `-y` / `--yes`: answer yes (overwrite an existing file with --generate-config). */
  answerYes: boolean;
  /** `--help-all`: print every option, then exit. */
  helpAll: boolean;
  /** Arguments that are no gateway option at all. */
  errors: string[];
}

/** Command-line words that are not options of the table. */
type AppFlag = 'configFile' | 'generateConfig' | 'answerYes' | 'helpAll';
const APP_FLAGS: Record<string, AppFlag> = {
  config: 'configFile',
  'KernelGatewayApp.config_file': 'configFile',
  'generate-config': 'generateConfig',
  'KernelGatewayApp.generate_config': 'generateConfig',
  yes: 'answerYes',
  y: 'answerYes',
  'KernelGatewayApp.answer_yes': 'answerYes',
  'help-all': 'helpAll',
};
/** Traits the app classes know besides the table's, for "options here are" lists. */
const APP_TRAITS: Record<string, readonly string[]> = { KernelGatewayApp: ['config_file', 'generate_config', 'answer_yes'] };

/** Every class with options of ours; an unknown trait under one is a ConfigError. */
const OWN_CLASSES: readonly string[] = [...new Set([...CONFIG_SECTIONS, ...optionTable.flatMap((o) => o.classes)])];

function spellings(spec: OptionSpec): string[] {
  return [spec.flag, ...(spec.env ? [spec.env] : []), ...spec.classes.map((c) => `--${c}.${spec.trait}`)];
}

/** Finds the option a command-line name (without the leading `--`) refers to. */
function lookup(name: string): OptionSpec | undefined {
  const dot = name.indexOf('.');
  if (dot >= 0) return lookupTrait(name.slice(0, dot), name.slice(dot + 1));
  // '_' and '-' are the same in short flags, so the reference's `--port_retries` / `--seed_uri` work too.
  const flag = `--${name.replaceAll('_', '-')}`;
  return optionTable.find((o) => o.flag === flag);
}

function lookupTrait(cls: string, trait: string): OptionSpec | undefined {
  return optionTable.find((o) => o.trait === trait && o.classes.includes(cls));
}

/** "<where>: unknown or unsupported option; <Class> options here are: …" plus a hint when one is likely meant. */
function unknownTraitMessage(where: string, cls: string, trait: string): string {
  const known = [...optionTable.filter((o) => o.classes.includes(cls)).map((o) => o.trait), ...(APP_TRAITS[cls] ?? [])];
  let hint = '';
  // authToken, auth-token → auth_token
  const snake = trait.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replaceAll('-', '_').toLowerCase();
  const elsewhere = optionTable.find((o) => o.trait === snake);
  if (elsewhere && elsewhere.classes.includes(cls)) hint = `; did you mean ${cls}.${snake}?`;
  else if (elsewhere) hint = `; ${snake} is accepted under ${elsewhere.classes.join(', ')}`;
  return `${where}: unknown or unsupported option${hint}; ${cls} options here are: ${known.join(', ')}`;
}

/**
 * Reads the command line (without node and script): `--port 9`, `--port=9`, `--KernelGatewayApp.port=9`
 * are the same option and the last one given wins. Throws ConfigError for an option without its value
 * and for an unknown `--KernelGatewayApp.x`; values are checked later, by resolveConfig.
 */
export function parseCommandLine(argv: string[]): CommandLine {
  const cmd: CommandLine = { values: new Map(), generateConfig: false, answerYes: false, helpAll: false, errors: [] };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      for (const rest of argv.slice(i + 1)) cmd.errors.push(`unexpected argument "${rest}"`);
      break;
    }
    if (arg === '-y') {
      cmd.answerYes = true;
      continue;
    }
    if (!arg.startsWith('--')) {
      cmd.errors.push(arg.startsWith('-') ? `unknown option ${arg}` : `unexpected argument "${arg}"`);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const source = `--${name}`;
    let raw = eq < 0 ? undefined : arg.slice(eq + 1);
    const next = argv[i + 1];
    // A following word counts as the value unless it looks like the next option.
    const nextIsValue = next !== undefined && !next.startsWith('--');

    const appFlag = APP_FLAGS[name];
    if (appFlag === 'configFile') {
      if (raw === undefined && nextIsValue) raw = argv[++i];
      if (raw === undefined || raw === '') {
        throw new ConfigError(`${source}: needs a file name (also --config, --KernelGatewayApp.config_file, KG_CONFIG_FILE)`);
      }
      cmd.configFile = { raw, source };
      continue;
    }
    if (appFlag) {
      // Plain switches: `--generate-config`, or `--generate-config=false`; a following word is not theirs.
      const on = raw === undefined ? true : parseBool(raw);
      if (on === undefined) throw new ConfigError(`${source}: ${JSON.stringify(raw)} is not a boolean; expected true/false`);
      cmd[appFlag] = on;
      continue;
    }

    const spec = lookup(name);
    if (!spec) {
      const dot = name.indexOf('.');
      const cls = dot >= 0 ? name.slice(0, dot) : '';
      if (OWN_CLASSES.includes(cls)) throw new ConfigError(unknownTraitMessage(source, cls, name.slice(dot + 1)));
      cmd.errors.push(`unknown option ${source}`);
      if (raw === undefined && nextIsValue) i++; // skip its value so it is not reported twice
      continue;
    }
    if (raw === undefined) {
      if (spec.type === 'bool') {
        // `--list-kernels` alone means true; `--list-kernels false` takes the word only if it is a boolean.
        if (nextIsValue && parseBool(next) !== undefined) raw = argv[++i];
        else raw = 'true';
      } else if (nextIsValue) {
        raw = argv[++i];
      } else {
        throw new ConfigError(`${source}: needs a value (${others(spec, source)})`);
      }
    }
    cmd.values.set(spec, { raw, source });
  }
  return cmd;
}

/** The spellings of `spec` other than the one used, for messages: "KG_PORT, --KernelGatewayApp.port". */
function others(spec: OptionSpec, used: string): string {
  // Any short spelling (`--port_retries`) stands for the table's flag.
  const same = used.startsWith('--') && !used.includes('.') ? spec.flag : used;
  return spellings(spec).filter((s) => s !== same).join(', ');
}

// ---------------------------------------------------------------------------------------------
// Config files
// ---------------------------------------------------------------------------------------------

/** Where to look for files and how to spell paths; for tests, so they need not touch the real home or /etc. */
export type ResolveOptions = PathOptions;
export { CONFIG_FILE_NAME, configSearchPath, defaultConfigFilePath };

function pathsFor(opts: ResolveOptions) {
  const platform = opts.platform ?? process.platform;
  return { platform, p: platform === 'win32' ? pathWin32 : pathPosix };
}

/** Option values from one config file, in file order. */
type FileValues = { spec: OptionSpec; value: Value; source: string; file: string }[];

/** Drops whole-line `//` comments (keeping the line count, so JSON positions still match lines). */
function stripCommentLines(text: string): string {
  return text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .map((line) => (/^\s*\/\//.test(line) ? '' : line))
    .join('\n');
}

/** "… at position 52" → "… at position 52 (line 3, column 7)". */
function withLineNumber(message: string, text: string): string {
  const m = /at position (\d+)/.exec(message);
  if (!m || /line \d+/.test(message)) return message;
  const before = text.slice(0, Number(m[1]));
  const line = before.split('\n').length;
  const column = before.length - before.lastIndexOf('\n');
  return `${message} (line ${line}, column ${column})`;
}

/**
 * Parses the text of a config file: traitlets' JSON shape, `{"<Class>": {"<trait>": value}}`, with
 * whole-line `//` comments. Every value is checked; `file` names the file in messages.
 */
export function parseConfigText(text: string, file: string): FileValues {
  const json = stripCommentLines(text);
  if (json.trim() === '') return [];
  let data: unknown;
  try {
    data = JSON.parse(json);
  } catch (err) {
    const why = withLineNumber(err instanceof Error ? err.message : String(err), json);
    throw new ConfigError(`${file}: invalid JSON: ${why} (only whole-line // comments are allowed, and no trailing commas)`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`${file}: is ${jsonKind(data)}; expected a JSON object of classes, e.g. {"KernelGatewayApp": {"port": 9000}}`);
  }
  const values: FileValues = [];
  for (const [cls, section] of Object.entries(data)) {
    if (!OWN_CLASSES.includes(cls)) {
      throw new ConfigError(`${file}: unknown class "${cls}"; known classes: ${OWN_CLASSES.join(', ')}`);
    }
    if (section === null || typeof section !== 'object' || Array.isArray(section)) {
      throw new ConfigError(`${file}: ${cls} is ${jsonKind(section)}; expected an object of options, e.g. {"${cls}": {"<option>": value}}`);
    }
    for (const [trait, value] of Object.entries(section as Record<string, unknown>)) {
      const where = `${file}: ${cls}.${trait}`;
      const spec = lookupTrait(cls, trait);
      if (!spec) throw new ConfigError(unknownTraitMessage(where, cls, trait));
      const parsed = parseJsonValue(spec, value);
      if ('problem' in parsed) throw new ConfigError(`${where}: ${JSON.stringify(value)} ${parsed.problem}`);
      values.push({ spec, value: parsed.value, source: where, file });
    }
  }
  return values;
}

/** Whether a search-path file is there; one that cannot even be looked at is an error, not skipped. */
function isPresent(file: string): boolean {
  try {
    statSync(file);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw new ConfigError(`config file ${file} (in the Jupyter config path) ${fsProblem(err)}`);
  }
}

/** Reads and parses one config file; `how` says where its name came from, for messages. */
function readConfigFile(file: string, how: string): FileValues {
  let text: string;
  try {
    if (!statSync(file).isFile()) throw new ConfigError(`config file ${file} (${how}) is not a file`);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`config file ${file} (${how}) ${fsProblem(err)}`);
  }
  return parseConfigText(text, file);
}

// ---------------------------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------------------------

export interface ResolvedConfig {
  config: Config;
  /** Arguments that are not gateway options at all (unknown flags, stray words); start-up should stop. */
  errors: string[];
  /** Things ignored or adjusted, worth a log line (e.g. unsupported KG_* variables). */
  warnings: string[];
  /** The config files read, highest priority first. */
  configFiles: string[];
}

/** KG_* variables that are no option of the table but mean something to us. */
const OTHER_ENV = ['KG_CONFIG_FILE', 'KG_ENV_PREFIX'];

/**
 * Builds the Config from command-line arguments (without node and script), config files and the
 * environment. Precedence: command line, then config files, then the KG_* variable (as in the
 * reference, an env var only supplies the default), then DEFAULTS.
 * Config files: the one named by --config (or KG_CONFIG_FILE), else kernelgateway_config.json in
 * each directory of configSearchPath(), merged option by option, earlier directories winning.
 * Throws ConfigError for a bad value of a known option, an unknown `--KernelGatewayApp.x`, or a bad
 * config file; arguments that are no gateway option at all are collected in `errors`.
 */
export function resolveConfig(argv: string[], env: NodeJS.ProcessEnv, opts: ResolveOptions = {}): ResolvedConfig {
  const cmd = parseCommandLine(argv);
  const warnings: string[] = [];

  // Config files, lowest priority first, so that later entries override earlier ones.
  const explicit = cmd.configFile ?? (env.KG_CONFIG_FILE ? { raw: env.KG_CONFIG_FILE, source: 'KG_CONFIG_FILE' } : undefined);
  const configFiles: string[] = [];
  const fromFiles = new Map<OptionSpec, { value: Value; source: string }>();
  const take = (values: FileValues) => {
    for (const v of values) {
      fromFiles.set(v.spec, v);
      if (v.spec.key === 'authToken' && v.value) warnIfShared(v.file, opts, warnings);
    }
  };
  if (explicit) {
    take(readConfigFile(explicit.raw, `from ${explicit.source}`));
    configFiles.push(explicit.raw);
  } else {
    const { p } = pathsFor(opts);
    const found = configSearchPath(env, opts)
      .map((dir) => p.join(dir, CONFIG_FILE_NAME))
      .filter(isPresent);
    for (const file of [...found].reverse()) take(readConfigFile(file, 'in the Jupyter config path'));
    configFiles.push(...found);
  }

  const config: Config = { ...DEFAULTS };
  const sources = new Map<keyof Config, string>();
  const set = (spec: OptionSpec, value: Value, source: string) => {
    (config as Record<keyof Config, unknown>)[spec.key] = value;
    sources.set(spec.key, source);
  };
  for (const spec of optionTable) {
    let given = cmd.values.get(spec);
    if (!given) {
      const inFile = fromFiles.get(spec);
      if (inFile) {
        set(spec, inFile.value, inFile.source);
        continue;
      }
      const envValue = spec.env === undefined ? undefined : env[spec.env];
      // An empty variable only means something for strings ('' auth token = auth off); elsewhere it is unset.
      if (spec.env && envValue !== undefined && (spec.type === 'string' || envValue.trim() !== '')) {
        given = { raw: envValue, source: spec.env };
      }
    }
    if (!given) continue;
    const parsed = parseValue(spec, given.raw);
    if ('problem' in parsed) {
      throw new ConfigError(`${given.source}: ${JSON.stringify(given.raw)} ${parsed.problem} (${others(spec, given.source)})`);
    }
    set(spec, parsed.value, given.source);
  }

  checkCombinations(config, sources, warnings);

  const knownEnv = new Set([...optionTable.map((o) => o.env), ...OTHER_ENV]);
  for (const name of Object.keys(env)) {
    if (name.startsWith('KG_') && !knownEnv.has(name)) warnings.push(`${name} is set but is not a kernelgateway setting; ignored`);
  }
  return { config, errors: cmd.errors, warnings, configFiles };
}

/** A config file holding a token should be private: warns when group or others may read it (not on Windows). */
function warnIfShared(file: string, opts: ResolveOptions, warnings: string[]): void {
  if (pathsFor(opts).platform === 'win32') return;
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch {
    return; // it was just read; nothing to say if it is gone
  }
  if ((mode & 0o044) !== 0) {
    warnings.push(`${file} sets auth_token but other users may read it; make it private (chmod 600)`);
  }
}

/** Checks between options; fixes cull_interval <= 0 as Jupyter Server does (with a warning). */
function checkCombinations(config: Config, sources: Map<keyof Config, string>, warnings: string[]): void {
  const from = (key: keyof Config) => sources.get(key) ?? 'the default';
  if (config.maxKernels > 0 && config.prespawnCount > config.maxKernels) {
    throw new ConfigError(
      `Cannot prespawn ${config.prespawnCount} kernels; more than max kernels ${config.maxKernels} ` +
        `(prespawn_count from ${from('prespawnCount')}, max_kernels from ${from('maxKernels')})`,
    );
  }
  if ((config.certfile === '') !== (config.keyfile === '')) {
    const [have, missing] = config.certfile ? (['certfile', 'keyfile'] as const) : (['keyfile', 'certfile'] as const);
    const spec = optionTable.find((o) => o.key === missing)!;
    throw new ConfigError(
      `${have} is set (from ${from(have)}) but ${missing} is not; TLS needs both (set ${spec.flag} or ${spec.env})`,
    );
  }
  if (config.clientCa !== '' && config.certfile === '') {
    throw new ConfigError(
      `client_ca is set (from ${from('clientCa')}) but TLS is off; client certificates need --certfile and --keyfile too`,
    );
  }
  if (config.cullInterval <= 0) {
    warnings.push(
      `cull_interval ${config.cullInterval} (from ${from('cullInterval')}) is not positive; using ${DEFAULTS.cullInterval} seconds, as Jupyter Server does`,
    );
    config.cullInterval = DEFAULTS.cullInterval;
  }
}

/** A copy of `config` safe to log: a set token shows as '<hidden>'; unset and '' (auth off) stay as they are. */
export function redactedConfig(config: Config): Config {
  return config.authToken ? { ...config, authToken: '<hidden>' } : { ...config };
}

// ---------------------------------------------------------------------------------------------
// --generate-config and --help-all
// ---------------------------------------------------------------------------------------------

/** "--port, env KG_PORT; also KernelGatewayApp.port": how an option can be given, for comments. */
function spelledOut(spec: OptionSpec, cls: string): string {
  const env = spec.env ? `env ${spec.env}` : 'no env var';
  const also = spec.classes.filter((c) => c !== cls).map((c) => `${c}.${spec.trait}`);
  return `${spec.flag}, ${env}${also.length > 0 ? `; also accepted as ${also.join(', ')}` : ''}`;
}

/**
 * The file --generate-config writes: every option with its default and help, grouped by class, as
 * JSON with `//` comment lines. The auth token line is commented out (unset: a token is generated),
 * so reading the file back gives exactly DEFAULTS.
 */
export function generateConfigText(): string {
  const lines = [
    '// kernelgateway configuration, written by `kernelgateway --generate-config`.',
    '// Every option is shown with its default. Lines starting with // are comments; the rest is JSON',
    '// (no trailing commas). Remove what you do not change.',
    '// Precedence: command line > this file > KG_* environment variables > defaults.',
    `// Read from --config FILE (or KG_CONFIG_FILE); else ${CONFIG_FILE_NAME} is looked for in each`,
    '// $JUPYTER_CONFIG_PATH entry, $JUPYTER_CONFIG_DIR (else ~/.jupyter), {prefix}/etc/jupyter',
    '// (prefix: $KG_ENV_PREFIX, $VIRTUAL_ENV or $CONDA_PREFIX), /usr/local/etc/jupyter, /etc/jupyter;',
    '// all files found are merged, the earlier ones winning.',
    '{',
  ];
  CONFIG_SECTIONS.forEach((cls, sectionIndex) => {
    const specs = optionTable.filter((o) => o.classes[0] === cls);
    const written = (spec: OptionSpec) => spec.key !== 'authToken';
    let lastWritten = -1;
    specs.forEach((spec, i) => {
      if (written(spec)) lastWritten = i;
    });
    lines.push(`  ${JSON.stringify(cls)}: {`);
    specs.forEach((spec, i) => {
      if (i > 0) lines.push('');
      // A comma whenever an option line follows in this class (also on the commented-out token line,
      // so that uncommenting it gives valid JSON).
      const comma = i < lastWritten ? ',' : '';
      lines.push(`    // ${spec.help}`, `    // ${spelledOut(spec, cls)}`);
      if (written(spec)) {
        lines.push(`    ${JSON.stringify(spec.trait)}: ${JSON.stringify(DEFAULTS[spec.key])}${comma}`);
      } else {
        lines.push(
          '    // unset: a token is generated at start-up. To set one, uncomment the next line and put it between',
          '    // the quotes (keep this file private); "" turns authentication off.',
          `    // ${JSON.stringify(spec.trait)}: ""${comma}`,
        );
      }
    });
    lines.push(sectionIndex < CONFIG_SECTIONS.length - 1 ? '  },' : '  }');
  });
  lines.push('}', '');
  return lines.join('\n');
}

const PLACEHOLDER: Record<OptionType, string> = {
  string: ' <text>',
  int: ' <int>',
  bool: ' [true|false]',
  loglevel: ' <level>',
  list: ' <a,b,...>',
};

/** Shown default of an option in help texts. */
export function shownDefault(spec: OptionSpec): string {
  return spec.key === 'authToken' ? '(generated)' : JSON.stringify(DEFAULTS[spec.key]);
}

/** Lays out rows of cells (a cell may have several lines) in aligned columns; the last column is not padded. */
function table(rows: string[][][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, c) => (widths[c] = Math.max(widths[c] ?? 0, ...cell.map((l) => l.length))));
  const out: string[] = [];
  for (const row of rows) {
    const height = Math.max(...row.map((cell) => cell.length));
    for (let l = 0; l < height; l++) {
      const parts = row.map((cell, c) => (c === row.length - 1 ? (cell[l] ?? '') : (cell[l] ?? '').padEnd(widths[c])));
      out.push(`  ${parts.join('  ')}`.trimEnd());
    }
  }
  return out.join('\n');
}

/**
 * The --help-all text: every option with its flag, env var, reference spelling(s), default and help,
 * then the other flags and where config files are read from (`searchPath` when given, else the rule).
 */
export function helpAllText(searchPath?: readonly string[]): string {
  const header = [['Flag'], ['Env var'], ['Default'], ['Reference spelling(s)'], ['Meaning']];
  const rows = optionTable.map((spec) => [
    [spec.flag + PLACEHOLDER[spec.type]],
    [spec.env ?? '-'],
    [shownDefault(spec)],
    spec.classes.map((c) => `--${c}.${spec.trait}`),
    [spec.help],
  ]);
  const flags = [
    [['--config <file>'], ['JSON config file to read instead of the search path (also KG_CONFIG_FILE, --KernelGatewayApp.config_file)']],
    [['--generate-config'], [`Write every option with its default to ${CONFIG_FILE_NAME} in $JUPYTER_CONFIG_DIR (else ~/.jupyter),`, 'or to the --config file, and exit']],
    [['-y, --yes'], ['With --generate-config: overwrite an existing file without asking']],
    [['-h, --help'], ['Short help']],
    [['--help-all'], ['This list']],
    [['-v, --version'], ['Version']],
  ];
  const where = searchPath
    ? searchPath.map((d) => `    ${d}`)
    : [
        '    each $JUPYTER_CONFIG_PATH entry, $JUPYTER_CONFIG_DIR (else ~/.jupyter), {prefix}/etc/jupyter',
        '    (prefix: $KG_ENV_PREFIX, $VIRTUAL_ENV or $CONDA_PREFIX), /usr/local/etc/jupyter, /etc/jupyter',
      ];
  return [
    'Usage: kernelgateway [options]',
    '',
    'Options (command line > config file > KG_* variable > default; given twice, the last one wins):',
    '',
    table([header, ...rows]),
    '',
    'Booleans: a flag alone means true; true/false, yes/no, 1/0. Lists: comma-separated names.',
    `Config file (JSON, traitlets' shape, // comment lines allowed), e.g.:`,
    '  {"KernelGatewayApp": {"port": 9000}, "JupyterWebsocketPersonality": {"list_kernels": true},',
    '   "MappingKernelManager": {"cull_idle_timeout": 600}}',
    `Without --config, ${CONFIG_FILE_NAME} is read from each of these directories, the earlier ones winning:`,
    ...where,
    '',
    'Other flags:',
    '',
    table(flags),
    '',
  ].join('\n');
}
