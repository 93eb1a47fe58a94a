/**
 * The command line through cac (src/config/argv.ts): what cac alone would get wrong is right, the
 * subcommands, and where the token's values stand (to hide them from the process list).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCommandLine } from '../src/config/argv.ts';
import { ConfigError, optionTable, type Config } from '../src/config/options.ts';

const spec = (key: keyof Config) => optionTable.find((o) => o.key === key)!;
/** The raw text and spelling the command line gives `key`, or undefined. */
const given = (argv: string[], key: keyof Config) => parseCommandLine(argv).values.get(spec(key));

test('values reach us as typed: no numbers made of "007", "1e3", "" or long digit strings', () => {
  for (const token of ['007', '1e3', '0x10', '', ' ', '12345678901234567890', '-0', '+5', 'true']) {
    assert.equal(given(['--auth-token', token], 'authToken'), { raw: token, source: '--auth-token' }, JSON.stringify(token));
    assert.equal(given([`--auth-token=${token}`], 'authToken'), { raw: token, source: '--auth-token' }, `=${JSON.stringify(token)}`);
  }
  assert.equal(given(['--port=1e3'], 'port'), { raw: '1e3', source: '--port' });
});

test('a value may start with a dash; `--x=` is an empty value, not "no value"', () => {
  assert.equal(given(['--port', '-1'], 'port'), { raw: '-1', source: '--port' });
  assert.equal(given(['--auth-token', '-dash'], 'authToken')?.raw, '-dash');
  assert.throws(() => parseCommandLine(['--auth-token', '--']), /--auth-token: needs a value/, '-- ends the options');
  const cmd = parseCommandLine(['--auth-token=', 'stray']);
  assert.is(cmd.values.get(spec('authToken'))?.raw, '');
  assert.equal(cmd.errors, ['unexpected argument "stray"']);
});

test('the last one wins across every spelling, the spelling of the winner is kept', () => {
  assert.equal(given(['--port-retries=1', '--KernelGatewayApp.port_retries=2', '--port_retries', '3'], 'portRetries'), {
    raw: '3',
    source: '--port_retries',
  });
  assert.equal(given(['--port_retries=3', '--port-retries=1'], 'portRetries'), { raw: '1', source: '--port-retries' });
  assert.equal(given(['--MappingKernelManager.cull_idle_timeout=600', '--cull-idle-timeout', '5'], 'cullIdleTimeout')?.raw, '5');
  assert.equal(given(['--cull-idle-timeout', '5', '--MappingKernelManager.cull_idle_timeout=600'], 'cullIdleTimeout'), {
    raw: '600',
    source: '--MappingKernelManager.cull_idle_timeout',
  });
  assert.equal(given(['--list-kernels', '--JupyterWebsocketPersonality.list_kernels=False'], 'listKernels')?.raw, 'False');
  assert.is(parseCommandLine(['-y', '--yes=false']).answerYes, false);
  assert.is(parseCommandLine(['--yes=false', '-y']).answerYes, true);
  assert.is(parseCommandLine(['--KernelGatewayApp.answer_yes=false', '--yes']).answerYes, true);
  assert.is(parseCommandLine(['--yes', '--KernelGatewayApp.answer_yes=false']).answerYes, false);
});

test('booleans take a following true/false word; any other word stays a stray argument', () => {
  assert.equal(given(['--list-kernels', 'no'], 'listKernels')?.raw, 'no');
  const stray = parseCommandLine(['--list-kernels', 'stray', '--port', '1']);
  assert.is(stray.values.get(spec('listKernels'))?.raw, 'true');
  assert.equal(stray.errors, ['unexpected argument "stray"']);
  // The app switches are booleans too.
  assert.is(parseCommandLine(['--generate-config', 'false']).generateConfig, false);
  assert.is(parseCommandLine(['-y', 'no']).answerYes, false);
  assert.equal(parseCommandLine(['--generate-config', 'x.json']).errors, ['unexpected argument "x.json"']);
});

