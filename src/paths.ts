/**
 * Jupyter's folders, as jupyter_core finds them: the data dir, the runtime dir, the config dir and
 * config path (where kernelgateway_config.json is looked for), and the kernel search path.
 * There is no Python here, so the "env prefix" is KG_ENV_PREFIX, else VIRTUAL_ENV, else CONDA_PREFIX.
 */
import { chmodSync, mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';

/** Where to look and how to spell paths; for tests, so they need not touch the real home or /etc. */
export interface PathOptions {
  /** Home directory holding `.jupyter` (default: os.homedir()). */
  home?: string;
  /** Decides path syntax, the JUPYTER_CONFIG_PATH separator and the system directories (default: process.platform). */
  platform?: NodeJS.Platform;
  /** System-wide config directories, searched last (default: /usr/local/etc/jupyter, /etc/jupyter; on Windows %PROGRAMDATA%\jupyter). */
  systemDirs?: readonly string[];
}

/** The file name looked for in each directory of the Jupyter config path. */
export const CONFIG_FILE_NAME = 'kernelgateway_config.json';

/** The target platform's path rules, so results don't depend on the host running the tests. */
function pathFor(platform: NodeJS.Platform): path.PlatformPath {
  return platform === 'win32' ? path.win32 : path.posix;
}

const FALSY = new Set(['no', 'n', 'false', 'off', '0', '0.0']);
/** Jupyter's notion of a truthy environment variable: set and not a "false" word. */
function truthy(value: string | undefined): boolean {
  return value !== undefined && !FALSY.has(value.toLowerCase());
}

/** An env var's value, treating empty as unset. */
function nonEmpty(value: string | undefined): string | undefined {
  return value ? value : undefined;
}

/** Jupyter's user config directory: $JUPYTER_CONFIG_DIR, else ~/.jupyter. */
export function jupyterConfigDir(env: NodeJS.ProcessEnv, opts: PathOptions = {}): string {
  const p = pathFor(opts.platform ?? process.platform);
  return nonEmpty(env.JUPYTER_CONFIG_DIR) ?? p.join(opts.home ?? homedir(), '.jupyter');
}

/** Where --generate-config writes when not given --config: <JUPYTER_CONFIG_DIR or ~/.jupyter>/kernelgateway_config.json. */
export function defaultConfigFilePath(env: NodeJS.ProcessEnv, opts: PathOptions = {}): string {
  return pathFor(opts.platform ?? process.platform).join(jupyterConfigDir(env, opts), CONFIG_FILE_NAME);
}

/**
 * The directories searched for kernelgateway_config.json, highest priority first, as jupyter_core's
 * jupyter_config_path(): each $JUPYTER_CONFIG_PATH entry, the user directory ($JUPYTER_CONFIG_DIR or
 * ~/.jupyter), {prefix}/etc/jupyter (prefix: $KG_ENV_PREFIX, $VIRTUAL_ENV or $CONDA_PREFIX), then the
 * system directories. A directory listed twice counts once, at its first place.
 */
export function configSearchPath(env: NodeJS.ProcessEnv, opts: PathOptions = {}): string[] {
  const platform = opts.platform ?? process.platform;
  const p = pathFor(platform);
  const dirs: string[] = [];
  for (const entry of (env.JUPYTER_CONFIG_PATH ?? '').split(p.delimiter)) if (entry) dirs.push(entry);
  dirs.push(jupyterConfigDir(env, opts));
  const prefix = env.KG_ENV_PREFIX || env.VIRTUAL_ENV || env.CONDA_PREFIX;
  if (prefix) dirs.push(p.join(prefix, 'etc', 'jupyter'));
  if (opts.systemDirs) dirs.push(...opts.systemDirs);
  else if (platform === 'win32') {
    if (env.PROGRAMDATA) dirs.push(p.join(env.PROGRAMDATA, 'jupyter'));
  } else dirs.push('/usr/local/etc/jupyter', '/etc/jupyter');
  const seen = new Set<string>();
  return dirs.filter((d) => {
    const key = p.normalize(d).replace(/[\\/]+$/, '');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** jupyter_data_dir() without platformdirs support (JUPYTER_PLATFORM_DIRS is not implemented). */
export function jupyterDataDir(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
  home: string = homedir(),
): string {
  const p = pathFor(platform);
  const explicit = nonEmpty(env.JUPYTER_DATA_DIR);
  if (explicit) return explicit;
  if (platform === 'darwin') return p.join(home, 'Library', 'Jupyter');
  if (platform === 'win32') {
    const appData = nonEmpty(env.APPDATA);
    if (appData) return p.join(appData, 'jupyter');
    return p.join(jupyterConfigDir(env, { platform, home }), 'data');
  }
  return p.join(nonEmpty(env.XDG_DATA_HOME) ?? p.join(home, '.local', 'share'), 'jupyter');
}

/** Jupyter's runtime directory: $JUPYTER_RUNTIME_DIR, else <data dir>/runtime. Created private (0700). */
export function runtimeDir(env: NodeJS.ProcessEnv = process.env, dataDir = jupyterDataDir(env)): string {
  const dir = env.JUPYTER_RUNTIME_DIR || path.join(dataDir, 'runtime');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Best effort: a runtime dir we did not create may be wider; connection files are 0600 regardless.
  try {
    const mode = statSync(dir).mode & 0o777;
    if (mode & 0o077 && !env.JUPYTER_RUNTIME_DIR) chmodSync(dir, 0o700);
  } catch {
    /* not ours to fix */
  }
  return dir;
}

/**
 * Jupyter's kernel search path, highest priority first, each ending in /kernels:
 *   1. every entry of $JUPYTER_PATH;
 *   2. the user data dir and the env prefix's share/jupyter, env first when JUPYTER_PREFER_ENV_PATH
 *      is truthy, or it is unset and we run inside a venv / non-base conda env; otherwise user first;
 *   3. the system dirs (/usr/local/share/jupyter, /usr/share/jupyter; %PROGRAMDATA%\jupyter on Windows
 *      only with JUPYTER_USE_PROGRAMDATA);
 * deduplicated (first kept), then `<IPYTHONDIR or ~/.ipython>/kernels` last.
 */
export function kernelSearchPath(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
  home: string = homedir(),
): string[] {
  const p = pathFor(platform);
  const trailingSeps = platform === 'win32' ? /[\\/]+$/ : /\/+$/;

  const fromJupyterPath = (env.JUPYTER_PATH ?? '')
    .split(p.delimiter)
    .map((entry) => entry.replace(trailingSeps, ''))
    .filter((entry) => entry !== '');

  const user = jupyterDataDir(env, platform, home);

  const prefix = nonEmpty(env.KG_ENV_PREFIX) ?? nonEmpty(env.VIRTUAL_ENV) ?? nonEmpty(env.CONDA_PREFIX);
  const system =
    platform === 'win32'
      ? truthy(env.JUPYTER_USE_PROGRAMDATA) && env.PROGRAMDATA
        ? [p.join(env.PROGRAMDATA, 'jupyter')]
        : []
      : ['/usr/local/share/jupyter', '/usr/share/jupyter'];
  // An env prefix that is also a system dir (e.g. /usr) keeps its system position, as in Jupyter.
  const envDir = prefix === undefined ? undefined : p.join(prefix, 'share', 'jupyter');
  const envGroup = envDir === undefined || system.includes(envDir) ? [] : [envDir];

  const preferEnv =
    env.JUPYTER_PREFER_ENV_PATH !== undefined
      ? truthy(env.JUPYTER_PREFER_ENV_PATH)
      : !!nonEmpty(env.VIRTUAL_ENV) || (!!nonEmpty(env.CONDA_PREFIX) && env.CONDA_DEFAULT_ENV !== 'base');
  const middle = preferEnv ? [...envGroup, user] : [user, ...envGroup];

  const ipython = nonEmpty(env.IPYTHONDIR) ?? p.join(home, '.ipython');
  const dirs = [...fromJupyterPath, ...middle, ...system].map((d) => p.join(d, 'kernels'));
  return [...new Set([...dirs, p.join(ipython, 'kernels')])];
}
