/**
 * Config files with the real gateway: --config FILE and the Jupyter config path set options (the
 * command line still wins), a bad file stops start-up with exit code 2, and --generate-config,
 * --help-all, --help, --version and the kernel subcommand work as commands.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { generateConfigText } from '../../src/config/generate.ts';
import { CONFIG_FILE_NAME } from '../../src/paths.ts';
import { api, GATEWAY_BIN, guardSuite, shutdownTest, startGateway, type Gateway } from '../helpers/gateway.ts';

const TMP = mkdtempSync(join(tmpdir(), 'kg-config-it-'));
let count = 0;
function tempDir(): string {
  return mkdtempSync(join(TMP, `d${++count}-`));
}

/** Runs `node bin/kernelgateway.js …args` to its end (stdin not a terminal), with no KG_* / JUPYTER_* variables but `env`. */
function run(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('KG_') && !k.startsWith('JUPYTER_')) clean[k] = v;
  }
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [GATEWAY_BIN, ...args], { env: { ...clean, JUPYTER_CONFIG_DIR: tempDir(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`kernelgateway ${args.join(' ')} did not exit within 10 s\nstderr:\n${stderr}`));
    }, 10_000);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

// ---------------------------------------------------------------------------------------------
const withFile = suite('config file: --config FILE');
let gw: Gateway;
let configFile: string;

guardSuite(withFile, async () => {
  configFile = join(tempDir(), 'gw.json');
  writeFileSync(
    configFile,
    [
      '// written by the test',
      '{',
      '  "KernelGatewayApp": {"port": 1, "auth_token": "from-file", "base_url": "/fromfile", "expose_kernelspecs": false},',
      '  // list_kernels matters with auth off',
      '  "JupyterWebsocketPersonality": {"list_kernels": true}',
      '}',
    ].join('\n'),
    { mode: 0o600 },
  );
  // The harness adds `--port 0 --auth-token ''` before our arguments: those beat the file.
  gw = await startGateway({ token: '', args: ['--config', configFile], env: { KG_BASE_URL: '/fromenv', JUPYTER_CONFIG_DIR: tempDir() } });
});

withFile('the file beats KG_* variables, the command line beats the file', async () => {
  assert.is(new URL(gw.url).pathname, '/fromfile/', 'base_url from the file, not KG_BASE_URL');
  assert.is.not(gw.port, 1, '--port 0 on the command line beats the file');
  const list = await api(gw, 'GET', 'api/kernels');
  assert.is(list.status, 200, `auth off (command line beats the file's token) and list_kernels from the file: ${list.text}`);
  const specs = await api(gw, 'GET', 'api/kernelspecs');
  assert.is(specs.status, 404, `expose_kernelspecs false from the file: ${specs.status}`);
  assert.match(gw.stderr(), `Config file: ${configFile}`);
});

shutdownTest(withFile, () => gw);

// ---------------------------------------------------------------------------------------------
const searched = suite('config file: kernelgateway_config.json in $JUPYTER_CONFIG_DIR');
let gw2: Gateway;

guardSuite(searched, async () => {
  const dir = tempDir();
  writeFileSync(join(dir, CONFIG_FILE_NAME), '{"KernelGatewayApp": {"base_url": "/searched"}}');
  gw2 = await startGateway({ env: { JUPYTER_CONFIG_DIR: dir } });
});

searched('options come from the file found in the config path', async () => {
  assert.is(new URL(gw2.url).pathname, '/searched/');
  const root = await api(gw2, 'GET', 'api');
  assert.is(root.status, 200, root.text);
});

shutdownTest(searched, () => gw2);

// ---------------------------------------------------------------------------------------------
const commands = suite('config file: bad files; commands: --generate-config, --help-all, --help, --version, kernel');

commands.after(() => rmSync(TMP, { recursive: true, force: true }));

