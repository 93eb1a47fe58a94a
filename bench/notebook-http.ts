/**
 * notebook-http benchmark: a trivial endpoint (`# GET /hello` printing "hello") served by gateways
 * with a pool of 1 and of 4 ipykernel kernels, at 1 and 32 concurrent HTTP clients (keep-alive),
 * against the physical limit measured in the same run over direct ZeroMQ: what a request costs the
 * kernel, i.e. the REQUEST assignment and the cell executed one after the other (the reference's two
 * executes), on 1 kernel and on 4 kernels at once; and both as one execute on 1 kernel, which is what the
 * gateway sends for Python. Workloads are interleaved in blocks because a small shared machine is noisy.
 *
 *   node out/bench/notebook-http.js [--quick] [--compare <checkout>]
 *
 * --compare: also run the gateways of another built checkout (its bin/kernelgateway.js), interleaved
 * with this one's, e.g. to measure a change before and after on the same noisy machine.
 *
 * Exit code 1 when a request failed or a gateway did not stop cleanly.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assignedSource, requestAssignment } from '../src/notebook-http/language.ts';
import { requestJson } from '../src/notebook-http/request.ts';
import { DirectConnection, type KernelConnection } from './connections.ts';
import { launchGateway, launchKernel, type DirectKernel, type Gateway } from './processes.ts';
import { executeContent } from './cells.ts';
import { percentile } from './figures.ts';

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const COMPARE = args.includes('--compare') ? args[args.indexOf('--compare') + 1] : undefined;
/** Requests per workload and block; with 32 clients, each client makes BLOCK / 8 of them. */
const BLOCK = QUICK ? 100 : 300;
const ROUNDS = QUICK ? 2 : 5;
const WARMUP = 30;
const CLIENTS = 32;
const TOKEN = 'bench';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CELL = '# GET /hello\nprint("hello")\n';
const TIMEOUT_MS = 30_000;
const log = (text: string) => console.error(`[nbhttp] ${text}`);
const problems: string[] = [];

// ---------------------------------------------------------------------------------------------
// Direct ZeroMQ

/** One execute: resolves with its stdout once both its execute_reply (status ok) and its idle status arrived. */
function execute(connection: KernelConnection, code: string): Promise<string> {
  const request = connection.prepare('execute_request', executeContent(code));
  return new Promise((resolve, reject) => {
    let stdout = '';
    let replied = false;
    let idle = false;
    const timer = setTimeout(() => finish(new Error(`${connection.label}: no answer to an execute within ${TIMEOUT_MS} ms`)), TIMEOUT_MS);
    const off = connection.listen(request.msgId, (message) => {
      if (message.msgType === 'stream') stdout += String(message.content().text);
      else if (message.channel === 'shell' && message.msgType === 'execute_reply') {
        if (message.content().status !== 'ok') return finish(new Error(`${connection.label}: execute_reply ${JSON.stringify(message.content())}`));
        replied = true;
      } else if (message.msgType === 'status' && message.content().execution_state === 'idle') idle = true;
      if (replied && idle) finish();
    });
    function finish(error?: Error): void {
      clearTimeout(timer);
      off();
      if (error) reject(error);
      else resolve(stdout);
    }
    connection.send(request).catch(finish);
  });
}

