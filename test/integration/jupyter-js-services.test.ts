/**
 * The 2016 client library `jupyter-js-services` (npm, 0.21.1: the last release, CommonJS, built for
 * Node 0.12+ and browsers), unmodified, against the gateway, used the way Node apps of its era used it
 * (the original kernel gateway demos): the `xmlhttprequest` package as global XMLHttpRequest, the `ws`
 * package as global WebSocket, then `require('jupyter-js-services')`. (`ws` is the project's own 8.x,
 * not the 1.x of 2016: the library only uses the WebSocket API that both have, plus binaryType.)
 *
 * In 0.21.1 the API is `Kernel.getSpecs / Kernel.startNew / Kernel.listRunning` (the demos' older
 * top-level `getKernelSpecs` / `startNewKernel` no longer exist). The old client speaks the legacy JSON
 * WebSocket protocol (it offers no subprotocol) on `api/kernels/{id}/channels?session_id=<clientId>`.
 *
 * Auth: the library has no token option. REST calls carry whatever `ajaxSettings.requestHeaders` holds,
 * so `Authorization: token X` goes there. Its WebSocket URL is built internally
 * (wsUrl + api/kernels/{id}/channels?session_id=…) with no way to add `?token=` or a header, so
 * - suite 1 ("with a token") supplies, as the global WebSocket, the `ws` class with one documented `ws`
 *   constructor option set (`headers: { Authorization: 'token X' }`): the library itself is untouched;
 * - suite 2 ("as the demo did") uses the library exactly as the 2016 demo did, the plain `ws` class as
 *   WebSocket and no auth at all, so its gateway runs with `--auth-token ''` (auth off) and
 *   `--list-kernels` (so the client's `Kernel.listRunning` is allowed without a token).
 */
import { createRequire } from 'node:module';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import WebSocket from 'ws';
import type { IKernel, Kernel, KernelMessage } from 'jupyter-js-services';
import {
  api,
  guardSuite,
  kernelPid,
  processGone,
  shutdownTest,
  startGateway,
  TEST_SPEC_NAME,
  waitUntil,
  withTimeout,
  type Gateway,
} from '../helpers/gateway.ts';

type JupyterJsServices = typeof import('jupyter-js-services');

const require = createRequire(import.meta.url);

// ---------------------------------------------------------------------------------------------
// The era's Node set-up: globals first, then require() the library.

const g = globalThis as unknown as Record<string, unknown>;
const savedGlobals = { XMLHttpRequest: g.XMLHttpRequest, WebSocket: g.WebSocket };
const savedConsole = { log: console.log, warn: console.warn, error: console.error };

/** Everything the library printed (it logs through console.*), for failure messages. */
const libLog: string[] = [];

function installGlobals(webSocketClass: unknown): JupyterJsServices {
  g.XMLHttpRequest = (require('xmlhttprequest') as { XMLHttpRequest: unknown }).XMLHttpRequest;
  g.WebSocket = webSocketClass;
  // The library logs "Starting WebSocket: …", kernel status changes and API errors; keep them for
  // failure messages instead of mixing them into the test output.
  const keep = (level: string) => (...args: unknown[]) => {
    libLog.push(`${level}: ${args.map((a) => (typeof a === 'string' ? a : safeJson(a))).join(' ')}`);
  };
  console.log = keep('log');
  console.warn = keep('warn');
  console.error = keep('error');
  return require('jupyter-js-services') as JupyterJsServices;
}

function restoreGlobals(): void {
  for (const [k, v] of Object.entries(savedGlobals)) {
    if (v === undefined) delete g[k];
    else g[k] = v;
  }
  Object.assign(console, savedConsole);
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/** The tail of what the library logged, to append to an error message. */
function libTail(): string {
  return libLog.length > 0 ? `\nlibrary console (last 15):\n  ${libLog.slice(-15).join('\n  ')}` : '\nlibrary console: (nothing)';
}

/** The library rejects with plain objects ({xhr, throwError, …}), not Errors: describe one. */
function describeRejection(e: unknown): string {
  const r = e as { xhr?: { status?: number; responseText?: string }; throwError?: string; message?: string };
  if (r && r.xhr) return `HTTP ${r.xhr.status} ${r.throwError ?? ''} ${r.xhr.responseText ?? ''}`.trim();
  return r?.message ?? String(e);
}

async function libCall<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  try {
    return await withTimeout(p, ms, what);
  } catch (e) {
    throw new Error(`${what} failed: ${describeRejection(e)}${libTail()}`);
  }
}

