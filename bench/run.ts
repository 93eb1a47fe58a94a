/**
 * Gateway benchmark: the same workloads against an ipykernel over direct ZeroMQ (the physical
 * limit) and through the gateway (v1 binary and legacy JSON WebSocket protocols), in one run,
 * interleaved in blocks because a small shared machine is noisy. Prints a table with gateway/direct.
 *
 *   node out/bench/run.js [--quick] [--direct-only] [--only SECTION,...] [--gateway-node-options "OPTIONS"]
 *                         [--gateway-env NAME=VALUE ...]
 *
 * --quick: 200 executes and 5,000 messages, one round. --direct-only: skip the gateway.
 * --only: some of the sections (ipykernel, large, flood, hop, kernels); --flood-clients 1,20 and --flood-sizes 100: other
 * client counts and content sizes for the flood. --gateway-node-options: Node options for the gateway
 * process alone, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof". --gateway-root DIR: run the gateway of another
 * built checkout (its bin/kernelgateway.js), e.g. an older commit, with this benchmark. --gateway-env: an
 * environment variable for the gateway alone, e.g. GLIBC_TUNABLES=glibc.malloc.mmap_threshold=65536.
 * Exit code 1 when anything failed, including lost or reordered messages.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DirectConnection, WsConnection, type KernelConnection } from './connections.ts';
import { launchGateway, launchKernel, rest, type Gateway } from './processes.ts';
import { executeContent, executeOnce, ready, runCell, until } from './cells.ts';
import { mean, median, percentile, rotate } from './figures.ts';
import { printTable, type Row } from './table.ts';
import { HOP_COLUMNS, hopCeiling } from './hop-ceiling.ts';
import { floodBenchmark, writeFloodKernelspec, type FloodContext } from './flood.ts';
import { freshTouchMs, LARGE_WORKLOADS, largeOutputs } from './large.ts';
import { around, idleKernels, memoryReleased, printMemory, rssMb, type MemoryLine } from './memory.ts';

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const DIRECT_ONLY = args.includes('--direct-only');
// Large outputs before the flood: their peaks are then measured from an RSS the flood has not grown.
const ALL_SECTIONS = ['ipykernel', 'large', 'flood', 'hop', 'kernels'];
const nodeOptionsAt = args.indexOf('--gateway-node-options');
/** Node options for the gateway only, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile it. */
const GATEWAY_NODE_OPTIONS = nodeOptionsAt >= 0 ? args[nodeOptionsAt + 1].split(' ').filter(Boolean) : [];
/** Environment variables for the gateway alone (--gateway-env NAME=VALUE, repeatable), e.g. GLIBC_TUNABLES. */
const GATEWAY_ENV = Object.fromEntries(args.flatMap((a, i) => (a === '--gateway-env' ? [args[i + 1].split(/=(.*)/s).slice(0, 2)] : [])));
/**
 * After a burst, glibc keeps free memory the gateway's heap grew to unless it is trimmed (README: Memory
 * after a burst). With this setting every allocation of 16 KB or more comes from mmap and goes back when
 * freed: the flood's 64 KB workloads run again on a second gateway started with it, for its RSS
 * afterwards and its CPU cost.
 */
const GIVE_BACK_TUNABLES = 'glibc.malloc.mmap_threshold=16384';
/**
 * How long after the flood its RSS "after" is read: the gateway gives a burst's memory back over its
 * first quiet seconds (src/memory-release.ts: V8 shrinks its young generation after ~8 s of them).
 */
const FLOOD_SETTLE_MS = 12_000;
const gatewayRootAt = args.indexOf('--gateway-root');
const floodClientsAt = args.indexOf('--flood-clients');
const FLOOD_CLIENTS = floodClientsAt >= 0 ? args[floodClientsAt + 1].split(',').map(Number) : undefined;
const floodSizesAt = args.indexOf('--flood-sizes');
const FLOOD_SIZES = floodSizesAt >= 0 ? args[floodSizesAt + 1].split(',').map(Number) : undefined;
const onlyAt = args.indexOf('--only');
/** The parts of the run (all by default): --only ipykernel,flood runs some of them. */
const SECTIONS = new Set(onlyAt >= 0 ? args[onlyAt + 1].split(',') : ALL_SECTIONS);
for (const section of SECTIONS) if (!ALL_SECTIONS.includes(section)) throw new Error(`--only: unknown section "${section}" (known: ${ALL_SECTIONS.join(', ')})`);
const EXECUTES = QUICK ? 200 : 1000;
const WARMUP = 50;
const BLOCK = QUICK ? 50 : 100; // executes per interleaved block
const MESSAGES = QUICK ? 5000 : 10_000;
const ROUNDS = QUICK ? 1 : 3; // throughput and fan-out rounds, interleaved
const FANOUT_CLIENTS = 20;
const KERNELS_MANY = QUICK ? 20 : 100; // idle javascript kernels for the memory figures
const TOKEN = 'bench';
const ROOT = fileURLToPath(new URL('../../', import.meta.url)); // out/bench/run.js → repository
/** Where the gateway under test comes from (this repository unless --gateway-root). */
const GATEWAY_ROOT = gatewayRootAt >= 0 ? args[gatewayRootAt + 1] : ROOT;

