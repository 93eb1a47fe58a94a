/**
 * The gateway's options: the Config type and its defaults, and the option table that says how each
 * option is spelled (flag, KG_* variable, the reference's `Class.trait` names), typed and bounded.
 * Parsing lives beside it: values.ts (one value), argv.ts (the command line), files.ts (config
 * files), resolve.ts (precedence).
 */
import { LOG_FORMATS, type LogFormat, type LogLevel } from '../log.ts';
import { CONFIG_FILE_NAME } from '../paths.ts';
import { CELL_PARSER_NAMES, cellParserByName, type CellParserName } from '../notebook-http/parser-names.ts';
import { checkDirectory, checkReadableFile, normalizeBaseUrl } from './values.ts';

/** The two personalities, by our names; the reference's module names are accepted for them. */
export type Personality = 'jupyter-websocket' | 'notebook-http';
const PERSONALITY_NAMES: Record<string, Personality> = {
  'jupyter-websocket': 'jupyter-websocket',
  'kernel_gateway.jupyter_websocket': 'jupyter-websocket',
  'notebook-http': 'notebook-http',
  'kernel_gateway.notebook_http': 'notebook-http',
};

export interface Config {
  /** The personality: Jupyter's kernel API, or a notebook's cells as HTTP endpoints. */
  api: Personality;
  /** Interface to listen on. */
  ip: string;
  /** Port to listen on (0 = any free port). */
  port: number;
  /** Further ports to try when `port` is taken. */
  portRetries: number;
  /** undefined: generate one at start-up; '': auth off (with a warning); else the token. */
  authToken: string | undefined;
  /** File the token is read from at start-up, into authToken ('': none); excludes authToken. */
  authTokenFile: string;
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
  /** text: `[L date KernelGateway] message` lines; json: one JSON object per line. */
  logFormat: LogFormat;
  /** Serve GET /metrics without the token (for a scraper inside a trusted network). */
  metricsNoAuth: boolean;
  /** Seconds a kernel may take to answer its first kernel_info before clients are let in anyway. */
  kernelInfoTimeout: number;
  /** Largest WebSocket frame accepted from a client, bytes. */
  maxMessageSize: number;
  /** Bytes kept for a client that is away (replayed on reconnect with the same session_id). */
  offlineBufferBytes: number;
  /** Bytes queued towards one slow client before that client is disconnected (never silently dropped). */
  clientBufferBytes: number;
  /**
   * Bytes one client may have queued towards its kernel; reading from the client pauses while the
   * kernel does not read, and a client past this bound is disconnected with close code 4009.
   */
  kernelBufferBytes: number;
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
  /** notebook-http: how endpoints are declared (annotations, or a Swagger document). */
  cellParser: CellParserName;
  /** notebook-http: comment tokens by notebook language, over the built-in ones. */
  commentPrefix: Record<string, string>;
  /** notebook-http: serve the notebook at /_api/source. */
  allowNotebookDownload: boolean;
  /** notebook-http: a folder served at /public/ ('' : none). */
  staticPath: string;
  /** notebook-http: seconds a request may run before it gets 504 and its kernel is interrupted (0: none). */
  requestTimeout: number;
  /** notebook-http: requests waiting for a kernel beyond which newcomers get 503. */
  maxQueuedRequests: number;
  /** Slurm kernels: the address their jobs connect back to ('': this host's name). */
  slurmCallbackHost: string;
  /** Slurm kernels: interface and port the gateway listens on for their launchers ('': every interface; 0: any port). */
  slurmCallbackIp: string;
  slurmCallbackPort: number;
}

export const DEFAULTS: Config = {
  api: 'jupyter-websocket',
  ip: '127.0.0.1',
  port: 8888,
  portRetries: 50,
  authToken: undefined,
  authTokenFile: '',
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
  logFormat: 'text',
  metricsNoAuth: false,
  kernelInfoTimeout: 60,
  maxMessageSize: 64 * 1024 * 1024,
  offlineBufferBytes: 256 * 1024 * 1024,
  clientBufferBytes: 128 * 1024 * 1024,
  kernelBufferBytes: 64 * 1024 * 1024,
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
  cellParser: 'annotations',
  commentPrefix: {},
  allowNotebookDownload: false,
  staticPath: '',
  requestTimeout: 60,
  maxQueuedRequests: 100,
  slurmCallbackHost: '',
  slurmCallbackIp: '',
  slurmCallbackPort: 0,
};