test('spellings cac would take apart are unknown options, not crashes or other options', () => {
  assert.equal(parseCommandLine(['--no-list-kernels', '--listKernels', '--portRetries=3']).errors, [
    'unknown option --no-list-kernels',
    'unknown option --listKernels',
    'unknown option --portRetries',
  ]);
  const nested = parseCommandLine(['--KernelGatewayApp=x', '--KernelGatewayApp.port=1', '--__proto__.x=1', '--a.0=z']);
  assert.equal(nested.errors, ['unknown option --KernelGatewayApp', 'unknown option --__proto__.x', 'unknown option --a.0']);
  assert.is(nested.values.get(spec('port'))?.raw, '1');
  assert.equal(parseCommandLine(['-abc', '-', '--', '--port', '1']).errors, [
    'unknown option -abc',
    'unknown option -',
    'unexpected argument "--port"',
    'unexpected argument "1"',
  ]);
  assert.equal(parseCommandLine(['--frobnicate=1', 'two']).errors, ['unknown option --frobnicate', 'unexpected argument "two"']);
});

test('problems: the leftmost one is thrown; --help, --version and --help-all win over them', () => {
  const first = (argv: string[]) => {
    try {
      parseCommandLine(argv);
    } catch (err) {
      assert.instance(err, ConfigError);
      return (err as Error).message;
    }
    assert.unreachable('no ConfigError');
    return '';
  };
  assert.match(first(['--port', '--KernelGatewayApp.bogus=1']), /^--port: needs a value/);
  assert.match(first(['--KernelGatewayApp.bogus=1', '--port']), /^--KernelGatewayApp\.bogus: unknown or unsupported option/);
  assert.match(first(['--yes=maybe', '--config']), '--yes: "maybe" is not a boolean');
  for (const flag of ['--help', '-h', '--version', '-v', '--help-all']) {
    assert.not.throws(() => parseCommandLine(['--port', '--KernelGatewayApp.bogus=1', flag]), flag);
  }
  assert.is(parseCommandLine(['-h']).help, true);
  assert.is(parseCommandLine(['--version']).version, true);
  assert.is(parseCommandLine(['--port', '1']).help, false);
});

test('the kernel subcommand: -f, --f, --connection-file, with = or a space; nothing else matters', () => {
  for (const argv of [
    ['kernel', '-f', '/x.json'],
    ['kernel', '-f=/x.json'],
    ['kernel', '--f', '/x.json'],
    ['kernel', '--f=/x.json'],
    ['kernel', '--connection-file', '/x.json'],
    ['kernel', '--connection-file=/x.json'],
    ['kernel', '--KernelGatewayApp.bogus=1', 'extra', '-f', '/x.json', '--port'],
  ]) {
    const cmd = parseCommandLine(argv);
    assert.is(cmd.command, 'kernel', argv.join(' '));
    assert.is(cmd.connectionFile, '/x.json', argv.join(' '));
  }
  assert.is(parseCommandLine(['kernel']).connectionFile, undefined);
  assert.is(parseCommandLine(['kernel', '-f']).connectionFile, undefined);
  assert.is(parseCommandLine(['kernel', '--help']).help, true);
  // Only as the first word: elsewhere it is a stray argument of the gateway.
  const late = parseCommandLine(['--port', '1', 'kernel', '-f', 'x']);
  assert.is(late.command, 'serve');
  assert.equal(late.errors, ['unexpected argument "kernel"', 'unknown option -f', 'unexpected argument "x"']);
});

test('serve is the default command and may be named', () => {
  assert.is(parseCommandLine([]).command, 'serve');
  const named = parseCommandLine(['serve', '--port', '9']);
  assert.is(named.command, 'serve');
  assert.equal(named.errors, []);
  assert.is(named.values.get(spec('port'))?.raw, '9');
});

test('token places: every non-empty token value on the command line, whole word or after =', () => {
  const argv = ['--port', '1', '--auth-token', 'S1', '--auth-token=S2', '--KernelGatewayApp.auth_token', 'S3', '--KernelGatewayApp.auth_token=S4'];
  assert.equal(parseCommandLine(argv).tokenPlaces, [
    { index: 3, inline: false },
    { index: 4, inline: true },
    { index: 6, inline: false },
    { index: 7, inline: true },
  ]);
  assert.equal(parseCommandLine(['--auth-token', '', '--auth-token=']).tokenPlaces, [], "'' (auth off) is no secret");
  assert.equal(parseCommandLine(['--port', '1']).tokenPlaces, []);
});

test('the launch subcommand takes no arguments (its input is its environment); --help is its own', () => {
  const launch = parseCommandLine(['launch']);
  assert.is(launch.command, 'launch');
  assert.equal(launch.errors, []);
  // An unknown option takes its value along, as under serve.
  assert.equal(parseCommandLine(['launch', 'x', '--port', '1']).errors, ['unexpected argument "x"', 'unknown option --port']);
  assert.ok(parseCommandLine(['launch', '--help']).help);
});

test.run();
