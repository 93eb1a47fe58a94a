/**
 * Gives the memory a burst of traffic grew back to the system once the traffic pauses (README: Memory
 * after a burst).
 * After a 100-client flood the gateway otherwise stays ~50 MB above its fresh size, in three places:
 * - V8's old generation, holding the burst's last Buffers: a major collection frees them;
 * - V8's young generation, at the size the burst grew it to (33.6 MB committed instead of ~1): V8
 *   shrinks it only in a collection that sees a low allocation rate, and an idle process collects
 *   nothing. A young-generation collection takes ~1 ms here; after ~8 s of one per second V8 sees the
 *   low rate and shrinks it (Node 20 and 22 alike);
 * - glibc's heap: it gives back only its free top, and only malloc_trim hands back the free pages below a
 *   live allocation (src/native/malloc-trim.c).
 * So on the first quiet second (under 64 KiB received) after a burst (4 MiB received since the last
 * release), or after kernels ended (their sockets' buffers, mostly libzmq's, are freed then: ~8 MB after
 * 100 kernels, which glibc otherwise keeps; at most one such release per 10 s), an asynchronous major
 * collection, on the next ones a young-generation collection, each followed by malloc_trim, until the
 * young generation is small; under Node 22 the last step adds a full collection that reduces memory (it
 * unmaps freed pages only then).
 * Nothing runs while traffic flows, when the memory is about to be reused anyway.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getHeapSpaceStatistics } from 'node:v8';
import { currentRuntime } from './jskernel/spec.ts';
import { errorMessage, type Logger } from './log.ts';
import { metrics } from './metrics/gateway-metrics.ts';
import { v8Gc } from './zmq/message-memory.ts';

/** What a release step can do; each one is optional (absent where the runtime lacks it). */
export interface ReleaseSteps {
  /** A major collection (asynchronous: what it frees is trimmed on the next step). */
  collectMajor?: () => void;
  /** A young-generation collection. */
  collectYoung?: () => void;
  /** A full collection that reduces memory, for the last step (it unmaps what the others freed). */
  collectFull?: () => void;
  /** malloc_trim(0): true when memory was given back. */
  trimHeap?: () => boolean;
}

export interface MemoryReleaseOptions extends ReleaseSteps {
  /** A count that grows with traffic (bytes received): unchanged over a tick means a pause. */
  activity: () => number;
  /** Bytes V8 has committed for its young generation. */
  youngCommitted: () => number;
  rss: () => number;
  /** A count of kernels that ended: a change means memory was freed, worth releasing after too. */
  ended?: () => number;
  /** That count at the last release (default: now). */
  endedAt?: number;
  /** Ticks after a release began before kernels ending start another (default 10): churn costs little. */
  endsGapTicks?: number;
  /** Traffic since the last release that makes a burst worth releasing after (default BURST_BYTES). */
  burstBytes?: number;
  /** Traffic in a tick below which the tick counts as quiet (default QUIET_BYTES). */
  quietBytes?: number;
  /** The activity count at the last release (default: now, so only later traffic counts). */
  releasedAt?: number;
  /** Quiet ticks spent releasing after a burst, at most (default 15). */
  settleTicks?: number;
  /** Milliseconds, for how long the last step stopped the event loop (default performance.now). */
  clock?: () => number;
  /** Called when a burst's release ends: the RSS given back, the ticks it took, the last step's ms. */
  onSettled?: (release: { gaveBack: number; ticks: number; rssAfter: number; lastStepMs: number }) => void;
}

/** Traffic that makes a burst (bytes received since the last release, however slowly). */
export const BURST_BYTES = 4 * 2 ** 20;
/** Traffic in a tick that still counts as quiet: a progress bar printing every half second is a pause. */
export const QUIET_BYTES = 64 * 2 ** 10;

/** Young generation at or below this is as small as V8 makes it: the release ends. */
const YOUNG_SETTLED = 2 * 2 ** 20;