export type OptionType = 'string' | 'int' | 'bool' | 'loglevel' | 'list' | 'map';

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
const NOTEBOOK_HTTP = ['NotebookHTTPPersonality', 'KernelGatewayApp'] as const;

/** The classes --generate-config writes, in this order; every option's first class is one of them. */
export const CONFIG_SECTIONS = ['KernelGatewayApp', 'JupyterWebsocketPersonality', 'NotebookHTTPPersonality', 'MappingKernelManager'] as const;

/** Seconds options that end up in a timer: Node's timers take at most 2^31-1 ms. */
const MAX_TIMER_SECONDS = Math.floor(2 ** 31 / 1000) - 1;

export const optionTable: readonly OptionSpec[] = [
  { key: 'ip', trait: 'ip', classes: APP, flag: '--ip', env: 'KG_IP', type: 'string', help: 'Interface to listen on',
    // Node (like tornado) treats an empty host as "all interfaces": too easy to do by accident.
    check: (v) => (v.trim() === '' ? 'is empty; expected an address such as 127.0.0.1, 0.0.0.0 or ::' : undefined) },
  { key: 'port', trait: 'port', classes: APP, flag: '--port', env: 'KG_PORT', type: 'int', min: 0, max: 65535,
    help: 'Port to listen on (0: any free port)' },
  { key: 'portRetries', trait: 'port_retries', classes: APP, flag: '--port-retries', env: 'KG_PORT_RETRIES', type: 'int',
    min: 0, help: 'Further ports to try when the port is taken' },
  { key: 'authToken', trait: 'auth_token', classes: APP, flag: '--auth-token', env: 'KG_AUTH_TOKEN', type: 'string',
    help: "Token clients must send (unset: generated at start-up; '': auth off); prefer KG_AUTH_TOKEN or --auth-token-file" },
  { key: 'authTokenFile', trait: 'auth_token_file', classes: APP, flag: '--auth-token-file', env: 'KG_AUTH_TOKEN_FILE',
    type: 'string', check: checkReadableFile('a readable file holding the token'),
    help: 'File holding the token (a trailing newline is dropped); instead of --auth-token, never with it' },
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
  { key: 'logFormat', trait: 'log_format', classes: APP, flag: '--log-format', env: 'KG_LOG_FORMAT', type: 'string',
    check: (v) => ((LOG_FORMATS as readonly string[]).includes(v.trim().toLowerCase()) ? undefined : `is not a log format; expected ${LOG_FORMATS.join(' or ')}`),
    normalize: (v) => v.trim().toLowerCase(),
    help: 'text (one readable line per event) or json (one JSON object per line, for log collectors)' },
  { key: 'metricsNoAuth', trait: 'metrics_no_auth', classes: APP, flag: '--metrics-no-auth', env: 'KG_METRICS_NO_AUTH',
    type: 'bool', help: 'Serve GET /metrics without the token (for a scraper on a trusted network)' },
  { key: 'kernelInfoTimeout', trait: 'kernel_info_timeout', classes: KERNEL_MANAGER, flag: '--kernel-info-timeout',
    env: 'KG_KERNEL_INFO_TIMEOUT', type: 'int', min: 1, max: MAX_TIMER_SECONDS,
    help: 'Seconds to wait for a new kernel’s first kernel_info' },
  { key: 'maxMessageSize', trait: 'max_message_size', classes: APP, flag: '--max-message-size',
    env: 'KG_MAX_MESSAGE_SIZE', type: 'int', min: 1, help: 'Largest WebSocket frame accepted from a client, bytes' },
  { key: 'offlineBufferBytes', trait: 'offline_buffer_bytes', classes: APP, flag: '--offline-buffer-bytes',
    env: 'KG_OFFLINE_BUFFER_BYTES', type: 'int', min: 0, help: 'Bytes kept for a disconnected client, replayed on reconnect' },
  { key: 'clientBufferBytes', trait: 'client_buffer_bytes', classes: APP, flag: '--client-buffer-bytes',
    env: 'KG_CLIENT_BUFFER_BYTES', type: 'int', min: 1, help: 'Bytes queued for a slow client before it is disconnected' },
  { key: 'kernelBufferBytes', trait: 'kernel_buffer_bytes', classes: APP, flag: '--kernel-buffer-bytes',
    env: 'KG_KERNEL_BUFFER_BYTES', type: 'int', min: 1024 * 1024,
    help: 'Bytes one client may have queued towards its kernel (reading it pauses meanwhile); beyond: disconnected, 4009' },
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
    check: checkReadableFile('a readable PEM file'), help: 'TLS certificate, PEM file (needs --keyfile)' },
  { key: 'keyfile', trait: 'keyfile', classes: APP, flag: '--keyfile', env: 'KG_KEYFILE', type: 'string',
    check: checkReadableFile('a readable PEM file'), help: 'TLS private key, PEM file (needs --certfile)' },
  { key: 'clientCa', trait: 'client_ca', classes: APP, flag: '--client-ca', env: 'KG_CLIENT_CA', type: 'string',
    check: checkReadableFile('a readable PEM file'), help: 'CA bundle, PEM file: clients must present a certificate it signed (needs TLS)' },
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
  { key: 'api', trait: 'api', classes: APP, flag: '--api', env: 'KG_API', type: 'string',
    check: (v) => (PERSONALITY_NAMES[v.trim()] ? undefined : `is not a personality; expected one of ${Object.keys(PERSONALITY_NAMES).join(', ')}`),
    normalize: (v) => PERSONALITY_NAMES[v.trim()],
    help: 'Personality: jupyter-websocket (the kernel API) or notebook-http (a notebook served as HTTP endpoints)' },
  { key: 'cellParser', trait: 'cell_parser', classes: NOTEBOOK_HTTP, flag: '--cell-parser', env: 'KG_CELL_PARSER', type: 'string',
    check: (v) => (cellParserByName(v) ? undefined : `is not a cell parser; expected one of ${CELL_PARSER_NAMES.join(', ')}`),
    normalize: (v) => cellParserByName(v)!,
    help: 'notebook-http: endpoints from annotations (# GET /path) or from a Swagger document (# operationId: x)' },
  { key: 'commentPrefix', trait: 'comment_prefix', classes: NOTEBOOK_HTTP, flag: '--comment-prefix', type: 'map',
    help: 'notebook-http: comment token by notebook language, as JSON, over the built-in ones (e.g. {"scala": "//"})' },
  { key: 'allowNotebookDownload', trait: 'allow_notebook_download', classes: NOTEBOOK_HTTP, flag: '--allow-notebook-download',
    env: 'KG_ALLOW_NOTEBOOK_DOWNLOAD', type: 'bool', help: 'notebook-http: serve the notebook at /_api/source' },
  { key: 'staticPath', trait: 'static_path', classes: NOTEBOOK_HTTP, flag: '--static-path', env: 'KG_STATIC_PATH',
    type: 'string', check: checkDirectory, help: "notebook-http: folder served at /public/ without a token ('': none)" },
  { key: 'requestTimeout', trait: 'request_timeout', classes: NOTEBOOK_HTTP, flag: '--request-timeout',
    env: 'KG_REQUEST_TIMEOUT', type: 'int', min: 0, max: MAX_TIMER_SECONDS,
    help: 'notebook-http: seconds a request may run before it gets 504 and its kernel is interrupted (0: no limit)' },
  { key: 'maxQueuedRequests', trait: 'max_queued_requests', classes: NOTEBOOK_HTTP, flag: '--max-queued-requests',
    env: 'KG_MAX_QUEUED_REQUESTS', type: 'int', min: 0,
    help: 'notebook-http: requests that may wait for a kernel; beyond, 503 with Retry-After' },
  { key: 'slurmCallbackHost', trait: 'slurm_callback_host', classes: APP, flag: '--slurm-callback-host',
    env: 'KG_SLURM_CALLBACK_HOST', type: 'string',
    help: "Slurm kernels: host name or address their jobs connect back to ('': this host's name)" },
  { key: 'slurmCallbackIp', trait: 'slurm_callback_ip', classes: APP, flag: '--slurm-callback-ip', env: 'KG_SLURM_CALLBACK_IP',
    type: 'string', help: "Slurm kernels: interface to listen on for their launchers ('': every interface)" },
  { key: 'slurmCallbackPort', trait: 'slurm_callback_port', classes: APP, flag: '--slurm-callback-port',
    env: 'KG_SLURM_CALLBACK_PORT', type: 'int', min: 0, max: 65535,
    help: 'Slurm kernels: port to listen on for their launchers (0: any free port)' },
];

