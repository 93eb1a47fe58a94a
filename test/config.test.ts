import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCommandLine } from '../src/config/argv.ts';
import { parseConfigText } from '../src/config/files.ts';
import { generateConfigText } from '../src/config/generate.ts';
import { helpAllText } from '../src/config/help.ts';
import { CONFIG_SECTIONS, ConfigError, DEFAULTS, optionTable, redactedConfig, type Config } from '../src/config/options.ts';
import { resolveConfig } from '../src/config/resolve.ts';
import { splitList } from '../src/config/values.ts';
import { CONFIG_FILE_NAME, configSearchPath, defaultConfigFilePath, type PathOptions } from '../src/paths.ts';

/** Every file the tests make lives under here; removed at the end. */
const TMP = mkdtempSync(join(tmpdir(), 'kg-config-test-'));
let tmpCount = 0;
/** A fresh empty directory. */
function tempDir(): string {
  const dir = join(TMP, `d${++tmpCount}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}
/** Writes `content` (a string, or an object as JSON) to a fresh file and returns its path. */
function tempFile(content: string | object, name = 'file'): string {
  const file = join(tempDir(), name);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** The home and system directories of the tests: empty, so the real ~/.jupyter and /etc/jupyter are never read. */
const HERMETIC: PathOptions = { home: tempDir(), systemDirs: [] };

/** An existing directory and readable files for root_dir and the TLS options. */
const ROOT = tempDir();
const CERT = tempFile('-----BEGIN CERTIFICATE-----\n', 'cert.pem');
const KEY = tempFile('-----BEGIN PRIVATE KEY-----\n', 'key.pem');
const CA = tempFile('-----BEGIN CERTIFICATE-----\n', 'ca.pem');

const resolve = (argv: string[], env: NodeJS.ProcessEnv = {}, opts: PathOptions = HERMETIC) =>
  resolveConfig(argv, env, opts);

/** The ConfigError message resolveConfig throws, or fails the test. */
function errorOf(argv: string[], env: NodeJS.ProcessEnv = {}, opts: PathOptions = HERMETIC): string {
  return thrown(() => resolveConfig(argv, env, opts), `${JSON.stringify(argv)} ${JSON.stringify(env)}`);
}

/** The ConfigError message `fn` throws, or fails the test. */
function thrown(fn: () => unknown, what = ''): string {
  try {
    fn();
  } catch (err) {
    assert.instance(err, ConfigError);
    return (err as Error).message;
  }
  assert.unreachable(`no ConfigError ${what}`);
  return '';
}

test.after(() => rmSync(TMP, { recursive: true, force: true }));

test('no arguments and no environment give the defaults', () => {
  const { config, errors, warnings } = resolve([]);
  assert.equal(config, DEFAULTS);
  assert.equal(errors, []);
  assert.equal(warnings, []);
});

test('every option has a distinct flag, env var and trait', () => {
  const flags = optionTable.map((o) => o.flag);
  const envs = optionTable.flatMap((o) => (o.env ? [o.env] : []));
  assert.is(new Set(flags).size, flags.length);
  assert.is(new Set(envs).size, envs.length);
  assert.is(new Set(optionTable.map((o) => o.key)).size, Object.keys(DEFAULTS).length);
  for (const key of Object.keys(DEFAULTS)) assert.ok(optionTable.some((o) => o.key === key), `${key} has no table row`);
  for (const o of optionTable) {
    assert.ok((CONFIG_SECTIONS as readonly string[]).includes(o.classes[0]), `${o.trait}: first class ${o.classes[0]}`);
    assert.ok(o.classes.includes('KernelGatewayApp'), `${o.trait} is accepted as --KernelGatewayApp.${o.trait}`);
    assert.is(o.flag, `--${o.trait.replaceAll('_', '-')}`, 'the flag is the trait with dashes');
  }
});

test('each KG_* variable supplies its option', () => {
  const { config } = resolve([], {
    KG_IP: '0.0.0.0',
    KG_PORT: '9000',
    KG_PORT_RETRIES: '0',
    KG_AUTH_TOKEN: 's3cret',
    KG_ALLOW_ORIGIN: '*',
    KG_ALLOW_HEADERS: 'X-A',
    KG_ALLOW_METHODS: 'GET',
    KG_ALLOW_CREDENTIALS: 'true',
    KG_EXPOSE_HEADERS: 'X-B',
    KG_MAX_AGE: '600',
    KG_BASE_URL: '/gw',
    KG_DEFAULT_KERNEL_NAME: 'ir',
    KG_LIST_KERNELS: 'True',
    KG_KERNEL_INFO_TIMEOUT: '5',
    KG_MAX_MESSAGE_SIZE: '1024',
    KG_OFFLINE_BUFFER_BYTES: '0',
    KG_CLIENT_BUFFER_BYTES: '2048',
    KG_KERNEL_BUFFER_BYTES: '2097152',
    KG_WS_PING_INTERVAL_SECS: '0',
    KG_PRESPAWN_COUNT: '1',
    KG_FORCE_KERNEL_NAME: 'python3',
    KG_MAX_KERNELS: '3',
    KG_EXPOSE_KERNELSPECS: 'false',
    KG_SEED_URI: 'seed.ipynb',
    KG_ENV_WHITELIST: 'A, B',
    KG_ENV_PROCESS_WHITELIST: 'PATH,HOME',
    KG_ROOT_DIR: ROOT,
    KG_CERTFILE: CERT,
    KG_KEYFILE: KEY,
    KG_CLIENT_CA: CA,
    KG_CULL_IDLE_TIMEOUT: '600',
    KG_CULL_INTERVAL: '60',
    KG_CULL_CONNECTED: 'true',
    KG_CULL_BUSY: 'yes',
    KG_TRUST_XHEADERS: 'true',
    KG_KERNEL_STARTUP_TIMEOUT: '90',
    KG_API: 'kernel_gateway.notebook_http',
    KG_LOG_FORMAT: 'JSON',
    KG_METRICS_NO_AUTH: 'true',
    KG_CELL_PARSER: 'kernel_gateway.notebook_http.swagger.parser',
    KG_ALLOW_NOTEBOOK_DOWNLOAD: 'True',
    KG_STATIC_PATH: ROOT,
    KG_REQUEST_TIMEOUT: '30',
    KG_MAX_QUEUED_REQUESTS: '7',
    KG_SLURM_CALLBACK_HOST: 'login1.cluster',
    KG_SLURM_CALLBACK_IP: '10.0.0.5',
    KG_SLURM_CALLBACK_PORT: '7777',
  });
  assert.equal(config, {
    ip: '0.0.0.0',
    port: 9000,
    portRetries: 0,
    authToken: 's3cret',
    authTokenFile: '',
    allowOrigin: '*',
    allowHeaders: 'X-A',
    allowMethods: 'GET',
    allowCredentials: 'true',
    exposeHeaders: 'X-B',
    maxAge: '600',
    baseUrl: '/gw/',
    defaultKernelName: 'ir',
    listKernels: true,
    logLevel: 'INFO',
    kernelInfoTimeout: 5,
    maxMessageSize: 1024,
    offlineBufferBytes: 0,
    clientBufferBytes: 2048,
    kernelBufferBytes: 2097152,
    wsPingInterval: 0,
    prespawnCount: 1,
    forceKernelName: 'python3',
    maxKernels: 3,
    exposeKernelspecs: false,
    seedUri: 'seed.ipynb',
    envWhitelist: ['A', 'B'],
    envProcessWhitelist: ['PATH', 'HOME'],
    rootDir: ROOT,
    certfile: CERT,
    keyfile: KEY,
    clientCa: CA,
    cullIdleTimeout: 600,
    cullInterval: 60,
    cullConnected: true,
    cullBusy: true,
    trustXheaders: true,
    kernelStartupTimeout: 90,
    api: 'notebook-http',
    logFormat: 'json',
    metricsNoAuth: true,
    cellParser: 'swagger',
    commentPrefix: {},
    allowNotebookDownload: true,
    staticPath: ROOT,
    requestTimeout: 30,
    maxQueuedRequests: 7,
    slurmCallbackHost: 'login1.cluster',
    slurmCallbackIp: '10.0.0.5',
    slurmCallbackPort: 7777,
  });
});

test('each short flag sets its option', () => {
  const { config } = resolve([
    '--ip', '::', '--port', '9001', '--port-retries', '3', '--auth-token', 't', '--allow-origin', 'https://a',
    '--allow-headers', 'H', '--allow-methods', 'M', '--allow-credentials', 'C', '--expose-headers', 'E',
    '--max-age', '1', '--base-url', 'x', '--default-kernel-name', 'k', '--list-kernels', '--log-level', 'debug',
    '--kernel-info-timeout', '7', '--max-message-size', '8', '--offline-buffer-bytes', '9', '--client-buffer-bytes', '10',
    '--kernel-buffer-bytes', '1048576',
    '--ws-ping-interval', '11', '--prespawn-count', '2', '--force-kernel-name', 'fk', '--max-kernels', '4',
    '--expose-kernelspecs', 'false', '--seed-uri', 'https://example.org/s.ipynb', '--env-whitelist', 'X,Y',
    '--env-process-whitelist', 'PATH', '--root-dir', ROOT, '--certfile', CERT, '--keyfile', KEY, '--client-ca', CA,
    '--cull-idle-timeout', '12', '--cull-interval', '13', '--cull-connected', '--cull-busy', 'true', '--trust-xheaders',
    '--kernel-startup-timeout', '14', '--api', 'notebook-http', '--log-format', 'text', '--metrics-no-auth',
    '--cell-parser', 'annotations', '--comment-prefix', '{"scala": "//", "r": "#"}', '--allow-notebook-download',
    '--static-path', ROOT, '--request-timeout', '0', '--max-queued-requests', '0',
    '--slurm-callback-host', 'h', '--slurm-callback-ip', '::', '--slurm-callback-port', '15',
  ]);
  assert.equal(config, {
    ip: '::', port: 9001, portRetries: 3, authToken: 't', authTokenFile: '', allowOrigin: 'https://a', allowHeaders: 'H',
    allowMethods: 'M', allowCredentials: 'C', exposeHeaders: 'E', maxAge: '1', baseUrl: '/x/', defaultKernelName: 'k',
    listKernels: true, logLevel: 'DEBUG', kernelInfoTimeout: 7, maxMessageSize: 8, offlineBufferBytes: 9,
    clientBufferBytes: 10, kernelBufferBytes: 1048576, wsPingInterval: 11, prespawnCount: 2, forceKernelName: 'fk', maxKernels: 4,
    exposeKernelspecs: false, seedUri: 'https://example.org/s.ipynb', envWhitelist: ['X', 'Y'],
    envProcessWhitelist: ['PATH'], rootDir: ROOT, certfile: CERT, keyfile: KEY, clientCa: CA, cullIdleTimeout: 12,
    cullInterval: 13, cullConnected: true, cullBusy: true, trustXheaders: true, kernelStartupTimeout: 14,
    api: 'notebook-http', logFormat: 'text', metricsNoAuth: true, cellParser: 'annotations', commentPrefix: { scala: '//', r: '#' },
    allowNotebookDownload: true, staticPath: ROOT, requestTimeout: 0, maxQueuedRequests: 0,
    slurmCallbackHost: 'h', slurmCallbackIp: '::', slurmCallbackPort: 15,
  });
});

test('the command line beats the environment', () => {
  const env = { KG_PORT: '9000', KG_IP: '0.0.0.0', KG_LIST_KERNELS: 'true' };
  assert.is(resolve(['--port', '9002'], env).config.port, 9002);
  assert.is(resolve(['--KernelGatewayApp.ip=10.0.0.1'], env).config.ip, '10.0.0.1');
  assert.is(resolve(['--list-kernels=false'], env).config.listKernels, false);
  // A bad variable does not matter when the command line sets the option (the env is only a default).
  assert.is(resolve(['--port', '1'], { KG_PORT: 'abc' }).config.port, 1);
});

test('both spellings are accepted and the last one wins', () => {
  assert.is(resolve(['--port', '9']).config.port, 9);
  assert.is(resolve(['--port=9']).config.port, 9);
  assert.is(resolve(['--KernelGatewayApp.port=9']).config.port, 9);
  assert.is(resolve(['--KernelGatewayApp.port', '9']).config.port, 9);
  assert.is(resolve(['--port=1', '--KernelGatewayApp.port=2']).config.port, 2);
  assert.is(resolve(['--KernelGatewayApp.port=2', '--port', '1']).config.port, 1);
  assert.is(resolve(['--port_retries=4']).config.portRetries, 4, 'reference alias --port_retries');
  assert.is(resolve(['--KernelGatewayApp.port_retries=5']).config.portRetries, 5);
});

test('list_kernels under both classes, log_level under Application', () => {
  assert.is(resolve(['--JupyterWebsocketPersonality.list_kernels=True']).config.listKernels, true);
  assert.is(resolve(['--KernelGatewayApp.list_kernels=True']).config.listKernels, true);
  assert.is(resolve(['--Application.log_level=ERROR']).config.logLevel, 'ERROR');
  assert.is(resolve(['--KernelGatewayApp.log_level=CRITICAL']).config.logLevel, 'CRITICAL');
});

test('booleans: a flag alone is true; true/false/1/0/yes/no in any case', () => {
  const flag = (argv: string[]) => resolve(argv).config.listKernels;
  assert.is(flag(['--list-kernels']), true);
  assert.is(flag(['--list-kernels', '--port', '1']), true);
  for (const word of ['true', 'True', 'TRUE', '1', 'yes', 'Yes']) assert.is(flag([`--list-kernels=${word}`]), true, word);
  for (const word of ['false', 'False', '0', 'no', 'NO']) assert.is(flag([`--list-kernels=${word}`]), false, word);
  assert.is(flag(['--list-kernels', 'false']), false);
  for (const word of ['true', 'yes', '1', 'TRUE']) assert.is(resolve([], { KG_LIST_KERNELS: word }).config.listKernels, true);
  assert.is(resolve([], { KG_LIST_KERNELS: 'False' }).config.listKernels, false);
  assert.is(resolve([], { KG_LIST_KERNELS: '' }).config.listKernels, false, 'empty means unset');
});

test('a bad boolean names the option and what is expected', () => {
  const msg = errorOf(['--list-kernels=maybe']);
  assert.match(msg, '--list-kernels: "maybe" is not a boolean');
  assert.match(msg, 'true/false');
  assert.match(errorOf([], { KG_LIST_KERNELS: 'sure' }), /^KG_LIST_KERNELS: "sure" is not a boolean/);
});

test('integers: non-integers are rejected with the option named', () => {
  assert.is(errorOf(['--port', 'abc']), '--port: "abc" is not an integer (KG_PORT, --KernelGatewayApp.port)');
  assert.is(errorOf([], { KG_PORT: '80.5' }), 'KG_PORT: "80.5" is not an integer (--port, --KernelGatewayApp.port)');
  assert.is(
    errorOf(['--KernelGatewayApp.port=1e3']),
    '--KernelGatewayApp.port: "1e3" is not an integer (--port, KG_PORT)',
  );
  assert.match(errorOf(['--max-message-size=lots']), '--max-message-size: "lots" is not an integer');
  assert.match(errorOf([], { KG_KERNEL_INFO_TIMEOUT: '0' }), 'KG_KERNEL_INFO_TIMEOUT: "0" is out of range; expected 1..2147482');
  assert.match(errorOf(['--port-retries=-1']), 'is out of range');
  assert.match(errorOf(['--port']), '--port: needs a value');
});

test('ports: 0..65535', () => {
  assert.is(resolve(['--port', '0']).config.port, 0);
  assert.is(resolve(['--port', '65535']).config.port, 65535);
  assert.is(errorOf(['--port', '65536']), '--port: "65536" is out of range; expected 0..65535 (KG_PORT, --KernelGatewayApp.port)');
  assert.match(errorOf(['--port', '-1']), '"-1" is out of range');
  assert.match(errorOf([], { KG_PORT: '-80' }), 'KG_PORT: "-80" is out of range');
});

test('an unknown option of one of our classes is a ConfigError naming it', () => {
  const msg = errorOf(['--KernelGatewayApp.ssl_version=5']);
  assert.match(msg, /^--KernelGatewayApp\.ssl_version: unknown or unsupported option/);
  assert.match(msg, 'port_retries'); // lists what is known
  assert.match(msg, 'config_file');
  assert.match(errorOf(['--JupyterWebsocketPersonality.port=1']), '--JupyterWebsocketPersonality.port');
  assert.match(errorOf(['--JupyterWebsocketPersonality.port=1']), 'port is accepted under KernelGatewayApp');
  assert.match(errorOf(['--MappingKernelManager.use_pending_kernels=True']), 'MappingKernelManager options here are: ');
  assert.match(errorOf(['--KernelGatewayApp.authToken=x']), 'did you mean KernelGatewayApp.auth_token?');
  assert.match(errorOf(['--ServerApp.port=1']), 'ServerApp options here are: root_dir');
});

test('other unknown arguments are collected in errors', () => {
  const { errors } = resolve(['--frobnicate', 'x', 'stray', '-x', '--port', '1', '--NotebookApp.port=2']);
  assert.equal(errors, [
    'unknown option --frobnicate',
    'unexpected argument "stray"',
    'unknown option -x',
    'unknown option --NotebookApp.port',
  ]);
});

test('unknown KG_* variables are warnings; KG_CONFIG_FILE and KG_ENV_PREFIX are known', () => {
  const { warnings } = resolve([], {
    KG_SSL_VERSION: '5',
    KG_SEED_URI: 'x.ipynb',
    KG_ENV_PREFIX: tempDir(),
    KG_CONFIG_FILE: tempFile({}),
    PATH: '/bin',
  });
  assert.equal(warnings, ['KG_SSL_VERSION is set but is not a kernelgateway setting; ignored']);
});

test('auth token: absent → undefined, empty → "", else the value', () => {
  assert.is(resolve([]).config.authToken, undefined);
  assert.is(resolve(['--auth-token', '']).config.authToken, '');
  assert.is(resolve(['--auth-token=']).config.authToken, '');
  assert.is(resolve([], { KG_AUTH_TOKEN: '' }).config.authToken, '');
  assert.is(resolve([], { KG_AUTH_TOKEN: 'abc' }).config.authToken, 'abc');
  assert.is(resolve(['--KernelGatewayApp.auth_token=xyz'], { KG_AUTH_TOKEN: 'abc' }).config.authToken, 'xyz');
  assert.is(resolve(['--auth-token', '-dash']).config.authToken, '-dash');
  assert.is(resolve(['--auth-token', ''], { KG_AUTH_TOKEN: 'abc' }).config.authToken, '');
});

test('base_url gets one leading and trailing slash, no doubled ones', () => {
  const base = (v: string) => resolve(['--base-url', v]).config.baseUrl;
  assert.is(base(''), '/');
  assert.is(base('/'), '/');
  assert.is(base('api'), '/api/');
  assert.is(base('/api'), '/api/');
  assert.is(base('api/'), '/api/');
  assert.is(base('//a//b///'), '/a/b/');
  assert.is(resolve([], { KG_BASE_URL: 'gw/x' }).config.baseUrl, '/gw/x/');
});

test('log levels: names in any case, WARNING → WARN, numbers 10..50', () => {
  const level = (v: string) => resolve(['--log-level', v]).config.logLevel;
  assert.is(level('debug'), 'DEBUG');
  assert.is(level('Info'), 'INFO');
  assert.is(level('WARNING'), 'WARN');
  assert.is(level('warn'), 'WARN');
  assert.is(level('error'), 'ERROR');
  assert.is(level('critical'), 'CRITICAL');
  assert.is(level('10'), 'DEBUG');
  assert.is(level('30'), 'WARN');
  assert.is(level('50'), 'CRITICAL');
  assert.is(level('15'), 'INFO');
  assert.match(errorOf(['--log-level', 'loud']), '--log-level: "loud" is not a log level');
  assert.match(errorOf(['--log-level', '60']), 'is not a log level');
  assert.match(errorOf(['--log-level', '5']), 'is not a log level');
});

test('ip must not be empty', () => {
  assert.match(errorOf(['--ip=']), '--ip: "" is empty');
  assert.match(errorOf([], { KG_IP: '' }), 'KG_IP: "" is empty');
});

test('redactedConfig hides a set token and leaves the rest', () => {
  const config = resolve(['--auth-token', 's3cret', '--port', '5']).config;
  const shown = redactedConfig(config);
  assert.is(shown.authToken, '<hidden>');
  assert.is(shown.port, 5);
  assert.is(config.authToken, 's3cret', 'the original is untouched');
  assert.not.match(JSON.stringify(shown), 's3cret');
  assert.is(redactedConfig(resolve([]).config).authToken, undefined);
  assert.is(redactedConfig(resolve(['--auth-token=']).config).authToken, '');
});

// ---------------------------------------------------------------------------------------------
// The options added with the config file work

/** For each new option: a flag value, its env value, and the parsed result. */
const NEW_OPTIONS: [keyof Config, string, string, unknown][] = [
  ['prespawnCount', '--prespawn-count', '2', 2],
  ['forceKernelName', '--force-kernel-name', 'ir', 'ir'],
  ['maxKernels', '--max-kernels', '5', 5],
  ['exposeKernelspecs', '--expose-kernelspecs', 'false', false],
  ['seedUri', '--seed-uri', '/nb/seed.ipynb', '/nb/seed.ipynb'],
  ['envWhitelist', '--env-whitelist', 'A,B', ['A', 'B']],
  ['envProcessWhitelist', '--env-process-whitelist', 'C', ['C']],
  ['cullIdleTimeout', '--cull-idle-timeout', '600', 600],
  ['cullInterval', '--cull-interval', '30', 30],
  ['cullConnected', '--cull-connected', 'true', true],
  ['cullBusy', '--cull-busy', 'true', true],
  ['trustXheaders', '--trust-xheaders', 'true', true],
  ['kernelStartupTimeout', '--kernel-startup-timeout', '5', 5],
  ['kernelBufferBytes', '--kernel-buffer-bytes', '2097152', 2097152],
];

test('each new option: flag, --flag=, KG_* variable and every reference spelling', () => {
  const all: [keyof Config, string, string, unknown][] = [
    ...NEW_OPTIONS,
    ['rootDir', '--root-dir', ROOT, ROOT],
    ['certfile', '--certfile', CERT, CERT],
    ['keyfile', '--keyfile', KEY, KEY],
  ];
  for (const [key, flag, raw, expected] of all) {
    const spec = optionTable.find((o) => o.key === key)!;
    assert.is(spec.flag, flag);
    // TLS options need their partner.
    const partner = key === 'certfile' ? ['--keyfile', KEY] : key === 'keyfile' ? ['--certfile', CERT] : [];
    const get = (argv: string[], env: NodeJS.ProcessEnv = {}) => resolve([...argv, ...partner], env).config[key];
    assert.equal(get([flag, raw]), expected, `${flag} ${raw}`);
    assert.equal(get([`${flag}=${raw}`]), expected, `${flag}=${raw}`);
    assert.equal(get([], { [spec.env!]: raw }), expected, spec.env);
    for (const cls of spec.classes) assert.equal(get([`--${cls}.${spec.trait}=${raw}`]), expected, `--${cls}.${spec.trait}`);
    assert.equal(get([`--${spec.trait}=${raw}`]), expected, `--${spec.trait} (underscores)`);
  }
});

test('new options: env names and reference classes are as documented', () => {
  const row = (key: keyof Config) => optionTable.find((o) => o.key === key)!;
  assert.is(row('prespawnCount').env, 'KG_PRESPAWN_COUNT');
  assert.is(row('forceKernelName').env, 'KG_FORCE_KERNEL_NAME');
  assert.is(row('maxKernels').env, 'KG_MAX_KERNELS');
  assert.is(row('exposeKernelspecs').env, 'KG_EXPOSE_KERNELSPECS');
  assert.is(row('seedUri').env, 'KG_SEED_URI');
  assert.is(row('envWhitelist').env, 'KG_ENV_WHITELIST');
  assert.is(row('envProcessWhitelist').env, 'KG_ENV_PROCESS_WHITELIST');
  assert.is(row('rootDir').env, 'KG_ROOT_DIR');
  assert.is(row('clientCa').env, 'KG_CLIENT_CA');
  assert.is(row('clientCa').flag, '--client-ca');
  assert.is(row('cullIdleTimeout').env, 'KG_CULL_IDLE_TIMEOUT');
  assert.is(row('trustXheaders').env, 'KG_TRUST_XHEADERS');
  assert.is(row('kernelStartupTimeout').env, 'KG_KERNEL_STARTUP_TIMEOUT');
  assert.equal(row('envWhitelist').classes, ['JupyterWebsocketPersonality', 'KernelGatewayApp']);
  assert.equal(row('rootDir').classes, ['MappingKernelManager', 'ServerApp', 'KernelGatewayApp']);
  for (const key of ['cullIdleTimeout', 'cullInterval', 'cullConnected', 'cullBusy', 'kernelInfoTimeout'] as const) {
    assert.equal(row(key).classes, ['MappingKernelManager', 'KernelGatewayApp'], key);
  }
  assert.is(resolve(['--MappingKernelManager.kernel_info_timeout=9']).config.kernelInfoTimeout, 9);
  assert.is(resolve(['--KernelGatewayApp.kernel_info_timeout=8']).config.kernelInfoTimeout, 8);
});

test('expose_kernelspecs: default true; false in every spelling', () => {
  const expose = (argv: string[], env: NodeJS.ProcessEnv = {}) => resolve(argv, env).config.exposeKernelspecs;
  assert.is(expose([]), true);
  assert.is(expose(['--expose-kernelspecs', 'false']), false);
  assert.is(expose(['--expose-kernelspecs=false']), false);
  assert.is(expose(['--expose-kernelspecs', 'False', '--port', '1']), false);
  assert.is(expose(['--expose-kernelspecs', '--port', '1']), true);
  assert.is(expose(['--KernelGatewayApp.expose_kernelspecs=False']), false);
  assert.is(expose([], { KG_EXPOSE_KERNELSPECS: 'false' }), false);
  assert.is(expose([], { KG_EXPOSE_KERNELSPECS: '0' }), false);
  assert.is(expose([], { KG_EXPOSE_KERNELSPECS: '' }), true, 'empty means unset');
  assert.is(expose(['--expose-kernelspecs=true'], { KG_EXPOSE_KERNELSPECS: 'false' }), true);
  assert.match(errorOf(['--expose-kernelspecs=off']), '--expose-kernelspecs: "off" is not a boolean');
});

test('seed_uri: the reference alias --seed_uri, and URLs with // pass untouched', () => {
  assert.is(resolve(['--seed_uri', 'a b#c.ipynb']).config.seedUri, 'a b#c.ipynb');
  assert.is(resolve(['--seed_uri=https://h/x.ipynb']).config.seedUri, 'https://h/x.ipynb');
});

test('lists: comma-separated, trimmed, empty items dropped; a JSON array is also taken', () => {
  assert.equal(splitList(''), []);
  assert.equal(splitList(' A , B,,C ,'), ['A', 'B', 'C']);
  const wl = (raw: string) => resolve(['--env-whitelist', raw]).config.envWhitelist;
  assert.equal(wl('A'), ['A']);
  assert.equal(wl(' A , B ,, '), ['A', 'B']);
  assert.equal(wl(''), []);
  assert.equal(wl('["X", " Y ", ""]'), ['X', 'Y']);
  assert.equal(resolve([], { KG_ENV_WHITELIST: '' }).config.envWhitelist, []);
  assert.equal(resolve([], { KG_ENV_PROCESS_WHITELIST: 'HOME, LANG' }).config.envProcessWhitelist, ['HOME', 'LANG']);
  assert.equal(resolve(['--JupyterWebsocketPersonality.env_whitelist=A,B']).config.envWhitelist, ['A', 'B']);
  assert.equal(resolve(['--env-whitelist=A', '--env-whitelist=B']).config.envWhitelist, ['B'], 'the last one wins');
  assert.match(errorOf(['--env-whitelist', '[1, 2]']), '--env-whitelist: "[1, 2]" is not a list of strings');
  assert.match(errorOf(['--env-whitelist', '[A']), 'is not a list; expected comma-separated names or a JSON array');
  assert.match(errorOf(['--env-whitelist']), '--env-whitelist: needs a value');
});

test('integers of the new options: bounds and messages', () => {
  assert.match(errorOf(['--prespawn-count=-1']), '--prespawn-count: "-1" is out of range; expected at least 0');
  assert.match(errorOf([], { KG_MAX_KERNELS: 'many' }), 'KG_MAX_KERNELS: "many" is not an integer (--max-kernels, --KernelGatewayApp.max_kernels)');
  assert.match(errorOf(['--cull-idle-timeout=-5']), '--cull-idle-timeout: "-5" is out of range; expected at least 0');
  assert.match(errorOf(['--MappingKernelManager.cull_idle_timeout=1.5']), '--MappingKernelManager.cull_idle_timeout: "1.5" is not an integer');
  assert.match(errorOf(['--kernel-startup-timeout=0']), '--kernel-startup-timeout: "0" is out of range; expected 1..2147482');
  assert.match(errorOf(['--kernel-startup-timeout=3000000']), 'expected 1..2147482');
  assert.match(errorOf(['--cull-interval=3000000']), '--cull-interval: "3000000" is out of range; expected at most 2147482');
  assert.is(resolve(['--max-kernels', '0']).config.maxKernels, 0, '0 = unbounded');
});

test('cull_interval <= 0 becomes 300 with a warning, as in Jupyter Server', () => {
  for (const v of ['0', '-10']) {
    const { config, warnings } = resolve(['--cull-interval', v]);
    assert.is(config.cullInterval, 300);
    assert.equal(warnings, [`cull_interval ${v} (from --cull-interval) is not positive; using 300 seconds, as Jupyter Server does`]);
  }
  const fromEnv = resolve([], { KG_CULL_INTERVAL: '0' });
  assert.is(fromEnv.config.cullInterval, 300);
  assert.match(fromEnv.warnings[0], '(from KG_CULL_INTERVAL)');
  assert.equal(resolve(['--cull-interval', '1']).warnings, []);
});

test('prespawn_count may not exceed max_kernels when max_kernels is set', () => {
  assert.is(
    errorOf(['--prespawn-count', '5', '--max-kernels', '2']),
    'Cannot prespawn 5 kernels; more than max kernels 2 (prespawn_count from --prespawn-count, max_kernels from --max-kernels)',
  );
  assert.match(errorOf([], { KG_PRESPAWN_COUNT: '3', KG_MAX_KERNELS: '1' }), /^Cannot prespawn 3 kernels; more than max kernels 1 \(prespawn_count from KG_PRESPAWN_COUNT, max_kernels from KG_MAX_KERNELS\)$/);
  assert.is(resolve(['--prespawn-count', '2', '--max-kernels', '2']).config.prespawnCount, 2);
  assert.is(resolve(['--prespawn-count', '9']).config.prespawnCount, 9, 'max_kernels 0 is unbounded');
});

test('root_dir must be an existing directory', () => {
  assert.is(resolve(['--root-dir', ROOT]).config.rootDir, ROOT);
  assert.is(resolve(['--root-dir', '']).config.rootDir, '', "'' = the current directory");
  assert.is(resolve(['--ServerApp.root_dir', ROOT]).config.rootDir, ROOT);
  const missing = join(ROOT, 'nope');
  assert.is(
    errorOf(['--root-dir', missing]),
    `--root-dir: ${JSON.stringify(missing)} does not exist; expected an existing directory ` +
      '(KG_ROOT_DIR, --MappingKernelManager.root_dir, --ServerApp.root_dir, --KernelGatewayApp.root_dir)',
  );
  assert.match(errorOf([], { KG_ROOT_DIR: CERT }), `KG_ROOT_DIR: ${JSON.stringify(CERT)} is not a directory; expected an existing directory`);
  assert.match(errorOf(['--root-dir', join(CERT, 'x')]), 'does not exist (a part of the path is not a directory)');
});

test('certfile/keyfile/client_ca: readable files; cert and key together; client_ca only with TLS', () => {
  const tls = resolve(['--certfile', CERT, '--keyfile', KEY, '--client-ca', CA]).config;
  assert.equal([tls.certfile, tls.keyfile, tls.clientCa], [CERT, KEY, CA]);
  const missing = join(ROOT, 'missing.pem');
  assert.is(
    errorOf(['--certfile', missing, '--keyfile', KEY]),
    `--certfile: ${JSON.stringify(missing)} does not exist; expected a readable PEM file (KG_CERTFILE, --KernelGatewayApp.certfile)`,
  );
  assert.match(errorOf(['--keyfile', ROOT, '--certfile', CERT]), `--keyfile: ${JSON.stringify(ROOT)} is not a file; expected a readable PEM file`);
  assert.match(errorOf(['--client-ca', missing]), '--client-ca: ');
  assert.is(
    errorOf(['--certfile', CERT]),
    'certfile is set (from --certfile) but keyfile is not; TLS needs both (set --keyfile or KG_KEYFILE)',
  );
  assert.is(
    errorOf([], { KG_KEYFILE: KEY }),
    'keyfile is set (from KG_KEYFILE) but certfile is not; TLS needs both (set --certfile or KG_CERTFILE)',
  );
  assert.match(errorOf(['--client-ca', CA]), 'client_ca is set (from --client-ca) but TLS is off');
});

test('kernel_buffer_bytes: 64 MiB by default, at least 1 MiB', () => {
  assert.is(resolve([]).config.kernelBufferBytes, 64 * 1024 * 1024);
  assert.is(resolve(['--kernel-buffer-bytes', '1048576']).config.kernelBufferBytes, 1048576);
  assert.is(
    errorOf(['--kernel-buffer-bytes', '1048575']),
    '--kernel-buffer-bytes: "1048575" is out of range; expected at least 1048576 (KG_KERNEL_BUFFER_BYTES, --KernelGatewayApp.kernel_buffer_bytes)',
  );
  assert.match(errorOf([], { KG_KERNEL_BUFFER_BYTES: '64MiB' }), 'KG_KERNEL_BUFFER_BYTES: "64MiB" is not an integer');
  const row = optionTable.find((o) => o.key === 'kernelBufferBytes')!;
  assert.equal([row.env, row.trait, row.classes], ['KG_KERNEL_BUFFER_BYTES', 'kernel_buffer_bytes', ['KernelGatewayApp']]);
  assert.match(row.help, '4009');
});

// ---------------------------------------------------------------------------------------------
// The token from a file

/** A token file with `content` and `mode` (private by default). */
function tokenFile(content: string, mode = 0o600): string {
  const file = tempFile(content, 'token');
  chmodSync(file, mode);
  return file;
}

test('auth_token_file: the token is the file without its trailing newline, in every spelling', () => {
  const file = tokenFile('s3cret-from-file\n');
  for (const [argv, env] of [
    [['--auth-token-file', file], {}],
    [[`--auth-token-file=${file}`], {}],
    [[`--KernelGatewayApp.auth_token_file=${file}`], {}],
    [['--auth_token_file', file], {}],
    [[], { KG_AUTH_TOKEN_FILE: file }],
    [['--config', tempFile({ KernelGatewayApp: { auth_token_file: file } })], {}],
  ] as [string[], NodeJS.ProcessEnv][]) {
    const { config, warnings } = resolve(argv, env);
    assert.is(config.authToken, 's3cret-from-file', JSON.stringify([argv, env]));
    assert.is(config.authTokenFile, file);
    assert.equal(warnings, []);
  }
  assert.is(resolve(['--auth-token-file', tokenFile('crlf\r\n')]).config.authToken, 'crlf');
  assert.is(resolve(['--auth-token-file', tokenFile('no-newline')]).config.authToken, 'no-newline');
  assert.is(resolve(['--auth-token-file', tokenFile('two\n\n')]).config.authToken, 'two');
  assert.is(resolve(['--auth-token-file', tokenFile(' spaces kept \n')]).config.authToken, ' spaces kept ');
  assert.is(resolve([]).config.authTokenFile, '', 'unset by default');
});

test('auth_token_file: empty, missing, unreadable, a directory or several lines stop start-up, naming the file', () => {
  for (const content of ['', '\n', '\r\n\n']) {
    const file = tokenFile(content);
    assert.is(
      errorOf(['--auth-token-file', file]),
      `--auth-token-file: ${JSON.stringify(file)} is empty; expected the token (auth off is --auth-token '' instead)`,
    );
  }
  const missing = join(ROOT, 'no-such-token');
  assert.is(
    errorOf(['--auth-token-file', missing]),
    `--auth-token-file: ${JSON.stringify(missing)} does not exist; expected a readable file holding the token ` +
      '(KG_AUTH_TOKEN_FILE, --KernelGatewayApp.auth_token_file)',
  );
  assert.match(errorOf([], { KG_AUTH_TOKEN_FILE: missing }), `KG_AUTH_TOKEN_FILE: ${JSON.stringify(missing)} does not exist`);
  assert.match(errorOf(['--auth-token-file', ROOT]), `${JSON.stringify(ROOT)} is not a file; expected a readable file holding the token`);
  const twoLines = tokenFile('one\ntwo\n');
  assert.is(errorOf(['--auth-token-file', twoLines]), `--auth-token-file: ${JSON.stringify(twoLines)} holds several lines; expected the token alone`);
  if (process.getuid?.() !== 0) {
    const unreadable = tokenFile('secret\n', 0o000);
    assert.match(errorOf(['--auth-token-file', unreadable]), `${JSON.stringify(unreadable)} cannot be read (permission denied)`);
  }
});

test('auth_token_file: readable by group or others gives a warning (without the token)', () => {
  for (const mode of [0o644, 0o640, 0o604]) {
    const file = tokenFile('sekrit\n', mode);
    const { config, warnings } = resolve(['--auth-token-file', file]);
    assert.is(config.authToken, 'sekrit');
    assert.equal(warnings, [`${file} holds the auth token but other users may read it; make it private (chmod 600)`], mode.toString(8));
  }
  assert.equal(resolve(['--auth-token-file', tokenFile('sekrit\n', 0o400)]).warnings, []);
  assert.equal(resolve(['--auth-token-file', tokenFile('sekrit\n', 0o644)], {}, { ...HERMETIC, platform: 'win32' }).warnings, [], 'not on Windows');
});

test('auth_token_file and auth_token together stop start-up, whichever sources they come from', () => {
  const file = tokenFile('t\n');
  assert.is(
    errorOf(['--auth-token', 'x', '--auth-token-file', file]),
    'auth_token is set (from --auth-token) and so is auth_token_file (from --auth-token-file); give only one of them',
  );
  assert.is(
    errorOf(['--auth-token-file', file], { KG_AUTH_TOKEN: 'x' }),
    'auth_token is set (from KG_AUTH_TOKEN) and so is auth_token_file (from --auth-token-file); give only one of them',
  );
  assert.match(errorOf([], { KG_AUTH_TOKEN: '', KG_AUTH_TOKEN_FILE: file }), 'auth_token is set (from KG_AUTH_TOKEN) and so is auth_token_file (from KG_AUTH_TOKEN_FILE)');
  const both = tempFile({ KernelGatewayApp: { auth_token: 'x', auth_token_file: file } });
  assert.match(errorOf(['--config', both]), `auth_token is set (from ${both}: KernelGatewayApp.auth_token) and so is auth_token_file (from ${both}: KernelGatewayApp.auth_token_file)`);
  assert.match(errorOf(['--KernelGatewayApp.auth_token_file', file, '--KernelGatewayApp.auth_token=y']), 'give only one of them');
});

// ---------------------------------------------------------------------------------------------
// Config files

test('--config FILE: traitlets JSON shape, every class spelling', () => {
  const file = tempFile({
    KernelGatewayApp: { port: 9000, auth_token: 'from-file', env_process_whitelist: ['PATH'] },
    JupyterWebsocketPersonality: { list_kernels: true, env_whitelist: 'A, B' },
    MappingKernelManager: { cull_idle_timeout: 600, cull_busy: true, root_dir: ROOT },
    Application: { log_level: 'DEBUG' },
  });
  for (const argv of [['--config', file], [`--config=${file}`], [`--KernelGatewayApp.config_file=${file}`]]) {
    const { config, configFiles, errors } = resolve(argv);
    assert.equal(errors, []);
    assert.equal(configFiles, [file]);
    assert.equal(config, {
      ...DEFAULTS,
      port: 9000,
      authToken: 'from-file',
      envProcessWhitelist: ['PATH'],
      listKernels: true,
      envWhitelist: ['A', 'B'],
      cullIdleTimeout: 600,
      cullBusy: true,
      rootDir: ROOT,
      logLevel: 'DEBUG',
    });
  }
  assert.is(resolve([], { KG_CONFIG_FILE: file }).config.port, 9000, 'KG_CONFIG_FILE names the file too');
  assert.is(resolve(['--config', file], { KG_CONFIG_FILE: tempFile({ KernelGatewayApp: { port: 1 } }) }).config.port, 9000);
});

test('precedence: command line > config file > KG_* variable > default', () => {
  const file = tempFile({ KernelGatewayApp: { port: 9001, ip: '10.0.0.1' }, MappingKernelManager: { cull_interval: 60 } });
  const env = { KG_PORT: '9002', KG_IP: '10.0.0.2', KG_BASE_URL: '/env', KG_CULL_INTERVAL: 'not a number' };
  const { config } = resolve(['--config', file, '--port', '9003'], env);
  assert.is(config.port, 9003, 'command line beats file and env');
  assert.is(config.ip, '10.0.0.1', 'file beats env');
  assert.is(config.baseUrl, '/env/', 'env beats default');
  assert.is(config.cullInterval, 60, 'a bad env value is not looked at when the file sets the option');
  assert.is(config.portRetries, DEFAULTS.portRetries);
  // The option may come before or after --config.
  assert.is(resolve(['--port', '9004', '--config', file]).config.port, 9004);
  // A file value can turn auth off (''), and the command line can override that again.
  const noAuth = tempFile({ KernelGatewayApp: { auth_token: '' } });
  assert.is(resolve(['--config', noAuth], { KG_AUTH_TOKEN: 'env' }).config.authToken, '');
  assert.is(resolve(['--config', noAuth, '--auth-token', 'cli']).config.authToken, 'cli');
});

test('config file values: numbers or numeric strings, booleans or "true"/"false", arrays or comma strings', () => {
  const values = (section: Record<string, unknown>) => resolve(['--config', tempFile({ KernelGatewayApp: section })]).config;
  assert.is(values({ port: '9005' }).port, 9005);
  assert.is(values({ port: 1e3 }).port, 1000);
  assert.is(values({ trust_xheaders: 'true' }).trustXheaders, true);
  assert.is(values({ expose_kernelspecs: 'False' }).exposeKernelspecs, false);
  assert.is(values({ expose_kernelspecs: false }).exposeKernelspecs, false);
  assert.equal(values({ env_whitelist: ['A', ' B ', ''] }).envWhitelist, ['A', 'B']);
  assert.equal(values({ env_whitelist: 'A,B' }).envWhitelist, ['A', 'B']);
  assert.equal(values({ env_whitelist: [] }).envWhitelist, []);
  assert.is(values({ log_level: 40 }).logLevel, 'ERROR');
  assert.is(values({ base_url: 'gw' }).baseUrl, '/gw/', 'values are normalized as on the command line');
});

test('config file: wrong types and bad values name the file, the class.option and the problem', () => {
  const bad = (section: Record<string, unknown>, cls = 'KernelGatewayApp') => {
    const file = tempFile({ [cls]: section });
    const msg = errorOf(['--config', file]);
    assert.ok(msg.startsWith(`${file}: `), msg);
    return msg.slice(file.length + 2);
  };
  assert.is(bad({ port: true }), 'KernelGatewayApp.port: true is a boolean; expected an integer (a number or a numeric string)');
  assert.is(bad({ port: 'abc' }), 'KernelGatewayApp.port: "abc" is not an integer');
  assert.is(bad({ port: 80.5 }), 'KernelGatewayApp.port: 80.5 is not an integer');
  assert.is(bad({ port: 70000 }), 'KernelGatewayApp.port: 70000 is out of range; expected 0..65535');
  assert.is(bad({ list_kernels: 1 }), 'KernelGatewayApp.list_kernels: 1 is a number; expected true or false (or the strings "true"/"false")');
  assert.is(bad({ list_kernels: 'maybe' }), 'KernelGatewayApp.list_kernels: "maybe" is not a boolean; expected true/false, yes/no or 1/0');
  assert.is(bad({ ip: 127 }), 'KernelGatewayApp.ip: 127 is a number; expected a string');
  assert.is(bad({ ip: null }), 'KernelGatewayApp.ip: null is null; expected a string');
  assert.is(bad({ env_whitelist: [1] }, 'JupyterWebsocketPersonality'), 'JupyterWebsocketPersonality.env_whitelist: [1] is not a list of strings');
  assert.is(bad({ env_whitelist: { A: 1 } }, 'JupyterWebsocketPersonality'), 'JupyterWebsocketPersonality.env_whitelist: {"A":1} is an object; expected an array of strings or a comma-separated string');
  assert.match(bad({ root_dir: join(ROOT, 'nope') }, 'MappingKernelManager'), /^MappingKernelManager\.root_dir: ".*nope" does not exist; expected an existing directory$/);
  assert.is(bad({ cull_idle_timeout: -1 }, 'MappingKernelManager'), 'MappingKernelManager.cull_idle_timeout: -1 is out of range; expected at least 0');
  assert.is(bad({ log_level: 'loud' }), 'KernelGatewayApp.log_level: "loud" is not a log level; expected DEBUG, INFO, WARN, ERROR, CRITICAL or a number 10..50');
});

test('config file: unknown classes and options are errors', () => {
  const file = tempFile({ NotebookApp: { port: 1 } });
  assert.is(
    errorOf(['--config', file]),
    `${file}: unknown class "NotebookApp"; known classes: KernelGatewayApp, JupyterWebsocketPersonality, NotebookHTTPPersonality, MappingKernelManager, Application, ServerApp`,
  );
  const opt = tempFile({ KernelGatewayApp: { ssl_version: 5 } });
  assert.match(errorOf(['--config', opt]), `${opt}: KernelGatewayApp.ssl_version: unknown or unsupported option; KernelGatewayApp options here are: ip, port,`);
  const wrongClass = tempFile({ MappingKernelManager: { port: 1 } });
  assert.match(errorOf(['--config', wrongClass]), `${wrongClass}: MappingKernelManager.port: unknown or unsupported option; port is accepted under KernelGatewayApp;`);
  const camel = tempFile({ KernelGatewayApp: { authToken: 'x' } });
  assert.match(errorOf(['--config', camel]), 'KernelGatewayApp.authToken: unknown or unsupported option; did you mean KernelGatewayApp.auth_token?');
  const notObject = tempFile({ KernelGatewayApp: 9000 });
  assert.is(errorOf(['--config', notObject]), `${notObject}: KernelGatewayApp is a number; expected an object of options, e.g. {"KernelGatewayApp": {"<option>": value}}`);
  const array = tempFile('[1, 2]');
  assert.match(errorOf(['--config', array]), `${array}: is an array; expected a JSON object of classes`);
});

test('config file: invalid JSON, a missing file, a directory', () => {
  const broken = tempFile('{\n  "KernelGatewayApp": {\n    "port": 9000,\n  }\n}\n');
  const msg = errorOf(['--config', broken]);
  assert.match(msg, `${broken}: invalid JSON: `);
  assert.match(msg, 'line 4');
  assert.match(msg, 'no trailing commas');
  const missing = join(ROOT, 'no-such-config.json');
  assert.is(errorOf(['--config', missing]), `config file ${missing} (from --config) does not exist`);
  assert.is(errorOf([`--KernelGatewayApp.config_file=${missing}`]), `config file ${missing} (from --KernelGatewayApp.config_file) does not exist`);
  assert.is(errorOf([], { KG_CONFIG_FILE: missing }), `config file ${missing} (from KG_CONFIG_FILE) does not exist`);
  assert.is(errorOf(['--config', ROOT]), `config file ${ROOT} (from --config) is not a file`);
  assert.match(errorOf(['--config']), '--config: needs a file name');
  assert.match(errorOf(['--config', '--port', '1']), '--config: needs a file name');
});

test('config file: // comment lines (indented too) are ignored; // inside values is kept', () => {
  // Only whole lines are comments: a `// …` after a value makes the file invalid JSON.
  const trailing = tempFile('{"KernelGatewayApp": {\n  "port": 1 // the port\n}}\n');
  assert.match(errorOf(['--config', trailing]), `${trailing}: invalid JSON`);
  const good = tempFile(
    '\uFEFF// kernelgateway settings\n{\n  // the app\n  "KernelGatewayApp": {\n    // where\n\t// (tab-indented)\n' +
      '    "seed_uri": "https://example.org//nb.ipynb"\n    //"port": 1\n  }\n}\n',
  );
  const { config } = resolve(['--config', good]);
  assert.is(config.seedUri, 'https://example.org//nb.ipynb');
  assert.is(config.port, DEFAULTS.port);
  assert.equal(resolve(['--config', tempFile('// only comments\n\n')]).config, DEFAULTS, 'a file of comments is empty');
  assert.equal(resolve(['--config', tempFile('')]).config, DEFAULTS);
  assert.equal(parseConfigText('{}', 'x'), []);
});

