/**
 * The classic Notebook (Debian's notebook 6) in gateway mode against our gateway, started from a
 * folder of its own outside the gateway's root: a notebook session gets a kernel on our gateway that
 * runs in the notebook's folder, and a client talking to the Notebook server (never to our gateway)
 * executes in it.
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { api, guardSuite, shutdownTest, startGateway, waitUntil, type Gateway } from '../helpers/gateway.ts';
import { execute, KernelClient } from '../helpers/kernel-ws.ts';
import { freePort, spawnLogged, type LoggedProcess } from '../helpers/processes.ts';

const test = suite('gateway mode: classic Notebook 6 --gateway-url → our gateway, from its own folder');
let gw: Gateway;
let notebook: { proc: LoggedProcess; url: string; token: string; root: string; log: () => string } | undefined;

guardSuite(
  test,
  async () => {
    gw = await startGateway();
    const root = realpathSync(mkdtempSync(join(tmpdir(), 'kg-it-notebook6-')));
    const dirs = { cwd: join(root, 'home'), runtime: join(root, 'runtime'), data: join(root, 'data'), config: join(root, 'config') };
    for (const dir of Object.values(dirs)) mkdirSync(dir, { recursive: true });
    mkdirSync(join(dirs.cwd, 'project'));
    const token = `nb-${Math.random().toString(36).slice(2)}`;
    const port = await freePort();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('JUPYTER_') && !k.startsWith('KG_')) env[k] = v;
    Object.assign(env, { JUPYTER_RUNTIME_DIR: dirs.runtime, JUPYTER_DATA_DIR: dirs.data, JUPYTER_CONFIG_DIR: dirs.config, PYTHONUNBUFFERED: '1' });
    const proc = spawnLogged({
      command: ['/usr/bin/python3', '-m', 'notebook', '--allow-root', '--no-browser', '--ip=127.0.0.1', `--port=${port}`, '--port-retries=0',
        `--NotebookApp.token=${token}`, `--gateway-url=${gw.url.replace(/\/$/, '')}`, `--GatewayClient.auth_token=${gw.token}`],
      cwd: dirs.cwd,
      env,
    });
    const log = () => proc.stdout() + proc.stderr();
    notebook = { proc, url: `http://127.0.0.1:${port}/`, token, root, log };
    await waitUntil(
      async () => {
        if (proc.exit) throw new Error(`the Notebook server exited: ${log()}`);
        const res = await fetch(`${notebook!.url}api`, { headers: { Authorization: `token ${token}` } }).catch(() => undefined);
        return res?.status === 200;
      },
      30000,
      'the Notebook server to answer GET /api',
      200,
    );
  },
  async () => {
    if (notebook) {
      await notebook.proc.stop(5000);
      rmSync(notebook.root, { recursive: true, force: true });
    }
  },
);

test("a notebook in the Notebook server's own folder gets a kernel that runs there, and executes through the Notebook server", async () => {
  const nb = notebook!;
  const project = join(nb.root, 'home', 'project');
  assert.not.ok(project.startsWith(realpathSync(dirname(gw.runtimeDir))), 'the notebook folder must lie outside the gateway root');
  const res = await fetch(`${nb.url}api/sessions`, {
    method: 'POST',
    headers: { Authorization: `token ${nb.token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ path: 'project/analysis.ipynb', type: 'notebook', name: '', kernel: { name: 'python3' } }),
  });
  const text = await res.text();
  assert.is(res.status, 201, `${text}\n--- Notebook log ---\n${nb.log().slice(-3000)}\n--- gateway log ---\n${gw.stderr().slice(-3000)}`);
  const session = JSON.parse(text) as { id: string; kernel: { id: string } };
  assert.ok((await api(gw, 'GET', 'api/kernels')).body.some((k: { id: string }) => k.id === session.kernel.id), 'the kernel is not on our gateway');
  // Through the Notebook server's own WebSocket, which it bridges to ours.
  const client = await KernelClient.connect({ ...gw, wsUrl: nb.url.replace(/^http/, 'ws'), token: nb.token }, session.kernel.id, { timeoutMs: 30000 });
  const cwd = await execute(client, 'import os\nprint(os.getcwd())', 30000);
  assert.is(cwd.stdout.trim(), project);
  await client.closeAndWait();
  const deleted = await fetch(`${nb.url}api/sessions/${session.id}`, { method: 'DELETE', headers: { Authorization: `token ${nb.token}` } });
  assert.is(deleted.status, 204);
  await waitUntil(async () => !(await api(gw, 'GET', 'api/kernels')).body.some((k: { id: string }) => k.id === session.kernel.id), 15000, 'the kernel to be gone');
});

shutdownTest(test, () => gw);
test.run();
