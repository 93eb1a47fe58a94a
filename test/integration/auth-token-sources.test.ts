/**
 * Where the token comes from, with the real gateway: on the command line it is hidden from the
 * process list once the gateway has started (every spelling, a long command line too) and still
 * works; from --auth-token-file it works, a file others may read gives a warning, and a missing,
 * empty or conflicting file stops start-up with exit code 2.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { api, guardSuite, runGatewayToExit, shutdownTest, startGateway, type Gateway } from '../helpers/gateway.ts';

/** What the process list shows of `pid`: its command line (words joined by spaces) and its name. */
function shown(pid: number): { cmdline: string; comm: string } {
  return {
    cmdline: readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').replaceAll('\0', ' '),
    comm: readFileSync(`/proc/${pid}/comm`, 'utf8').trim(),
  };
}

async function assertTokenWorks(gw: Gateway, token: string): Promise<void> {
  const ok = await api(gw, 'GET', 'api/kernels', { token: false, headers: { Authorization: `token ${token}` } });
  assert.is(ok.status, 200, `the token is accepted: ${ok.text}`);
  const none = await api(gw, 'GET', 'api/kernels', { token: false });
  assert.is(none.status, 401, `no token is refused: ${none.text}`);
}

// ---------------------------------------------------------------------------------------------
const hidden = suite('auth token on the command line: hidden from the process list');
const SECRET = `SECRET-${Math.random().toString(36).slice(2)}-token`;
let plain: Gateway;
let spelled: Gateway;
// Every spelling at once, with a long command line around them (its words must all stay).
const LONG = Array.from({ length: 4000 }, (_, i) => `VAR_${i}`).join(',');
const LAST = `${SECRET}-c`;

guardSuite(hidden, async () => {
  plain = await startGateway({ token: SECRET });
  spelled = await startGateway({
    token: null,
    knownToken: LAST,
    args: ['--auth-token', `${SECRET}-a`, `--auth-token=${SECRET}-b`, '--env-process-whitelist', LONG, '--KernelGatewayApp.auth_token', LAST, '--list-kernels'],
  });
});

hidden('--auth-token SECRET: /proc/<pid>/cmdline shows *** instead, the process keeps its name, the token works', async () => {
  const { cmdline, comm } = shown(plain.proc.pid!);
  assert.not.match(cmdline, 'SECRET', cmdline);
  assert.match(cmdline, /kernelgateway\.js --port 0 --auth-token \*\*\*$/);
  assert.is(comm, 'node');
  await assertTokenWorks(plain, SECRET);
});

hidden('every spelling is hidden, the rest of a long command line stays readable', async () => {
  const { cmdline, comm } = shown(spelled.proc.pid!);
  assert.not.match(cmdline, 'SECRET');
  assert.ok(
    cmdline.endsWith(`--auth-token *** --auth-token=*** --env-process-whitelist ${LONG} --KernelGatewayApp.auth_token *** --list-kernels`),
    cmdline.slice(-200),
  );
  assert.is(comm, 'node');
  await assertTokenWorks(spelled, LAST);
});

shutdownTest(hidden, () => plain, 'plain');
shutdownTest(hidden, () => spelled, 'spelled');

// ---------------------------------------------------------------------------------------------
const fromFile = suite('auth token from --auth-token-file');
const TMP = mkdtempSync(join(tmpdir(), 'kg-token-file-'));
const FILE_TOKEN = `from-file-${Math.random().toString(36).slice(2)}`;
let tokenFile: string;
let gw: Gateway;

guardSuite(fromFile, async () => {
  tokenFile = join(TMP, 'token');
  writeFileSync(tokenFile, `${FILE_TOKEN}\n`);
  chmodSync(tokenFile, 0o644);
  gw = await startGateway({ token: null, knownToken: FILE_TOKEN, args: ['--auth-token-file', tokenFile] });
});

fromFile.after(() => rmSync(TMP, { recursive: true, force: true }));

fromFile('the token from the file works; a file others may read gives a warning line without the token', async () => {
  await assertTokenWorks(gw, FILE_TOKEN);
  const warning = gw.stderr().split('\n').filter((line) => line.includes('other users may read it'));
  assert.equal(warning.length, 1, gw.stderr());
  assert.match(warning[0], /^\[W /);
  assert.match(warning[0], `${tokenFile} holds the auth token but other users may read it; make it private (chmod 600)`);
  assert.not.match(gw.stderr(), FILE_TOKEN);
  assert.not.match(shown(gw.proc.pid!).cmdline, '***', 'nothing to hide: a file name is no secret');
});

shutdownTest(fromFile, () => gw);

fromFile('a missing file stops start-up with exit code 2 and a message naming it', async () => {
  const missing = join(TMP, 'no-such-token');
  const run = await runGatewayToExit({ token: null, args: ['--auth-token-file', missing] });
  assert.is(run.code, 2, run.stderr);
  assert.is(
    run.stderr,
    `kernelgateway: --auth-token-file: ${JSON.stringify(missing)} does not exist; expected a readable file holding the token ` +
      '(KG_AUTH_TOKEN_FILE, --KernelGatewayApp.auth_token_file)\n',
  );
  const fromEnv = await runGatewayToExit({ token: null, env: { KG_AUTH_TOKEN_FILE: missing } });
  assert.is(fromEnv.code, 2, fromEnv.stderr);
  assert.match(fromEnv.stderr, `KG_AUTH_TOKEN_FILE: ${JSON.stringify(missing)} does not exist`);
});

fromFile('an empty file, or a token given as well, stops start-up with exit code 2', async () => {
  const empty = join(TMP, 'empty');
  writeFileSync(empty, '\n', { mode: 0o600 });
  const run = await runGatewayToExit({ token: null, args: ['--auth-token-file', empty] });
  assert.is(run.code, 2, run.stderr);
  assert.match(run.stderr, `--auth-token-file: ${JSON.stringify(empty)} is empty`);
  const both = await runGatewayToExit({ token: 'also-given', args: ['--auth-token-file', tokenFile] });
  assert.is(both.code, 2, both.stderr);
  assert.match(both.stderr, 'auth_token is set (from --auth-token) and so is auth_token_file (from --auth-token-file); give only one of them');
});

hidden.run();
fromFile.run();
