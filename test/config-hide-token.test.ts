import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCommandLine } from '../src/config/argv.ts';
import { hiddenTitle, withTokenHidden } from '../src/config/hide-token.ts';

test('withTokenHidden: whole words become ***, --x=VALUE keeps its name; nothing else changes', () => {
  const args = ['--port', '1', '--auth-token', 'A', '--auth-token=B=C', '--KernelGatewayApp.auth_token=D', '--ip', 'A'];
  const { tokenPlaces } = parseCommandLine(args);
  assert.equal(withTokenHidden(args, tokenPlaces), [
    '--port', '1', '--auth-token', '***', '--auth-token=***', '--KernelGatewayApp.auth_token=***', '--ip', 'A',
  ]);
  assert.equal(args[3], 'A', 'the arguments themselves are left alone');
  assert.equal(withTokenHidden(['--port', '1'], []), ['--port', '1']);
});

test('hiddenTitle: keeps what comes before the arguments in the process list (node, its flags, the script)', () => {
  const args = ['--auth-token', 'S', '--port', '0'];
  const places = parseCommandLine(args).tokenPlaces;
  assert.is(
    hiddenTitle(args, places, ['node', '--max-old-space-size=100', 'bin/kernelgateway.js', ...args]),
    'node --max-old-space-size=100 bin/kernelgateway.js --auth-token *** --port 0',
  );
  // Empty words keep their place (two spaces).
  const withEmpty = ['--ip', '', '--auth-token=S'];
  assert.is(hiddenTitle(withEmpty, parseCommandLine(withEmpty).tokenPlaces, ['kg', ...withEmpty]), 'kg --ip  --auth-token=***');
  // When the process list does not end with the arguments (or there is none), argv0 stands for the rest.
  assert.is(hiddenTitle(args, places, ['something', 'else']), `${process.argv0} --auth-token *** --port 0`);
  assert.is(hiddenTitle(args, places, undefined), `${process.argv0} --auth-token *** --port 0`);
});

test.run();
