/**
 * Slurm kernels against a local one, through the same gateway, in one run: an ipykernel started by
 * the local provisioner, and one in a Slurm job per transport (tunnel, direct). Measured through
 * the gateway's v1 WebSocket protocol: kernel start (POST /api/kernels until a kernel_info_reply on
 * the WebSocket), execute round trips (p50, p99), iopub messages per second, one 50 MB output.
 * Workloads are interleaved in blocks because a small shared machine is noisy.
 *
 *   node out/bench/slurm.js [--quick]      (needs a running Slurm: .ci/slurm-start)
 *
 * Goals: round trip within 1.3x of local in tunnel mode and 1.15x in direct mode; iopub at least
 * 0.9x. Exit code 1 when a workload failed or a message was lost (a missed goal is printed).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { executeContent, ready, runCell, until } from './cells.ts';
import { WsConnection, type KernelConnection } from './connections.ts';
import { median, percentile, rotate } from './figures.ts';
import { launchGateway, PYTHON, rest, type Gateway } from './processes.ts';

const QUICK = process.argv.includes('--quick');
const STARTS = QUICK ? 2 : 4;
const EXECUTES = QUICK ? 200 : 600;
const BLOCK = 10;
const MESSAGES = QUICK ? 5000 : 20_000;
const ROUNDS = QUICK ? 1 : 5;
const LARGE_BYTES = 50_000_000;
const TOKEN = 'bench-slurm';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const log = (text: string) => console.error(`[bench slurm] ${text}`);

interface Kind {
  label: string;
  spec: string;
  goal?: { roundTrip: number; iopub: number };
}
const KINDS: Kind[] = [
  { label: 'local', spec: 'python3' },
  { label: 'slurm tunnel', spec: 'bench-slurm-tunnel', goal: { roundTrip: 1.3, iopub: 0.9 } },
  { label: 'slurm direct', spec: 'bench-slurm-direct', goal: { roundTrip: 1.15, iopub: 0.9 } },
];

function writeSpecs(jupyterPath: string): void {
  for (const transport of ['tunnel', 'direct']) {
    const dir = join(jupyterPath, 'kernels', `bench-slurm-${transport}`);
    mkdirSync(dir, { recursive: true });
    const spec = {
      argv: [PYTHON, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
      display_name: `Python in a Slurm job (${transport})`,
      language: 'python',
      env: { PYDEVD_DISABLE_FILE_VALIDATION: '1' },
      metadata: { kernel_provisioner: { provisioner_name: 'slurm-provisioner', config: { transport, launch_timeout: 120 } } },
    };
    writeFileSync(join(dir, 'kernel.json'), JSON.stringify(spec, null, 1));
  }
}

/**
 * Runs `code` and resolves with the milliseconds until both its execute_reply and its idle status
 * arrived; `onMessage` sees every message it caused.
 */
function timedCell(connection: KernelConnection, code: string, timeoutMs: number, onMessage: (msgType: string, content: () => Record<string, unknown>) => void = () => undefined): Promise<number> {
  const request = connection.prepare('execute_request', executeContent(code));
  let replied = false;
  let idle = false;
  let start = 0;
  return until(() => `${connection.label}: ${code.slice(0, 40)} (reply ${replied}, idle ${idle})`, timeoutMs, [connection], (done, fail) => {
    const off = connection.listen(request.msgId, (message) => {
      onMessage(message.msgType, message.content);
      if (message.channel === 'shell' && message.msgType === 'execute_reply') {
        if (message.content().status !== 'ok') return fail(new Error(`${connection.label}: ${JSON.stringify(message.content()).slice(0, 300)}`));
        replied = true;
      } else if (message.msgType === 'status' && message.content().execution_state === 'idle') idle = true;
      if (replied && idle) done(performance.now() - start);
    });
    start = performance.now();
    connection.send(request).catch(fail);
    return off;
  });
}

/** display_data as fast as ipykernel's session can send them (no stream flush per display). */
const iopubCell = (n: number) =>
  [
    'k = get_ipython().kernel',
    `for i in range(${n}): k.session.send(k.iopub_socket, 'display_data', {'data': {'text/plain': str(i)}, 'metadata': {}}, parent=k.get_parent('shell'))`,
  ].join('\n');
/**
 * ipykernel's iopub socket drops beyond 1,000 messages queued per subscriber when the machine is
 * loaded; without that limit a lost message is the transport's. Set on its I/O thread, which owns the socket.
 */
const NO_IOPUB_LIMIT_CELL = 'import zmq\n_t = get_ipython().kernel.iopub_thread\n_t.io_loop.add_callback(lambda: _t.socket.setsockopt(zmq.SNDHWM, 0))';
const largeCell = `from IPython.display import publish_display_data\npublish_display_data({'text/plain': 'x' * ${LARGE_BYTES}})`;

