/**
 * What one more hop can do on this machine at best: the ceiling for any gateway, measured beside the
 * gateway in the same run. A writer sends messages over loopback TCP as fast as it can:
 *   - direct: to a reader that checks an HMAC-SHA256 of every message (as a direct client checks signatures);
 *   - through a relay that does the least a gateway must: read, feed the HMAC, write on as the bytes come
 *     (no framing, no parsing, not even waiting for a message's end), to readers that only count.
 * The relay is a Node process (hop-process.ts), and where a C compiler and OpenSSL's headers are found
 * also a C program (hop-relay.c), for the same hop without a runtime. The workloads are the flood's and
 * the large outputs' that have goals: 64 KB messages to one client and to 100 (in two reader processes),
 * and one 50 MB message.
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { median, rotate } from './figures.ts';
import type { Row } from './table.ts';

export interface HopContext {
  root: string;
  dir: string;
  quick: boolean;
  log(text: string): void;
}

type Side = 'direct' | 'Node relay' | 'C relay';

interface Workload {
  label: string;
  size: number;
  /** Messages per client. */
  count: number;
  clients: number;
  rounds: number;
}

interface HopRun {
  seconds: number;
  /** The relay's CPU per message (µs), when there is one. */
  relayCpuUs?: number;
}

/** A forked hop-process.ts role: its reports in order. */
class Role {
  readonly #reports: unknown[] = [];
  readonly #waiting: ((report: unknown) => void)[] = [];
  readonly #exited: Promise<never>;

  constructor(readonly child: ChildProcess, what: string) {
    child.on('message', (report) => {
      const resolve = this.#waiting.shift();
      if (resolve) resolve(report);
      else this.#reports.push(report);
    });
    this.#exited = new Promise((_, reject) => child.once('exit', (code, signal) => reject(new Error(`${what} exited (code ${code}, signal ${signal})`))));
    this.#exited.catch(() => {});
  }

