/**
 * No client can take the gateway down. Clients open, send valid and malformed frames, and close or
 * vanish at random moments while kernels are restarted, interrupted, killed and deleted under them:
 * first against the real gateway binary, then against a gateway in this process with failures
 * injected where a connection is attached and where its messages go to the kernel, so that every
 * error path runs. Afterwards the gateway must still serve, every kernel must still execute, and
 * every connection must be accounted for.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KernelHub } from '../../src/bridge/hub.ts';
import { DEFAULTS, type Config } from '../../src/config/options.ts';
import { startGateway as startInProcess, type Gateway as InProcessGateway } from '../../src/gateway.ts';
import { Kernel } from '../../src/kernels/kernel.ts';
import { createLogger } from '../../src/log.ts';
import { fuzzClients, seededRandom, type FuzzTarget } from '../helpers/fuzz.ts';
import {
  api,
  guardSuite,
  kernelPid,
  shutdownTest,
  startGateway,
  startKernel,
  TEST_SPEC,
  waitUntil,
  type Gateway,
} from '../helpers/gateway.ts';
import { runInKernel } from '../helpers/kernel-ws.ts';

const test = suite('client fuzz: no client input, at any moment, takes the gateway down');
let gw: Gateway;

guardSuite(test, async () => {
  gw = await startGateway({ args: ['--max-message-size', String(64 * 1024)] });
});

test('the real gateway survives 600 random clients while its kernels restart, die and go', async () => {
  const kernels = [await startKernel(gw), await startKernel(gw, 'javascript')];
  const ids = () => kernels.map((k) => k.id);
  const target: FuzzTarget = { wsUrl: gw.wsUrl, port: gw.port, token: gw.token, kernelIds: ids };
  const stats = await fuzzClients(target, {
    seed: 20261130,
    actions: 600,
    concurrency: 16,
    chaos: async (random) => {
      const k = kernels[Math.floor(random() * kernels.length)];
      const what = random();
      if (what < 0.3) await api(gw, 'POST', `api/kernels/${k.id}/restart`, { timeoutMs: 60000 });
      else if (what < 0.5) await api(gw, 'POST', `api/kernels/${k.id}/interrupt`);
      else if (what < 0.75) {
        const pid = await kernelPid(gw, k.id, 30000).catch(() => undefined);
        if (pid) process.kill(pid, 'SIGKILL');
      } else {
        await api(gw, 'DELETE', `api/kernels/${k.id}`, { timeoutMs: 60000 });
        const fresh = await startKernel(gw, k.name);
        kernels[kernels.indexOf(k)] = fresh;
      }
    },
  });
  assert.ok(stats.opened > 100, `only ${stats.opened} clients got in: ${JSON.stringify(stats)}`);
  assert.ok(!gw.exited, 'the gateway exited');
  assert.is((await api(gw, 'GET', 'api')).status, 200);
  assert.not.match(gw.stderr(), /internal error|CRITICAL|\[C /);
  for (const k of kernels) {
    // Fuzzed clients leave cells queued, some waiting in input() for an answer that will never come (as
    // with any gateway): interrupt until a fresh client's cell is answered.
    const code = k.name === 'javascript' ? 'console.log(6 * 7)' : 'print(6 * 7)';
    await waitUntil(
      async () => {
        await api(gw, 'POST', `api/kernels/${k.id}/interrupt`);
        return (await runInKernel(gw, k.id, code, {}, 5000)) === '42\n';
      },
      180000,
      `kernel ${k.name} to answer a fresh client`,
      500,
    );
    await waitUntil(async () => (await api(gw, 'GET', `api/kernels/${k.id}`)).body?.connections === 0, 20000, `kernel ${k.name}: connections back to 0`);
  }
});

test('in process, with failures injected into attach and into sending to the kernel: nothing escapes, everything recovers', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'kg-it-fuzz-'));
  const jupyterPath = join(dir, 'jupyter');
  mkdirSync(join(jupyterPath, 'kernels', 'python3'), { recursive: true });
  writeFileSync(join(jupyterPath, 'kernels', 'python3', 'kernel.json'), JSON.stringify({ ...TEST_SPEC, display_name: 'Python 3' }));
  const savedEnv = { ...process.env };
  Object.assign(process.env, { JUPYTER_PATH: jupyterPath, JUPYTER_RUNTIME_DIR: join(dir, 'runtime'), JUPYTER_DATA_DIR: join(dir, 'data') });
  const escaped: string[] = [];
  const onUncaught = (error: unknown) => escaped.push(`uncaught: ${(error as Error)?.stack ?? error}`);
  const onRejection = (error: unknown) => escaped.push(`unhandled rejection: ${(error as Error)?.stack ?? error}`);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onRejection);
  let logText = '';
  const log = createLogger('WARN', new Writable({ write: (chunk, _e, done) => ((logText += chunk.toString()), done()) }));
  const random = seededRandom(7);
  const connect = KernelHub.prototype.connect;
  const send = Kernel.prototype.send;
  let injected = 0;
  KernelHub.prototype.connect = function (this: KernelHub, ...args: Parameters<KernelHub['connect']>) {
    const r = random();
    if (r < 0.12) {
      injected++;
      throw new Error('injected failure before attaching');
    }
    const connection = connect.apply(this, args);
    if (r < 0.24) {
      injected++;
      throw new Error('injected failure after attaching');
    }
    return connection;
  };
  Kernel.prototype.send = function (this: Kernel, ...args: Parameters<Kernel['send']>) {
    if (random() < 0.05) {
      injected++;
      throw new Error('injected failure sending to the kernel');
    }
    return send.apply(this, args);
  };
  const config: Config = { ...DEFAULTS, port: 0, authToken: 'fuzz-token', rootDir: dir, maxMessageSize: 64 * 1024, wsPingInterval: 1 };
  let gateway: InProcessGateway | undefined;
  try {
    gateway = await startInProcess(config, log);
    const g = gateway;
    const started = await Promise.all([g.manager.start({ name: 'python3' }), g.manager.start({ name: 'python3' })]);
    const kernels = started.map((k) => k.id);
    const lastKill = new Map<string, number>();
    const url = new URL(g.url);
    const target: FuzzTarget = { wsUrl: g.url.replace(/^http/, 'ws'), port: Number(url.port), token: 'fuzz-token', kernelIds: () => kernels };
    const stats = await fuzzClients(target, {
      seed: 42,
      actions: 500,
      concurrency: 16,
      chaos: async (r) => {
        const kernel = g.manager.get(kernels[Math.floor(r() * kernels.length)]);
        if (!kernel) return;
        if (r() < 0.5) await kernel.restart().catch(() => undefined);
        // A kernel killed again and again before it is up gives up for good (as Jupyter's restarter
        // does), which is not what this test is about: kill only a ready kernel, 10 s after the last kill.
        else if (kernel.pid && kernel.ready && Date.now() - (lastKill.get(kernel.id) ?? 0) > 10_000) {
          lastKill.set(kernel.id, Date.now());
          process.kill(kernel.pid, 'SIGKILL');
        }
      },
    });
    assert.ok(injected > 20, `only ${injected} failures were injected`);
    assert.ok(stats.opened > 50, `only ${stats.opened} clients got in: ${JSON.stringify(stats)}`);
    KernelHub.prototype.connect = connect;
    Kernel.prototype.send = send;
    assert.equal(escaped, [], 'errors escaped to the process');
    // The gateway still serves and every kernel still executes, through a normal client.
    const res = await fetch(`${g.url}api`, { headers: { Authorization: 'token fuzz-token' } });
    assert.is(res.status, 200);
    for (const id of kernels) {
      const kernel = g.manager.get(id);
      if (!kernel) throw new Error(`kernel ${id} is gone; the gateway's log:\n${logText.split('\n').filter((line) => line.includes(id)).join('\n')}`);
      assert.ok(await kernel.whenReady(60000), `kernel ${id} is not ready again`);
      // Fuzzed clients leave cells queued, some waiting in input(): interrupt until a fresh client is answered.
      const client = { ...gw, url: g.url, wsUrl: target.wsUrl, token: 'fuzz-token' };
      await waitUntil(
        async () => {
          await kernel.interrupt();
          return (await runInKernel(client, id, 'print(6 * 7)', {}, 5000)) === '42\n';
        },
        180000,
        `kernel ${id} to answer a fresh client`,
        500,
      );
      await waitUntil(() => g.manager.connectionsOf(id) === 0, 20000, `kernel ${id}: connections back to 0 (now ${g.manager.connectionsOf(id)})`);
    }
    assert.match(logText, /injected failure/, 'the injected failures were not logged');
  } finally {
    KernelHub.prototype.connect = connect;
    Kernel.prototype.send = send;
    await gateway?.close();
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onRejection);
    for (const key of Object.keys(process.env)) if (!(key in savedEnv)) delete process.env[key];
    Object.assign(process.env, savedEnv);
    rmSync(dir, { recursive: true, force: true });
  }
});

shutdownTest(test, () => gw);
test.run();
