/**
 * Large outputs from ipykernel: one cell displaying one 50 MB string, and one displaying ten 5 MB
 * strings, over direct ZeroMQ and through the gateway in both protocols (one kernel each), in
 * interleaved rounds (median of 5); MB/s from sending the cell to its idle status with every output in hand. Each
 * client parses the content of every output it receives, as a client that shows it has to (the direct
 * one also checks the signature). The gateway's peak RSS is taken over each of its runs (VmHWM reset
 * before), beside its RSS before the workload. The CPU time and the minor page faults (first touches of
 * memory) of the gateway and of the client (this process) show where the time goes, with what a first
 * touch of memory costs on this machine (freshTouchMs).
 */
import { executeContent, ready, until } from './cells.ts';
import { DirectConnection, WsConnection, type KernelConnection } from './connections.ts';
import { cpuSeconds, launchKernel, minorFaults, procStatusKb, resetPeakRss, rest, type Gateway } from './processes.ts';
import type { Row } from './table.ts';
import { median, rotate } from './figures.ts';

export interface LargeContext {
  dir: string;
  quick: boolean;
  gateway: Gateway | undefined;
  token: string;
  log(text: string): void;
  problem(text: string): void;
  cleanup(what: string, run: () => Promise<unknown>): void;
}

interface Workload {
  label: string;
  outputs: number;
  bytes: number;
}

export const LARGE_WORKLOADS: readonly Workload[] = [
  { label: 'one 50 MB output', outputs: 1, bytes: 50_000_000 },
  { label: 'ten 5 MB outputs', outputs: 10, bytes: 5_000_000 },
];

/** Publishes `outputs` display_data of `bytes` characters each (the string is built before the first). */
const cell = ({ outputs, bytes }: Workload) =>
  ['from IPython.display import publish_display_data', `_s = 'x' * ${bytes}`, `for _ in range(${outputs}): publish_display_data({'text/plain': _s})`, 'del _s'].join('\n');

/** Seconds from sending the cell until its idle status, every output received and parsed. */
function runLarge(connection: KernelConnection, workload: Workload): Promise<number> {
  const request = connection.prepare('execute_request', executeContent(cell(workload)));
  let outputs = 0;
  let replied = false;
  let idle = false;
  let start = 0;
  const state = () => `${connection.label}: ${workload.label}: ${outputs} outputs, reply ${replied ? 'arrived' : 'missing'}, idle ${idle ? 'arrived' : 'missing'}`;
  return until(state, 120_000, [connection], (done, fail) => {
    const off = connection.listen(request.msgId, (message) => {
      if (message.msgType === 'display_data') {
        const text = (message.content().data as Record<string, unknown> | undefined)?.['text/plain'];
        if (typeof text !== 'string' || text.length !== workload.bytes) return fail(new Error(`${connection.label}: an output of ${typeof text === 'string' ? text.length : typeof text} characters, expected ${workload.bytes}`));
        outputs++;
      } else if (message.channel === 'shell' && message.msgType === 'execute_reply') {
        if (message.content().status !== 'ok') return fail(new Error(`${connection.label}: ${workload.label}: execute_reply status ${String(message.content().status)}`));
        replied = true;
      } else if (message.msgType === 'status' && message.content().execution_state === 'idle') {
        idle = true;
      }
      if (replied && idle) {
        if (outputs === workload.outputs) done((performance.now() - start) / 1000);
        else fail(new Error(`MESSAGE LOSS: ${state()}, expected ${workload.outputs} outputs`));
      }
    });
    start = performance.now();
    connection.send(request).catch(fail);
    return off;
  });
}

/** What one run cost, per output: CPU ms and minor page faults of the gateway (its sides only) and the client. */
interface RunCost {
  gatewayMs?: number;
  gatewayFaults?: number;
  clientMs?: number;
  clientFaults?: number;
}

const mbOf = (kb: number | undefined) => (kb === undefined ? undefined : kb / 1024);

export interface LargeResult {
  rows: Row[];
  /** The gateway's RSS (MB) before the workloads, and its peak per workload and protocol. */
  memory: { before: number | undefined; peaks: { label: string; v1?: number; json?: number }[] } | undefined;
}