test('config file: the same option under two classes in one file: the later one wins', () => {
  const text = '{"KernelGatewayApp": {"list_kernels": false}, "JupyterWebsocketPersonality": {"list_kernels": true}}';
  assert.is(resolve(['--config', tempFile(text)]).config.listKernels, true);
  const reversed = '{"JupyterWebsocketPersonality": {"list_kernels": true}, "KernelGatewayApp": {"list_kernels": false}}';
  assert.is(resolve(['--config', tempFile(reversed)]).config.listKernels, false);
});

test('a config file holding a token that other users may read gives a warning', () => {
  const file = tempFile({ KernelGatewayApp: { auth_token: 'sekrit' } });
  chmodSync(file, 0o644);
  const { config, warnings } = resolve(['--config', file]);
  assert.is(config.authToken, 'sekrit');
  assert.equal(warnings, [`${file} sets auth_token but other users may read it; make it private (chmod 600)`]);
  assert.not.match(warnings.join('\n'), 'sekrit');
  chmodSync(file, 0o600);
  assert.equal(resolve(['--config', file]).warnings, []);
  const noToken = tempFile({ KernelGatewayApp: { auth_token: '' } });
  chmodSync(noToken, 0o644);
  assert.equal(resolve(['--config', noToken]).warnings, [], "'' (auth off) is no secret");
});

