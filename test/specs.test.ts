import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  KernelSpecStore,
  defaultKernelName,
  kernelSpecModel,
} from '../src/kernels/specs.ts';
import type { Logger } from '../src/log.ts';
import { kernelSearchPath } from '../src/paths.ts';

const tmpRoots: string[] = [];
function tmp(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-specs-'));
  tmpRoots.push(dir);
  return dir;
}
test.after(() => {
  for (const dir of tmpRoots) fs.rmSync(dir, { recursive: true, force: true });
});

/** Write `<kernelsDir>/<dir>/kernel.json` (an object is JSON-encoded, a string written as is). */
function writeSpec(kernelsDir: string, dir: string, spec: object | string): string {
  const specDir = path.join(kernelsDir, dir);
  fs.mkdirSync(specDir, { recursive: true });
  fs.writeFileSync(path.join(specDir, 'kernel.json'), typeof spec === 'string' ? spec : JSON.stringify(spec));
  return specDir;
}

function captureLog(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  const noop = () => {};
  const logger: Logger & { warnings: string[] } = {
    level: 'DEBUG', debug: noop, info: noop, error: noop, critical: noop, warn: (m) => void warnings.push(m), warnings,
    with: () => logger,
  };
  return logger;
}

const basic = (display_name: string) => ({ argv: ['python', '-f', '{connection_file}'], display_name, language: 'python' });

// --- kernelSearchPath ---

test('search path: JUPYTER_PATH, then data dir, then system, then ipython', () => {
  const env = { JUPYTER_PATH: '/a/:/b//::/c' };
  assert.equal(kernelSearchPath(env, 'linux', '/home/u'), [
    '/a/kernels',
    '/b/kernels',
    '/c/kernels',
    '/home/u/.local/share/jupyter/kernels',
    '/usr/local/share/jupyter/kernels',
    '/usr/share/jupyter/kernels',
    '/home/u/.ipython/kernels',
  ]);
});

test('search path: JUPYTER_DATA_DIR beats XDG_DATA_HOME; IPYTHONDIR; duplicates dropped', () => {
  assert.equal(kernelSearchPath({ XDG_DATA_HOME: '/xdg' }, 'linux', '/h')[0], '/xdg/jupyter/kernels');
  const p = kernelSearchPath(
    { JUPYTER_DATA_DIR: '/data', XDG_DATA_HOME: '/xdg', JUPYTER_PATH: '/usr/share/jupyter', IPYTHONDIR: '/ip' },
    'linux',
    '/h',
  );
  assert.equal(p, ['/usr/share/jupyter/kernels', '/data/kernels', '/usr/local/share/jupyter/kernels', '/ip/kernels']);
  assert.equal(kernelSearchPath({ XDG_DATA_HOME: '' }, 'linux', '/h')[0], '/h/.local/share/jupyter/kernels');
});

test('search path: macOS and Windows data dirs', () => {
  assert.equal(kernelSearchPath({}, 'darwin', '/Users/u')[0], '/Users/u/Library/Jupyter/kernels');
  const win = kernelSearchPath(
    { APPDATA: 'C:\\Users\\u\\AppData\\Roaming', PROGRAMDATA: 'C:\\ProgramData', JUPYTER_USE_PROGRAMDATA: '1' },
    'win32',
    'C:\\Users\\u',
  );
  assert.equal(win, [
    'C:\\Users\\u\\AppData\\Roaming\\jupyter\\kernels',
    'C:\\ProgramData\\jupyter\\kernels',
    'C:\\Users\\u\\.ipython\\kernels',
  ]);
});

test('search path: VIRTUAL_ENV puts the env before the user dir', () => {
  assert.equal(kernelSearchPath({ VIRTUAL_ENV: '/venv' }, 'linux', '/h').slice(0, 2), [
    '/venv/share/jupyter/kernels',
    '/h/.local/share/jupyter/kernels',
  ]);
});

test('search path: JUPYTER_PREFER_ENV_PATH overrides the venv default', () => {
  const userFirst = ['/h/.local/share/jupyter/kernels', '/venv/share/jupyter/kernels'];
  assert.equal(kernelSearchPath({ VIRTUAL_ENV: '/venv', JUPYTER_PREFER_ENV_PATH: 'Off' }, 'linux', '/h').slice(0, 2), userFirst);
  // KG_ENV_PREFIX alone doesn't mean "inside a venv": user first unless asked.
  assert.equal(kernelSearchPath({ KG_ENV_PREFIX: '/venv' }, 'linux', '/h').slice(0, 2), userFirst);
  assert.equal(kernelSearchPath({ KG_ENV_PREFIX: '/venv', JUPYTER_PREFER_ENV_PATH: 'yes' }, 'linux', '/h')[0], userFirst[1]);
  // KG_ENV_PREFIX wins over VIRTUAL_ENV as the prefix.
  assert.equal(kernelSearchPath({ KG_ENV_PREFIX: '/kg', VIRTUAL_ENV: '/venv' }, 'linux', '/h')[0], '/kg/share/jupyter/kernels');
});

