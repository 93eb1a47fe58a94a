/**
 * Jupyter Server in gateway mode against our gateway, as a user would run it: our gateway (real,
 * with a token), then Debian's Jupyter Server 1.23 started with --gateway-url pointing at it, then
 * @jupyterlab/services (the JupyterLab client) driving Jupyter Server — never our gateway directly.
 * Our gateway's own REST API is only read, to check what Jupyter Server did through it.
 */
import { mkdirSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  KernelManager,
  KernelSpecManager,
  ServerConnection,
  type Kernel,
  type KernelMessage,
} from '@jupyterlab/services';
import WS from 'ws';
import {
  api,
  guardSuite,
  sleep,
  startGateway,
  TEST_SPEC,
  TEST_SPEC_NAME,
  waitUntil,
  withTimeout,
  type Gateway,
} from '../helpers/gateway.ts';
import { kernelInfoThroughServer, startJupyterServer, type JupyterServer } from '../helpers/jupyter-server.ts';
import { stopPollsAndDispose } from '../helpers/jupyterlab.ts';

const V1_PROTOCOL = 'v1.kernel.websocket.jupyter.org';

const test = suite('gateway mode: Jupyter Server 1.23 --gateway-url → our gateway, driven by @jupyterlab/services');

let gw: Gateway;
let js: JupyterServer | undefined;
let settings: ServerConnection.ISettings;
let specManager: KernelSpecManager | undefined;
let kernelManager: KernelManager | undefined;
let kernel: Kernel.IKernelConnection | undefined;
const timings: string[] = [];

// ---------------------------------------------------------------------------------------------
// The client's WebSocket class

/** What each WebSocket @jupyterlab/services opened asked for and got (for the fallback test). */
const wsAttempts: { url: string; offered: string[]; outcome: string; selected?: string }[] = [];

/**
 * `ws`'s WebSocket, recording each attempt. Behaviour is unchanged: this is exactly the class a
 * Node client of @jupyterlab/services passes as `WebSocket` (Node 20 has no global WebSocket).
 *
 * Why a subprotocol fallback shows up here: JupyterLab offers `v1.kernel.websocket.jupyter.org`;
 * Jupyter Server 1.23 knows no kernel subprotocol and answers the upgrade with no
 * Sec-WebSocket-Protocol header. A browser accepts that (`ws.protocol === ''`, legacy JSON
 * protocol), but `ws` is stricter (RFC 6455 §4.1 lets a client fail here) and aborts the handshake
 * with "Server sent no subprotocol". @jupyterlab/services then does its documented fallback
 * ("we cannot send '' as a subprotocol, so if connection fails, reconnect without subprotocols"):
 * the failed socket goes through earlyClose → GET the kernel model → _reconnect(), which, since no
 * protocol was ever selected, reconnects at once *without* subprotocols and gets the legacy
 * protocol. So under Node the first attempt per kernel connection fails and the second succeeds;
 * the test below asserts exactly that sequence, so a change on either side is noticed.
 */