// ---------------------------------------------------------------------------------------------
// What the WebSocket saw (recorded by listening to the `ws` objects the library creates)

interface SocketRecord {
  url: string;
  protocol: string;
  opened: boolean;
  textFrames: number;
  binaryFrames: number;
  /** msg_type/channel/execution_state of every frame received, for failure messages. */
  frames: string[];
  closed?: { code: number; reason: string };
  unexpected?: string;
}

const sockets: SocketRecord[] = [];

function watch(ws: WebSocket, url: string): void {
  const rec: SocketRecord = { url, protocol: '', opened: false, textFrames: 0, binaryFrames: 0, frames: [] };
  sockets.push(rec);
  ws.on('open', () => {
    rec.opened = true;
    rec.protocol = ws.protocol;
  });
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) {
      rec.binaryFrames++;
      rec.frames.push('<binary>');
      return;
    }
    rec.textFrames++;
    try {
      const m = JSON.parse(data.toString('utf8')) as { channel?: string; header?: { msg_type?: string }; content?: { execution_state?: string } };
      rec.frames.push(`${m.channel}/${m.header?.msg_type}${m.content?.execution_state ? `(${m.content.execution_state})` : ''}`);
    } catch {
      rec.frames.push('<not JSON>');
    }
  });
  ws.on('unexpected-response', (_req, res) => {
    rec.unexpected = `HTTP ${res.statusCode}`;
  });
  ws.on('close', (code: number, reason: Buffer) => {
    rec.closed = { code, reason: reason.toString() };
  });
}

function socketReport(): string {
  return sockets
    .map((s, i) => `socket ${i}: ${s.url} protocol=${JSON.stringify(s.protocol)} opened=${s.opened} text=${s.textFrames} binary=${s.binaryFrames}` +
      `${s.unexpected ? ` upgrade=${s.unexpected}` : ''}${s.closed ? ` closed=${s.closed.code} ${s.closed.reason}` : ''}\n    last frames: ${s.frames.slice(-12).join(', ')}`)
    .join('\n  ');
}

/** The plain `ws` class, only watched (suite 2: the demo's `global.WebSocket = require('ws')`). */
class WatchedWebSocket extends WebSocket {
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols);
    watch(this, url);
  }
}

/** `ws` with its `headers` option carrying the token (suite 1). */
function tokenWebSocketClass(token: string): new (url: string, protocols?: string | string[]) => WebSocket {
  return class TokenWebSocket extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { headers: { Authorization: `token ${token}` } });
      watch(this, url);
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Executing through the library's future

interface Run {
  reply: KernelMessage.IExecuteReplyMsg;
  iopub: KernelMessage.IIOPubMessage[];
  stdout: string;
  /** The order in which the future's callbacks fired. */
  order: string[];
}

function stdoutOf(iopub: KernelMessage.IIOPubMessage[]): string {
  return iopub
    .filter((m) => m.header.msg_type === 'stream' && (m as KernelMessage.IStreamMsg).content.name === 'stdout')
    .map((m) => (m as KernelMessage.IStreamMsg).content.text)
    .join('');
}

/**
 * kernel.execute(), collecting onIOPub messages and the onReply message; resolves at onDone (which the
 * library calls once it has both the reply and the idle status).
 */
function execute(
  kernel: IKernel,
  code: string,
  timeoutMs: number,
  hooks: { onStdin?: (msg: KernelMessage.IStdinMessage) => void; onIOPub?: (msg: KernelMessage.IIOPubMessage) => void } = {},
): Promise<Run> {
  const iopub: KernelMessage.IIOPubMessage[] = [];
  const order: string[] = [];
  let reply: KernelMessage.IExecuteReplyMsg | undefined;
  const done = new Promise<Run>((resolve, reject) => {
    const future: Kernel.IFuture = kernel.execute({ code });
    future.onIOPub = (msg) => {
      iopub.push(msg);
      order.push(`iopub:${msg.header.msg_type}`);
      hooks.onIOPub?.(msg);
    };
    future.onReply = (msg) => {
      order.push('reply');
      reply = msg as KernelMessage.IExecuteReplyMsg;
    };
    future.onStdin = (msg) => {
      order.push(`stdin:${msg.header.msg_type}`);
      try {
        hooks.onStdin?.(msg);
      } catch (e) {
        reject(e);
      }
    };
    future.onDone = () => {
      order.push('done');
      if (!reply) reject(new Error(`onDone without onReply for ${JSON.stringify(code)}`));
      else resolve({ reply, iopub, stdout: stdoutOf(iopub), order });
    };
  });
  return withTimeout(done, timeoutMs, `future.onDone for ${JSON.stringify(code)}`).catch((e: Error) => {
    throw new Error(
      `${e.message}\nfuture callbacks so far: ${order.join(', ') || '(none)'}\nkernel.status: ${kernel.status}\n  ${socketReport()}${libTail()}`,
    );
  });
}