commands('a bad config file stops start-up with exit code 2 and a message naming it', async () => {
  const file = join(tempDir(), 'bad.json');
  writeFileSync(file, '{"KernelGatewayApp": {"port": "many"}}');
  const bad = await run(['--config', file, '--port', '0']);
  assert.is(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, `kernelgateway: ${file}: KernelGatewayApp.port: "many" is not an integer`);
  const missing = await run(['--port', '0'], { KG_CONFIG_FILE: join(TMP, 'nope.json') });
  assert.is(missing.code, 2, missing.stderr);
  assert.match(missing.stderr, `config file ${join(TMP, 'nope.json')} (from KG_CONFIG_FILE) does not exist`);
});

commands('--generate-config writes the defaults, refuses to overwrite without -y', async () => {
  const dir = tempDir();
  const target = join(dir, 'sub', 'generated.json');
  const first = await run(['--generate-config', '--config', target]);
  assert.is(first.code, 0, first.stderr);
  assert.is(first.stdout, `Writing default config to: ${target}\n`);
  assert.is(readFileSync(target, 'utf8'), generateConfigText());

  writeFileSync(target, '{}');
  const refused = await run(['--generate-config', '--config', target]);
  assert.is(refused.code, 1);
  assert.match(refused.stderr, 'exists; not overwriting it (give -y to overwrite)');
  assert.is(readFileSync(target, 'utf8'), '{}');
  const forced = await run(['--generate-config', '-y', `--config=${target}`]);
  assert.is(forced.code, 0, forced.stderr);
  assert.is(readFileSync(target, 'utf8'), generateConfigText());

  // Without --config: into $JUPYTER_CONFIG_DIR, where it is then found.
  const configDir = tempDir();
  const byDefault = await run(['--generate-config'], { JUPYTER_CONFIG_DIR: configDir });
  assert.is(byDefault.code, 0, byDefault.stderr);
  assert.is(readFileSync(join(configDir, CONFIG_FILE_NAME), 'utf8'), generateConfigText());
});

commands('--help-all prints every option and exits 0', async () => {
  const help = await run(['--help-all']);
  assert.is(help.code, 0, help.stderr);
  for (const word of ['--cull-busy', 'KG_CULL_BUSY', '--MappingKernelManager.cull_idle_timeout', '--generate-config']) {
    assert.match(help.stdout, word);
  }
});

commands('--help and --version (cac renders them) exit 0; the kernel subcommand needs its connection file', async () => {
  const help = await run(['--help']);
  assert.is(help.code, 0, help.stderr);
  for (const word of ['Usage:', 'kernelgateway [serve] [options]', '--port <int>', 'KG_PORT', '--list-kernels [true|false]', 'kernel', 'Reference spellings']) {
    assert.match(help.stdout, word);
  }
  // Help wins over a bad command line.
  const helpAnyway = await run(['--port', '--KernelGatewayApp.bogus=1', '-h']);
  assert.is(helpAnyway.code, 0, helpAnyway.stderr);
  assert.match(helpAnyway.stdout, '--port <int>');
  const version = await run(['--version']);
  assert.is(version.code, 0, version.stderr);
  assert.match(version.stdout, /^kernelgateway\/\d+\.\d+\.\d+ /);

  const noFile = await run(['kernel']);
  assert.is(noFile.code, 2);
  assert.is(noFile.stderr, 'usage: kernelgateway kernel -f <connection_file>\n');
  const missing = await run(['kernel', '-f', join(TMP, 'no-such-connection-file.json')]);
  assert.is(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, 'kernelgateway kernel: ');
  assert.match(missing.stderr, 'no-such-connection-file.json');
  const kernelHelp = await run(['kernel', '--help']);
  assert.is(kernelHelp.code, 0, kernelHelp.stderr);
  assert.match(kernelHelp.stdout, '-f, --connection-file <file>');
  assert.not.match(kernelHelp.stdout, '--port');
});

commands('a stray word or unknown option stops start-up with exit code 2, listed in command-line order', async () => {
  const bad = await run(['--frobnicate', 'x', 'stray', '--port', '0', '-x']);
  assert.is(bad.code, 2, bad.stderr);
  assert.is(
    bad.stderr,
    'kernelgateway: unknown option --frobnicate\nkernelgateway: unexpected argument "stray"\nkernelgateway: unknown option -x\n' +
      'Run kernelgateway --help (or --help-all) to see the options.\n',
  );
});

withFile.run();
searched.run();
commands.run();
