/**
 * The `kernelgateway` command: `kernelgateway [serve] [options]` runs the gateway, `kernelgateway
 * kernel -f <file>` the built-in JavaScript kernel, `kernelgateway launch` a Slurm job's launcher. config/argv.ts reads the command line (with cac),
 * config/resolve.ts adds config files and the environment; --help, --version, --help-all and
 * --generate-config are answered here, before the gateway is configured.
 */
import { parseCommandLine, type CommandLine } from './config/argv.ts';
import { helpAllText } from './config/help.ts';
import { hideTokenFromProcessList } from './config/hide-token.ts';
import { ConfigError } from './config/options.ts';
import { resolveConfig, type ResolvedConfig } from './config/resolve.ts';
import { configSearchPath } from './paths.ts';
import { createLogger, errorMessage } from './log.ts';
import type { Gateway } from './gateway.ts';
import { runsAsIoWorker as runsAsJsKernelIoWorker } from './jskernel/io-worker-role.ts';

/** The JavaScript kernel (and acorn, zeromq) is loaded only when this program runs as the kernel. */
const loadJsKernel = () => import('./jskernel/main.ts');
/** The Slurm launcher only when this program runs as one, inside a job. */
const loadLauncher = () => import('./launch/main.ts');

/** A ConfigError ends start-up with its message and exit code 2; anything else is a bug and rethrown. */
function stopOnConfigError(err: unknown): void {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`kernelgateway: ${err.message}\n`);
  process.exitCode = 2;
}

/** `kernelgateway kernel -f <file>`: this program as the built-in JavaScript kernel. */
async function kernelCommand(cmd: CommandLine): Promise<void> {
  if (cmd.help) return cmd.printHelp();
  if (!cmd.connectionFile) {
    process.stderr.write('usage: kernelgateway kernel -f <connection_file>\n');
    process.exitCode = 2;
    return;
  }
  try {
    const { runKernel } = await loadJsKernel();
    await runKernel(cmd.connectionFile); // serves until shutdown, then exits the process itself
  } catch (err) {
    process.stderr.write(`kernelgateway kernel: ${errorMessage(err)}\n`);
    process.exit(1);
  }
}

/** `kernelgateway launch`: this program as the launcher inside a Slurm job; its exit code ends the job. */
async function launchCommand(cmd: CommandLine): Promise<void> {
  if (cmd.help) return cmd.printHelp();
  if (cmd.errors.length > 0) {
    process.stderr.write(`kernelgateway launch: ${cmd.errors.join('; ')} (it takes no arguments: the gateway sets its environment)\n`);
    process.exitCode = 2;
    return;
  }
  const { runLauncher } = await loadLauncher();
  const code = await runLauncher();
  process.exit(code); // a kernel's leftover handles must not keep the job alive
}

