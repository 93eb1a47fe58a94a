/**
 * Running JupyterLab's client library (@jupyterlab/services) under Node against a test server:
 * its settings, and disposing its managers so their polls stop.
 */
import type { Test } from 'uvu';
import WebSocket from 'ws';
import { ServerConnection, type Kernel, type KernelMessage } from '@jupyterlab/services';
import { guardSuite, startGateway, withTimeout, type Gateway, type StartOptions } from './gateway.ts';

/** What one execute through JupyterLab's client produced. */
export interface LabRun {
  reply: KernelMessage.IExecuteReplyMsg;
  iopub: KernelMessage.IIOPubMessage[];
  stdout: string;
  stderr: string;
  /** The text/plain of the execute_result(s). */
  result: string;
}

/**
 * Runs `code` with `kernel.requestExecute` and waits for `future.done`; stop_on_error is false, so an
 * error does not abort what a test runs next. `onStdin` answers input requests.
 */
export async function labExecute(
  kernel: Kernel.IKernelConnection,
  code: string,
  options: { timeoutMs?: number; onStdin?: (msg: KernelMessage.IStdinMessage, future: Kernel.IShellFuture) => void } = {},
): Promise<LabRun> {
  const { timeoutMs = 30000, onStdin } = options;
  const iopub: KernelMessage.IIOPubMessage[] = [];
  const future = kernel.requestExecute({ code, allow_stdin: onStdin !== undefined, stop_on_error: false });
  future.onIOPub = (msg) => void iopub.push(msg);
  if (onStdin) future.onStdin = (msg) => onStdin(msg, future as unknown as Kernel.IShellFuture);
  const reply = (await withTimeout(future.done, timeoutMs, `future.done for ${JSON.stringify(code)}`)) as KernelMessage.IExecuteReplyMsg;
  const stream = (name: string) =>
    iopub
      .filter((m) => m.header.msg_type === 'stream' && (m.content as KernelMessage.IStreamMsg['content']).name === name)
      .map((m) => (m.content as KernelMessage.IStreamMsg['content']).text)
      .join('');
  const result = iopub
    .filter((m) => m.header.msg_type === 'execute_result')
    .map((m) => (m.content as KernelMessage.IExecuteResultMsg['content']).data['text/plain'])
    .join('');
  return { reply, iopub, stdout: stream('stdout'), stderr: stream('stderr'), result };
}

/** Settings as a browser page would have them, with Node's fetch and the `ws` WebSocket. */
export function jupyterLabSettings(server: { url: string; wsUrl: string; token: string | null }): ServerConnection.ISettings {
  return ServerConnection.makeSettings({
    baseUrl: server.url,
    wsUrl: server.wsUrl,
    token: server.token ?? '',
    appendToken: true,
    WebSocket: WebSocket as unknown as typeof globalThis.WebSocket,
    fetch: globalThis.fetch,
    Request: globalThis.Request,
    Headers: globalThis.Headers,
  });
}

/**
 * Dispose a JupyterLab manager so that its polling really stops. Lumino's Poll.dispose() (2.1.6) leaves
 * its pending setTimeout armed (10 s for KernelManager, 61 s for KernelSpecManager), which keeps the test
 * process alive; Poll.stop() clears it, and the managers offer no way to stop their polls, so every own
 * property that looks like a Poll is stopped first.
 */
export async function stopPollsAndDispose(manager: { dispose(): void; isDisposed?: boolean } | undefined): Promise<void> {
  if (!manager || manager.isDisposed) return;
  for (const value of Object.values(manager as unknown as Record<string, unknown>)) {
    const poll = value as { stop?: unknown; frequency?: unknown; isDisposed?: unknown } | null;
    if (poll && typeof poll === 'object' && typeof poll.stop === 'function' && poll.frequency !== undefined && poll.isDisposed === false) {
      await withTimeout((poll.stop as () => Promise<void>).call(poll), 5000, 'stopping a JupyterLab poll');
    }
  }
  manager.dispose();
}

const original = { debug: console.debug, log: console.log };

/** JupyterLab logs every WebSocket (re)connection through console.debug/log: keep test output readable. */
export function quietJupyterLabConsole(): void {
  console.debug = () => undefined;
  console.log = (...args: unknown[]) => {
    if (typeof args[0] === 'string' && /WebSocket|kernel/i.test(args[0])) return;
    original.log(...args);
  };
}

/** Undo quietJupyterLabConsole. */
export function restoreConsole(): void {
  console.debug = original.debug;
  console.log = original.log;
}

/**
 * The set-up every JupyterLab suite shares: a quiet console, a gateway and JupyterLab's settings for it
 * (handed to `ready`); at the end, the client objects `leftovers` returns are disposed (managers with
 * their polls stopped) and the console restored.
 */
export function jupyterLabSuite(
  test: Test,
  ready: (gw: Gateway, settings: ServerConnection.ISettings) => void,
  leftovers: () => Array<{ dispose(): void; isDisposed?: boolean } | undefined>,
  options: StartOptions = {},
): void {
  guardSuite(
    test,
    async () => {
      quietJupyterLabConsole();
      const gw = await startGateway(options);
      ready(gw, jupyterLabSettings(gw));
    },
    async () => {
      for (const item of leftovers()) await stopPollsAndDispose(item);
      restoreConsole();
    },
  );
}