test('a bad value in a config file is an error even when the command line sets the option', () => {
  const file = tempFile({ KernelGatewayApp: { port: 'x' } });
  assert.match(errorOf(['--config', file, '--port', '1']), 'KernelGatewayApp.port: "x" is not an integer');
});

// ---------------------------------------------------------------------------------------------
// The Jupyter config path

test('search path: JUPYTER_CONFIG_PATH entries, the user dir, {prefix}/etc/jupyter, system dirs', () => {
  const env = { JUPYTER_CONFIG_PATH: '/p1:/p2:', JUPYTER_CONFIG_DIR: '/cfg', KG_ENV_PREFIX: '/kgenv', VIRTUAL_ENV: '/venv' };
  assert.equal(configSearchPath(env, { home: '/home/u' }), [
    '/p1', '/p2', '/cfg', '/kgenv/etc/jupyter', '/usr/local/etc/jupyter', '/etc/jupyter',
  ]);
  assert.equal(configSearchPath({}, { home: '/home/u' }), ['/home/u/.jupyter', '/usr/local/etc/jupyter', '/etc/jupyter']);
  assert.equal(configSearchPath({ VIRTUAL_ENV: '/venv', CONDA_PREFIX: '/conda' }, { home: '/h', systemDirs: [] }), [
    '/h/.jupyter', '/venv/etc/jupyter',
  ]);
  assert.equal(configSearchPath({ CONDA_PREFIX: '/conda' }, { home: '/h', systemDirs: ['/sys'] }), [
    '/h/.jupyter', '/conda/etc/jupyter', '/sys',
  ]);
  // A directory listed twice counts once, at its first place.
  assert.equal(configSearchPath({ JUPYTER_CONFIG_PATH: '/h/.jupyter/', JUPYTER_CONFIG_DIR: '/h/.jupyter' }, { home: '/x', systemDirs: [] }), ['/h/.jupyter/']);
  // Windows: ';' separates JUPYTER_CONFIG_PATH, backslash paths, %PROGRAMDATA%\jupyter.
  assert.equal(
    configSearchPath({ JUPYTER_CONFIG_PATH: 'C:\\a;D:\\b', PROGRAMDATA: 'C:\\ProgramData' }, { home: 'C:\\Users\\u', platform: 'win32' }),
    ['C:\\a', 'D:\\b', 'C:\\Users\\u\\.jupyter', 'C:\\ProgramData\\jupyter'],
  );
  assert.is(defaultConfigFilePath({}, { home: '/home/u' }), `/home/u/.jupyter/${CONFIG_FILE_NAME}`);
  assert.is(defaultConfigFilePath({ JUPYTER_CONFIG_DIR: '/cfg' }, { home: '/home/u' }), `/cfg/${CONFIG_FILE_NAME}`);
});