export async function main(argv: string[]): Promise<void> {
  let cmd: CommandLine;
  try {
    cmd = parseCommandLine(argv);
  } catch (err) {
    return stopOnConfigError(err);
  }
  // First of all: until now, a token given on the command line shows in the process list.
  hideTokenFromProcessList(argv, cmd.tokenPlaces);
  if (cmd.command === 'kernel') return kernelCommand(cmd);
  if (cmd.command === 'launch') return launchCommand(cmd);
  if (cmd.helpAll) {
    process.stdout.write(helpAllText(configSearchPath(process.env)));
    return;
  }
  if (cmd.help) return cmd.printHelp();
  if (cmd.version) return cmd.printVersion();

  const reportErrors = (errors: string[]) => {
    for (const e of errors) process.stderr.write(`kernelgateway: ${e}\n`);
    process.stderr.write('Run kernelgateway --help (or --help-all) to see the options.\n');
    process.exitCode = 2;
  };
  if (cmd.generateConfig) {
    // The existing config (which may be the broken file being replaced) is not read.
    if (cmd.errors.length > 0) return reportErrors(cmd.errors);
    const { writeDefaultConfig } = await import('./config/generate.ts'); // and readline, only for this
    process.exitCode = await writeDefaultConfig(cmd.configFile?.raw, cmd.answerYes);
    return;
  }
  let resolved: ResolvedConfig;
  try {
    resolved = resolveConfig(cmd, process.env);
  } catch (err) {
    return stopOnConfigError(err);
  }
  const { config, errors, warnings, configFiles } = resolved;
  if (errors.length > 0) return reportErrors(errors);

  const log = createLogger(config.logLevel, process.stderr, { format: config.logFormat });
  for (const file of configFiles) log.info(`Config file: ${file}`);
  for (const w of warnings) log.warn(w);

  // A SIGHUP while it starts (seeding a notebook-http pool can take a while) must not end the process,
  // which is what a signal nobody listens for does: the reload is done once the gateway serves.
  let reloadAsked = false;
  const reloadLater = () => {
    reloadAsked = true;
    log.info('SIGHUP received while starting: reloading once started');
  };
  if (process.platform !== 'win32') process.on('SIGHUP', reloadLater);

  let gateway: Gateway;
  try {
    // Loaded here, so that this program as a kernel or a launcher does not load the gateway.
    const { startGateway } = await import('./gateway.ts');
    gateway = await startGateway(config, log);
  } catch (err) {
    log.critical(`could not start: ${errorMessage(err)}`);
    if (log.level === 'DEBUG' && err instanceof Error && err.stack) log.debug(err.stack);
    process.exit(1); // exit even if something half-started keeps the event loop alive
  }

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) process.exit(1); // a second signal: the user does not want to wait
    stopping = true;
    log.info(`${signal} received, shutting down`);
    gateway.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error(`shutdown failed: ${errorMessage(err)}`);
        process.exit(1);
      },
    );
  };
  // Last resort: every client-driven path contains its own failures (logged, that connection or
  // request closed). Anything that still escapes is logged and the gateway keeps serving everyone
  // else; only a storm of them (a broken process) stops it, shutting every kernel down first.
  let recentFailures: number[] = [];
  const onInternalError = (what: string, err: unknown) => {
    log.critical(`internal error (${what}), contained; the gateway keeps running: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    const now = Date.now();
    recentFailures = [...recentFailures.filter((t) => now - t < 60_000), now];
    if (recentFailures.length < 20 || stopping) return;
    log.critical(`${recentFailures.length} internal errors within a minute: shutting down`);
    stopping = true;
    const deadline = setTimeout(() => process.exit(1), 15_000);
    deadline.unref();
    gateway.close().finally(() => process.exit(1));
  };
  process.on('uncaughtException', (err) => onInternalError('uncaught exception', err));
  process.on('unhandledRejection', (reason) => onInternalError('unhandled rejection', reason));
  if (process.platform !== 'win32') {
    // notebook-http: load the notebook again without a restart (a broken one leaves the old one serving).
    const reload = () => gateway.reload().catch((err: unknown) => log.error(`reload failed: ${errorMessage(err)}`));
    process.off('SIGHUP', reloadLater);
    process.on('SIGHUP', () => {
      log.info('SIGHUP received, reloading');
      void reload();
    });
    if (reloadAsked) void reload();
  }
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    try {
      process.on(signal, () => stop(signal));
    } catch {
      // Deno on Windows cannot listen for SIGTERM; SIGINT still works there.
    }
  }
}

// The kernel's I/O worker thread may load this same bundle: there it starts the kernel's socket work
// (main.ts does at load), not the command.
void (async () => {
  if (await runsAsJsKernelIoWorker(process.argv.slice(2))) return void (await loadJsKernel());
  await main(process.argv.slice(2));
})().catch((err: unknown) => {
  process.stderr.write(`kernelgateway: ${err instanceof Error && err.stack ? err.stack : String(err)}\n`);
  process.exit(1);
});
