/**
 * Resolution: the Config from the command line, config files, KG_* variables and defaults, in that
 * order of precedence, then the checks between options.
 */
import type { PathOptions } from '../paths.ts';
import { parseCommandLine, type CommandLine, type Given } from './argv.ts';
import { findConfigFiles, readConfigFile, type FileValues } from './files.ts';
import { ConfigError, DEFAULTS, optionTable, otherSpellings, type Config, type OptionSpec } from './options.ts';
import { readTokenFile, sharedTokenFileWarning } from './token-file.ts';
import { parseValue, type Value } from './values.ts';

export interface ResolvedConfig {
  config: Config;
  /** Arguments that are not gateway options at all (unknown flags, stray words); start-up should stop. */
  errors: string[];
  /** Things ignored or adjusted, worth a log line (e.g. unsupported KG_* variables). */
  warnings: string[];
  /** The config files read, highest priority first. */
  configFiles: string[];
}

/** KG_* variables that are no option of the table but mean something to us. */
const OTHER_ENV = ['KG_CONFIG_FILE', 'KG_ENV_PREFIX'];

/**
 * Builds the Config from the command line (its arguments without node and script, or as parsed
 * already), config files and the environment. Precedence: command line, then config files, then
 * the KG_* variable (as in the reference, an env var only supplies the default), then DEFAULTS.
 * Config files: the one named by --config (or KG_CONFIG_FILE), else kernelgateway_config.json in
 * each directory of configSearchPath(), merged option by option, earlier directories winning.
 * Throws ConfigError for a bad value of a known option, an unknown `--KernelGatewayApp.x`, or a bad
 * config file; arguments that are no gateway option at all are collected in `errors`.
 */
export function resolveConfig(
  commandLine: readonly string[] | CommandLine,
  env: NodeJS.ProcessEnv,
  opts: PathOptions = {},
): ResolvedConfig {
  const cmd = isCommandLine(commandLine) ? commandLine : parseCommandLine([...commandLine]);
  const platform = opts.platform ?? process.platform;
  const warnings: string[] = [];
  const warnIfShared = (file: string, holds: string) => {
    const warning = sharedTokenFileWarning(file, holds, platform);
    if (warning) warnings.push(warning);
  };

  // Config files, lowest priority first, so that later entries override earlier ones.
  const explicit = cmd.configFile ?? (env.KG_CONFIG_FILE ? { raw: env.KG_CONFIG_FILE, source: 'KG_CONFIG_FILE' } : undefined);
  const configFiles: string[] = [];
  const fromFiles = new Map<OptionSpec, { value: Value; source: string }>();
  const take = (values: FileValues) => {
    for (const v of values) {
      fromFiles.set(v.spec, v);
      if (v.spec.key === 'authToken' && v.value) warnIfShared(v.file, 'sets auth_token');
    }
  };
  if (explicit) {
    take(readConfigFile(explicit.raw, `from ${explicit.source}`));
    configFiles.push(explicit.raw);
  } else {
    const found = findConfigFiles(env, opts);
    for (const file of [...found].reverse()) take(readConfigFile(file, 'in the Jupyter config path'));
    configFiles.push(...found);
  }

  const config: Config = { ...DEFAULTS };
  const sources = new Map<keyof Config, string>();
  const set = (spec: OptionSpec, value: Value, source: string) => {
    (config as Record<keyof Config, unknown>)[spec.key] = value;
    sources.set(spec.key, source);
  };
  for (const spec of optionTable) {
    let given: Given | undefined = cmd.values.get(spec);
    if (!given) {
      const inFile = fromFiles.get(spec);
      if (inFile) {
        set(spec, inFile.value, inFile.source);
        continue;
      }
      const envValue = spec.env === undefined ? undefined : env[spec.env];
      // An empty variable only means something for strings ('' auth token = auth off); elsewhere it is unset.
      if (spec.env && envValue !== undefined && (spec.type === 'string' || envValue.trim() !== '')) {
        given = { raw: envValue, source: spec.env };
      }
    }
    if (!given) continue;
    const parsed = parseValue(spec, given.raw);
    if ('problem' in parsed) {
      throw new ConfigError(`${given.source}: ${JSON.stringify(given.raw)} ${parsed.problem} (${otherSpellings(spec, given.source)})`);
    }
    set(spec, parsed.value, given.source);
  }

  if (config.authTokenFile !== '') {
    const source = sources.get('authTokenFile')!;
    if (sources.has('authToken')) {
      throw new ConfigError(
        `auth_token is set (from ${sources.get('authToken')}) and so is auth_token_file (from ${source}); give only one of them`,
      );
    }
    config.authToken = readTokenFile(config.authTokenFile, source);
    warnIfShared(config.authTokenFile, 'holds the auth token');
  }
  checkCombinations(config, sources, warnings);

  const knownEnv = new Set([...optionTable.map((o) => o.env), ...OTHER_ENV]);
  for (const name of Object.keys(env)) {
    if (name.startsWith('KG_') && !knownEnv.has(name)) warnings.push(`${name} is set but is not a kernelgateway setting; ignored`);
  }
  return { config, errors: cmd.errors, warnings, configFiles };
}

function isCommandLine(value: readonly string[] | CommandLine): value is CommandLine {
  return !Array.isArray(value);
}

/** Checks between options; fixes cull_interval <= 0 as Jupyter Server does (with a warning). */
function checkCombinations(config: Config, sources: Map<keyof Config, string>, warnings: string[]): void {
  const from = (key: keyof Config) => sources.get(key) ?? 'the default';
  if (config.maxKernels > 0 && config.prespawnCount > config.maxKernels) {
    throw new ConfigError(
      `Cannot prespawn ${config.prespawnCount} kernels; more than max kernels ${config.maxKernels} ` +
        `(prespawn_count from ${from('prespawnCount')}, max_kernels from ${from('maxKernels')})`,
    );
  }
  if ((config.certfile === '') !== (config.keyfile === '')) {
    const [have, missing] = config.certfile ? (['certfile', 'keyfile'] as const) : (['keyfile', 'certfile'] as const);
    const spec = optionTable.find((o) => o.key === missing)!;
    throw new ConfigError(
      `${have} is set (from ${from(have)}) but ${missing} is not; TLS needs both (set ${spec.flag} or ${spec.env})`,
    );
  }
  if (config.clientCa !== '' && config.certfile === '') {
    throw new ConfigError(
      `client_ca is set (from ${from('clientCa')}) but TLS is off; client certificates need --certfile and --keyfile too`,
    );
  }
  if (config.api === 'notebook-http' && config.seedUri === '') {
    throw new ConfigError(
      `the notebook-http personality (api from ${from('api')}) serves a notebook: name it with --seed-uri (a path or an http(s) URL)`,
    );
  }
  if (config.cullInterval <= 0) {
    warnings.push(
      `cull_interval ${config.cullInterval} (from ${from('cullInterval')}) is not positive; using ${DEFAULTS.cullInterval} seconds, as Jupyter Server does`,
    );
    config.cullInterval = DEFAULTS.cullInterval;
  }
}