test('search path: conda base env is not preferred, other conda envs are', () => {
  const base = kernelSearchPath({ CONDA_PREFIX: '/conda', CONDA_DEFAULT_ENV: 'base' }, 'linux', '/h');
  assert.equal(base.slice(0, 2), ['/h/.local/share/jupyter/kernels', '/conda/share/jupyter/kernels']);
  const other = kernelSearchPath({ CONDA_PREFIX: '/conda/envs/x', CONDA_DEFAULT_ENV: 'x' }, 'linux', '/h');
  assert.equal(other[0], '/conda/envs/x/share/jupyter/kernels');
});

test('search path: an env prefix equal to a system dir keeps its system position', () => {
  assert.equal(kernelSearchPath({ VIRTUAL_ENV: '/usr' }, 'linux', '/h'), [
    '/h/.local/share/jupyter/kernels',
    '/usr/local/share/jupyter/kernels',
    '/usr/share/jupyter/kernels',
    '/h/.ipython/kernels',
  ]);
});

// --- KernelSpecStore ---

test('store: first occurrence wins, names lowercased and sorted, get is case-insensitive', () => {
  const root = tmp();
  const high = path.join(root, 'high');
  const low = path.join(root, 'low');
  writeSpec(high, 'Python3', basic('High Python'));
  writeSpec(low, 'python3', basic('Low Python'));
  writeSpec(low, 'ir', { argv: ['R'], language: 'R' });
  const store = new KernelSpecStore([high, path.join(root, 'missing'), low], captureLog());
  assert.equal(store.names(), ['ir', 'python3']);
  const py = store.get('PYTHON3');
  assert.ok(py);
  assert.is(py.name, 'python3');
  assert.is(py.spec.display_name, 'High Python');
  assert.is(py.resourceDir, path.join(high, 'Python3'));
  assert.ok(path.isAbsolute(py.resourceDir));
  assert.is(store.get('nope'), undefined);
});

test('store: kernelSearchPath order feeds the store (JUPYTER_PATH over data dir over system)', () => {
  const root = tmp();
  const env = { JUPYTER_PATH: path.join(root, 'jp'), JUPYTER_DATA_DIR: path.join(root, 'data') };
  const dirs = kernelSearchPath(env, 'linux', path.join(root, 'home'));
  writeSpec(path.join(root, 'data', 'kernels'), 'k', basic('from data'));
  const store = new KernelSpecStore(dirs, captureLog());
  assert.is(store.get('k')?.spec.display_name, 'from data');
  writeSpec(path.join(root, 'jp', 'kernels'), 'k', basic('from JUPYTER_PATH'));
  assert.is(store.get('k')?.spec.display_name, 'from JUPYTER_PATH'); // rescanned
});

test('store: defaults filled, interrupt_mode case-insensitive, kernel_protocol_version only when present', () => {
  const root = tmp();
  writeSpec(root, 'Min', { argv: ['k'] });
  writeSpec(root, 'full', { ...basic('Full'), interrupt_mode: 'MESSAGE', env: { A: '1' }, kernel_protocol_version: '5.5', extra: 1 });
  const store = new KernelSpecStore([root], captureLog());
  assert.equal(store.get('min')?.spec, {
    argv: ['k'],
    env: {},
    display_name: 'min',
    language: '',
    interrupt_mode: 'signal',
    metadata: {},
  });
  assert.equal(store.get('full')?.spec, {
    argv: ['python', '-f', '{connection_file}'],
    env: { A: '1' },
    display_name: 'Full',
    language: 'python',
    interrupt_mode: 'message',
    metadata: {},
    kernel_protocol_version: '5.5',
  });
});

test('store: invalid specs are skipped with one warning each', () => {
  const root = tmp();
  writeSpec(root, 'badjson', '{ nope');
  writeSpec(root, 'noargv', { display_name: 'x' });
  writeSpec(root, 'argvnums', { argv: [1, 2] });
  writeSpec(root, 'badmode', { argv: ['k'], interrupt_mode: 'kill' });
  writeSpec(root, 'remote', { argv: ['k'], metadata: { kernel_provisioner: { provisioner_name: 'remote-provisioner' } } });
  writeSpec(root, 'local', { argv: ['k'], metadata: { kernel_provisioner: { provisioner_name: 'local-provisioner' } } });
  fs.mkdirSync(path.join(root, 'dirjson', 'kernel.json'), { recursive: true }); // not a regular file
  fs.writeFileSync(path.join(root, 'stray.txt'), 'x');
  const log = captureLog();
  const store = new KernelSpecStore([root], log);
  assert.equal(store.names(), ['local']);
  assert.is(log.warnings.length, 5);
  store.list();
  store.get('badjson');
  assert.is(log.warnings.length, 5, 'no new warnings on rescans');
});