test('search path: every kernelgateway_config.json found is merged, earlier directories winning', () => {
  const [pathDir, userDir, prefix, sysDir, emptyDir] = [tempDir(), tempDir(), tempDir(), tempDir(), tempDir()];
  const put = (dir: string, content: object) => writeFileSync(join(dir, CONFIG_FILE_NAME), JSON.stringify(content));
  put(pathDir, { KernelGatewayApp: { port: 1001 } });
  put(userDir, { KernelGatewayApp: { port: 1002, ip: '10.0.0.2' } });
  mkdirSync(join(prefix, 'etc', 'jupyter'), { recursive: true });
  put(join(prefix, 'etc', 'jupyter'), { KernelGatewayApp: { ip: '10.0.0.3', base_url: 'prefix' }, MappingKernelManager: { cull_busy: true } });
  put(sysDir, { KernelGatewayApp: { base_url: 'sys', max_kernels: 7 }, MappingKernelManager: { cull_busy: false } });
  // Other file names are not looked at.
  writeFileSync(join(userDir, 'kernel_gateway_config.json'), '{"KernelGatewayApp": {"port": 1}}');
  const env = { JUPYTER_CONFIG_PATH: `${emptyDir}:${pathDir}`, JUPYTER_CONFIG_DIR: userDir, KG_ENV_PREFIX: prefix, KG_PORT: '1003' };
  const { config, configFiles } = resolve([], env, { home: tempDir(), systemDirs: [sysDir] });
  assert.equal(configFiles, [
    join(pathDir, CONFIG_FILE_NAME),
    join(userDir, CONFIG_FILE_NAME),
    join(prefix, 'etc', 'jupyter', CONFIG_FILE_NAME),
    join(sysDir, CONFIG_FILE_NAME),
  ]);
  assert.is(config.port, 1001, 'JUPYTER_CONFIG_PATH beats the user dir, and any file beats KG_PORT');
  assert.is(config.ip, '10.0.0.2', 'the user dir beats the prefix');
  assert.is(config.baseUrl, '/prefix/', 'the prefix beats the system dir');
  assert.is(config.cullBusy, true);
  assert.is(config.maxKernels, 7, 'options set only in a lower file still apply');
  assert.is(resolve(['--port', '5'], env, { home: tempDir(), systemDirs: [sysDir] }).config.port, 5, 'the command line beats them all');
  // ~/.jupyter when JUPYTER_CONFIG_DIR is unset.
  const home = tempDir();
  mkdirSync(join(home, '.jupyter'));
  put(join(home, '.jupyter'), { KernelGatewayApp: { port: 1004 } });
  assert.is(resolve([], {}, { home, systemDirs: [] }).config.port, 1004);
  // VIRTUAL_ENV / CONDA_PREFIX stand for the prefix when KG_ENV_PREFIX is unset.
  assert.is(resolve([], { VIRTUAL_ENV: prefix }).config.baseUrl, '/prefix/');
  assert.is(resolve([], { CONDA_PREFIX: prefix }).config.baseUrl, '/prefix/');
});

