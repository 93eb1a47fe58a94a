/**
 * Load on the gateway itself, with the built-in JavaScript kernel so kernels are cheap:
 *
 *  - many clients: N WebSocket clients (both protocols) on K kernels, all connected at once, each
 *    running one small cell at the same moment; success count, execute latency p50/p99, whether every
 *    client received every iopub message of its kernel, gateway RSS, CPU and open file descriptors;
 *  - churn: create a kernel, execute in it through a WebSocket, delete it, many times over; gateway
 *    RSS and open file descriptors before and after.
 *
 *   node out/bench/load.js [--quick] [--clients N] [--kernels K] [--full] [--cycles C]
 *
 * Defaults: 1,000 clients on 10 kernels and 1,000 churn cycles; --full: 5,000 clients on 50 kernels;
 * --quick: 200 clients on 4 kernels and 100 cycles. Clients run in two worker processes.
 * Exit code 1 when a client failed or missed a message, or the gateway complained.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { percentile } from './figures.ts';
import { cpuSeconds, launchGateway, procStatusKb, rest, type Gateway } from './processes.ts';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const at = args.indexOf(name);
  return at >= 0 ? Number(args[at + 1]) : fallback;
};
const QUICK = args.includes('--quick');
const FULL = args.includes('--full');
const CLIENTS = flag('--clients', FULL ? 5000 : QUICK ? 200 : 1000);
const KERNELS = flag('--kernels', FULL ? 50 : QUICK ? 4 : 10);
const CYCLES = flag('--cycles', QUICK ? 100 : 1000);
const WORKERS = 2;
const TOKEN = 'bench';
const CODE = "console.log('hello from the load test')";
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const HERE = fileURLToPath(new URL('.', import.meta.url));
const log = (text: string) => console.error(`[load] ${text}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const problems: string[] = [];

const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
const mb = (kb: number | undefined) => (kb === undefined ? '?' : `${(kb / 1024).toFixed(0)} MB`);

function call<T extends { type: string }>(worker: ChildProcess, message: object, answer: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not answer ${answer} within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (reply: T) => {
      if (reply.type !== answer) return;
      clearTimeout(timer);
      worker.off('message', onMessage);
      resolve(reply);
    };
    worker.on('message', onMessage);
    worker.send(message);
  });
}

async function startKernels(gateway: Gateway, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += 5) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(5, count - i) }, () => rest(gateway, TOKEN, 'POST', 'api/kernels', { name: 'javascript' })),
    );
    for (const res of batch) {
      if (res.status !== 201) throw new Error(`POST /api/kernels → ${res.status} ${JSON.stringify(res.body)}`);
      ids.push((res.body as { id: string }).id);
    }
  }
  return ids;
}

async function manyClients(gateway: Gateway): Promise<void> {
  const pid = gateway.pid;
  log(`starting ${KERNELS} javascript kernels`);
  const kernels = await startKernels(gateway, KERNELS);
  const fdsIdle = openFds(pid);
  const rssIdle = procStatusKb(pid, 'VmRSS');
  const workers = Array.from({ length: WORKERS }, () => fork(join(HERE, 'load-client.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  const assignment: string[][] = workers.map(() => []);
  for (let i = 0; i < CLIENTS; i++) assignment[i % WORKERS].push(kernels[i % KERNELS]);
  log(`connecting ${CLIENTS} clients from ${WORKERS} processes`);
  const wsBase = gateway.url.toString().replace(/^http/, 'ws');
  const t0 = performance.now();
  const connected = await Promise.all(
    workers.map((w, i) => call<{ type: string; opened: number; failed: number; errors: string[] }>(w, { type: 'connect', wsBase, token: TOKEN, kernels: assignment[i], code: CODE, worker: i }, 'connected', 300_000)),
  );
  const connectSeconds = (performance.now() - t0) / 1000;
  const opened = connected.reduce((n, c) => n + c.opened, 0);
  const failedToOpen = connected.reduce((n, c) => n + c.failed, 0);
  if (failedToOpen > 0) problems.push(`${failedToOpen} clients could not connect: ${connected.flatMap((c) => c.errors).join('; ')}`);
  const fdsConnected = openFds(pid);
  const rssConnected = procStatusKb(pid, 'VmRSS');
  log(`${opened} clients connected in ${connectSeconds.toFixed(1)} s; running one cell in each`);
  const cpu0 = cpuSeconds(pid);
  const t1 = performance.now();
  await Promise.all(workers.map((w) => call(w, { type: 'run' }, 'sent', 60_000)));
  let done = 0;
  const deadline = Date.now() + 300_000;
  while (done < opened && Date.now() < deadline) {
    await sleep(250);
    const progress = await Promise.all(workers.map((w) => call<{ type: string; done: number }>(w, { type: 'progress' }, 'progress', 30_000)));
    done = progress.reduce((n, p) => n + p.done, 0);
  }
  const runSeconds = (performance.now() - t1) / 1000;
  // Let the last iopub messages (idle statuses) reach every client.
  await sleep(1000);
  const cpuRun = cpuSeconds(pid) - cpu0;
  const reports = await Promise.all(
    workers.map((w) => call<{ type: string; clients: Array<{ kernelId: string; msgId: string; latency?: number; idles: string[]; open: boolean }> }>(w, { type: 'report' }, 'report', 60_000)),
  );
  const all = reports.flatMap((r) => r.clients);
  const cellsOf = new Map<string, Set<string>>();
  for (const c of all) {
    if (!cellsOf.has(c.kernelId)) cellsOf.set(c.kernelId, new Set());
    cellsOf.get(c.kernelId)!.add(c.msgId);
  }
  const complete = all.filter((c) => [...cellsOf.get(c.kernelId)!].every((id) => c.idles.includes(id))).length;
  const latencies = all.map((c) => c.latency).filter((l): l is number => l !== undefined).sort((a, b) => a - b);
  const fdsRun = openFds(pid);
  const peak = procStatusKb(pid, 'VmHWM');
  for (const w of workers) w.send({ type: 'close' });
  await sleep(1500);
  for (const id of kernels) await rest(gateway, TOKEN, 'DELETE', `api/kernels/${id}`);
  const rssAfter = procStatusKb(pid, 'VmRSS');
  if (latencies.length < CLIENTS) problems.push(`${CLIENTS - latencies.length} of ${CLIENTS} clients got no reply`);
  if (complete < opened) problems.push(`${opened - complete} of ${opened} clients missed iopub messages of their kernel`);
  if (all.some((c) => !c.open)) problems.push(`${all.filter((c) => !c.open).length} clients were disconnected`);

  console.log('');
  console.log(`Many clients: ${CLIENTS} WebSocket clients (half v1, half JSON) on ${KERNELS} javascript kernels, ${cpus().length} cores`);
  console.log(`  connected                  ${opened} of ${CLIENTS} in ${connectSeconds.toFixed(1)} s`);
  console.log(`  cells answered             ${latencies.length} of ${CLIENTS} (all sent at once) in ${runSeconds.toFixed(1)} s`);
  console.log(`  every iopub message        ${complete} of ${opened} clients saw the idle status of every cell on their kernel (${CLIENTS / KERNELS} cells each)`);
  console.log(`  execute latency            p50 ${percentile(latencies, 50)?.toFixed(0)} ms, p99 ${percentile(latencies, 99)?.toFixed(0)} ms, max ${latencies.at(-1)?.toFixed(0)} ms`);
  console.log(`  gateway CPU                ${cpuRun.toFixed(1)} s over the run (${((cpuRun / runSeconds) * 100).toFixed(0)} % of one core)`);
  console.log(`  gateway RSS                ${mb(rssIdle)} with the kernels idle, ${mb(rssConnected)} with the clients connected, peak ${mb(peak)}, ${mb(rssAfter)} after`);
  console.log(`  gateway open files         ${fdsIdle} before, ${fdsConnected} connected (${((fdsConnected - fdsIdle) / Math.max(1, opened)).toFixed(2)} per client), ${fdsRun} after the run`);
}

/** One create / connect / execute / delete cycle. */
async function cycle(gateway: Gateway, wsBase: string): Promise<void> {
  const created = await rest(gateway, TOKEN, 'POST', 'api/kernels', { name: 'javascript' });
  if (created.status !== 201) throw new Error(`POST → ${created.status} ${JSON.stringify(created.body)}`);
  const id = (created.body as { id: string }).id;
  await new Promise<void>((resolve, reject) => {
    const ws = new WebSocket(`${wsBase}api/kernels/${id}/channels?token=${TOKEN}`);
    const msgId = `churn-${id}`;
    let replied = false;
    let idle = false;
    const timer = setTimeout(() => reject(new Error(`kernel ${id}: no reply within 30 s`)), 30_000);
    ws.on('open', () =>
      ws.send(JSON.stringify({
        header: { msg_id: msgId, msg_type: 'execute_request', username: 'bench', session: id, date: new Date().toISOString(), version: '5.3' },
        parent_header: {}, metadata: {}, channel: 'shell',
        content: { code: '1 + 1', silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
      })),
    );
    ws.on('message', (data: Buffer) => {
      const m = JSON.parse(data.toString());
      if (m.parent_header?.msg_id !== msgId) return;
      if (m.header.msg_type === 'execute_reply') replied = true;
      if (m.header.msg_type === 'status' && m.content.execution_state === 'idle') idle = true;
      if (replied && idle) {
        clearTimeout(timer);
        ws.close();
        resolve();
      }
    });
    ws.on('error', (error) => reject(error));
  });
  const deleted = await rest(gateway, TOKEN, 'DELETE', `api/kernels/${id}`);
  if (deleted.status !== 204) throw new Error(`DELETE → ${deleted.status}`);
}

async function churn(gateway: Gateway): Promise<void> {
  const pid = gateway.pid;
  const wsBase = gateway.url.toString().replace(/^http/, 'ws');
  // A few cycles first, so start-up allocations are not counted as growth.
  for (let i = 0; i < 5; i++) await cycle(gateway, wsBase);
  await sleep(1000);
  const rssBefore = procStatusKb(pid, 'VmRSS');
  const fdsBefore = openFds(pid);
  log(`churn: ${CYCLES} create/execute/delete cycles, 4 at a time`);
  const t0 = performance.now();
  let next = 0;
  let failures = 0;
  const errors: string[] = [];
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < CYCLES) {
        next++;
        try {
          await cycle(gateway, wsBase);
        } catch (error) {
          failures++;
          if (errors.length < 5) errors.push((error as Error).message);
        }
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  await sleep(5000);
  const rssAfter = procStatusKb(pid, 'VmRSS');
  const fdsAfter = openFds(pid);
  const left = await rest(gateway, TOKEN, 'GET', 'api/kernels');
  if (failures > 0) problems.push(`churn: ${failures} of ${CYCLES} cycles failed: ${errors.join('; ')}`);
  if (fdsAfter > fdsBefore + 5) problems.push(`churn: open files grew from ${fdsBefore} to ${fdsAfter}`);
  console.log('');
  console.log(`Churn: ${CYCLES} cycles of create kernel, execute over a WebSocket, delete (4 at a time)`);
  console.log(`  cycles                     ${CYCLES - failures} of ${CYCLES} succeeded in ${seconds.toFixed(1)} s (${(CYCLES / seconds).toFixed(1)}/s)`);
  console.log(`  gateway RSS                ${mb(rssBefore)} before, ${mb(rssAfter)} after (5 s idle)`);
  console.log(`  gateway open files         ${fdsBefore} before, ${fdsAfter} after`);
  console.log(`  kernels left               ${(left.body as unknown[]).length}`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kg-load-'));
  let gateway: Gateway | undefined;
  let failed = false;
  try {
    gateway = await launchGateway(ROOT, dir, TOKEN, 30_000);
    await manyClients(gateway);
    await churn(gateway);
    if (gateway.complaints.length > 0) {
      console.log(`\ngateway logged ${gateway.complaints.length} warning/error line(s), e.g.:`);
      for (const line of gateway.complaints.slice(0, 10)) console.log(`    ${line}`);
    }
  } catch (error) {
    failed = true;
    console.error(`[load] FAILED: ${(error as Error).stack ?? error}`);
  }
  const forced = await gateway?.stop(30_000);
  if (forced) problems.push(forced);
  if (problems.length > 0) {
    failed = true;
    console.log(`\n${problems.length} PROBLEM(S):`);
    for (const p of problems) console.log(`  !!! ${p}`);
  }
  if (!failed) rmSync(dir, { recursive: true, force: true });
  else console.log(`gateway log kept in ${dir}`);
  process.exit(failed ? 1 : 0);
}

await main();