/** CPU time a process has used (user + system), in ms, from /proc. */
function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in clock ticks (100 per second on Linux)
  } catch {
    return 0;
  }
}

/** The launcher of a job running on this host: its process whose last argument is `launch`, with the job's id in its environment. */
function launcherOf(jobId: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean).at(-1) !== 'launch') continue;
      if (readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0').includes(`SLURM_JOB_ID=${jobId}`)) return Number(entry);
    } catch {
      /* gone */
    }
  }
  return undefined;
}


interface Subject {
  kind: Kind;
  id: string;
  connection: WsConnection;
  starts: number[];
  roundTrips: number[];
  iopub: number[];
  /** CPU time (ms) per 1,000 iopub messages: the gateway's, and the launcher's (Slurm kernels). */
  gatewayCpu: number[];
  launcherCpu: number[];
  launcherPid?: number;
  large?: number;
  problems: string[];
}

async function startKernel(gateway: Gateway, kind: Kind): Promise<{ id: string; connection: WsConnection; ms: number }> {
  const t0 = performance.now();
  const response = await rest(gateway, TOKEN, 'POST', 'api/kernels', { name: kind.spec }, 180_000);
  const id = (response.body as { id?: unknown } | undefined)?.id;
  if (response.status !== 201 || typeof id !== 'string') throw new Error(`${kind.label}: POST /api/kernels answered ${response.status}: ${JSON.stringify(response.body)}`);
  const url = `${gateway.url.href.replace(/^http/, 'ws')}api/kernels/${id}/channels?token=${TOKEN}`;
  const connection = await WsConnection.open(kind.label, url, true, 30_000);
  await ready(connection);
  return { id, connection, ms: performance.now() - t0 };
}

async function benchmark(gateway: Gateway): Promise<Subject[]> {
  const subjects = new Map<Kind, Subject>();
  // 1. Starts, interleaved; the last kernel of each kind stays for the workloads.
  for (let round = 0; round < STARTS; round++) {
    for (const kind of rotate(KINDS, round)) {
      const started = await startKernel(gateway, kind);
      log(`start ${kind.label}: ${started.ms.toFixed(0)} ms`);
      const previous = subjects.get(kind);
      if (previous) {
        await previous.connection.close();
        await rest(gateway, TOKEN, 'DELETE', `api/kernels/${previous.id}`);
      }
      subjects.set(kind, { kind, id: started.id, connection: started.connection, starts: [...(previous?.starts ?? []), started.ms], roundTrips: [], iopub: [], gatewayCpu: [], launcherCpu: [], problems: [] });
    }
  }
  const all = [...subjects.values()];
  for (const s of all) {
    await runCell(s.connection, NO_IOPUB_LIMIT_CELL);
    const job = (await rest(gateway, TOKEN, 'GET', `api/kernels/${s.id}`)).body as { provisioner?: { job_id?: string } };
    if (job.provisioner?.job_id) s.launcherPid = launcherOf(job.provisioner.job_id);
  }
  // 2. Round trips of an empty cell, in rotated blocks.
  for (const s of all) for (let i = 0; i < 30; i++) await timedCell(s.connection, 'pass', 10_000);
  for (let block = 0; block * BLOCK < EXECUTES; block++) {
    for (const s of rotate(all, block)) for (let i = 0; i < BLOCK; i++) s.roundTrips.push(await timedCell(s.connection, 'pass', 10_000));
  }
  // 3. iopub throughput.
  for (let round = 0; round < ROUNDS; round++) {
    for (const s of rotate(all, round)) {
      let count = 0;
      const cpuBefore = [cpuMs(gateway.pid), s.launcherPid ? cpuMs(s.launcherPid) : 0];
      const ms = await timedCell(s.connection, iopubCell(MESSAGES), 120_000, (type) => type === 'display_data' && count++);
      s.iopub.push((count / ms) * 1000);
      s.gatewayCpu.push(((cpuMs(gateway.pid) - cpuBefore[0]) / count) * 1000);
      if (s.launcherPid) s.launcherCpu.push(((cpuMs(s.launcherPid) - cpuBefore[1]) / count) * 1000);
      if (count !== MESSAGES) s.problems.push(`iopub round ${round + 1}: ${count} of ${MESSAGES} display_data arrived`);
      log(`iopub ${s.kind.label}: ${Math.round((count / ms) * 1000)} msg/s`);
    }
  }
  // 4. One 50 MB output.
  for (const s of all) {
    let size = 0;
    s.large = await timedCell(s.connection, largeCell, 180_000, (type, content) => {
      if (type === 'display_data') size = String((content().data as Record<string, unknown>)['text/plain']).length;
    });
    if (size !== LARGE_BYTES) s.problems.push(`50 MB output: ${size} bytes arrived`);
    log(`50 MB output ${s.kind.label}: ${s.large.toFixed(0)} ms`);
  }
  return all;
}

