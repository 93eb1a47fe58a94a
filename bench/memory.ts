/**
 * The gateway's memory: RSS fresh, with many idle kernels, peak during each workload and after, in
 * one table with the goals beside. RSS and its peak come from /proc/<pid>/status (VmRSS, VmHWM).
 */
import { procStatusKb, resetPeakRss, rest, type Gateway } from './processes.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const rssMb = (pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS') => {
  const kb = procStatusKb(pid, field);
  return kb === undefined ? undefined : kb / 1024;
};

export interface MemoryLine {
  label: string;
  mb: number | undefined;
  /** The goal, in words, and whether it is met. */
  goal?: string;
  met?: boolean;
}

/** Peak and after of one workload: VmHWM reset before it, RSS read `settleMs` after. */
export async function around<T>(gateway: Gateway | undefined, label: string, lines: MemoryLine[], work: () => Promise<T>, settleMs = 2000, afterGoalMb?: number): Promise<T> {
  const reset = gateway ? resetPeakRss(gateway.pid) : false;
  const result = await work();
  if (gateway) {
    if (reset) lines.push({ label: `${label}: peak`, mb: rssMb(gateway.pid, 'VmHWM') });
    await sleep(settleMs);
    const mb = rssMb(gateway.pid);
    const goal = afterGoalMb === undefined ? {} : { goal: `<= ${afterGoalMb}`, met: mb !== undefined && mb <= afterGoalMb };
    lines.push({ label: `${label}: after (${settleMs / 1000} s idle)`, mb, ...goal });
  }
  return result;
}

/** Starts `count` kernels of `name` (5 at a time), reads the RSS once they are idle, deletes them. */
export async function idleKernels(gateway: Gateway, token: string, name: string, count: number, log: (text: string) => void): Promise<number | undefined> {
  const ids: string[] = [];
  try {
    for (let i = 0; i < count; i += 5) {
      const batch = await Promise.all(Array.from({ length: Math.min(5, count - i) }, () => rest(gateway, token, 'POST', 'api/kernels', { name })));
      for (const response of batch) {
        const id = (response.body as { id?: unknown } | undefined)?.id;
        if (response.status !== 201 || typeof id !== 'string') throw new Error(`POST /api/kernels (${name}) answered ${response.status}: ${JSON.stringify(response.body)}`);
        ids.push(id);
      }
    }
    log(`${count} ${name} kernels started`);
    await sleep(3000);
    return rssMb(gateway.pid);
  } finally {
    for (let i = 0; i < ids.length; i += 10) await Promise.all(ids.slice(i, i + 10).map((id) => rest(gateway, token, 'DELETE', `api/kernels/${id}`)));
  }
}

/** What the gateway says it gave back after bursts (src/memory-release.ts), from its /metrics. */
export async function memoryReleased(gateway: Gateway, token: string): Promise<MemoryLine> {
  const response = await rest(gateway, token, 'GET', 'metrics');
  const text = typeof response.body === 'string' ? response.body : '';
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  const steps = value('kernelgateway_memory_release_steps_total');
  const bytes = value('kernelgateway_memory_released_bytes_total');
  return { label: `given back after bursts, in all (${Number.isNaN(steps) ? '?' : steps} quiet-second steps; /metrics)`, mb: Number.isNaN(bytes) ? undefined : bytes / 2 ** 20 };
}

export function printMemory(lines: readonly MemoryLine[]): void {
  const width = Math.max(...lines.map((line) => line.label.length));
  console.log(`${'gateway memory (RSS)'.padEnd(width)} |       MB | goal`);
  console.log(`${'-'.repeat(width)}-|----------|-----`);
  for (const line of lines) {
    const value = line.mb === undefined ? '-' : line.mb.toFixed(1);
    const goal = line.goal ? `${line.goal}${line.met === undefined ? '' : line.met ? ' (met)' : ' (NOT MET)'}` : '';
    console.log(`${line.label.padEnd(width)} | ${value.padStart(8)} | ${goal}`);
  }
}
