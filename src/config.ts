/**
 * The gateway's configuration: the Config type and its defaults.
 * Parsing (KG_* environment variables, --KernelGatewayApp.x=y flags, validation) lives below.
 */
import type { LogLevel } from './log.ts';

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
};

// ---------------------------------------------------------------------------------------------
// Option table and parsing
// ---------------------------------------------------------------------------------------------

export type OptionType = 'string' | 'int' | 'bool' | 'loglevel';

export interface OptionSpec {
  key: keyof Config;
  /** The reference's traitlets name, used as `--<Class>.<trait>=value`. */
  trait: string;
  /** Classes under which the reference spelling is accepted. */
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

/** '/', 'api', '//a//b' → '/', '/api/', '/a/b/': a leading and trailing slash, no doubled ones. */
export function normalizeBaseUrl(value: string): string {
  return `/${value}/`.replace(/\/{2,}/g, '/');
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
  { key: 'listKernels', trait: 'list_kernels', classes: ['KernelGatewayApp', 'JupyterWebsocketPersonality'],
    flag: '--list-kernels', env: 'KG_LIST_KERNELS', type: 'bool', help: 'Allow listing kernels and sessions' },
  { key: 'logLevel', trait: 'log_level', classes: ['KernelGatewayApp', 'Application'], flag: '--log-level',
    type: 'loglevel', help: 'DEBUG, INFO, WARN, ERROR or CRITICAL (or 10..50)' },
  { key: 'kernelInfoTimeout', trait: 'kernel_info_timeout', classes: APP, flag: '--kernel-info-timeout',
    env: 'KG_KERNEL_INFO_TIMEOUT', type: 'int', min: 1, help: 'Seconds to wait for a new kernel’s first kernel_info' },
  { key: 'maxMessageSize', trait: 'max_message_size', classes: APP, flag: '--max-message-size',
    env: 'KG_MAX_MESSAGE_SIZE', type: 'int', min: 1, help: 'Largest WebSocket frame accepted from a client, bytes' },
  { key: 'offlineBufferBytes', trait: 'offline_buffer_bytes', classes: APP, flag: '--offline-buffer-bytes',
    env: 'KG_OFFLINE_BUFFER_BYTES', type: 'int', min: 0, help: 'Bytes kept for a disconnected client, replayed on reconnect' },
  { key: 'clientBufferBytes', trait: 'client_buffer_bytes', classes: APP, flag: '--client-buffer-bytes',
    env: 'KG_CLIENT_BUFFER_BYTES', type: 'int', min: 1, help: 'Bytes queued for a slow client before it is disconnected' },
  { key: 'wsPingInterval', trait: 'ws_ping_interval', classes: APP, flag: '--ws-ping-interval', env: 'KG_WS_PING_INTERVAL_SECS',
    type: 'int', min: 0, help: 'Seconds between WebSocket keep-alive pings (0: none)' },
];

/** A bad value or an unknown `--KernelGatewayApp.x` option; the message is ready for the user. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface ResolvedConfig {
  config: Config;
  /** Arguments that are not gateway options at all (unknown flags, stray words); start-up should stop. */
  errors: string[];
  /** Things ignored, worth a log line (e.g. unsupported KG_* variables). */
  warnings: string[];
}

/** Classes whose `--Class.trait` options we own: an unknown trait under them is a ConfigError. */
const OWN_CLASSES = new Set(optionTable.flatMap((o) => o.classes));

function spellings(spec: OptionSpec): string[] {
  return [spec.flag, ...(spec.env ? [spec.env] : []), ...spec.classes.map((c) => `--${c}.${spec.trait}`)];
}

/** Finds the option a command-line name (without the leading `--`) refers to. */
function lookup(name: string): OptionSpec | undefined {
  const dot = name.indexOf('.');
  if (dot >= 0) {
    const cls = name.slice(0, dot);
    const trait = name.slice(dot + 1);
    return optionTable.find((o) => o.trait === trait && o.classes.includes(cls));
  }
  // '_' and '-' are the same in short flags, so the reference's `--port_retries` works too.
  const flag = `--${name.replaceAll('_', '-')}`;
  return optionTable.find((o) => o.flag === flag);
}

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