test('search path: --config replaces it; a bad file in it is an error naming that file', () => {
  const userDir = tempDir();
  writeFileSync(join(userDir, CONFIG_FILE_NAME), '{"KernelGatewayApp": {"port": 1010}}');
  const other = tempFile({ KernelGatewayApp: { ip: '10.1.1.1' } });
  const { config, configFiles } = resolve(['--config', other], { JUPYTER_CONFIG_DIR: userDir });
  assert.is(config.port, DEFAULTS.port, 'the search path is not read when --config is given');
  assert.is(config.ip, '10.1.1.1');
  assert.equal(configFiles, [other]);
  const badDir = tempDir();
  writeFileSync(join(badDir, CONFIG_FILE_NAME), '{"KernelGatewayApp": {"prot": 1}}');
  assert.match(errorOf([], { JUPYTER_CONFIG_DIR: badDir }), `${join(badDir, CONFIG_FILE_NAME)}: KernelGatewayApp.prot: unknown or unsupported option`);
  assert.equal(resolve([], { JUPYTER_CONFIG_DIR: tempDir() }).configFiles, []);
});

// ---------------------------------------------------------------------------------------------
// --generate-config, --help-all and the other app flags

test('app flags: --config, --generate-config, -y/--yes, --help-all are no options and no errors', () => {
  const cmd = parseCommandLine(['--generate-config', '-y', '--config', 'x.json', '--port', '1']);
  assert.is(cmd.generateConfig, true);
  assert.is(cmd.answerYes, true);
  assert.equal(cmd.configFile, { raw: 'x.json', source: '--config' });
  assert.equal(cmd.errors, []);
  assert.is(parseCommandLine(['--yes']).answerYes, true);
  assert.is(parseCommandLine(['--help-all']).helpAll, true);
  assert.is(parseCommandLine(['--KernelGatewayApp.generate_config=True']).generateConfig, true);
  assert.is(parseCommandLine(['--generate-config=false']).generateConfig, false);
  assert.is(parseCommandLine([]).generateConfig, false);
  assert.equal(resolve(['-y', '--yes', '--help-all']).errors, []);
  assert.match(thrown(() => parseCommandLine(['--generate-config=perhaps'])), '--generate-config: "perhaps" is not a boolean');
});