  next<T>(): Promise<T> {
    const ready = this.#reports.shift();
    if (ready !== undefined) return Promise.resolve(ready as T);
    return Promise.race([new Promise<T>((resolve) => this.#waiting.push(resolve as (report: unknown) => void)), this.#exited]);
  }
}

/** The C relay, built into `dir` when the machine can; a reason when it cannot. */
function buildCRelay(root: string, dir: string): { file?: string; missing?: string } {
  const file = join(dir, 'hop-relay');
  try {
    execFileSync('cc', ['-O2', '-Wno-deprecated-declarations', '-o', file, join(root, 'bench/hop-relay.c'), '-lcrypto'], { stdio: 'pipe' });
    return { file };
  } catch (error) {
    const stderr = String((error as { stderr?: Buffer }).stderr ?? (error as Error).message);
    return { missing: /openssl|lcrypto/.test(stderr) ? "OpenSSL's headers and library (libssl-dev)" : `a C compiler (${stderr.split('\n')[0]})` };
  }
}

/** Column titles for printTable: the relays stand where the gateway's protocols stand in the main table. */
export const HOP_COLUMNS = { v1: 'Node relay', json: 'C relay' };

export async function hopCeiling(ctx: HopContext): Promise<{ rows: Row[]; summary: string[]; bigAddedMs: Partial<Record<Side, number>> }> {
  const script = join(ctx.root, 'out/bench/hop-process.js');
  const cRelay = buildCRelay(ctx.root, ctx.dir);
  if (cRelay.missing) ctx.log(`hop ceiling: no C relay: it needs ${cRelay.missing}`);
  const roles: Role[] = [];
  const start = (what: string, args: string[]) => {
    const role = new Role(fork(script, [what, ...args], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }), what);
    roles.push(role);
    return role;
  };

  /** One run: readers up, then the relay (if any), then the writer; timed from {go} to the last reader done. */
  const once = async (side: Side, w: Workload): Promise<HopRun> => {
    let cProcess: ChildProcess | undefined;
    try {
      const readers = (w.clients === 1 ? [1] : [Math.ceil(w.clients / 2), Math.floor(w.clients / 2)]).map((n) => ({
        n,
        role: start('reader', [String(w.size), side === 'direct' ? 'verify' : 'count', String(n)]),
      }));
      const ports = await Promise.all(readers.map(async ({ role }) => (await role.next<{ port: number }>()).port));
      let entry = ports[0];
      let relay: Role | undefined;
      let cOutput = '';
      let cFailed: string | undefined;
      let cClosed: Promise<unknown> | undefined;
      if (side === 'Node relay') {
        relay = start('relay', [String(w.size), ...ports.map((port, i) => `${port}:${readers[i].n}`)]);
        entry = (await relay.next<{ port: number }>()).port;
      } else if (side === 'C relay') {
        const c = spawn(cRelay.file!, [String(w.size), ...ports.map((port, i) => `${port}:${readers[i].n}`)], { stdio: ['ignore', 'pipe', 'inherit'] });
        cProcess = c;
        c.on('error', (error) => (cFailed = error.message));
        c.stdout!.on('data', (chunk: Buffer) => (cOutput += chunk.toString()));
        // 'close' comes after the last output and the exit, however it ended.
        cClosed = new Promise((resolve) => c.once('close', resolve));
        const deadline = Date.now() + 10_000;
        while (!cOutput.includes('\n')) {
          const ended = cFailed ?? (c.exitCode !== null || c.signalCode !== null ? `ended (${c.exitCode ?? c.signalCode})` : undefined);
          if (Date.now() > deadline || ended) throw new Error(`the C relay did not start: ${ended ?? 'no port in 10 s'} (${cOutput.trim() || 'no output'})`);
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
        entry = Number(cOutput.split('\n')[0]);
      }
      const writer = start('writer', [String(entry), String(w.size), String(w.count)]);
      await writer.next();
      const began = performance.now();
      writer.child.send({ type: 'go' });
      const done = await Promise.all(readers.map(({ role }) => role.next<{ bytes: number }>()));
      const seconds = (performance.now() - began) / 1000;
      const expected = w.size * w.count * w.clients;
      const bytes = done.reduce((sum, report) => sum + report.bytes, 0);
      if (bytes !== expected) throw new Error(`${side}: ${bytes} bytes arrived of ${expected}`);
      let relayCpuUs: number | undefined;
      if (relay) relayCpuUs = (await relay.next<{ cpuUs: number }>()).cpuUs / w.count;
      if (cProcess) {
        await cClosed;
        const cpu = Number(cOutput.trim().split('\n')[1]);
        if (cProcess.exitCode !== 0 || !Number.isFinite(cpu)) {
          throw new Error(`the C relay ended (${cProcess.exitCode ?? cProcess.signalCode}) without its CPU time: ${JSON.stringify(cOutput)}`);
        }
        relayCpuUs = cpu / w.count;
      }
      return { seconds, relayCpuUs };
    } finally {
      for (const role of roles.splice(0)) role.child.kill();
      cProcess?.kill();
    }
  };

  const workloads: Workload[] = [
    { label: '64 KB messages, 1 client', size: 64 * 1024, count: ctx.quick ? 1000 : 4000, clients: 1, rounds: ctx.quick ? 1 : 3 },
    { label: '64 KB messages, 100 clients', size: 64 * 1024, count: ctx.quick ? 50 : 200, clients: 100, rounds: ctx.quick ? 1 : 3 },
    { label: 'one 50 MB message', size: 50_000_000, count: 1, clients: 1, rounds: ctx.quick ? 2 : 7 },
  ];
  const runs = new Map<string, HopRun[]>();
  for (const w of workloads) {
    // Many clients are compared with one direct reader (the first workload's).
    const relays: Side[] = ['Node relay', ...(cRelay.file ? ['C relay' as const] : [])];
    const sides: Side[] = w.clients === 1 ? ['direct', ...relays] : relays;
    for (let round = 0; round < w.rounds; round++) {
      for (const side of rotate(sides, round)) {
        const run = await once(side, w);
        runs.set(`${w.label}/${side}`, [...(runs.get(`${w.label}/${side}`) ?? []), run]);
        const cpu = run.relayCpuUs === undefined ? '' : `, relay CPU ${run.relayCpuUs.toFixed(0)} µs per message`;
        ctx.log(`hop ${w.label} ${side}, round ${round + 1}: ${(run.seconds * 1000).toFixed(1)} ms, ${Math.round((w.count * w.clients) / run.seconds)} msg/s delivered${cpu}`);
      }
    }
  }

  const seconds = (w: Workload, side: Side) => {
    const list = runs.get(`${w.label}/${side}`);
    return list ? median(list.map((r) => r.seconds)) : undefined;
  };
  const rate = (w: Workload, side: Side) => {
    const s = seconds(w, side);
    return s === undefined ? undefined : (w.count * w.clients) / s;
  };
  const relayCpu = (w: Workload, side: Side) => {
    const list = runs.get(`${w.label}/${side}`)?.map((r) => r.relayCpuUs);
    return list && list.every((cpu) => cpu !== undefined) ? median(list as number[]) : undefined;
  };
  const [one, hundred, big] = workloads;
  const rows: Row[] = [
    { label: `hop: ${one.label} (msg/s)`, direct: rate(one, 'direct'), v1: rate(one, 'Node relay'), json: rate(one, 'C relay'), digits: 0 },
    { label: '  relay CPU per message (µs)', direct: undefined, v1: relayCpu(one, 'Node relay'), json: relayCpu(one, 'C relay'), digits: 1, ratio: false },
    { label: `hop: ${hundred.label} (msg/s, all clients)`, direct: rate(one, 'direct'), v1: rate(hundred, 'Node relay'), json: rate(hundred, 'C relay'), digits: 0 },
    { label: `hop: ${big.label} (ms)`, direct: ms(seconds(big, 'direct')), v1: ms(seconds(big, 'Node relay')), json: ms(seconds(big, 'C relay')), digits: 1 },
  ];
  const versus = (value: number | undefined, base: number | undefined) => (value === undefined || base === undefined ? '-' : `${(value / base).toFixed(2)}x`);
  const addedMs = (side: Side) => {
    const relayed = seconds(big, side);
    const direct = seconds(big, 'direct');
    return relayed === undefined || direct === undefined ? undefined : (relayed - direct) * 1000;
  };
  const added = (side: Side) => (addedMs(side) === undefined ? '-' : `${addedMs(side)!.toFixed(0)} ms`);
  const summary = [
    `hop ceiling, ${one.label}: a relay that only reads, computes the HMAC and writes carries Node ${versus(rate(one, 'Node relay'), rate(one, 'direct'))}, ` +
      `C ${versus(rate(one, 'C relay'), rate(one, 'direct'))} of direct (the gateway's goal: >= 0.9x)`,
    `hop ceiling, ${hundred.label}: the relay delivers Node ${versus(rate(hundred, 'Node relay'), rate(one, 'direct'))}, C ${versus(rate(hundred, 'C relay'), rate(one, 'direct'))} ` +
      `of what one direct reader gets alone (the gateway's goal: >= 5x)`,
    `hop ceiling, ${big.label}: one more hop adds Node ${added('Node relay')}, C ${added('C relay')} to direct's ${ms(seconds(big, 'direct'))?.toFixed(1) ?? '-'} ms`,
  ];
  return { rows, summary, bigAddedMs: { 'Node relay': addedMs('Node relay'), 'C relay': addedMs('C relay') } };
}

const ms = (seconds: number | undefined) => (seconds === undefined ? undefined : seconds * 1000);
