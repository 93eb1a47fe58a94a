/**
 * The `kernelgateway` command. resolveConfig parses the raw arguments (both spellings, in order, so
 * the last one wins); cac only renders --help and --version.
 */
import { cac } from 'cac';
import { ConfigError, DEFAULTS, optionTable, resolveConfig } from './config.ts';
import { createLogger } from './log.ts';
import { startGateway } from './gateway.ts';
import { VERSION } from './version.ts';

function helpCli() {
  const cli = cac('kernelgateway');
  cli.usage('[options]');
  for (const spec of optionTable) {
    const fallback = DEFAULTS[spec.key];
    const shown = spec.key === 'authToken' ? 'generated' : JSON.stringify(fallback);
    const env = spec.env ? `env ${spec.env}, ` : '';
    // Defaults go into the text ourselves: cac would print `(default: )` for empty strings.
    cli.option(spec.type === 'bool' ? spec.flag : `${spec.flag} <value>`, `${spec.help} [${env}default ${shown}]`);
  }
  cli.help((sections) => [
    ...sections,
    {
      title: 'Reference spellings',
      body:
        '  Every option can also be given as --KernelGatewayApp.<name>=<value>, e.g. --KernelGatewayApp.port=9000;\n' +
        '  also --JupyterWebsocketPersonality.list_kernels and --Application.log_level.\n' +
        '  The command line beats KG_* variables; when an option is given twice, the last one wins.',
    },
  ]);
  cli.version(VERSION);
  return cli;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function main(argv: string[]): Promise<void> {
  const cli = helpCli();
  const { options } = cli.parse(['node', 'kernelgateway', ...argv], { run: false });
  if (options.help || options.version) return; // cac has printed it

  let resolved;
  try {
    resolved = resolveConfig(argv, process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`kernelgateway: ${err.message}\n`);
    process.exitCode = 2;
    return;
  }
  const { config, errors, warnings } = resolved;
  if (errors.length > 0) {
    for (const e of errors) process.stderr.write(`kernelgateway: ${e}\n`);
    process.stderr.write('Run kernelgateway --help to see the options.\n');
    process.exitCode = 2;
    return;
  }

  const log = createLogger(config.logLevel);
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

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`kernelgateway: ${err instanceof Error && err.stack ? err.stack : String(err)}\n`);
  process.exit(1);
});
