/**
 * `kernelgateway kernel -f <connection_file>`: the JavaScript kernel built into the gateway.
 *
 * runKernel binds the sockets named in the connection file and serves until a shutdown_request
 * (or the death of the parent process), then exits the process itself: its promise rejects when
 * the kernel cannot start and never resolves otherwise.
 *
 * This module is also the entry of the kernel's socket worker thread (server.ts): importing it in
 * that worker starts the worker's work, and runKernel does nothing there. An entry script that runs
 * its own main() at load (the gateway's cli.ts, when bundled) should skip it when
 * io-worker-role.ts's runsAsIoWorker() is true.
 */
import { isMainThread } from 'node:worker_threads';
import { ioWorkerArgv } from './io-worker-role.ts';
import { Signer } from '../messaging/session.ts';
import { JsKernel, runtimeName } from './kernel.ts';
import { kernelLogger, openWire, readConnectionFile, startIoWorkerIfAsked, type Wire } from './server.ts';

startIoWorkerIfAsked();

/** The connection file from `-f <file>`, `-f=<file>`, `--f=<file>` or `--connection-file <file>`. */
export function connectionFileArg(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '-f' || arg === '--f' || arg === '--connection-file') return argv[i + 1];
    const m = /^(?:-f|--f|--connection-file)=(.+)$/.exec(arg);
    if (m) return m[1];
  }
  return undefined;
}

/** How often the parent process is looked for. */
const PARENT_POLL_MS = 1000;

export async function runKernel(connectionFile: string): Promise<void> {
  // Loaded by an entry script inside the socket worker: the worker's own code is already running.
  if (!isMainThread) return new Promise<void>(() => undefined);

  const log = kernelLogger();
  const info = readConnectionFile(connectionFile);
  const signer = new Signer(info.key, info.signature_scheme);
  // [0]: 1 while a cell's synchronous part runs; [1]: set by the socket worker once its sockets are closed.
  const flags = new Int32Array(new SharedArrayBuffer(8));
  let wire: Wire | undefined;
  let exiting = false;

  const exit = async (code: number, reason: string): Promise<void> => {
    if (exiting) return;
    exiting = true;
    log.info(`JavaScript kernel exiting: ${reason}`);
    const deadline = setTimeout(() => process.exit(code), 5000);
    deadline.unref();
    try {
      await wire?.close();
    } catch (error) {
      log.warn(`closing the sockets failed: ${(error as Error).message}`);
    }
    process.exit(code);
  };

  const kernel = new JsKernel({
    signer,
    log,
    send: (channel, frames) => wire?.send(channel, frames),
    syncRunning: (running) => Atomics.store(flags, 0, running ? 1 : 0),
    onShutdown: (restart) => void exit(0, restart ? 'shutdown_request (restart)' : 'shutdown_request'),
  });

  const useWorker = process.env.KG_JSKERNEL_IO_THREAD !== '0';
  wire = await openWire(
    info,
    {
      message: (channel, frames, signalled) => kernel.handle(channel, frames, signalled),
      fatal: (error) => {
        log.critical(error.message);
        void exit(1, 'the sockets failed');
      },
    },
    { workerUrl: useWorker ? new URL(import.meta.url) : undefined, workerArgv: ioWorkerArgv(connectionFile), flags, log },
  );
  // However the process ends, the socket worker must close its sockets first (zeromq aborts otherwise).
  process.on('exit', () => wire?.closeNow());

  captureProcessOutput(kernel, log);
  process.on('SIGINT', () => kernel.interrupt());
  process.on('uncaughtException', (error) => {
    log.warn(`uncaught exception: ${(error as Error)?.message ?? error}`);
    kernel.reportUncaught(error, 'Uncaught');
  });
  process.on('unhandledRejection', (reason) => {
    log.warn(`unhandled rejection: ${(reason as Error)?.message ?? reason}`);
    kernel.reportUncaught(reason, 'Unhandled promise rejection');
  });
  watchParent((pid) => void exit(0, `parent process ${pid} is gone`));

  kernel.start();
  log.info(
    `JavaScript kernel (${runtimeName()}) ready: shell ${info.transport}://${info.ip}:${info.shell_port}, ` +
      `sockets in ${wire.threaded ? 'a worker thread' : 'the main thread'}`,
  );
  return new Promise<void>(() => undefined);
}

/** process.stdout/stderr writes (by the user's code or the libraries it loads) become stream output. */
function captureProcessOutput(kernel: JsKernel, log: { warn(message: string): void }): void {
  for (const name of ['stdout', 'stderr'] as const) {
    const stream = process[name];
    try {
      stream.write = ((chunk: unknown, encoding?: unknown, callback?: unknown): boolean => {
        const done = typeof encoding === 'function' ? encoding : callback;
        let text: string;
        if (typeof chunk === 'string') {
          text = typeof encoding === 'string' && encoding !== 'utf8' && encoding !== 'utf-8'
            ? Buffer.from(chunk, encoding as BufferEncoding).toString('utf8')
            : chunk;
        } else {
          text = Buffer.from(chunk as Uint8Array).toString('utf8');
        }
        kernel.write(name, text);
        if (typeof done === 'function') process.nextTick(done as () => void);
        return true;
      }) as typeof stream.write;
    } catch (error) {
      log.warn(`cannot capture process.${name}: ${(error as Error).message}`);
    }
  }
}

/** Call `onGone` when the parent (JPY_PARENT_PID, else the process that started us) has exited. */
function watchParent(onGone: (pid: number) => void): void {
  const fromEnv = Number(process.env.JPY_PARENT_PID);
  const pid = Number.isInteger(fromEnv) && fromEnv > 1 ? fromEnv : process.ppid > 1 ? process.ppid : 0;
  if (!pid) return;
  const timer = setInterval(() => {
    try {
      process.kill(pid, 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') return; // EPERM: alive, not ours
      clearInterval(timer);
      onGone(pid);
    }
  }, PARENT_POLL_MS);
  timer.unref();
}
