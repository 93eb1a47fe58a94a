/**
 * The bridge's own ceiling: the flood kernel (flood-kernel.ts) publishes as fast as ZeroMQ takes its
 * messages, and clients in two worker processes (flood-client.ts) count them, for 1, 20 and 100
 * clients on one kernel, with 100-byte and 64 KB contents: directly over ZeroMQ (the kernel then
 * publishes one copy per subscriber) and through the gateway in both protocols (one kernel each), in
 * interleaved rounds. The CPU time per kernel message of every process taking part (the kernel, the
 * gateway, the clients' workers) comes from /proc/<pid>/stat; with it, the rate the machine's cores
 * allow each side at most (its CPU bound), which shows how much of a gap to direct is the gateway's
 * CPU on a machine that all three processes share.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { ConnectionInfo } from '../src/messaging/message.ts';
import type { FloodMode, FloodOrder } from './flood-client.ts';
import { cpuSeconds, findProcesses, launchKernel, rest, type Gateway } from './processes.ts';
import type { Row } from './table.ts';
import { rotate } from './figures.ts';

export const FLOOD_KERNEL = 'flood';

export interface FloodContext {
  root: string;
  dir: string;
  quick: boolean;
  /** Client counts to run (default 1, 20 and 100). */
  clients?: number[];
  /** Content sizes to run (default 100 and 65536 bytes). */
  sizes?: number[];
  gateway: Gateway | undefined;
  token: string;
  log(text: string): void;
  problem(text: string): void;
  /** Registers a cleanup step (run at the end, last first). */
  cleanup(what: string, run: () => Promise<unknown>): void;
}

/** The flood kernel's command, for its kernelspec and for the direct side. */
export const floodArgv = (root: string) => [process.execPath, join(root, 'out/bench/flood-kernel.js'), '-f', '{connection_file}'];

/** Writes the flood kernelspec under `dir`; returns the folder to put in JUPYTER_PATH. */
export function writeFloodKernelspec(root: string, dir: string): string {
  const jupyterPath = join(dir, 'jupyter');
  const specDir = join(jupyterPath, 'kernels', FLOOD_KERNEL);
  mkdirSync(specDir, { recursive: true });
  const spec = { argv: floodArgv(root), display_name: 'Flood (benchmark)', language: 'flood', interrupt_mode: 'message' };
  writeFileSync(join(specDir, 'kernel.json'), JSON.stringify(spec, null, 2));
  return jupyterPath;
}

interface DoneReport {
  msgId: string;
  counts: number[];
  idleAt: number[];
}

/** One worker process and calls to it (one outstanding call per answer type). */
class FloodWorker {
  readonly #child: ChildProcess;
  readonly #pending: { answer: string; resolve: (m: never) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  readonly #done = new Map<string, (report: DoneReport) => void>();
  onBroken: (error: string) => void = () => {};