export class MemoryRelease {
  readonly #options: MemoryReleaseOptions;
  readonly #burstBytes: number;
  readonly #quietBytes: number;
  readonly #clock: () => number;
  readonly #settleTicks: number;
  readonly #endsGapTicks: number;
  #lastSeen: number;
  #releasedAt: number;
  #endedAt: number;
  /** Quiet ticks left to release on; 0 when there is nothing to give back. */
  #pending = 0;
  /** Steps since the burst began to be released (the first one collects the old generation). */
  #spent = 0;
  #gaveBack = 0;
  /** Ticks since the last release began (none yet: as if long ago). */
  #sinceStart = Number.POSITIVE_INFINITY;

  constructor(options: MemoryReleaseOptions) {
    this.#options = options;
    this.#burstBytes = options.burstBytes ?? BURST_BYTES;
    this.#quietBytes = options.quietBytes ?? QUIET_BYTES;
    this.#clock = options.clock ?? (() => performance.now());
    this.#settleTicks = options.settleTicks ?? 15;
    this.#endsGapTicks = options.endsGapTicks ?? 10;
    this.#lastSeen = options.activity();
    this.#releasedAt = options.releasedAt ?? this.#lastSeen;
    this.#endedAt = options.endedAt ?? options.ended?.() ?? 0;
    // A burst before now: its release covers the kernels that ended before too.
    if (this.#lastSeen - this.#releasedAt >= this.#burstBytes) this.#begin(options.ended?.() ?? 0);
  }

  /** A release starts (again) with a major collection; `ended` kernels are covered by it. */
  #begin(ended: number): void {
    this.#pending = this.#settleTicks;
    this.#spent = 0;
    this.#sinceStart = 0;
    this.#endedAt = ended;
  }