class RecordingWebSocket extends WS {
  constructor(url: string | URL, protocols?: string | string[]) {
    super(url, protocols);
    const attempt: (typeof wsAttempts)[number] = {
      url: String(url).replace(/token=[^&]+/, 'token=…'),
      offered: protocols === undefined ? [] : ([] as string[]).concat(protocols),
      outcome: 'pending',
    };
    wsAttempts.push(attempt);
    this.once('open', () => {
      attempt.outcome = 'open';
      attempt.selected = this.protocol;
    });
    this.once('error', (err: Error) => {
      if (attempt.outcome === 'pending') attempt.outcome = `error: ${err.message}`;
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

async function ourKernelIds(): Promise<string[]> {
  const res = await api(gw, 'GET', 'api/kernels');
  if (res.status !== 200) throw new Error(`our gateway: GET /api/kernels → ${res.status} ${res.text}`);
  return (res.body as { id: string }[]).map((k) => k.id);
}

/** fetch() against Jupyter Server with its token. */
async function jsFetch(method: string, path: string, json?: unknown): Promise<{ status: number; text: string; body: any }> {
  const headers: Record<string, string> = { Authorization: `token ${js!.token}` };
  if (json !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(new URL(path, js!.url), {
    method,
    headers,
    body: json === undefined ? undefined : JSON.stringify(json),
    signal: AbortSignal.timeout(30000),
  });
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: res.status, text, body };
}

interface Run {
  reply: KernelMessage.IExecuteReplyMsg;
  iopub: KernelMessage.IIOPubMessage[];
}

/** Executes `code` through Jupyter Server and collects IOPub until the future is done. */
async function run(
  k: Kernel.IKernelConnection,
  code: string,
  opts: { timeoutMs?: number; onStdin?: (msg: KernelMessage.IStdinMessage, future: Kernel.IShellFuture<KernelMessage.IExecuteRequestMsg, KernelMessage.IExecuteReplyMsg>) => void; onExecuteInput?: () => void } = {},
): Promise<Run> {
  const iopub: KernelMessage.IIOPubMessage[] = [];
  const future = k.requestExecute({ code, allow_stdin: opts.onStdin !== undefined, stop_on_error: true });
  future.onIOPub = (msg) => {
    iopub.push(msg);
    if (msg.header.msg_type === 'execute_input') opts.onExecuteInput?.();
  };
  if (opts.onStdin) {
    const handler = opts.onStdin;
    future.onStdin = (msg) => handler(msg, future);
  }
  const timeoutMs = opts.timeoutMs ?? 20000;
  try {
    const reply = (await withTimeout(future.done, timeoutMs, `execute ${JSON.stringify(code)} via Jupyter Server: execute_reply + idle`)) as KernelMessage.IExecuteReplyMsg;
    return { reply, iopub };
  } catch (err) {
    const seen = iopub.map((m) => m.header.msg_type).join(', ') || 'nothing';
    throw new Error(`${(err as Error).message}; IOPub seen: ${seen}; kernel status ${k.status}, connection ${k.connectionStatus}`);
  }
}

function streamText(r: Run, name: 'stdout' | 'stderr' = 'stdout'): string {
  return r.iopub
    .filter((m): m is KernelMessage.IStreamMsg => m.header.msg_type === 'stream')
    .filter((m) => m.content.name === name)
    .map((m) => m.content.text)
    .join('');
}

function resultText(r: Run): string | undefined {
  const m = r.iopub.find((x): x is KernelMessage.IExecuteResultMsg => x.header.msg_type === 'execute_result');
  return m?.content.data['text/plain'] as string | undefined;
}

function logs(): string {
  return `\n--- Jupyter Server log (tail) ---\n${js?.log().slice(-3000) ?? ''}\n--- our gateway log (tail) ---\n${gw?.stderr().slice(-3000) ?? ''}`;
}

/** Runs a test body and adds both servers' logs to any failure. */
function withLogs(name: string, body: () => Promise<void>): void {
  test(name, async () => {
    const t0 = Date.now();
    try {
      await body();
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      e.message += logs();
      throw e;
    } finally {
      timings.push(`${(Date.now() - t0).toString().padStart(5)} ms  ${name}`);
    }
  });
}


// ---------------------------------------------------------------------------------------------

guardSuite(
  test,
  async () => {
    const t0 = Date.now();
    gw = await startGateway();
    timings.push(`${(Date.now() - t0).toString().padStart(5)} ms  start our gateway`);
    const t1 = Date.now();
    js = await startJupyterServer(gw);
    timings.push(`${(Date.now() - t1).toString().padStart(5)} ms  start Jupyter Server (gateway mode)`);
    settings = ServerConnection.makeSettings({
      baseUrl: js.url,
      wsUrl: js.url.replace(/^http/, 'ws'),
      token: js.token,
      // Node has no cookies/XSRF: the token goes in the Authorization header for REST and, since
      // WebSocket constructors cannot set headers, in the ?token= query for the channels socket.
      appendToken: true,
      WebSocket: RecordingWebSocket as unknown as typeof WebSocket,
    });
    specManager = new KernelSpecManager({ serverSettings: settings });
    kernelManager = new KernelManager({ serverSettings: settings });
    await withTimeout(Promise.all([specManager.ready, kernelManager.ready]), 20000, 'KernelSpecManager/KernelManager ready (first fetch through Jupyter Server)');
  },
  async () => {
    // Dispose the client side first so its polls stop, then Jupyter Server, then (guardSuite) our gateway.
    try {
      kernel?.dispose();
      await stopPollsAndDispose(kernelManager);
      await stopPollsAndDispose(specManager);
    } finally {
      if (js) {
        const r = await js.stop();
        if (r.killed) process.stderr.write(`[gateway-mode] Jupyter Server ignored SIGTERM for 5 s and was killed\n`);
      }
      if (timings.length > 0) process.stderr.write(`\n[gateway-mode] timings:\n  ${timings.join('\n  ')}\n`);
    }
  },
);

withLogs('Jupyter Server is in gateway mode and its /api answers', async () => {
  const res = await jsFetch('GET', 'api');
  assert.is(res.status, 200, res.text);
  assert.type(res.body?.version, 'string');
  assert.match(js!.log(), /is running at/);
  assert.match(js!.log(), /Kernels will be managed by the Gateway server running at/);
  assert.ok(js!.log().includes(gw.url.replace(/\/$/, '')), `Jupyter Server does not name our gateway ${gw.url} in its log`);
});

withLogs('KernelSpecManager (through Jupyter Server) lists python3 and our gateway-only testpy spec', async () => {
  await withTimeout(specManager!.refreshSpecs(), 20000, 'KernelSpecManager.refreshSpecs() through Jupyter Server');
  const specs = specManager!.specs;
  assert.ok(specs, 'no kernelspecs model');
  const names = Object.keys(specs!.kernelspecs);
  assert.ok(names.includes('python3'), `python3 missing from ${names.join(', ')}`);
  assert.is(specs!.kernelspecs.python3!.language, 'python');
  // testpy exists only in our gateway's JUPYTER_PATH: seeing it proves the list came from our gateway.
  assert.ok(names.includes(TEST_SPEC_NAME), `${TEST_SPEC_NAME} (only our gateway has it) missing from ${names.join(', ')}`);
  assert.is(specs!.kernelspecs[TEST_SPEC_NAME]!.display_name, TEST_SPEC.display_name);
  assert.is(specs!.default, 'python3');
});

withLogs('KernelManager.startNew({name: "python3"}) → the kernel runs on our gateway and the client connects', async () => {
  kernel = await withTimeout(kernelManager!.startNew({ name: 'python3' }), 60000, 'KernelManager.startNew({name: "python3"}) through Jupyter Server');
  assert.is(kernel.name, 'python3');
  const ours = await ourKernelIds();
  assert.ok(ours.includes(kernel.id), `kernel ${kernel.id} started via Jupyter Server is not in our gateway's GET /api/kernels: ${JSON.stringify(ours)}`);
  const k = kernel;
  await waitUntil(() => k.connectionStatus === 'connected', 20000, `the kernel WebSocket via Jupyter Server to connect (status ${k.connectionStatus}; attempts ${JSON.stringify(wsAttempts)})`);
  const info = await kernelInfoThroughServer(k, 20000);
  assert.is(info.language_info.name, 'python');
  assert.is(info.status, 'ok');
});

withLogs('WebSocket subprotocol: v1 offered, Jupyter Server 1.23 selects none, client falls back to legacy', async () => {
  const mine = wsAttempts.filter((a) => a.url.includes(`/api/kernels/${kernel!.id}/channels`));
  assert.ok(mine.length >= 1, `no WebSocket attempts recorded for kernel ${kernel!.id}: ${JSON.stringify(wsAttempts)}`);
  const first = mine[0]!;
  assert.ok(first.offered.includes(V1_PROTOCOL), `first attempt did not offer ${V1_PROTOCOL}: ${JSON.stringify(first)}`);
  assert.is(first.outcome, 'error: Server sent no subprotocol', `first attempt: ${JSON.stringify(first)}`);
  const opened = mine.filter((a) => a.outcome === 'open');
  assert.is(opened.length, 1, `expected exactly one open socket: ${JSON.stringify(mine)}`);
  assert.equal(opened[0]!.offered, [], `the socket that opened offered subprotocols: ${JSON.stringify(opened[0])}`);
  assert.is(opened[0]!.selected, '', 'legacy protocol expected (no subprotocol)');
});

withLogs("execute print('hello') and 6*7: stream and execute_result via onIOPub", async () => {
  const hello = await run(kernel!, "print('hello')");
  assert.is(hello.reply.content.status, 'ok', JSON.stringify(hello.reply.content));
  assert.is(streamText(hello), 'hello\n');
  const types = hello.iopub.map((m) => m.header.msg_type);
  assert.equal([types[0], types[types.length - 1]], ['status', 'status'], `IOPub order: ${types.join(', ')}`);
  assert.ok(types.includes('execute_input'), `no execute_input: ${types.join(', ')}`);

  const answer = await run(kernel!, '6*7');
  assert.is(answer.reply.content.status, 'ok', JSON.stringify(answer.reply.content));
  assert.is(resultText(answer), '42');
  const execCount = (answer.reply.content as KernelMessage.IExecuteReplyMsg['content'] & { execution_count: number }).execution_count;
  const result = answer.iopub.find((m) => m.header.msg_type === 'execute_result') as KernelMessage.IExecuteResultMsg;
  assert.is(result.content.execution_count, execCount);
});

withLogs('input() through onStdin + sendInputReply', async () => {
  const prompts: string[] = [];
  const r = await run(kernel!, "name = input('who? ')\nprint('hi ' + name)", {
    onStdin: (msg, future) => {
      if (msg.header.msg_type !== 'input_request') return;
      prompts.push((msg as KernelMessage.IInputRequestMsg).content.prompt);
      future.sendInputReply({ status: 'ok', value: 'gateway' }, msg.header as KernelMessage.IInputReplyMsg['parent_header']);
    },
  });
  assert.equal(prompts, ['who? ']);
  assert.is(r.reply.content.status, 'ok', JSON.stringify(r.reply.content));
  assert.is(streamText(r), 'hi gateway\n');
});

withLogs('interrupt (KernelConnection.interrupt via Jupyter Server) stops time.sleep(30) within 10 s', async () => {
  let started!: () => void;
  const executing = new Promise<void>((resolve) => (started = resolve));
  const pending = run(kernel!, 'import time\ntime.sleep(30)', { timeoutMs: 25000, onExecuteInput: () => started() });
  await withTimeout(executing, 15000, 'execute_input of time.sleep(30)');
  await sleep(500); // let the kernel get into the sleep
  const t0 = Date.now();
  await withTimeout(kernel!.interrupt(), 10000, 'KernelConnection.interrupt() (POST /api/kernels/<id>/interrupt on Jupyter Server)');
  const r = await withTimeout(pending, 10000, 'execute_reply after the interrupt');
  const elapsed = Date.now() - t0;
  assert.is(r.reply.content.status, 'error', JSON.stringify(r.reply.content));
  assert.is((r.reply.content as KernelMessage.IReplyErrorContent).ename, 'KeyboardInterrupt');
  assert.ok(elapsed < 10000, `interrupt took ${elapsed} ms`);
  timings.push(`${elapsed.toString().padStart(5)} ms  (interrupt → execute_reply)`);
  // The kernel is usable afterwards.
  const after = await run(kernel!, '1+1');
  assert.is(resultText(after), '2');
});

withLogs('restart (via Jupyter Server): same kernel id, a previously defined variable is gone', async () => {
  const def = await run(kernel!, 'secret = 41 + 1\nsecret');
  assert.is(resultText(def), '42');
  const id = kernel!.id;
  await withTimeout(kernel!.restart(), 30000, 'KernelConnection.restart() through Jupyter Server');
  const k = kernel!;
  await waitUntil(() => k.connectionStatus === 'connected', 20000, `reconnection after restart (status ${k.connectionStatus})`);
  assert.is(k.id, id);
  assert.ok((await ourKernelIds()).includes(id), 'restarted kernel missing from our gateway');
  const r = await run(k, 'secret');
  assert.is(r.reply.content.status, 'error', `variable survived the restart: ${JSON.stringify(r.reply.content)}`);
  assert.is((r.reply.content as KernelMessage.IReplyErrorContent).ename, 'NameError');
  assert.is(resultText(await run(k, '6*7')), '42');
});

withLogs('shutdown (via Jupyter Server) → our gateway no longer lists the kernel', async () => {
  const id = kernel!.id;
  await withTimeout(kernel!.shutdown(), 30000, 'KernelConnection.shutdown() through Jupyter Server');
  const ours = await ourKernelIds();
  assert.not.ok(ours.includes(id), `kernel ${id} still listed by our gateway after shutdown: ${JSON.stringify(ours)}`);
  await waitUntil(() => gw.kernelPids().length === 0, 10000, `our gateway's kernel process to exit after shutdown (pids ${gw.kernelPids().join(', ')})`);
  kernel!.dispose();
  kernel = undefined;
});

withLogs("a notebook in Jupyter Server's own folder (outside our gateway's root) gets a kernel that runs in that folder", async () => {
  // Jupyter Server sends KERNEL_WORKING_DIR = the notebook's folder on its side; our gateway was
  // started elsewhere (its own temporary folder), so that folder lies outside our root directory.
  const project = join(js!.cwd, 'project');
  mkdirSync(project, { recursive: true });
  assert.not.ok(project.startsWith(dirname(gw.runtimeDir)), 'the notebook folder must lie outside the gateway root for this test');
  const created = await jsFetch('POST', 'api/sessions', { path: 'project/analysis.ipynb', type: 'notebook', name: 'analysis.ipynb', kernel: { name: 'python3' } });
  assert.is(created.status, 201, created.text);
  const model = created.body.kernel as Kernel.IModel;
  const k = kernelManager!.connectTo({ model });
  try {
    await waitUntil(() => k.connectionStatus === 'connected', 20000, `the session's kernel WebSocket to connect (status ${k.connectionStatus})`);
    const cwd = await run(k, 'import os\nprint(os.getcwd())');
    assert.is(streamText(cwd).trim(), realpathSync(project));
    assert.match(gw.stderr(), /kernel .* started/);
  } finally {
    k.dispose();
  }
  const deleted = await jsFetch('DELETE', `api/sessions/${created.body.id}`);
  assert.is(deleted.status, 204, deleted.text);
  await waitUntil(async () => !(await ourKernelIds()).includes(model.id), 10000, 'the session kernel to be gone from our gateway');
});

withLogs('REST on Jupyter Server: POST /api/kernels → 201 and on our gateway; DELETE → 204 and gone', async () => {
  const created = await jsFetch('POST', 'api/kernels', { name: 'python3' });
  assert.is(created.status, 201, created.text);
  const id = created.body?.id as string;
  assert.type(id, 'string');
  assert.is(created.body.name, 'python3');
  assert.ok((await ourKernelIds()).includes(id), `kernel ${id} created via Jupyter Server is not listed by our gateway`);
  const listed = await jsFetch('GET', 'api/kernels');
  assert.is(listed.status, 200, listed.text);
  assert.ok((listed.body as { id: string }[]).some((k) => k.id === id), `Jupyter Server does not list ${id}: ${listed.text}`);

  const deleted = await jsFetch('DELETE', `api/kernels/${id}`);
  assert.is(deleted.status, 204, deleted.text);
  const ours = await ourKernelIds();
  assert.not.ok(ours.includes(id), `kernel ${id} still listed by our gateway after DELETE via Jupyter Server: ${JSON.stringify(ours)}`);
  await waitUntil(() => gw.kernelPids().length === 0, 10000, `our gateway's kernel process to exit after DELETE (pids ${gw.kernelPids().join(', ')})`);
  assert.equal(gw.connectionFiles(), [], 'connection file left behind');
  const gone = await jsFetch('GET', `api/kernels/${id}`);
  assert.is(gone.status, 404, gone.text);
});

test.run();
