/**
 * The `kernelgateway` command. resolveConfig parses the raw arguments (both spellings, in order, so
 * the last one wins), config files and the environment; cac only renders --help and --version.
 * --help-all and --generate-config are handled here, before the gateway is configured.
 */
import { cac } from 'cac';
import { parseCommandLine } from './config/argv.ts';
import { writeDefaultConfig } from './config/generate.ts';
import { helpAllText, shownDefault } from './config/help.ts';
import { ConfigError, optionTable } from './config/options.ts';
import { resolveConfig } from './config/resolve.ts';
import { CONFIG_FILE_NAME, configSearchPath } from './paths.ts';
import { createLogger } from './log.ts';
import { startGateway } from './gateway.ts';
import { VERSION } from './version.ts';
import { connectionFileArg, isJsKernelIoWorker, runKernel } from './jskernel/main.ts';

function helpCli() {
  const cli = cac('kernelgateway');
  cli.usage('[options]');
  for (const spec of optionTable) {
    const env = spec.env ? `env ${spec.env}, ` : '';
    // Defaults go into the text ourselves: cac would print `(default: )` for empty strings.
    cli.option(spec.type === 'bool' ? spec.flag : `${spec.flag} <value>`, `${spec.help} [${env}default ${shownDefault(spec)}]`);
  }
  cli.option('--config <file>', `JSON config file (env KG_CONFIG_FILE; default: ${CONFIG_FILE_NAME} in the Jupyter config path)`);
  cli.option('--generate-config', `Write ${CONFIG_FILE_NAME} with every default (to --config if given) and exit`);
  cli.option('-y, --yes', 'With --generate-config: overwrite an existing file');
  cli.option('--help-all', 'Every option with its env var, reference spellings and default');
  cli.help((sections) => [
    ...sections,
    {
      title: 'Reference spellings',
      body:
        '  Every option can also be given as --KernelGatewayApp.<name>=<value>, e.g. --KernelGatewayApp.port=9000;\n' +
        '  also --JupyterWebsocketPersonality.list_kernels/env_whitelist, --MappingKernelManager.cull_*, and others\n' +
        '  (see --help-all). Precedence: command line > config file > KG_* variables > defaults;\n' +
        '  when an option is given twice, the last one wins.',
    },
  ]);
  cli.version(VERSION);
  return cli;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function main(argv: string[]): Promise<void> {
  // `kernelgateway kernel -f <file>`: this program as the built-in JavaScript kernel.
  if (argv[0] === 'kernel') {
    const file = connectionFileArg(argv.slice(1));
    if (!file) {
      process.stderr.write('usage: kernelgateway kernel -f <connection_file>\n');
      process.exitCode = 2;
      return;
    }
    try {
      await runKernel(file); // serves until shutdown, then exits the process itself
    } catch (err) {
      process.stderr.write(`kernelgateway kernel: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    }
    return;
  }
  if (argv.includes('--help-all')) {
    process.stdout.write(helpAllText(configSearchPath(process.env)));
    return;
  }
  const cli = helpCli();
  const { options } = cli.parse(['node', 'kernelgateway', ...argv], { run: false });
  if (options.help || options.version) return; // cac has printed it

  const reportErrors = (errors: string[]) => {
    for (const e of errors) process.stderr.write(`kernelgateway: ${e}\n`);
    process.stderr.write('Run kernelgateway --help (or --help-all) to see the options.\n');
    process.exitCode = 2;
  };
  let resolved;
  try {
    const cmd = parseCommandLine(argv);
    if (cmd.generateConfig) {
      // The existing config (which may be the broken file being replaced) is not read.
      if (cmd.errors.length > 0) return reportErrors(cmd.errors);
      process.exitCode = await writeDefaultConfig(cmd.configFile?.raw, cmd.answerYes);
      return;
    }
    resolved = resolveConfig(argv, process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`kernelgateway: ${err.message}\n`);
    process.exitCode = 2;
    return;
  }
  const { config, errors, warnings, configFiles } = resolved;
  if (errors.length > 0) return reportErrors(errors);

  const log = createLogger(config.logLevel);
  for (const file of configFiles) log.info(`Config file: ${file}`);
  for (const w of warnings) log.warn(w);

  let gateway: Awaited<ReturnType<typeof startGateway>>;
  try {
    gateway = await startGateway(config, log);
  } catch (err) {
    log.critical(`could not start: ${message(err)}`);
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
        log.error(`shutdown failed: ${message(err)}`);
        process.exit(1);
      },
    );
  };
  // A bug must not leave kernels behind: log it, shut every kernel down, exit non-zero.
  process.on('uncaughtException', (err) => {
    log.critical(`internal error: ${err.stack ?? err.message}`);
    if (stopping) process.exit(1);
    stopping = true;
    const deadline = setTimeout(() => process.exit(1), 15_000);
    deadline.unref();
    gateway.close().finally(() => process.exit(1));
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    try {
      process.on(signal, () => stop(signal));
    } catch {
      // Deno on Windows cannot listen for SIGTERM; SIGINT still works there.
    }
  }
}

// The kernel's I/O worker thread loads this same bundle; it must not run the command.
if (!isJsKernelIoWorker()) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`kernelgateway: ${err instanceof Error && err.stack ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