test('generate-config output reads back as exactly the defaults, with our parser and plain JSON', () => {
  const text = generateConfigText();
  const file = tempFile(text, CONFIG_FILE_NAME);
  const { config, warnings, errors } = resolve(['--config', file]);
  assert.equal(config, DEFAULTS);
  assert.equal(warnings, []);
  assert.equal(errors, []);
  // Also through the search path.
  assert.equal(resolve([], { JUPYTER_CONFIG_DIR: join(file, '..') }).config, DEFAULTS);

  const plain = JSON.parse(text.split('\n').filter((l) => !/^\s*\/\//.test(l)).join('\n')) as Record<string, Record<string, unknown>>;
  assert.equal(Object.keys(plain), ['KernelGatewayApp', 'JupyterWebsocketPersonality', 'NotebookHTTPPersonality', 'MappingKernelManager']);
  for (const spec of optionTable) {
    const section = plain[spec.classes[0]];
    if (spec.key === 'authToken') {
      assert.not.ok('auth_token' in section, 'no token value is written');
      continue;
    }
    assert.equal(section[spec.trait], DEFAULTS[spec.key], spec.trait);
  }
  const written = Object.values(plain).flatMap((s) => Object.keys(s));
  assert.is(written.length, optionTable.length - 1);
});

test('generate-config output: help, flag and env var above each option; the token line commented out', () => {
  const text = generateConfigText();
  const lines = text.split('\n');
  for (const spec of optionTable) {
    const at = lines.findIndex((l) => l.trim().replace(/^\/\/ /, '').startsWith(`"${spec.trait}":`));
    assert.ok(at > 0, `${spec.trait} is written`);
    const above = lines.slice(Math.max(0, at - 4), at).join('\n');
    assert.match(above, spec.help, `${spec.trait}: help`);
    assert.match(above, spec.flag, `${spec.trait}: flag`);
    if (spec.env) assert.match(above, `env ${spec.env}`, `${spec.trait}: env`);
  }
  assert.match(text, /^ {4}\/\/ unset: a token is generated/m);
  assert.match(text, /^ {4}\/\/ "auth_token": "",$/m);
  // Uncommenting the token line gives valid JSON that sets the token.
  const uncommented = text.replace('// "auth_token": ""', '"auth_token": "abc"');
  assert.is(resolve(['--config', tempFile(uncommented)]).config.authToken, 'abc');
});

test('--help-all lists every option: flag, env var, reference spellings, default, help', () => {
  const text = helpAllText();
  for (const spec of optionTable) {
    assert.match(text, spec.flag, spec.flag);
    if (spec.env) assert.match(text, spec.env, spec.env);
    for (const cls of spec.classes) assert.match(text, `--${cls}.${spec.trait}`);
    assert.match(text, spec.help);
  }
  for (const flag of ['--config <file>', '--generate-config', '-y, --yes', '--help-all', 'KG_CONFIG_FILE']) assert.match(text, flag);
  // Aligned: every option row starts its env var in the same column.
  const rows = text.split('\n').filter((l) => optionTable.some((o) => l.startsWith(`  ${o.flag} `)));
  assert.is(rows.length, optionTable.length);
  const columns = new Set(rows.map((l) => l.search(/ (KG_[A-Z_]+|-) {2}/)));
  assert.is(columns.size, 1, 'env var column is aligned');
  assert.match(helpAllText(['/a/dir', '/b/dir']), /\n {4}\/a\/dir\n {4}\/b\/dir\n/);
});

test.run();