  constructor(script: string) {
    this.#child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.#child.on('message', (message: { type: string; msgId?: string; error?: string }) => {
      if (message.type === 'done') {
        this.#done.get(message.msgId!)?.(message as unknown as DoneReport);
        this.#done.delete(message.msgId!);
      } else if (message.type === 'broken') {
        this.onBroken(message.error!);
      } else {
        const at = this.#pending.findIndex((p) => p.answer === message.type);
        if (at < 0) return;
        const [pending] = this.#pending.splice(at, 1);
        clearTimeout(pending.timer);
        pending.resolve(message as never);
      }
    });
    this.#child.once('exit', (code, signal) => {
      for (const pending of this.#pending.splice(0)) pending.reject(new Error(`flood client worker exited (code ${code}, signal ${signal})`));
    });
  }

  get pid(): number {
    return this.#child.pid!;
  }

  call<T>(order: FloodOrder, answer: string, timeoutMs = 60_000): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const at = this.#pending.findIndex((p) => p.timer === timer);
        if (at >= 0) this.#pending.splice(at, 1);
        reject(new Error(`flood client worker did not answer ${order.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.push({ answer, resolve: resolve as (m: never) => void, reject, timer });
      this.#child.send(order);
    });
  }

  /** The report for `msgId`, once every client of the group here saw its idle status. */
  done(msgId: string): Promise<DoneReport> {
    return new Promise((resolve) => this.#done.set(msgId, resolve));
  }

  forget(msgId: string): void {
    this.#done.delete(msgId);
  }

  kill(): void {
    this.#child.kill();
  }
}

/** One side of a comparison: a kernel and its clients, spread over the workers. */
interface Side {
  label: 'direct' | 'gateway v1' | 'gateway json';
  mode: FloodMode;
  group: string;
  /** Clients per worker (a worker with none takes no part). */
  share: number[];
  info?: ConnectionInfo;
  url?: string;
  /** The kernel's process, for its CPU time. */
  kernelPid: number;
}

const SIZES = [100, 64 * 1024];
const CLIENTS = [1, 20, 100];


/** Messages per run, so that a run lasts long enough to measure and short enough to repeat. */
function messagesFor(quick: boolean, clients: number, size: number): number {
  const count = Math.round(size <= 1024 ? 20_000 / Math.sqrt(clients) : 2_000 / clients ** 0.65);
  return quick ? Math.max(50, Math.round(count / 4)) : count;
}

const sizeLabel = (size: number) => (size >= 1024 ? `${size / 1024} KB` : `${size} B`);
const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)];

/** CPU seconds a run cost each process taking part (gateway: undefined on the direct side). */
interface RunCpu {
  kernel: number;
  gateway: number | undefined;
  clients: number;
}

interface RunResult {
  seconds: number;
  /** Every client received every message before the idle status. */
  complete: boolean;
  short: string;
  cpu: RunCpu;
}

export async function floodBenchmark(ctx: FloodContext): Promise<{ rows: Row[]; summary: string[] }> {
  const { log, problem, gateway } = ctx;
  const rounds = ctx.quick ? 1 : 3;
  const kernel = await launchKernel(ctx.dir, floodArgv(ctx.root), 'flood');
  ctx.cleanup('direct flood kernel', () => kernel.stop());
  const workers = [0, 1].map(() => new FloodWorker(join(ctx.root, 'out/bench/flood-client.js')));
  ctx.cleanup('flood client workers', async () => workers.forEach((w) => w.kill()));
  let failRun: ((error: Error) => void) | undefined;
  for (const worker of workers) {
    worker.onBroken = (error) => {
      problem(`flood: ${error}`);
      failRun?.(new Error(error));
    };
  }

  const gatewayUrls: string[] = [];
  const gatewayKernels: string[] = [];
  const gatewayKernelPids: number[] = [];
  if (gateway) {
    const wsBase = gateway.url.href.replace(/^http/, 'ws');
    for (let i = 0; i < 2; i++) {
      const response = await rest(gateway, ctx.token, 'POST', 'api/kernels', { name: FLOOD_KERNEL });
      const id = (response.body as { id?: unknown } | undefined)?.id;
      if (response.status !== 201 || typeof id !== 'string') throw new Error(`POST /api/kernels (flood) answered ${response.status}: ${JSON.stringify(response.body)}`);
      gatewayUrls.push(`${wsBase}api/kernels/${id}/channels?token=${ctx.token}`);
      gatewayKernels.push(id);
      // The gateway names the connection file after the kernel id; the kernel's command line carries it.
      const [pid] = findProcesses(`kernel-${id}.json`);
      if (pid === undefined) throw new Error(`flood kernel ${id}: no process found with its connection file`);
      gatewayKernelPids.push(pid);
    }
  }

  /** One request sent by the side's first client; resolves when every client saw its idle status. */
  const run = async (side: Side, msgType: string, content: unknown, timeoutMs: number, expected?: number): Promise<RunResult> => {
    const msgId = randomUUID();
    const active = workers.filter((_, i) => side.share[i] > 0);
    const dones = active.map((w) => w.done(msgId));
    await Promise.all(active.map((w) => w.call({ type: 'expect', group: side.group, msgId }, 'expected')));
    const onGateway = gateway !== undefined && side.mode !== 'direct';
    const readCpu = (): RunCpu => ({
      kernel: cpuSeconds(side.kernelPid),
      gateway: onGateway ? cpuSeconds(gateway.pid) : undefined,
      clients: workers.reduce((sum, w) => sum + cpuSeconds(w.pid), 0),
    });
    const cpu0 = readCpu();
    let timer: NodeJS.Timeout | undefined;
    try {
      const [sent, reports] = await Promise.race([
        Promise.all([active[0].call<{ at: number }>({ type: 'send', group: side.group, msgId, msgType, content }, 'sent'), Promise.all(dones)]),
        new Promise<never>((_, reject) => {
          failRun = reject;
          timer = setTimeout(() => reject(new Error(`${side.label}: ${msgType} not seen idle by every client within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      const cpu1 = readCpu();
      const cpu: RunCpu = {
        kernel: cpu1.kernel - cpu0.kernel,
        gateway: cpu1.gateway === undefined ? undefined : cpu1.gateway - cpu0.gateway!,
        clients: cpu1.clients - cpu0.clients,
      };
      const counts = reports.flatMap((r) => r.counts);
      const end = Math.max(...reports.flatMap((r) => r.idleAt));
      const short = expected === undefined ? [] : counts.map((count, i) => [i, count] as const).filter(([, count]) => count !== expected);
      return {
        seconds: (end - sent.at) / 1000,
        complete: short.length === 0,
        short: short.slice(0, 5).map(([i, count]) => `client ${i}: ${count}`).join(', '),
        cpu,
      };
    } finally {
      clearTimeout(timer);
      failRun = undefined;
      for (const worker of active) worker.forget(msgId);
    }
  };

  /** kernel_info until every client sees its idle (ZeroMQ subscriptions take a moment to join). */
  const ready = async (side: Side) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        return await run(side, 'kernel_info_request', {}, 2000);
      } catch (error) {
        if (Date.now() > deadline || !/within/.test((error as Error).message)) throw error;
      }
    }
  };

  // results[clients][size][side label] = runs
  const results = new Map<string, RunResult[]>();
  const key = (clients: number, size: number, label: string) => `${clients}/${size}/${label}`;
  const clientCounts = ctx.clients ?? CLIENTS;
  const sizes = ctx.sizes ?? SIZES;
  for (const clients of clientCounts) {
    const share = [Math.ceil(clients / 2), Math.floor(clients / 2)];
    const sides: Side[] = [{ label: 'direct', mode: 'direct', group: `direct-${clients}`, share, info: kernel.info, kernelPid: kernel.pid }];
    if (gateway) {
      sides.push({ label: 'gateway v1', mode: 'v1', group: `v1-${clients}`, share, url: gatewayUrls[0], kernelPid: gatewayKernelPids[0] });
      sides.push({ label: 'gateway json', mode: 'json', group: `json-${clients}`, share, url: gatewayUrls[1], kernelPid: gatewayKernelPids[1] });
    }
    for (const side of sides) {
      await Promise.all(
        workers.map((w, i) => (side.share[i] > 0 ? w.call({ type: 'open', group: side.group, mode: side.mode, count: side.share[i], info: side.info, url: side.url }, 'opened') : undefined)),
      );
      await ready(side);
    }
    log(`flood: ${clients} client(s) ready on each side`);
    for (let round = 0; round < rounds; round++) {
      for (const size of sizes) {
        const messages = messagesFor(ctx.quick, clients, size);
        for (const side of rotate(sides, round)) {
          const result = await run(side, 'execute_request', { code: `${messages} ${size}`, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true }, 120_000, messages);
          results.set(key(clients, size, side.label), [...(results.get(key(clients, size, side.label)) ?? []), result]);
          const rate = (messages * clients) / result.seconds;
          const perMessage = (seconds: number) => ((seconds / messages) * 1e6).toFixed(1);
          const { kernel: kernelCpu, gateway: gatewayCpu, clients: clientsCpu } = result.cpu;
          const cpu =
            `, CPU µs/message: kernel ${perMessage(kernelCpu)}` +
            (gatewayCpu === undefined ? '' : `, gateway ${perMessage(gatewayCpu)}`) +
            `, clients ${perMessage(clientsCpu)}`;
          log(`flood ${side.label}, ${clients} client(s), ${messages} x ${sizeLabel(size)}, round ${round + 1}: ${result.seconds.toFixed(3)} s, ${Math.round(rate)} msg/s delivered${cpu}`);
          if (!result.complete) problem(`MESSAGE LOSS (flood ${side.label}, ${clients} clients, ${sizeLabel(size)}): of ${messages} messages, ${result.short}`);
        }
      }
    }
    for (const side of sides) await Promise.all(workers.map((w, i) => (side.share[i] > 0 ? w.call({ type: 'close', group: side.group }, 'closed') : undefined)));
  }
  // The section's kernels go, so that later memory figures are taken with nothing running.
  for (const id of gatewayKernels) await rest(gateway!, ctx.token, 'DELETE', `api/kernels/${id}`);
  await kernel.stop();

  const rows: Row[] = [];
  const rate = (clients: number, size: number, label: string) => {
    const runs = results.get(key(clients, size, label));
    return runs ? median(runs.map((r) => (messagesFor(ctx.quick, clients, size) * clients) / r.seconds)) : undefined;
  };
  /** Median CPU µs per kernel message of one process (or of all three: 'total'). */
  const cpuPerMessage = (clients: number, size: number, label: string, of: keyof RunCpu | 'total') => {
    const runs = results.get(key(clients, size, label));
    const seconds = (cpu: RunCpu) => (of === 'total' ? cpu.kernel + (cpu.gateway ?? 0) + cpu.clients : cpu[of]);
    if (!runs || runs.some((r) => seconds(r.cpu) === undefined)) return undefined;
    return median(runs.map((r) => (seconds(r.cpu)! / messagesFor(ctx.quick, clients, size)) * 1e6));
  };
  /** Messages/s delivered in all if the processes had every core to themselves: cores / CPU per message. */
  const cores = cpus().length;
  const cpuBound = (clients: number, size: number, label: string) => {
    const total = cpuPerMessage(clients, size, label, 'total');
    return total === undefined || total <= 0 ? undefined : (cores * 1e6 * clients) / total;
  };
  const cpuRow = (clients: number, size: number, of: keyof RunCpu, what: string): Row => ({
    label: `  ${what} CPU per kernel message (µs)`,
    direct: of === 'gateway' ? undefined : cpuPerMessage(clients, size, 'direct', of),
    v1: cpuPerMessage(clients, size, 'gateway v1', of),
    json: cpuPerMessage(clients, size, 'gateway json', of),
    digits: 1,
    ratio: false,
  });
  for (const size of sizes) {
    for (const clients of clientCounts) {
      const what = clients === 1 ? 'msg/s' : 'msg/s, all clients';
      rows.push({ label: `flood ${clients} client${clients > 1 ? 's' : ''}, ${sizeLabel(size)} (${what})`, direct: rate(clients, size, 'direct'), v1: rate(clients, size, 'gateway v1'), json: rate(clients, size, 'gateway json'), digits: 0 });
      rows.push(cpuRow(clients, size, 'gateway', 'gateway'));
      rows.push(cpuRow(clients, size, 'kernel', 'kernel'));
      rows.push(cpuRow(clients, size, 'clients', clients === 1 ? 'client' : 'all clients'));
      rows.push({ label: `  CPU bound: ${cores} cores / all CPU per msg`, direct: cpuBound(clients, size, 'direct'), v1: cpuBound(clients, size, 'gateway v1'), json: cpuBound(clients, size, 'gateway json'), digits: 0 });
    }
  }
  const summary: string[] = [];
  for (const size of sizes) {
    const alone = rate(1, size, 'direct');
    const versus = (value: number | undefined) => (value === undefined || alone === undefined ? '-' : `${(value / alone).toFixed(2)}x`);
    summary.push(
      `flood ${sizeLabel(size)}: one client v1 ${versus(rate(1, size, 'gateway v1'))}, json ${versus(rate(1, size, 'gateway json'))} of direct (goal >= 0.9x); ` +
        `100 clients deliver v1 ${versus(rate(100, size, 'gateway v1'))}, json ${versus(rate(100, size, 'gateway json'))} of what one direct subscriber gets alone (goal >= 5x)`,
    );
    const directBound = cpuBound(1, size, 'direct');
    const boundVersus = (value: number | undefined) => (value === undefined || directBound === undefined ? '-' : `${(value / directBound).toFixed(2)}x`);
    if (directBound !== undefined && gateway) {
      summary.push(
        `  one client, ${sizeLabel(size)}: the CPU all three processes need per message lets ${cores} cores carry at most v1 ` +
          `${boundVersus(cpuBound(1, size, 'gateway v1'))}, json ${boundVersus(cpuBound(1, size, 'gateway json'))} of what they carry direct`,
      );
    }
  }
  return { rows, summary };
}