test('store: an invalid spec still shadows a lower-priority one of the same name, as in Jupyter', () => {
  const root = tmp();
  writeSpec(path.join(root, 'a'), 'k', '[]');
  writeSpec(path.join(root, 'b'), 'k', basic('b'));
  const store = new KernelSpecStore([path.join(root, 'a'), path.join(root, 'b')], captureLog());
  assert.is(store.get('k'), undefined);
});

test('store: a spec fixed on disk is picked up on the next call', () => {
  const root = tmp();
  const dir = writeSpec(root, 'k', '{');
  const store = new KernelSpecStore([root], captureLog());
  assert.equal(store.names(), []);
  fs.writeFileSync(path.join(dir, 'kernel.json'), JSON.stringify(basic('fixed now')));
  assert.is(store.get('k')?.spec.display_name, 'fixed now');
});

// --- resources ---

function specWithFiles(): { root: string; store: KernelSpecStore; dir: string } {
  const root = tmp();
  const kernels = path.join(root, 'kernels');
  const dir = writeSpec(kernels, 'Py', basic('Py'));
  for (const f of ['logo-32x32.png', 'logo-svg.svg', 'kernel.js', 'readme.md']) fs.writeFileSync(path.join(dir, f), f);
  fs.mkdirSync(path.join(dir, 'sub'));
  fs.writeFileSync(path.join(dir, 'sub', 'x.txt'), 'x');
  fs.writeFileSync(path.join(root, 'secret.txt'), 'secret');
  return { root, store: new KernelSpecStore([kernels], captureLog()), dir };
}

test('resources: kernel.js / kernel.css if present, logo-* keyed without extension', () => {
  const { store } = specWithFiles();
  assert.equal(store.resources(store.get('py')!), {
    'logo-32x32': 'logo-32x32.png',
    'logo-svg': 'logo-svg.svg',
    'kernel.js': 'kernel.js',
  });
});

test('resolveResource: files inside only', () => {
  const { root, store, dir } = specWithFiles();
  assert.is(store.resolveResource('PY', 'logo-32x32.png'), path.join(dir, 'logo-32x32.png'));
  assert.is(store.resolveResource('py', 'sub/x.txt'), path.join(dir, 'sub', 'x.txt'));
  assert.is(store.resolveResource('py', '../../secret.txt'), undefined);
  assert.is(store.resolveResource('py', 'sub/../../kernels/py/kernel.json'), undefined);
  assert.is(store.resolveResource('py', path.join(root, 'secret.txt')), undefined);
  assert.is(store.resolveResource('py', path.join(dir, 'kernel.js')), undefined, 'absolute paths refused even inside');
  assert.is(store.resolveResource('py', 'sub'), undefined, 'directory');
  assert.is(store.resolveResource('py', ''), undefined);
  assert.is(store.resolveResource('py', 'missing.png'), undefined);
  assert.is(store.resolveResource('nope', 'kernel.js'), undefined);
});

test('resolveResource: a symlink pointing outside is refused, one inside is allowed', () => {
  const { root, store, dir } = specWithFiles();
  try {
    fs.symlinkSync(path.join(root, 'secret.txt'), path.join(dir, 'logo-evil.png'));
    fs.symlinkSync(path.join(dir, 'kernel.js'), path.join(dir, 'logo-alias.js'));
  } catch {
    return; // no symlink permission (e.g. Windows without developer mode)
  }
  assert.is(store.resolveResource('py', 'logo-evil.png'), undefined);
  assert.is(store.resolveResource('py', 'logo-alias.js'), path.join(dir, 'logo-alias.js'));
  const res = store.resources(store.get('py')!);
  assert.is(res['logo-evil'], undefined, 'not advertised either');
  assert.is(res['logo-alias'], 'logo-alias.js');
});

// --- REST model and default name ---

test('kernelSpecModel: echoes the requested name, URLs under baseUrl/kernelspecs', () => {
  const { store } = specWithFiles();
  const model = kernelSpecModel(store.get('Py')!, 'Py', '/base/', store);
  assert.is(model.name, 'Py');
  assert.equal(model.resources, {
    'logo-32x32': '/base/kernelspecs/Py/logo-32x32.png',
    'logo-svg': '/base/kernelspecs/Py/logo-svg.svg',
    'kernel.js': '/base/kernelspecs/Py/kernel.js',
  });
  assert.is(model.spec.display_name, 'Py');
  model.spec.argv.push('mutated');
  assert.equal(store.get('py')!.spec.argv, ['python', '-f', '{connection_file}'], 'model is a copy');
});

test('defaultKernelName: configured, else python3, else first, else python3', () => {
  const root = tmp();
  const store = new KernelSpecStore([root], captureLog());
  assert.is(defaultKernelName(store, ''), 'python3');
  writeSpec(root, 'zeta', { argv: ['z'] });
  writeSpec(root, 'beta', { argv: ['b'] });
  assert.is(defaultKernelName(store, ''), 'beta');
  writeSpec(root, 'Python3', { argv: ['p'] });
  assert.is(defaultKernelName(store, ''), 'python3');
  assert.is(defaultKernelName(store, 'zeta'), 'zeta');
});

test.run();
