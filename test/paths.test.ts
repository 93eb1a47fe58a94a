import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CONFIG_FILE_NAME, defaultConfigFilePath, jupyterConfigDir, jupyterDataDir, runtimeDir } from '../src/paths.ts';

const TMP = mkdtempSync(join(tmpdir(), 'kg-paths-test-'));
test.after(() => rmSync(TMP, { recursive: true, force: true }));

test('config dir: $JUPYTER_CONFIG_DIR, else ~/.jupyter (empty counts as unset)', () => {
  assert.is(jupyterConfigDir({}, { home: '/home/u' }), '/home/u/.jupyter');
  assert.is(jupyterConfigDir({ JUPYTER_CONFIG_DIR: '/cfg' }, { home: '/home/u' }), '/cfg');
  assert.is(jupyterConfigDir({ JUPYTER_CONFIG_DIR: '' }, { home: '/home/u' }), '/home/u/.jupyter');
  assert.is(jupyterConfigDir({}, { home: 'C:\\Users\\u', platform: 'win32' }), 'C:\\Users\\u\\.jupyter');
  assert.is(defaultConfigFilePath({}, { home: '/home/u' }), `/home/u/.jupyter/${CONFIG_FILE_NAME}`);
});

test('data dir: $JUPYTER_DATA_DIR, else the platform default', () => {
  assert.is(jupyterDataDir({ JUPYTER_DATA_DIR: '/data' }, 'linux', '/h'), '/data');
  assert.is(jupyterDataDir({}, 'linux', '/h'), '/h/.local/share/jupyter');
  assert.is(jupyterDataDir({ XDG_DATA_HOME: '/xdg' }, 'linux', '/h'), '/xdg/jupyter');
  assert.is(jupyterDataDir({}, 'darwin', '/Users/u'), '/Users/u/Library/Jupyter');
  assert.is(jupyterDataDir({ APPDATA: 'C:\\AppData' }, 'win32', 'C:\\Users\\u'), 'C:\\AppData\\jupyter');
  // Without APPDATA, Windows keeps data under the config dir.
  assert.is(jupyterDataDir({}, 'win32', 'C:\\Users\\u'), 'C:\\Users\\u\\.jupyter\\data');
  assert.is(jupyterDataDir({ JUPYTER_CONFIG_DIR: 'D:\\cfg' }, 'win32', 'C:\\Users\\u'), 'D:\\cfg\\data');
});

test('runtime dir: $JUPYTER_RUNTIME_DIR as given, else <data dir>/runtime made private', () => {
  const explicit = join(TMP, 'explicit', 'rt');
  assert.is(runtimeDir({ JUPYTER_RUNTIME_DIR: explicit }), explicit);
  assert.ok(statSync(explicit).isDirectory(), 'created');
  // A wide runtime dir the user named is left as it is.
  chmodSync(explicit, 0o755);
  runtimeDir({ JUPYTER_RUNTIME_DIR: explicit });
  assert.is(statSync(explicit).mode & 0o777, 0o755);

  const data = join(TMP, 'data');
  const dir = runtimeDir({}, data);
  assert.is(dir, join(data, 'runtime'));
  assert.is(statSync(dir).mode & 0o777, 0o700);
  // One we made earlier and that was widened since is narrowed again.
  chmodSync(dir, 0o755);
  runtimeDir({}, data);
  assert.is(statSync(dir).mode & 0o777, 0o700);
});

test.run();