  /** One look at the traffic; on a quiet tick after a burst, one release step. True when it stepped. */
  tick(): boolean {
    const now = this.#options.activity();
    const moved = now - this.#lastSeen;
    this.#lastSeen = now;
    this.#sinceStart++;
    const ended = this.#options.ended?.() ?? 0;
    const burst = moved > 0 && now - this.#releasedAt >= this.#burstBytes;
    // Kernels that end while a release is under way, or soon after one began, wait for the next one: the
    // memory they free may come after its last step, and steady churn must not keep collecting.
    const endsWaiting = ended !== this.#endedAt && this.#pending === 0 && this.#sinceStart >= this.#endsGapTicks;
    if (burst || endsWaiting) this.#begin(ended);
    if (moved >= this.#quietBytes || this.#pending === 0) return false;
    this.#releasedAt = now;
    const { collectMajor, collectYoung, collectFull, trimHeap, youngCommitted, rss } = this.#options;
    const first = this.#spent === 0;
    const started = this.#clock();
    const before = rss();
    if (first) collectMajor?.();
    else collectYoung?.();
    const last = (!first && (!collectYoung || youngCommitted() <= YOUNG_SETTLED)) || this.#pending === 1;
    if (last) collectFull?.();
    trimHeap?.();
    const after = rss();
    this.#gaveBack += Math.max(0, before - after);
    this.#spent++;
    this.#pending = last ? 0 : this.#pending - 1;
    if (this.#pending === 0) {
      this.#options.onSettled?.({ gaveBack: this.#gaveBack, ticks: this.#spent, rssAfter: after, lastStepMs: this.#clock() - started });
      this.#gaveBack = 0;
      this.#spent = 0;
    }
    return true;
  }
}

/** Where the malloc_trim addon is: beside the executable (release archives), else beside the bundle (dist/). */
export function mallocTrimAddonFile(): string {
  const runtime = currentRuntime();
  const base = runtime.singleExecutable ? dirname(runtime.execPath) : dirname(fileURLToPath(import.meta.url));
  return join(base, 'native', 'malloc-trim.node');
}

/** malloc_trim from the addon in `file`, or why it is not there. */
export function loadMallocTrim(file: string): { trim: () => boolean } | { problem: string } {
  if (!existsSync(file)) return { problem: `${file} is missing (npm run build makes it where a C compiler is installed)` };
  const module = { exports: {} as { trim?: unknown } };
  try {
    process.dlopen(module, file);
  } catch (error) {
    return { problem: `${file} did not load: ${(error as Error).message}` };
  }
  const trim = module.exports.trim;
  if (typeof trim !== 'function') return { problem: `${file} has no trim()` };
  return { trim: trim as () => boolean };
}

/** The young generation's committed bytes; 0 where the runtime does not say (the release then stops). */
function youngCommitted(): number {
  let total = 0;
  try {
    for (const space of getHeapSpaceStatistics()) if (space.space_name === 'new_space') total += space.physical_space_size;
  } catch {
    return 0;
  }
  return total;
}

/**
 * glibc Linux, the C library that keeps free heap memory until malloc_trim (musl returns it itself).
 * build/native-addon.mjs asks the same before building the addon: it runs as plain JavaScript, before
 * this file is compiled.
 */
export function onGlibc(): boolean {
  if (process.platform !== 'linux') return false;
  try {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
    return Boolean(report?.header?.glibcVersionRuntime);
  } catch {
    return false;
  }
}

/** The steps this runtime allows, and what it lacks. */
function releaseSteps(): { steps: ReleaseSteps; lacking: string[] } {
  const steps: ReleaseSteps = {};
  const lacking: string[] = [];
  const gc = v8Gc();
  if (gc) {
    steps.collectMajor = () => gc({ type: 'major', execution: 'async' });
    steps.collectYoung = () => gc({ type: 'minor' });
    // V8 12 and later (Node 22) keep the pages of a shrunk young generation and of emptied old-generation
    // pages until a collection that reduces memory: this one took RSS from 138 to 55 MB in 25 ms after a
    // burst, where minor and plain major ones left it. V8 11 (Node 20) gives them back at once, and the
    // collection also clears V8's compilation cache, so it runs only where it is needed.
    if (Number(process.versions.v8.split('.')[0]) >= 12) steps.collectFull = () => gc({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  } else lacking.push('V8 collections (the runtime refuses --expose-gc)');
  if (currentRuntime().deno) {
    if (process.platform === 'linux') lacking.push("malloc_trim, so glibc keeps its free heap memory: not under Deno");
  } else if (onGlibc()) {
    const loaded = loadMallocTrim(mallocTrimAddonFile());
    if ('trim' in loaded) steps.trimHeap = loaded.trim;
    else lacking.push(`malloc_trim, so glibc keeps its free heap memory: ${loaded.problem}`);
  }
  return { steps, lacking };
}

const MB = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

/**
 * Releases memory after bursts for the life of the process (a 1 s unref'd timer that looks at the
 * traffic count; the steps are set up on the first burst, so start-up pays nothing). Returns a stop.
 */
export function releaseMemoryAfterBursts(log: Logger, intervalMs = 1000): () => void {
  let release: MemoryRelease | undefined;
  const setUp = (): MemoryRelease => {
    const { steps, lacking } = releaseSteps();
    const doing = [steps.collectMajor && 'V8 collections', steps.trimHeap && 'malloc_trim'].filter(Boolean).join(' and ') || 'nothing';
    log.info(`Memory release after bursts: ${doing}${lacking.length ? `; without ${lacking.join('; without ')}` : ''}`);
    return new MemoryRelease({
      ...steps,
      activity: () => metrics.bytesReceived(),
      releasedAt: 0,
      ended: () => metrics.kernelEnds.total(),
      endedAt: 0,
      youngCommitted,
      rss: () => process.memoryUsage.rss(),
      onSettled: ({ gaveBack, ticks, rssAfter, lastStepMs }) => {
        metrics.memoryReleased.labels().inc(gaveBack);
        log.debug(`Released ${MB(gaveBack)} MB after a burst or kernels ending in ${ticks} quiet second(s), the last step ${lastStepMs.toFixed(1)} ms; RSS ${MB(rssAfter)} MB`);
      },
    });
  };
  const timer = setInterval(() => {
    try {
      if (release) {
        if (release.tick()) metrics.memoryReleaseSteps.labels().inc();
      } else if (metrics.bytesReceived() >= BURST_BYTES || metrics.kernelEnds.total() > 0) {
        // The first burst or ended kernel: its release starts on the next quiet tick.
        release = setUp();
      }
    } catch (error) {
      // Never worth the process: stop releasing, say why.
      clearInterval(timer);
      log.warn(`Memory release after bursts stopped: ${errorMessage(error)}`);
    }
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