export async function largeOutputs(ctx: LargeContext): Promise<LargeResult> {
  const { log, gateway } = ctx;
  const rounds = ctx.quick ? 1 : 5;
  const kernel = await launchKernel(ctx.dir);
  ctx.cleanup('direct kernel (large outputs)', () => kernel.stop());
  const direct = new DirectConnection('direct', kernel.info);
  ctx.cleanup('direct connection (large outputs)', () => direct.close());
  const sides: KernelConnection[] = [direct];
  let v1: WsConnection | undefined;
  let json: WsConnection | undefined;
  const kernelIds: string[] = [];
  if (gateway) {
    const wsBase = gateway.url.href.replace(/^http/, 'ws');
    for (const protocol of ['v1', 'json'] as const) {
      const response = await rest(gateway, ctx.token, 'POST', 'api/kernels', { name: 'python3' });
      const id = (response.body as { id?: unknown } | undefined)?.id;
      if (response.status !== 201 || typeof id !== 'string') throw new Error(`POST /api/kernels answered ${response.status}: ${JSON.stringify(response.body)}`);
      kernelIds.push(id);
      const connection = await WsConnection.open(`gateway ${protocol}`, `${wsBase}api/kernels/${id}/channels?token=${ctx.token}`, protocol === 'v1', 30_000);
      ctx.cleanup(`gateway ${protocol} connection (large outputs)`, () => connection.close());
      if (protocol === 'v1') v1 = connection;
      else json = connection;
      sides.push(connection);
    }
  }
  await Promise.all(sides.map((side) => ready(side)));
  log('large outputs: kernels ready');
  const before = gateway ? mbOf(procStatusKb(gateway.pid, 'VmRSS')) : undefined;
  const seconds = new Map<string, number[]>();
  const peaks = new Map<string, number>();
  const costs = new Map<string, RunCost[]>();
  const sample = (onGateway: boolean) => ({
    gatewayMs: onGateway ? cpuSeconds(gateway!.pid) * 1000 : undefined,
    gatewayFaults: onGateway ? minorFaults(gateway!.pid) : undefined,
    clientMs: cpuSeconds(process.pid) * 1000,
    clientFaults: minorFaults(process.pid),
  });
  for (let round = 0; round < rounds; round++) {
    for (const workload of LARGE_WORKLOADS) {
      for (const side of rotate(sides, round)) {
        const measured = gateway && side !== direct && resetPeakRss(gateway.pid);
        const onGateway = side !== direct;
        const start = sample(onGateway);
        const s = await runLarge(side, workload);
        const end = sample(onGateway);
        const key = `${workload.label}/${side.label}`;
        seconds.set(key, [...(seconds.get(key) ?? []), s]);
        const per = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? undefined : (b - a) / workload.outputs);
        costs.set(key, [
          ...(costs.get(key) ?? []),
          {
            gatewayMs: per(start.gatewayMs, end.gatewayMs),
            gatewayFaults: per(start.gatewayFaults, end.gatewayFaults),
            clientMs: per(start.clientMs, end.clientMs),
            clientFaults: per(start.clientFaults, end.clientFaults),
          },
        ]);
        if (measured) peaks.set(key, Math.max(peaks.get(key) ?? 0, mbOf(procStatusKb(gateway.pid, 'VmHWM')) ?? 0));
        log(`${workload.label} ${side.label} round ${round + 1}: ${s.toFixed(3)} s, ${((workload.outputs * workload.bytes) / 1e6 / s).toFixed(1)} MB/s`);
      }
    }
  }
  // Their kernels go: what the gateway keeps afterwards is measured with nothing running.
  for (const connection of [v1, json]) await connection?.close();
  for (const id of kernelIds) await rest(gateway!, ctx.token, 'DELETE', `api/kernels/${id}`);

  const rate = (workload: Workload, side: KernelConnection | undefined) => {
    const runs = side && seconds.get(`${workload.label}/${side.label}`);
    return runs ? (workload.outputs * workload.bytes) / 1e6 / median(runs) : undefined;
  };
  const cost = (workload: Workload, side: KernelConnection | undefined, what: keyof RunCost) => {
    const values = side && costs.get(`${workload.label}/${side.label}`)?.map((run) => run[what]);
    return values && values.every((value) => value !== undefined) ? median(values as number[]) : undefined;
  };
  const rows: Row[] = LARGE_WORKLOADS.flatMap((workload) => {
    const line = (label: string, what: keyof RunCost, digits: number): Row => ({
      label: `  ${label}`,
      direct: cost(workload, direct, what),
      v1: cost(workload, v1, what),
      json: cost(workload, json, what),
      digits,
      ratio: false,
    });
    return [
      { label: `${workload.label} (MB/s)`, direct: rate(workload, direct), v1: rate(workload, v1), json: rate(workload, json), digits: 1 },
      line('gateway CPU per output (ms)', 'gatewayMs', 0),
      line('gateway page faults per output', 'gatewayFaults', 0),
      line('client CPU per output (ms)', 'clientMs', 0),
      line('client page faults per output', 'clientFaults', 0),
    ];
  });
  const memory = gateway
    ? { before, peaks: LARGE_WORKLOADS.map((w) => ({ label: w.label, v1: peaks.get(`${w.label}/gateway v1`), json: peaks.get(`${w.label}/gateway json`) })) }
    : undefined;
  return { rows, memory };
}

/**
 * What a first touch of memory costs here: copying 50 MB into a new Buffer (its pages faulted in) against
 * into one already touched, medians of 3, in ms. In some virtual machines the first is 40x the second,
 * and a message that must be held whole (to check its signature) pays it once more per hop.
 */
export function freshTouchMs(bytes = 50_000_000): { fresh: number; warm: number } {
  const source = Buffer.alloc(bytes, 0x78);
  // Written once before timing: a zero-filled Buffer may not be touched yet (calloc maps zero pages).
  const warmTarget = Buffer.allocUnsafeSlow(bytes).fill(0x79);
  const fresh: number[] = [];
  const warm: number[] = [];
  for (let i = 0; i < 3; i++) {
    // Allocating does not touch the pages: the copy does.
    const target = Buffer.allocUnsafeSlow(bytes);
    let start = performance.now();
    source.copy(target);
    fresh.push(performance.now() - start);
    start = performance.now();
    source.copy(warmTarget);
    warm.push(performance.now() - start);
  }
  return { fresh: median(fresh), warm: median(warm) };
}