/** Command-line flags of the app that set no Config option: where to read the config from, what to do. */
export type AppFlag = {
  flag: string;
  short?: string;
  /** Also accepted as `--KernelGatewayApp.<trait>`, as in the reference. */
  trait?: string;
  help: string;
} & (
  | { key: 'configFile'; /** takes a file name */ takes: 'file' }
  | { key: 'generateConfig' | 'answerYes' | 'helpAll'; /** on when given, or set with true/false as a boolean option */ takes: 'switch' }
);

export const appFlags: readonly AppFlag[] = [
  { key: 'configFile', flag: '--config', trait: 'config_file', takes: 'file',
    help: `JSON config file to read instead of ${CONFIG_FILE_NAME} in the Jupyter config path (env KG_CONFIG_FILE)` },
  { key: 'generateConfig', flag: '--generate-config', trait: 'generate_config', takes: 'switch',
    help: `Write every option with its default to ${CONFIG_FILE_NAME} in $JUPYTER_CONFIG_DIR (else ~/.jupyter), or to the --config file, and exit` },
  { key: 'answerYes', flag: '--yes', short: '-y', trait: 'answer_yes', takes: 'switch',
    help: 'With --generate-config: overwrite an existing file without asking' },
  { key: 'helpAll', flag: '--help-all', takes: 'switch', help: 'Every option with its env var, reference spellings and default' },
];