function findIopub<T extends KernelMessage.IIOPubMessage>(r: Run, type: string): T {
  const m = r.iopub.find((x) => x.header.msg_type === type);
  if (!m) throw new Error(`no ${type} among onIOPub messages: ${r.iopub.map((x) => x.header.msg_type).join(', ')}`);
  return m as T;
}

// =============================================================================================
// Suite 1: a gateway with a token; the token travels in ajaxSettings and in the ws headers option.

const test = suite('jupyter-js-services 0.21.1 (2016 client), with a token');
let gw: Gateway;
let jjs: JupyterJsServices;
let options: Kernel.IOptions;
let kernel: IKernel | undefined;
const statuses: string[] = [];

guardSuite(
  test,
  async () => {
    gw = await startGateway();
    jjs = installGlobals(tokenWebSocketClass(gw.token));
    options = {
      baseUrl: gw.url,
      wsUrl: gw.wsUrl,
      name: 'python3',
      ajaxSettings: { requestHeaders: { Authorization: `token ${gw.token}` } },
    };
  },
  async () => {
    // A live kernel object would keep reconnecting (1 s, 2 s, 4 s …) once the gateway stops.
    kernel?.dispose();
    restoreGlobals();
  },
);

function k(): IKernel {
  if (!kernel) throw new Error('no kernel (Kernel.startNew failed)');
  return kernel;
}

test('Kernel.getSpecs: python3 is the default, the test kernelspec is listed; without the token: 401', async () => {
  const specs = await libCall(jjs.Kernel.getSpecs(options), 15000, 'Kernel.getSpecs');
  assert.is(specs.default, 'python3');
  assert.is(specs.kernelspecs.python3?.spec.display_name, 'Python 3 (ipykernel)');
  assert.is(specs.kernelspecs.python3?.spec.language, 'python');
  assert.ok(specs.kernelspecs[TEST_SPEC_NAME], `the library dropped or did not get ${TEST_SPEC_NAME}: ${Object.keys(specs.kernelspecs)}${libTail()}`);
  assert.not.ok(libLog.some((l) => /errant kernel spec|Default kernel not found/.test(l)), `the library rejected part of the specs:${libTail()}`);

  const noToken = await withTimeout(
    jjs.Kernel.getSpecs({ baseUrl: gw.url }).then(
      () => 'resolved',
      (e: unknown) => describeRejection(e),
    ),
    15000,
    'Kernel.getSpecs without a token',
  );
  assert.match(noToken, /^HTTP 401/, `getSpecs without a token: expected a 401 rejection, got ${noToken}`);
});

test('Kernel.startNew({baseUrl, wsUrl, name, ajaxSettings}): legacy JSON WebSocket with ?session_id=<clientId>; kernelInfo answers', async () => {
  kernel = await libCall(jjs.Kernel.startNew(options), 60000, 'Kernel.startNew');
  const kern = kernel;
  kern.statusChanged.connect((_sender, status) => {
    statuses.push(status);
  });
  assert.is(kern.name, 'python3');
  assert.match(kern.id, /^[0-9a-f-]{36}$/);

  const info = await libCall(kern.kernelInfo(), 30000, 'kernel.kernelInfo()');
  assert.is(info.content.language_info.name, 'python');
  assert.is(kern.info?.language_info.name, 'python');

  const sock = sockets.at(-1);
  assert.ok(sock, 'the library created no WebSocket');
  const url = new URL(sock!.url);
  assert.is(url.pathname, `/api/kernels/${kern.id}/channels`);
  assert.is(url.searchParams.get('session_id'), kern.clientId, `session_id in ${sock!.url}`);
  assert.ok(sock!.opened, `WebSocket not open:\n  ${socketReport()}`);
  assert.is(sock!.protocol, '', 'the gateway must pick the legacy protocol (no subprotocol) for a client that offers none');
  assert.is(sock!.binaryFrames, 0, `binary frames sent to a legacy client:\n  ${socketReport()}`);
  await waitUntil(() => kern.status === 'idle', 10000, `kernel.status idle (is ${kern.status})`);

  const res = await api(gw, 'GET', `api/kernels/${kern.id}`);
  assert.is(res.status, 200);
  assert.is(res.body.connections, 1, `gateway model: ${res.text}`);
  const running = await libCall(jjs.Kernel.listRunning(options), 15000, 'Kernel.listRunning');
  assert.ok(running.some((m) => m.id === kern.id), `listRunning: ${safeJson(running)}`);

  // Why suite 1 needs the headers option: the URL the library builds, opened by the plain `ws`
  // class (what `global.WebSocket = require('ws')` would do), is refused.
  const plain = new WebSocket(sock!.url.replace(kern.clientId, `${kern.clientId}-plain`));
  const refused = await withTimeout(
    new Promise<string>((resolve) => {
      plain.on('unexpected-response', (_req, res) => resolve(`HTTP ${res.statusCode}`));
      plain.on('open', () => resolve('opened'));
      plain.on('error', (e) => resolve(`error ${e.message}`));
    }),
    10000,
    'the upgrade without a token to be answered',
  );
  plain.terminate();
  assert.is(refused, 'HTTP 401', `a WebSocket without the token: expected HTTP 401, got ${refused}`);
});