/** Parses one raw value for `spec`; returns the value, or a problem text ("is not …"). */
function parseValue(spec: OptionSpec, raw: string): { value: Config[keyof Config] } | { problem: string } {
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
    case 'int': {
      const text = raw.trim();
      if (!/^[+-]?\d+$/.test(text)) return { problem: 'is not an integer' };
      const value = Number(text);
      const min = spec.min ?? Number.MIN_SAFE_INTEGER;
      const max = spec.max ?? Number.MAX_SAFE_INTEGER;
      if (value < min || value > max) {
        const range = spec.max === undefined ? `at least ${min}` : `${min}..${max}`;
        return { problem: `is out of range; expected ${range}` };
      }
      return { value };
    }
  }
}

/**
 * Builds the Config from command-line arguments (without node and script) and the environment.
 * Precedence, as in the reference (an env var only supplies the default): command line, then the
 * KG_* variable, then DEFAULTS. On the command line `--port 9`, `--port=9`, `--KernelGatewayApp.port=9`
 * are the same option and the last one given wins.
 * Throws ConfigError for a bad value of a known option or an unknown `--KernelGatewayApp.x`;
 * arguments that are no gateway option at all are collected in `errors`.
 */
export function resolveConfig(argv: string[], env: NodeJS.ProcessEnv): ResolvedConfig {
  const errors: string[] = [];
  const warnings: string[] = [];
  // The raw command-line value of each option and the spelling it was given with (for messages).
  const fromArgs = new Map<OptionSpec, { raw: string; source: string }>();

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      for (const rest of argv.slice(i + 1)) errors.push(`unexpected argument "${rest}"`);
      break;
    }
    if (!arg.startsWith('--')) {
      errors.push(arg.startsWith('-') ? `unknown option ${arg}` : `unexpected argument "${arg}"`);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const source = `--${name}`;
    let raw = eq < 0 ? undefined : arg.slice(eq + 1);
    const next = argv[i + 1];
    // A following word counts as the value unless it looks like the next option.
    const nextIsValue = next !== undefined && !next.startsWith('--');
    const spec = lookup(name);

    if (!spec) {
      const cls = name.includes('.') ? name.slice(0, name.indexOf('.')) : '';
      if (OWN_CLASSES.has(cls)) {
        const known = optionTable.filter((o) => o.classes.includes(cls)).map((o) => o.trait).join(', ');
        throw new ConfigError(`${source}: unknown or unsupported option; ${cls} options here are: ${known}`);
      }
      errors.push(`unknown option ${source}`);
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
    fromArgs.set(spec, { raw, source });
  }

  const config: Config = { ...DEFAULTS };
  for (const spec of optionTable) {
    let given = fromArgs.get(spec);
    const envValue = spec.env === undefined ? undefined : env[spec.env];
    // An empty variable only means something for strings ('' auth token = auth off); elsewhere it is unset.
    if (!given && spec.env && envValue !== undefined && (spec.type === 'string' || envValue.trim() !== '')) {
      given = { raw: envValue, source: spec.env };
    }
    if (!given) continue;
    const parsed = parseValue(spec, given.raw);
    if ('problem' in parsed) {
      throw new ConfigError(`${given.source}: ${JSON.stringify(given.raw)} ${parsed.problem} (${others(spec, given.source)})`);
    }
    (config as Record<keyof Config, unknown>)[spec.key] = parsed.value;
  }

  const knownEnv = new Set(optionTable.map((o) => o.env));
  for (const name of Object.keys(env)) {
    if (name.startsWith('KG_') && !knownEnv.has(name)) warnings.push(`${name} is set but is not a kernelgateway setting; ignored`);
  }
  return { config, errors, warnings };
}

/** The spellings of `spec` other than the one used, for messages: "KG_PORT, --KernelGatewayApp.port". */
function others(spec: OptionSpec, used: string): string {
  // Any short spelling (`--port_retries`) stands for the table's flag.
  const same = used.startsWith('--') && !used.includes('.') ? spec.flag : used;
  return spellings(spec).filter((s) => s !== same).join(', ');
}

/** A copy of `config` safe to log: a set token shows as '<hidden>'; unset and '' (auth off) stay as they are. */
export function redactedConfig(config: Config): Config {
  return config.authToken ? { ...config, authToken: '<hidden>' } : { ...config };
}