/** A bad value, an unknown `--KernelGatewayApp.x` option or a bad config file; the message is ready for the user. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** A copy of `config` safe to log: a set token shows as '<hidden>'; unset and '' (auth off) stay as they are. */
export function redactedConfig(config: Config): Config {
  return config.authToken ? { ...config, authToken: '<hidden>' } : { ...config };
}

// ---------------------------------------------------------------------------------------------
// Spellings: finding an option by the name it was given, and naming it in messages
// ---------------------------------------------------------------------------------------------

/** Traits the app classes know besides the table's (the app flags), for "options here are" lists. */
const APP_TRAITS: Record<string, readonly string[]> = { KernelGatewayApp: appFlags.flatMap((f) => (f.trait ? [f.trait] : [])) };

/** Every class with options of ours; an unknown trait under one is a ConfigError. */
export const OWN_CLASSES: readonly string[] = [...new Set([...CONFIG_SECTIONS, ...optionTable.flatMap((o) => o.classes)])];

/** The option a reference spelling `<Class>.<trait>` names, if any. */
export function lookupTrait(cls: string, trait: string): OptionSpec | undefined {
  return optionTable.find((o) => o.trait === trait && o.classes.includes(cls));
}

/** The option a short flag names (without its leading `--`); '_' and '-' are the same, so `port_retries` works too. */
export function lookupFlag(name: string): OptionSpec | undefined {
  const flag = `--${name.replaceAll('_', '-')}`;
  return optionTable.find((o) => o.flag === flag);
}

function spellings(spec: OptionSpec): string[] {
  return [spec.flag, ...(spec.env ? [spec.env] : []), ...spec.classes.map((c) => `--${c}.${spec.trait}`)];
}

/** The spellings of `spec` other than the one used, for messages: "KG_PORT, --KernelGatewayApp.port". */
export function otherSpellings(spec: OptionSpec, used: string): string {
  // Any short spelling (`--port_retries`) stands for the table's flag.
  const same = used.startsWith('--') && !used.includes('.') ? spec.flag : used;
  return spellings(spec).filter((s) => s !== same).join(', ');
}

/** "<where>: unknown or unsupported option; <Class> options here are: …" plus a hint when one is likely meant. */
export function unknownTraitMessage(where: string, cls: string, trait: string): string {
  const known = [...optionTable.filter((o) => o.classes.includes(cls)).map((o) => o.trait), ...(APP_TRAITS[cls] ?? [])];
  let hint = '';
  // authToken, auth-token → auth_token
  const snake = trait.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replaceAll('-', '_').toLowerCase();
  const elsewhere = optionTable.find((o) => o.trait === snake);
  if (elsewhere && elsewhere.classes.includes(cls)) hint = `; did you mean ${cls}.${snake}?`;
  else if (elsewhere) hint = `; ${snake} is accepted under ${elsewhere.classes.join(', ')}`;
  return `${where}: unknown or unsupported option${hint}; ${cls} options here are: ${known.join(', ')}`;
}
