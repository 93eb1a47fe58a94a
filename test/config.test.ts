import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ConfigError, DEFAULTS, optionTable, redactedConfig, resolveConfig } from '../src/config.ts';

const resolve = (argv: string[], env: NodeJS.ProcessEnv = {}) => resolveConfig(argv, env);

/** The ConfigError message resolveConfig throws, or fails the test. */
function errorOf(argv: string[], env: NodeJS.ProcessEnv = {}): string {
  try {
    resolveConfig(argv, env);
  } catch (err) {
    assert.instance(err, ConfigError);
    return (err as Error).message;
  }
  assert.unreachable(`no ConfigError for ${JSON.stringify(argv)} ${JSON.stringify(env)}`);
  return '';
}

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
  });
  assert.equal(config, {
    ip: '0.0.0.0',
    port: 9000,
    portRetries: 0,
    authToken: 's3cret',
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
  });
});

test('each short flag sets its option', () => {
  const { config } = resolve([
    '--ip', '::', '--port', '9001', '--port-retries', '3', '--auth-token', 't', '--allow-origin', 'https://a',
    '--allow-headers', 'H', '--allow-methods', 'M', '--allow-credentials', 'C', '--expose-headers', 'E',
    '--max-age', '1', '--base-url', 'x', '--default-kernel-name', 'k', '--list-kernels', '--log-level', 'debug',
    '--kernel-info-timeout', '7', '--max-message-size', '8', '--offline-buffer-bytes', '9', '--client-buffer-bytes', '10',
  ]);
  assert.equal(config, {
    ip: '::', port: 9001, portRetries: 3, authToken: 't', allowOrigin: 'https://a', allowHeaders: 'H',
    allowMethods: 'M', allowCredentials: 'C', exposeHeaders: 'E', maxAge: '1', baseUrl: '/x/', defaultKernelName: 'k',
    listKernels: true, logLevel: 'DEBUG', kernelInfoTimeout: 7, maxMessageSize: 8, offlineBufferBytes: 9,
    clientBufferBytes: 10,
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
  assert.match(errorOf([], { KG_KERNEL_INFO_TIMEOUT: '0' }), 'KG_KERNEL_INFO_TIMEOUT: "0" is out of range; expected at least 1');
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

test('an unknown KernelGatewayApp option is a ConfigError naming it', () => {
  const msg = errorOf(['--KernelGatewayApp.certfile=/x.pem']);
  assert.match(msg, '--KernelGatewayApp.certfile');
  assert.match(msg, 'port_retries'); // lists what is known
  assert.match(errorOf(['--JupyterWebsocketPersonality.env_whitelist=A']), '--JupyterWebsocketPersonality.env_whitelist');
});

test('other unknown arguments are collected in errors', () => {
  const { errors } = resolve(['--frobnicate', 'x', 'stray', '-y', '--port', '1']);
  assert.equal(errors, ['unknown option --frobnicate', 'unexpected argument "stray"', 'unknown option -y']);
});

test('unknown KG_* variables are warnings', () => {
  const { warnings } = resolve([], { KG_SEED_URI: 'x.ipynb', PATH: '/bin' });
  assert.is(warnings.length, 1);
  assert.match(warnings[0], 'KG_SEED_URI');
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

test.run();