const STALL_MS = 30_000; // no message at all for this long during a flood = stall
const floodTimeoutMs = (messages: number) => 60_000 + messages * 10;

const problems: string[] = [];
/** Not the gateway's doing (e.g. ZeroMQ dropping at a high-water mark on the direct side): printed, not failed. */
const notes: string[] = [];
/** Keep the temporary directory (gateway log) when something went wrong. */
let keepDir = false;
function problem(text: string): void {
  problems.push(text);
  console.error(`!!! ${text}`);
}
function note(text: string): void {
  notes.push(text);
  console.error(`(note) ${text}`);
}
const log = (text: string) => console.error(`[bench] ${text}`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Waiting

/**
 * ipykernel's IOPub PUB socket keeps 1000 messages per subscriber and silently drops beyond that.
 * On this small machine that happens under CPU contention, direct and through the gateway alike
 * (seen as contiguous gaps of 50-600 messages). Lifting the limit inside each kernel (on its IO
 * thread, which owns the socket) leaves any remaining loss to the transport under test. libzmq 4.3
 * applies it to existing connections only (accepted ones take the options of bind time), so this
 * runs again after more subscribers connect.
 */
const UNLIMITED_PUB_CELL = [
  'import threading, zmq',
  'from IPython import get_ipython',
  '_iopub = get_ipython().kernel.iopub_thread',
  '_done = threading.Event()',
  'def _unlimit():',
  '    _iopub.socket.setsockopt(zmq.SNDHWM, 0)',
  '    _done.set()',
  '_iopub.io_loop.add_callback(_unlimit)',
  '_done.wait(5)',
  "print('SNDHWM', _iopub.socket.getsockopt(zmq.SNDHWM))",
].join('\n');

async function unlimitKernelPub(connection: KernelConnection): Promise<boolean> {
  try {
    const output = await runCell(connection, UNLIMITED_PUB_CELL);
    if (output.trim() === 'SNDHWM 0') return true;
    note(`${connection.label}: could not lift the kernel's IOPub high-water mark (printed "${output.trim()}"); losses may be ZeroMQ's`);
  } catch (error) {
    if (connection.broken) throw error;
    note(`${connection.label}: could not lift the kernel's IOPub high-water mark (${(error as Error).message}); losses may be ZeroMQ's`);
  }
  return false;
}


interface FloodResult {
  seconds: number;
  /** display_data per client before its idle, and after it (late = out of order). */
  counts: number[];
  late: number[];
}

/** One display() per output, as a notebook does. ipykernel flushes stdout/stderr through its IO thread (a thread round trip) on every display. */
const displayCell = (messages: number) => `from IPython.display import display\nfor i in range(${messages}): display(i)`;

/**
 * The same display_data messages without the per-display stream flush, so the kernel produces them
 * several times faster and the transport, not the kernel, is what is measured.
 */
const fastDisplayCell = (messages: number) =>
  [
    'from IPython import get_ipython',
    '_pub = get_ipython().display_pub',
    '_pub._flush_streams = lambda: None',
    'try:',
    `    for i in range(${messages}): _pub.publish({'text/plain': str(i)})`,
    'finally:',
    '    del _pub._flush_streams',
  ].join('\n');

/**
 * One cell displaying `messages` small outputs, sent by the first connection, counted by all.
 * Timed from send until the last client saw the idle status.
 */
function flood(connections: KernelConnection[], messages: number, code = displayCell): Promise<FloodResult> {
  const sender = connections[0];
  const request = sender.prepare('execute_request', executeContent(code(messages)));
  const counts = connections.map(() => 0);
  const late = connections.map(() => 0);
  const idleAt: (number | undefined)[] = connections.map(() => undefined);
  let replied = false;
  let start = 0;
  let last = 0;
  const state = () => {
    const idles = idleAt.filter((at) => at !== undefined).length;
    return `flood of ${messages} by ${sender.label}: display_data per client [${counts.join(', ')}], idle seen by ${idles}/${connections.length}, execute_reply ${replied ? 'arrived' : 'missing'}`;
  };
  return until(state, floodTimeoutMs(messages), connections, (done, fail) => {
    let grace: NodeJS.Timeout | undefined;
    const check = () => {
      if (!replied || idleAt.some((at) => at === undefined)) return;
      const end = Math.max(...(idleAt as number[]));
      const finish = () => done({ seconds: (end - start) / 1000, counts: [...counts], late: [...late] });
      // Short somewhere: wait a little to tell late (reordered) messages from lost ones.
      if (counts.every((count) => count === messages)) finish();
      else grace ??= setTimeout(finish, 2000);
    };
    const offs = connections.map((connection, i) =>
      connection.listen(request.msgId, (message) => {
        last = performance.now();
        if (message.msgType === 'display_data') {
          if (idleAt[i] === undefined) counts[i]++;
          else late[i]++;
        } else if (message.msgType === 'status' && message.content().execution_state === 'idle') {
          idleAt[i] ??= last;
          check();
        } else if (connection === sender && message.channel === 'shell' && message.msgType === 'execute_reply') {
          const status = message.content().status;
          if (status !== 'ok') return fail(new Error(`${sender.label}: flood execute_reply status ${String(status)}`));
          replied = true;
          check();
        }
      }),
    );
    const watchdog = setInterval(() => {
      if (performance.now() - last > STALL_MS) fail(new Error(`STALL: no message for ${STALL_MS / 1000} s: ${state()}`));
    }, 1000);
    start = last = performance.now();
    sender.send(request).catch(fail);
    return () => {
      for (const off of offs) off();
      clearInterval(watchdog);
      clearTimeout(grace);
    };
  });
}

/** Whether every kernel's IOPub socket runs without a high-water mark (see UNLIMITED_PUB_CELL). */
let pubUnlimited = false;

/**
 * Loud complaints for anything but exactly `messages` display_data per client, in order.
 * Direct-side anomalies are noted, not failed: they are not the gateway's.
 */
function checkFlood(what: string, result: FloodResult, messages: number, direct: boolean): void {
  const complain = direct ? note : problem;
  const why = direct
    ? pubUnlimited ? ' (direct ZeroMQ: in this client or libzmq, not the gateway)' : ' (ZeroMQ PUB high-water-mark drops in the kernel, not a gateway bug)'
    : pubUnlimited ? '' : ' (the kernel IOPub high-water mark is still 1000: ZeroMQ in the kernel may have dropped them)';
  const lost: string[] = [];
  result.counts.forEach((count, i) => {
    const total = count + result.late[i];
    if (total < messages) lost.push(`client ${i}: ${messages - total}`);
    if (total > messages) complain(`DUPLICATES (${what}, client ${i}): received ${total} display_data for ${messages} sent`);
    if (result.late[i] > 0) complain(`OUT OF ORDER (${what}, client ${i}): ${result.late[i]} display_data arrived after the idle status`);
  });
  if (lost.length) {
    complain(`MESSAGE LOSS (${what})${why}: of ${messages} display_data, lost ${lost.join(', ')}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Figures



// ---------------------------------------------------------------------------------------------
// Run

/** Cleanup steps, run last-first, each bounded so one hang cannot keep the others from running. */
const cleanups: { what: string; run: () => Promise<unknown> }[] = [];
async function cleanUp(): Promise<void> {
  while (cleanups.length) {
    const step = cleanups.pop()!;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([step.run(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), 20_000)))]);
    } catch (error) {
      console.error(`[bench] cleanup "${step.what}" failed: ${(error as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Rotates the order per block so no side always runs first (or right after a busy neighbour). */
/** What every section of the run shares. */
interface Run {
  dir: string;
  gateway: Gateway | undefined;
  fatal: (error: Error) => void;
}

async function benchmark(fatal: (error: Error) => void): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kg-bench-'));
  cleanups.push({ what: 'temporary directory', run: async () => (keepDir || problems.length ? log(`kept ${dir} (gateway log)`) : rmSync(dir, { recursive: true, force: true })) });
  log(`${QUICK ? 'quick' : 'full'} run (${[...SECTIONS].join(', ')}): ${EXECUTES} executes, ${MESSAGES} messages, ${ROUNDS} round(s); ${cpus().length} cores, load ${loadavg()[0].toFixed(2)}${GATEWAY_ROOT === ROOT ? '' : `; gateway from ${GATEWAY_ROOT}`}`);

  // The gateway finds the flood kernel through JUPYTER_PATH, beside the installed kernelspecs.
  const jupyterPath = [writeFloodKernelspec(ROOT, dir), process.env.JUPYTER_PATH].filter(Boolean).join(delimiter);
  let gateway: Gateway | undefined;
  if (!DIRECT_ONLY) {
    gateway = await launchGateway(GATEWAY_ROOT, dir, TOKEN, 30_000, { env: { ...process.env, ...GATEWAY_ENV, JUPYTER_PATH: jupyterPath }, nodeOptions: GATEWAY_NODE_OPTIONS });
    const gw = gateway;
    cleanups.push({
      what: 'gateway',
      run: async () => {
        const forced = await gw.stop(15_000);
        if (forced) problem(`SHUTDOWN: ${forced}`);
        else log('gateway exited cleanly after SIGTERM');
      },
    });
    gateway.died.catch(fatal);
    log(`gateway at ${gateway.url} (pid ${gateway.pid})`);
  }
  const run: Run = { dir, gateway, fatal };
  const rows: Row[] = [];
  const lines: string[] = [];
  const memory: MemoryLine[] = [];
  if (gateway) {
    await sleep(1000);
    const fresh = rssMb(gateway.pid);
    memory.push({ label: 'fresh (listening, no kernel)', mb: fresh, goal: '<= 50', met: fresh !== undefined && fresh <= 50 });
  }
  const cleanup = (what: string, step: () => Promise<unknown>) => cleanups.push({ what, run: step });
  const timed = async <T>(section: string, work: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    const result = await work();
    log(`${section}: ${((performance.now() - started) / 1000).toFixed(0)} s`);
    return result;
  };
  if (SECTIONS.has('ipykernel')) await timed('ipykernel workloads', () => around(gateway, 'ipykernel workloads', memory, () => ipykernelWorkloads(run, rows, lines)));
  if (SECTIONS.has('large')) {
    const touch = freshTouchMs();
    const large = await timed('large outputs', () => largeOutputs({ dir, quick: QUICK, gateway, token: TOKEN, log, problem, cleanup }));
    rows.push(...large.rows);
    lines.push(
      `large outputs: on this machine a first touch of memory costs ${touch.fresh.toFixed(0)} ms per 50 MB (copying 50 MB into memory already touched: ${touch.warm.toFixed(1)} ms); ` +
        'each hop that holds an output whole (the gateway, to check its signature) pays it once more',
    );
    if (gateway && large.memory) {
      const { before, peaks } = large.memory;
      memory.push({ label: 'large outputs: before (2 idle python3 kernels)', mb: before });
      for (const { label, v1, json } of peaks) {
        const workload = LARGE_WORKLOADS.find((w) => w.label === label)!;
        const output = (workload.outputs * workload.bytes) / 2 ** 20;
        const limit = before === undefined ? undefined : before + 2 * output;
        for (const [protocol, peak] of [['v1', v1], ['json', json]] as const) {
          const goal = limit === undefined ? undefined : `<= ${limit.toFixed(0)} (before + 2 x ${output.toFixed(0)} MB output)`;
          memory.push({ label: `${label}, ${protocol}: peak`, mb: peak, goal, met: peak !== undefined && limit !== undefined && peak <= limit });
        }
      }
      await sleep(2000);
      memory.push({ label: 'large outputs: after (kernels deleted, 2 s idle)', mb: rssMb(gateway.pid) });
    }
  }
  if (SECTIONS.has('flood')) {
    const flood = await timed('flood kernel workloads', () =>
      around(gateway, 'flood kernel workloads', memory, () =>
        floodBenchmark({ root: ROOT, dir, quick: QUICK, clients: FLOOD_CLIENTS, sizes: FLOOD_SIZES, gateway, token: TOKEN, log, problem, cleanup }),
        FLOOD_SETTLE_MS,
        90,
      ),
    );
    rows.push(...flood.rows);
    lines.push(...flood.summary);
    if (gateway && process.platform === 'linux' && !GATEWAY_ENV.GLIBC_TUNABLES) {
      const tuned = await timed(`flood again, gateway with GLIBC_TUNABLES=${GIVE_BACK_TUNABLES}`, () => floodOnTunedGateway(run, jupyterPath, memory, cleanup));
      rows.push(...tuned.rows.map((row) => ({ ...row, label: `${row.label} *` })));
      lines.push(`* on a second gateway started with GLIBC_TUNABLES=${GIVE_BACK_TUNABLES} (64 KB only, ${QUICK ? 1 : 3} round(s)): every allocation of 16 KB or more from mmap, given back when freed`);
    }
  }
  let hop: Awaited<ReturnType<typeof hopCeiling>> | undefined;
  if (SECTIONS.has('hop')) {
    hop = await timed('hop ceiling', () => hopCeiling({ root: ROOT, dir, quick: QUICK, log }));
    const flood = rows.find((row) => row.label === 'flood 1 client, 64 KB (msg/s)');
    const hundred = hop.rows.find((row) => row.label.startsWith('hop: 64 KB messages, 100 clients'));
    if (flood && typeof flood.direct === 'number' && hundred) {
      const most = Math.max(...[hundred.v1, hundred.json].filter((cell): cell is number => typeof cell === 'number'));
      hop.summary.push(
        `  the flood's one direct subscriber got ${Math.round(flood.direct).toLocaleString('en-US')} msg/s of 64 KB, so 5x is ${Math.round(5 * flood.direct).toLocaleString('en-US')} msg/s in all; ` +
          `the best relay delivered ${Math.round(most).toLocaleString('en-US')} (${(most / flood.direct).toFixed(2)}x) with readers that only count bytes`,
      );
    }
    const large = rows.find((row) => row.label === `${LARGE_WORKLOADS[0].label} (MB/s)`);
    if (large && typeof large.direct === 'number') {
      const megabytes = (LARGE_WORKLOADS[0].outputs * LARGE_WORKLOADS[0].bytes) / 1e6;
      const directMs = (megabytes / large.direct) * 1000;
      const over = (cell: Row['v1']) => (typeof cell === 'number' ? `${((megabytes / cell) * 1000 - directMs).toFixed(0)}` : '-');
      const bare = (value: number | undefined) => (value === undefined ? '-' : value.toFixed(0));
      hop.summary.push(
        `  ${LARGE_WORKLOADS[0].label} from ipykernel took ${directMs.toFixed(0)} ms direct; its goal (>= 0.95x) allows the gateway ${(directMs / 0.95 - directMs).toFixed(0)} ms more; ` +
          `the gateway took v1 ${over(large.v1)}, json ${over(large.json)} ms more; a bare hop adds Node ${bare(hop.bigAddedMs['Node relay'])}, C ${bare(hop.bigAddedMs['C relay'])} ms`,
      );
    }
  }
  if (gateway && SECTIONS.has('kernels')) {
    await timed('idle kernels', async () => {
      memory.push({ label: '10 idle python3 kernels', mb: await idleKernels(gateway, TOKEN, 'python3', 10, log) });
      memory.push({ label: `${KERNELS_MANY} idle javascript kernels`, mb: await idleKernels(gateway, TOKEN, 'javascript', KERNELS_MANY, log) });
    });
  }
  if (gateway) {
    // As after the flood: a release after kernels end waits up to 10 s after the previous one began.
    await sleep(12_000);
    const after = rssMb(gateway.pid);
    memory.push({ label: 'after everything (no kernel, 12 s idle)', mb: after, goal: '<= 90', met: after !== undefined && after <= 90 });
    memory.push(await memoryReleased(gateway, TOKEN));
  }

  console.log('');
  console.log(`Jupyter Kernel Gateway benchmark (${QUICK ? 'quick' : 'full'}; ${cpus().length} cores; ratio = gateway/direct: >1 is slower for times, <1 is slower for msg/s)`);
  printTable(rows);
  for (const line of lines) console.log(line);
  if (hop) {
    console.log('');
    console.log('One more hop at best (bench/hop-ceiling.ts): a relay that only reads, computes the HMAC and writes, beside direct, over loopback TCP');
    printTable(hop.rows, HOP_COLUMNS);
    for (const line of hop.summary) console.log(line);
  }
  if (memory.length) {
    console.log('');
    printMemory(memory);
  }
  if (gateway && gateway.complaints.length) {
    console.log(`gateway logged ${gateway.complaints.length} warning/error line(s) (full log: ${gateway.logFile}):`);
    for (const line of gateway.complaints.slice(0, 20)) console.log(`    ${line}`);
    keepDir = true;
  }
}

/** The flood's 64 KB workloads on a second gateway started with GIVE_BACK_TUNABLES; its RSS goes into `memory`. */
async function floodOnTunedGateway({ dir }: Run, jupyterPath: string, memory: MemoryLine[], cleanup: FloodContext['cleanup']): Promise<{ rows: Row[] }> {
  const env = { ...process.env, ...GATEWAY_ENV, GLIBC_TUNABLES: GIVE_BACK_TUNABLES, JUPYTER_PATH: jupyterPath };
  const tuned = await launchGateway(GATEWAY_ROOT, dir, TOKEN, 30_000, { env, nodeOptions: GATEWAY_NODE_OPTIONS, name: 'gateway-glibc-tunables' });
  try {
    const flood = () => floodBenchmark({ root: ROOT, dir, quick: QUICK, clients: FLOOD_CLIENTS, sizes: [65536], gateway: tuned, token: TOKEN, log, problem, cleanup });
    return await around(tuned, 'flood 64 KB, gateway with GLIBC_TUNABLES', memory, flood, FLOOD_SETTLE_MS, 90);
  } finally {
    const forced = await tuned.stop(15_000);
    if (forced) problem(`SHUTDOWN (gateway with GLIBC_TUNABLES): ${forced}`);
  }
}

/** Execute round trips, iopub throughput and fan-out with ipykernel: where the kernel is the bottleneck. */
async function ipykernelWorkloads({ dir, gateway, fatal }: Run, out: Row[], lines: string[]): Promise<void> {
  // (a) Direct ZeroMQ.
  const kernel = await launchKernel(dir);
  cleanups.push({ what: 'direct kernel', run: () => kernel.stop() });
  kernel.died.catch(fatal);
  const direct = new DirectConnection('direct', kernel.info);
  cleanups.push({ what: 'direct connection', run: () => direct.close() });
  await ready(direct);
  log(`direct kernel ready (pid ${kernel.pid})`);

  // (b) The gateway: one kernel per protocol, so neither connection pays for the other's traffic.
  let v1: WsConnection | undefined;
  let json: WsConnection | undefined;
  let v1Url = '';
  const kernelIds: string[] = [];
  if (gateway) {
    const gw = gateway;
    const wsBase = gateway.url.href.replace(/^http/, 'ws');
    const startKernel = async () => {
      const response = await rest(gw, TOKEN, 'POST', 'api/kernels', { name: 'python3' });
      const id = (response.body as { id?: unknown } | undefined)?.id;
      if (response.status !== 201 || typeof id !== 'string') throw new Error(`POST /api/kernels answered ${response.status}: ${JSON.stringify(response.body)}`);
      kernelIds.push(id);
      return `${wsBase}api/kernels/${id}/channels?token=${TOKEN}`;
    };
    v1Url = await startKernel();
    const jsonUrl = await startKernel();
    v1 = await WsConnection.open('gateway v1', v1Url, true, 30_000);
    cleanups.push({ what: 'v1 connection', run: () => v1!.close() });
    json = await WsConnection.open('gateway json', jsonUrl, false, 30_000);
    cleanups.push({ what: 'json connection', run: () => json!.close() });
    await Promise.all([ready(v1), ready(json)]);
    log('gateway kernels ready');
  }
  const subjects = [direct, v1, json].filter((c): c is DirectConnection | WsConnection => c !== undefined);
  pubUnlimited = true;
  for (const connection of subjects) if (!(await unlimitKernelPub(connection))) pubUnlimited = false;

  // 1. Execute round trips.
  for (const connection of subjects) for (let i = 0; i < WARMUP; i++) await executeOnce(connection);
  const latencies = new Map<KernelConnection, number[]>(subjects.map((c) => [c, []]));
  for (let block = 0; block * BLOCK < EXECUTES; block++) {
    for (const connection of rotate(subjects, block)) {
      const samples = latencies.get(connection)!;
      const count = Math.min(BLOCK, EXECUTES - block * BLOCK);
      for (let i = 0; i < count; i++) samples.push(await executeOnce(connection));
    }
  }
  const latencyStats = new Map(
    [...latencies].map(([connection, samples]) => {
      const sorted = [...samples].sort((a, b) => a - b);
      return [connection, { p50: percentile(sorted, 50), p99: percentile(sorted, 99), mean: mean(samples), max: sorted[sorted.length - 1] }];
    }),
  );
  for (const [connection, stats] of latencyStats) {
    log(`execute ${connection.label}: p50 ${stats.p50.toFixed(3)} ms, p99 ${stats.p99.toFixed(3)} ms, mean ${stats.mean.toFixed(3)} ms, max ${stats.max.toFixed(1)} ms`);
  }

  // 2. IOPub throughput, one client each: the display() cell, then the fast producer.
  const throughput = async (what: string, code: (messages: number) => string) => {
    const results = new Map<KernelConnection, FloodResult[]>(subjects.map((c) => [c, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const connection of rotate(subjects, round)) {
        const result = await flood([connection], MESSAGES, code);
        results.get(connection)!.push(result);
        log(`${what} ${connection.label} round ${round + 1}: ${result.counts[0]} display_data in ${result.seconds.toFixed(3)} s = ${Math.round(result.counts[0] / result.seconds)} msg/s`);
        checkFlood(`${what} ${connection.label} round ${round + 1}`, result, MESSAGES, connection === direct);
      }
    }
    return results;
  };
  const floods = await throughput('iopub display()', displayCell);
  const fastFloods = await throughput('iopub fast', fastDisplayCell);

  // 3. Fan-out to 20 clients of one kernel: 20 SUB sockets direct, 20 WebSockets (v1) via the gateway.
  const fanoutGroups: { label: string; connections: KernelConnection[] }[] = [];
  const directGroup: KernelConnection[] = [direct];
  for (let i = 1; i < FANOUT_CLIENTS; i++) {
    const connection = new DirectConnection(`direct fan-out ${i}`, kernel.info);
    cleanups.push({ what: `direct fan-out ${i}`, run: () => connection.close() });
    directGroup.push(connection);
  }
  fanoutGroups.push({ label: 'direct', connections: directGroup });
  if (v1) {
    const group: KernelConnection[] = [v1];
    for (let i = 1; i < FANOUT_CLIENTS; i++) {
      const connection = await WsConnection.open(`gateway fan-out ${i}`, v1Url, true, 30_000);
      cleanups.push({ what: `gateway fan-out ${i}`, run: () => connection.close() });
      group.push(connection);
    }
    fanoutGroups.push({ label: 'gateway v1', connections: group });
  }
  for (const group of fanoutGroups) for (const connection of group.connections) await ready(connection);
  if (pubUnlimited && !(await unlimitKernelPub(direct))) pubUnlimited = false;
  log(`fan-out: ${FANOUT_CLIENTS} clients ready on each side`);

  const fanout = async (what: string, code: (messages: number) => string) => {
    const results = new Map<string, FloodResult[]>(fanoutGroups.map((group) => [group.label, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const group of rotate(fanoutGroups, round)) {
        const result = await flood(group.connections, MESSAGES, code);
        results.get(group.label)!.push(result);
        const total = result.counts.reduce((a, b) => a + b, 0);
        log(`${what} ${group.label} round ${round + 1}: per client ${Math.min(...result.counts)}..${Math.max(...result.counts)} display_data, ${result.seconds.toFixed(3)} s, ${Math.round(total / result.seconds)} msg/s delivered in total`);
        checkFlood(`${what} ${group.label} round ${round + 1}`, result, MESSAGES, group.label === 'direct');
      }
    }
    return results;
  };
  const fanouts = await fanout('fan-out display()', displayCell);
  const fastFanouts = await fanout('fan-out fast', fastDisplayCell);
  // The section's kernels and clients go, so that later sections and memory figures start clean.
  for (const group of fanoutGroups) for (const connection of group.connections) await connection.close();
  await json?.close();
  for (const id of kernelIds) await rest(gateway!, TOKEN, 'DELETE', `api/kernels/${id}`);
  await kernel.stop();

  // Table.
  const latencyCell = (connection: KernelConnection | undefined, key: 'p50' | 'p99' | 'mean') => (connection ? latencyStats.get(connection)![key] : undefined);
  const rate = (results: FloodResult[] | undefined) => (results ? median(results.map((r) => r.counts.reduce((a, b) => a + b, 0) / r.seconds)) : undefined);
  const received = (results: FloodResult[] | undefined) => {
    if (!results) return undefined;
    const all = results.flatMap((r) => r.counts.map((count, i) => count + r.late[i]));
    const low = Math.min(...all);
    const high = Math.max(...all);
    return low === high ? `${low}/${MESSAGES}` : `${low}..${high}/${MESSAGES}`;
  };
  const seconds = (results: FloodResult[] | undefined) => (results ? median(results.map((r) => r.seconds)) : undefined);
  const rounds = ROUNDS > 1 ? `, median of ${ROUNDS}` : '';
  const rows: Row[] = [
    { label: `execute p50 (ms, n=${EXECUTES})`, direct: latencyCell(direct, 'p50'), v1: latencyCell(v1, 'p50'), json: latencyCell(json, 'p50'), digits: 3 },
    { label: `execute p99 (ms)`, direct: latencyCell(direct, 'p99'), v1: latencyCell(v1, 'p99'), json: latencyCell(json, 'p99'), digits: 3 },
    { label: `execute mean (ms)`, direct: latencyCell(direct, 'mean'), v1: latencyCell(v1, 'mean'), json: latencyCell(json, 'mean'), digits: 3 },
    { label: `iopub display() x${MESSAGES} (msg/s${rounds})`, direct: rate(floods.get(direct)), v1: rate(v1 && floods.get(v1)), json: rate(json && floods.get(json)), digits: 0 },
    { label: `iopub time (s${rounds})`, direct: seconds(floods.get(direct)), v1: seconds(v1 && floods.get(v1)), json: seconds(json && floods.get(json)), digits: 3 },
    { label: `iopub received (all rounds)`, direct: received(floods.get(direct)), v1: received(v1 && floods.get(v1)), json: received(json && floods.get(json)), digits: 0, ratio: false },
    { label: `iopub fast producer (msg/s${rounds})`, direct: rate(fastFloods.get(direct)), v1: rate(v1 && fastFloods.get(v1)), json: rate(json && fastFloods.get(json)), digits: 0 },
    { label: `iopub fast received (all rounds)`, direct: received(fastFloods.get(direct)), v1: received(v1 && fastFloods.get(v1)), json: received(json && fastFloods.get(json)), digits: 0, ratio: false },
    { label: `fan-out display() x${FANOUT_CLIENTS} clients (s${rounds})`, direct: seconds(fanouts.get('direct')), v1: seconds(fanouts.get('gateway v1')), json: undefined, digits: 3 },
    { label: `fan-out delivered (msg/s, all clients)`, direct: rate(fanouts.get('direct')), v1: rate(fanouts.get('gateway v1')), json: undefined, digits: 0 },
    { label: `fan-out received per client min..max`, direct: received(fanouts.get('direct')), v1: received(fanouts.get('gateway v1')), json: undefined, digits: 0, ratio: false },
    { label: `fan-out fast time (s${rounds})`, direct: seconds(fastFanouts.get('direct')), v1: seconds(fastFanouts.get('gateway v1')), json: undefined, digits: 3 },
    { label: `fan-out fast delivered (msg/s, all)`, direct: rate(fastFanouts.get('direct')), v1: rate(fastFanouts.get('gateway v1')), json: undefined, digits: 0 },
    { label: `fan-out fast received min..max`, direct: received(fastFanouts.get('direct')), v1: received(fastFanouts.get('gateway v1')), json: undefined, digits: 0, ratio: false },
  ];
  out.push(...rows);
  lines.push('fan-out: direct = 20 SUB sockets on the kernel (it publishes 20 copies); the gateway subscribes once and copies itself, so it can beat direct there.');
  lines.push(`kernel IOPub send high-water mark: ${pubUnlimited ? 'unlimited in every kernel (any loss is the transport\'s)' : 'ipykernel default 1000 in some kernel (ZeroMQ may drop under load)'}`);
}

async function main(): Promise<void> {
  let failed = false;
  let abort: (error: Error) => void = () => {};
  const fatal = new Promise<never>((_, reject) => (abort = reject));
  process.once('SIGINT', () => abort(new Error('interrupted')));
  // When a process dies the benchmark is abandoned mid-wait: its later rejection is expected.
  const work = benchmark(abort);
  work.catch(() => {});
  try {
    await Promise.race([work, fatal]);
  } catch (error) {
    failed = true;
    keepDir = true;
    console.error(`\n[bench] FAILED: ${(error as Error).message}`);
  }
  await cleanUp();
  if (notes.length) {
    console.log(`\n${notes.length} NOTE(S) on the direct side:`);
    for (const text of notes) console.log(`  - ${text}`);
  }
  if (problems.length) {
    failed = true;
    console.log(`\n${problems.length} PROBLEM(S):`);
    for (const text of problems) console.log(`  !!! ${text}`);
  }
  // Open sockets would keep the process alive.
  process.exit(failed ? 1 : 0);
}

await main();