test('execute: stream and execute_result via onIOPub, execute_reply via onReply, then onDone', async () => {
  const r = await execute(k(), "print('hello from 2016')\n6 * 7", 30000);
  assert.is(r.reply.content.status, 'ok');
  assert.is(r.reply.channel, 'shell');
  assert.is(r.stdout, 'hello from 2016\n');
  const result = findIopub<KernelMessage.IExecuteResultMsg>(r, 'execute_result');
  assert.is(result.content.data['text/plain'], '42');
  assert.ok(r.order.includes('iopub:status'), `no status via onIOPub: ${r.order}`);
  assert.is(r.order.at(-1), 'done');
  assert.ok(r.order.indexOf('reply') < r.order.indexOf('done'));
  // The library validates every frame and drops (console.error) those it finds malformed.
  assert.not.ok(libLog.some((l) => /^error: /.test(l)), `the library logged errors:${libTail()}`);
});

test('an exception: error via onIOPub and an error execute_reply', async () => {
  const r = await execute(k(), '1/0', 30000);
  assert.is(r.reply.content.status, 'error');
  const err = findIopub<KernelMessage.IErrorMsg>(r, 'error');
  assert.is(err.content.ename, 'ZeroDivisionError');
});

test('stdin: input_request reaches onStdin, kernel.sendInputReply answers it', async () => {
  const prompts: string[] = [];
  const r = await execute(k(), "name = input('who? ')\nprint('hi ' + name)", 30000, {
    onStdin: (msg) => {
      assert.is(msg.header.msg_type, 'input_request');
      assert.is(msg.channel, 'stdin');
      prompts.push((msg as KernelMessage.IInputRequestMsg).content.prompt);
      k().sendInputReply({ value: 'gateway' });
    },
  });
  assert.equal(prompts, ['who? ']);
  assert.is(r.reply.content.status, 'ok');
  assert.is(r.stdout, 'hi gateway\n');
});

test('kernel.interrupt() stops running code (KeyboardInterrupt); the kernel then runs more code', async () => {
  let sleeping!: () => void;
  const started = new Promise<void>((resolve) => (sleeping = resolve));
  const running = execute(k(), "import time\nprint('sleeping', flush=True)\ntime.sleep(30)", 25000, {
    onIOPub: (msg) => {
      if (msg.header.msg_type === 'stream' && /sleeping/.test(String(msg.content.text))) sleeping();
    },
  });
  await withTimeout(started, 15000, "the 'sleeping' output before the interrupt");
  const t0 = Date.now();
  await libCall(k().interrupt(), 15000, 'kernel.interrupt()');
  const r = await running;
  assert.ok(Date.now() - t0 < 10000, 'the interrupt did not stop time.sleep(30) promptly');
  assert.is(r.reply.content.status, 'error');
  assert.is((r.reply.content as KernelMessage.IExecuteErrorReply).ename, 'KeyboardInterrupt');
  const after = await execute(k(), "print('still alive')", 20000);
  assert.is(after.stdout, 'still alive\n');
});