function report(subjects: Subject[]): boolean {
  const [local, ...slurm] = subjects;
  const stats = (s: Subject) => {
    const sorted = [...s.roundTrips].sort((a, b) => a - b);
    return {
      start: median(s.starts),
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      iopub: median(s.iopub),
      gatewayCpu: median(s.gatewayCpu),
      launcherCpu: s.launcherCpu.length ? median(s.launcherCpu) : 0,
      large: s.large ?? NaN,
    };
  };
  const base = stats(local);
  const rows: [string, (x: ReturnType<typeof stats>) => number, number][] = [
    [`start, POST to kernel_info_reply (ms, median of ${STARTS})`, (x) => x.start, 0],
    [`execute round trip p50 (ms, n=${EXECUTES})`, (x) => x.p50, 3],
    ['execute round trip p99 (ms)', (x) => x.p99, 3],
    [`iopub display_data x${MESSAGES} (msg/s, median of ${ROUNDS})`, (x) => x.iopub, 0],
    ['  gateway CPU per 1,000 iopub messages (ms)', (x) => x.gatewayCpu, 1],
    ['  launcher CPU per 1,000 iopub messages (ms)', (x) => x.launcherCpu, 1],
    ['one 50 MB output (ms)', (x) => x.large, 0],
  ];
  const header = ['workload', ...subjects.map((s) => s.kind.label), ...slurm.map((s) => `${s.kind.label.replace('slurm ', '')}/local`)];
  const lines = rows.map(([label, pick, digits]) => [
    label,
    ...subjects.map((s) => pick(stats(s)).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })),
    ...slurm.map((s) => (pick(base) > 0 ? `${(pick(stats(s)) / pick(base)).toFixed(2)}x` : '-')),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const render = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ');
  console.log(`\nSlurm kernels through the gateway (${QUICK ? 'quick' : 'full'}; ${cpus().length} cores; one-node Slurm on this host)`);
  console.log(render(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const line of lines) console.log(render(line));
  let ok = true;
  for (const s of slurm) {
    const x = stats(s);
    const rt = x.p50 / base.p50;
    const io = x.iopub / base.iopub;
    console.log(
      `${s.kind.label}: round trip p50 ${rt.toFixed(2)}x (goal <= ${s.kind.goal!.roundTrip}x: ${rt <= s.kind.goal!.roundTrip ? 'met' : 'MISSED'}), ` +
        `iopub ${io.toFixed(2)}x (goal >= ${s.kind.goal!.iopub}x: ${io >= s.kind.goal!.iopub ? 'met' : 'MISSED'})`,
    );
  }
  for (const s of subjects) for (const problem of s.problems) {
    ok = false;
    console.log(`!!! ${s.kind.label}: ${problem}`);
  }
  return ok;
}

async function main(): Promise<void> {
  try {
    execFileSync('sinfo', ['-h', '-o', '%T'], { stdio: 'ignore', timeout: 15000 });
  } catch {
    console.error('[bench slurm] Slurm is not running on this machine: start it with .ci/slurm-start (as root)');
    process.exit(1);
  }
  const dir = mkdtempSync(join(tmpdir(), 'kg-bench-slurm-'));
  writeSpecs(join(dir, 'jupyter'));
  // The gateway inherits this environment: the Slurm kernelspecs beside the installed python3.
  process.env.JUPYTER_PATH = join(dir, 'jupyter');
  log(`${cpus().length} cores, load ${loadavg()[0].toFixed(2)}; ${STARTS} starts each, ${EXECUTES} executes, ${MESSAGES} messages x ${ROUNDS}`);
  const gateway = await launchGateway(ROOT, dir, TOKEN, 30_000);
  let ok = false;
  try {
    ok = report(await Promise.race([benchmark(gateway), gateway.died]));
  } catch (error) {
    console.error(`\n[bench slurm] FAILED: ${(error as Error).message}`);
  }
  const forced = await gateway.stop(30_000);
  if (forced) {
    ok = false;
    console.error(`[bench slurm] gateway stop: ${forced}`);
  }
  if (ok) rmSync(dir, { recursive: true, force: true });
  else console.error(`[bench slurm] kept ${dir} (gateway log)`);
  process.exit(ok ? 0 : 1);
}

await main();
