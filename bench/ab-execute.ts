/**
 * Execute round trips through two gateways at once (e.g. this checkout and an older build), beside
 * direct ZeroMQ, interleaved in blocks, so that a small difference is not hidden by a noisy machine.
 *
 *   node out/bench/ab-execute.js --a <checkout> --b <checkout> [--executes N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirectConnection, WsConnection, type KernelConnection } from './connections.ts';
import { executeOnce, ready } from './cells.ts';
import { mean, percentile, rotate } from './figures.ts';
import { launchGateway, launchKernel, rest, type Gateway } from './processes.ts';

const args = process.argv.slice(2);
const arg = (name: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : undefined;
};
const A = arg('--a');
const B = arg('--b');
if (!A || !B) throw new Error('usage: node out/bench/ab-execute.js --a <checkout> --b <checkout> [--executes N]');
const EXECUTES = Number(arg('--executes') ?? 2000);
const BLOCK = 100;
const TOKEN = 'ab';

async function viaGateway(label: string, gateway: Gateway): Promise<WsConnection> {
  const response = await rest(gateway, TOKEN, 'POST', 'api/kernels', { name: 'python3' });
  const id = (response.body as { id: string }).id;
  const c = await WsConnection.open(label, `${gateway.url.href.replace(/^http/, 'ws')}api/kernels/${id}/channels?token=${TOKEN}`, true, 30_000);
  await ready(c);
  return c;
}

const dir = mkdtempSync(join(tmpdir(), 'kg-ab-'));
const kernel = await launchKernel(dir);
const gwA = await launchGateway(A, dir, TOKEN, 30_000, { name: 'a' });
const gwB = await launchGateway(B, dir, TOKEN, 30_000, { name: 'b' });
try {
  const direct = new DirectConnection('direct', kernel.info);
  await ready(direct);
  const subjects = [direct, await viaGateway('a', gwA), await viaGateway('b', gwB)];
  for (const c of subjects) for (let i = 0; i < 50; i++) await executeOnce(c);
  const samples = new Map<KernelConnection, number[]>(subjects.map((c) => [c, []]));
  for (let block = 0; block * BLOCK < EXECUTES; block++) {
    for (const c of rotate(subjects, block)) for (let i = 0; i < BLOCK; i++) samples.get(c)!.push(await executeOnce(c));
  }
  const p50 = (xs: number[]) => percentile([...xs].sort((x, y) => x - y), 50);
  const base = samples.get(direct)!;
  for (const [c, xs] of samples) {
    console.log(`${c.label.padEnd(7)} p50 ${p50(xs).toFixed(3)} ms (${(p50(xs) / p50(base)).toFixed(2)}x, +${(p50(xs) - p50(base)).toFixed(3)} ms)  mean ${mean(xs).toFixed(3)} ms`);
  }
  for (const c of subjects) c.close();
} finally {
  await gwA.stop(15_000);
  await gwB.stop(15_000);
  await kernel.stop();
  rmSync(dir, { recursive: true, force: true });
}