test('kernel.restart(): a new kernel process with the same id; state is gone; code runs again', async () => {
  const kern = k();
  // restart() puts the library in 'restarting' and it then holds requests until it sees a status
  // again: here the old kernel's busy/idle around its shutdown_reply and the new kernel's 'starting',
  // which the gateway forwards; the gateway itself holds a request until the new kernel is ready.
  await execute(kern, 'marker = 12345', 20000);
  const pidBefore = await kernelPid(gw, kern.id);
  const statusesBefore = statuses.length;
  await libCall(kern.restart(), 30000, 'kernel.restart()');
  await waitUntil(() => processGone(pidBefore), 15000, `old kernel process ${pidBefore} to exit after restart`);
  const pidAfter = await kernelPid(gw, kern.id);
  assert.is.not(pidAfter, pidBefore);
  // The old client queues requests after restart() until the kernel reports a status again.
  const r = await execute(kern, "print('marker' in dir())", 20000).catch((e: Error) => {
    throw new Error(`${e.message}\nstatusChanged since restart(): ${statuses.slice(statusesBefore).join(', ')}\ngateway stderr (tail):\n${gw.stderr().slice(-1500)}`);
  });
  assert.is(r.stdout, 'False\n');
  assert.is(kern.id, (await api(gw, 'GET', 'api/kernels')).body[0]?.id);
});

test('kernel.shutdown(): the library disposes the kernel, the gateway removes it and closes the socket', async () => {
  const kern = k();
  const id = kern.id;
  const pid = await kernelPid(gw, id);
  const sock = sockets.at(-1)!;
  await libCall(kern.shutdown(), 30000, 'kernel.shutdown()');
  assert.ok(kern.isDisposed, 'kernel object not disposed after shutdown');
  assert.is(kern.status, 'dead');
  kernel = undefined;
  assert.is((await api(gw, 'GET', `api/kernels/${id}`)).status, 404);
  await waitUntil(() => processGone(pid), 15000, `kernel process ${pid} to exit`);
  await waitUntil(() => sock.closed, 10000, `the WebSocket to close:\n  ${socketReport()}`);
  const running = await libCall(jjs.Kernel.listRunning(options), 15000, 'Kernel.listRunning');
  assert.equal(running, []);
});

test('over the whole session the library logged no error or warning (no rejected frame, no reconnect)', () => {
  const bad = libLog.filter((l) => /^(error|warn): /.test(l));
  assert.equal(bad, [], `library console:\n  ${libLog.join('\n  ')}`);
  assert.is(sockets.length, 1, `the library opened more than one WebSocket (a reconnect?):\n  ${socketReport()}`);
});

shutdownTest(test, () => gw);

test.run();

// =============================================================================================
// Suite 2: exactly the 2016 demo: `global.WebSocket = require('ws')`, no auth anywhere. The old client
// cannot put a token on its WebSocket, so this gateway runs with auth off (--auth-token '') and
// --list-kernels (Kernel.listRunning is refused without a token otherwise).

const demo = suite("jupyter-js-services 0.21.1, as the 2016 demo used it (plain ws, gateway with --auth-token '' --list-kernels)");
let gw2: Gateway;
let jjs2: JupyterJsServices;
let kernel2: IKernel | undefined;

guardSuite(
  demo,
  async () => {
    gw2 = await startGateway({ token: '', args: ['--list-kernels'] });
    jjs2 = installGlobals(WatchedWebSocket);
  },
  async () => {
    kernel2?.dispose();
    restoreGlobals();
  },
);

demo('getSpecs, listRunning, startNew with the default spec, execute, shutdown', async () => {
  const base = { baseUrl: gw2.url, wsUrl: gw2.wsUrl };
  const specs = await libCall(jjs2.Kernel.getSpecs(base), 15000, 'Kernel.getSpecs');
  assert.is(specs.default, 'python3');
  assert.equal(await libCall(jjs2.Kernel.listRunning(base), 15000, 'Kernel.listRunning'), []);

  const first = sockets.length;
  kernel2 = await libCall(jjs2.Kernel.startNew({ ...base, name: specs.default }), 60000, 'Kernel.startNew');
  const r = await execute(kernel2, 'print("Hello world!")', 30000);
  assert.is(r.reply.content.status, 'ok');
  assert.is(r.stdout, 'Hello world!\n');
  const sock = sockets[first];
  assert.ok(sock, 'the library created no WebSocket');
  assert.is(new URL(sock.url).searchParams.get('session_id'), kernel2.clientId);
  assert.is(sock.protocol, '');

  const listed = await libCall(jjs2.Kernel.listRunning(base), 15000, 'Kernel.listRunning');
  assert.equal(listed.map((m) => m.id), [kernel2.id]);

  const id = kernel2.id;
  await libCall(kernel2.shutdown(), 30000, 'kernel.shutdown()');
  kernel2 = undefined;
  assert.is((await api(gw2, 'GET', `api/kernels/${id}`)).status, 404);
});

shutdownTest(demo, () => gw2, 'auth off');

demo.run();