/** Sends kernel_info_request until the kernel answers (it may still be starting; ZeroMQ's slow joiner). */
async function ready(connection: KernelConnection): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await Promise.race([execute(connection, ''), new Promise((_, reject) => setTimeout(() => reject(new Error('not yet')), 1000))]);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${connection.label}: not ready within 60 s (${(error as Error).message})`);
    }
  }
}

/** What the gateway sends for one GET /hello: the REQUEST assignment (same headers), then the cell. */
function assignmentFor(port: number): string {
  const rawHeaders = ['Authorization', `token ${TOKEN}`, 'Host', `127.0.0.1:${port}`, 'Connection', 'keep-alive'];
  return requestAssignment('python', requestJson({ rawHeaders, query: '', params: {}, body: Buffer.alloc(0) }));
}

/** One request's work on a kernel, directly: two executes, the second printing "hello" (the reference's way). */
async function directRequest(connection: KernelConnection, assignment: string): Promise<void> {
  await execute(connection, assignment);
  const out = await execute(connection, CELL);
  if (out !== 'hello\n') throw new Error(`${connection.label}: the cell printed ${JSON.stringify(out)}`);
}

/** The same work as one execute: the assignment on the cell's first line, as the gateway sends it for Python. */
async function directCombined(connection: KernelConnection, assignment: string): Promise<void> {
  const out = await execute(connection, assignedSource('python', assignment, CELL)!);
  if (out !== 'hello\n') throw new Error(`${connection.label}: the cell printed ${JSON.stringify(out)}`);
}

// ---------------------------------------------------------------------------------------------
// HTTP

function get(agent: Agent, url: URL): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent, headers: { Authorization: `token ${TOKEN}` }, timeout: TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => (res.statusCode === 200 && body === 'hello\n' ? resolve() : reject(new Error(`GET ${url.pathname} → ${res.statusCode} ${body.slice(0, 200)}`))));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url.pathname}: no answer within ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

// ---------------------------------------------------------------------------------------------
// Workloads and figures

interface Sample {
  latencies: number[];
  requests: number;
  seconds: number;
}

const samples = new Map<string, Sample>();

/** Run `one` `total` times spread over `clients` concurrent loops; latencies and wall time go to `label`. */
async function measure(label: string, clients: number, total: number, one: (client: number) => Promise<void>): Promise<void> {
  const sample = samples.get(label) ?? { latencies: [], requests: 0, seconds: 0 };
  samples.set(label, sample);
  const perClient = Math.ceil(total / clients);
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let i = 0; i < perClient; i++) {
        const t0 = performance.now();
        try {
          await one(client);
        } catch (error) {
          problems.push(`${label}: ${(error as Error).message}`);
          if (problems.length > 20) throw error;
          continue;
        }
        sample.latencies.push(performance.now() - t0);
      }
    }),
  );
  sample.seconds += (performance.now() - started) / 1000;
  sample.requests += perClient * clients;
}

interface Figures {
  rate: number;
  p50: number;
  p99: number;
}

function figures(label: string): Figures {
  const sample = samples.get(label)!;
  const sorted = [...sample.latencies].sort((a, b) => a - b);
  return { rate: sample.requests / sample.seconds, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

/** `queued`: more clients than kernels, so latency is queueing and only requests/s compare with the limit. */
function printTable(rows: Array<{ label: string; clients: number; limit?: string; queued?: boolean }>): void {
  const header = ['workload', 'clients', 'req/s', 'p50 ms', 'p99 ms', 'limit', 'p50/limit', 'limit req/s ÷ req/s'];
  const lines = rows.map(({ label, clients, limit, queued }) => {
    const f = figures(label);
    const l = limit ? figures(limit) : undefined;
    return [
      label,
      String(clients),
      f.rate.toFixed(0),
      f.p50.toFixed(2),
      f.p99.toFixed(2),
      limit ?? '',
      l && !queued ? `${(f.p50 / l.p50).toFixed(2)}x` : '',
      l ? `${(l.rate / f.rate).toFixed(2)}x` : '',
    ];
  });
  const widths = header.map((title, i) => Math.max(title.length, ...lines.map((line) => line[i].length)));
  const render = (cells: string[]) => cells.map((cell, i) => (i === 0 || i === 5 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(' | ');
  console.log(render(header));
  console.log(widths.map((width) => '-'.repeat(width)).join('-|-'));
  for (const line of lines) console.log(render(line));
}

// ---------------------------------------------------------------------------------------------
// Run

const DIRECT_1 = 'direct, 1 kernel';
const DIRECT_4 = 'direct, 4 kernels';
const ONE_EXECUTE = 'direct, 1 kernel, as one execute';
/** The builds whose gateways run: this checkout, and the one given with --compare. */
const BUILDS = [{ name: 'gateway', root: ROOT }, ...(COMPARE ? [{ name: 'compared', root: COMPARE }] : [])];
const pool = (build: string, size: number) => `${build}, pool of ${size}`;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'kg-bench-nbhttp-'));
  const cleanups: Array<() => Promise<unknown>> = [];
  log(`${QUICK ? 'quick' : 'full'} run: ${ROUNDS} rounds of ${BLOCK} requests per workload; ${cpus().length} cores, load ${loadavg()[0].toFixed(2)}`);
  try {
    const notebook = join(dir, 'hello.ipynb');
    writeFileSync(
      notebook,
      JSON.stringify({
        nbformat: 4,
        nbformat_minor: 5,
        metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' }, language_info: { name: 'python' } },
        cells: [{ cell_type: 'code', metadata: {}, execution_count: null, outputs: [], source: CELL.trimEnd() }],
      }),
    );

    // Direct: four kernels, each with its own connection; the first alone is the 1-kernel limit.
    const kernels: DirectKernel[] = [];
    for (let i = 0; i < 4; i++) {
      const kernelDir = join(dir, `direct-${i}`);
      mkdirSync(kernelDir);
      const kernel = await launchKernel(kernelDir);
      cleanups.push(() => kernel.stop());
      kernels.push(kernel);
    }
    const direct = kernels.map((kernel, i) => new DirectConnection(`direct ${i}`, kernel.info));
    for (const connection of direct) cleanups.push(() => connection.close());
    await Promise.all(direct.map(ready));

    /** Each gateway by its label without the client count ("gateway, pool of 4"), with its keep-alive agent. */
    const gateways = new Map<string, { gateway: Gateway; agent: Agent; url: URL }>();
    for (const build of BUILDS) {
      for (const size of [1, 4]) {
        const label = pool(build.name, size);
        const gateway = await launchGateway(build.root, dir, TOKEN, 120_000, {
          name: `${build.name}-pool-${size}`,
          args: ['--api', 'notebook-http', '--seed-uri', notebook, '--prespawn-count', String(size)],
        });
        cleanups.push(async () => {
          const forced = await gateway.stop(15_000);
          if (forced) problems.push(`${label}: ${forced}`);
        });
        gateways.set(label, { gateway, agent: new Agent({ keepAlive: true, maxSockets: CLIENTS }), url: new URL('hello', gateway.url) });
        log(`${label}: ${gateway.url} (${build.root})`);
      }
    }
    // The Host header a gateway sees holds its port (five digits here); the direct side assigns the same text.
    const assignment = assignmentFor(Number([...gateways.values()][0].gateway.url.port));

    log('warming up');
    for (let i = 0; i < WARMUP; i++) {
      await Promise.all([...direct.map((connection) => directRequest(connection, assignment)), ...[...gateways.values()].map(({ agent, url }) => get(agent, url))]);
    }
    samples.clear();

    const workloads: Array<() => Promise<void>> = [
      () => measure(ONE_EXECUTE, 1, BLOCK, () => directCombined(direct[0], assignment)),
      () => measure(DIRECT_1, 1, BLOCK, () => directRequest(direct[0], assignment)),
      () => measure(DIRECT_4, 4, BLOCK, (client) => directRequest(direct[client], assignment)),
      ...[...gateways].flatMap(([label, { agent, url }]) => [
        () => measure(`${label}, 1 client`, 1, BLOCK, () => get(agent, url)),
        () => measure(`${label}, ${CLIENTS} clients`, CLIENTS, BLOCK, () => get(agent, url)),
      ]),
    ];
    for (let round = 0; round < ROUNDS; round++) {
      // A different order each round, so no workload always follows the same neighbour.
      const order = workloads.map((_, i) => (i + round) % workloads.length);
      for (const i of order) await workloads[i]();
      log(`round ${round + 1} of ${ROUNDS} done`);
    }
    for (const { agent } of gateways.values()) agent.destroy();

    console.log(`\nnotebook-http: GET /hello printing "hello" (${ROUNDS} x ${BLOCK} requests per workload; ${cpus().length} cores)\n`);
    printTable([
      { label: DIRECT_1, clients: 1 },
      { label: ONE_EXECUTE, clients: 1 },
      { label: DIRECT_4, clients: 4 },
      ...BUILDS.flatMap(({ name }) => [
        { label: `${pool(name, 1)}, 1 client`, clients: 1, limit: DIRECT_1 },
        { label: `${pool(name, 4)}, 1 client`, clients: 1, limit: DIRECT_1 },
        { label: `${pool(name, 1)}, ${CLIENTS} clients`, clients: CLIENTS, limit: DIRECT_1, queued: true },
        { label: `${pool(name, 4)}, ${CLIENTS} clients`, clients: CLIENTS, limit: DIRECT_4, queued: true },
      ]),
    ]);
    const limit = figures(DIRECT_1).p50;
    const worst = Math.max(figures(`${pool('gateway', 1)}, 1 client`).p50, figures(`${pool('gateway', 4)}, 1 client`).p50) / limit;
    console.log(
      `\nThe limit: one request is the REQUEST assignment and the cell, two executes, ${limit.toFixed(2)} ms (p50) over direct ZeroMQ.` +
        `\nAt 1 client the gateway's p50 is ${worst.toFixed(2)}x of it (goal: at most 1.2x).` +
        `\nWith ${CLIENTS} clients requests wait for a kernel: compare requests/s; latency is mostly queueing.`,
    );
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch((error: Error) => problems.push(`cleanup: ${error.message}`));
    if (problems.length === 0) rmSync(dir, { recursive: true, force: true });
    else log(`kept ${dir} (gateway logs)`);
  }
}

main().then(
  () => {
    if (problems.length > 0) {
      for (const problem of problems) console.error(`!!! ${problem}`);
      process.exit(1);
    }
    process.exit(0);
  },
  (error: Error) => {
    console.error(`[nbhttp] failed: ${error.stack ?? error.message}`);
    for (const problem of problems) console.error(`!!! ${problem}`);
    process.exit(1);
  },
);
