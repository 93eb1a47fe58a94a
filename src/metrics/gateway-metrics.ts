/**
 * What the gateway counts and measures, served at GET /metrics. One set per process: modules on the
 * message path hold labelled series from here and only add numbers; state (kernels, connections,
 * the pool, the process) is read when Prometheus scrapes.
 */
import { readdirSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry, type CounterChild } from './registry.ts';

export type Direction = 'from_kernel' | 'to_client' | 'from_client' | 'to_kernel';

interface MessageSeries {
  messages: CounterChild;
  bytes: CounterChild;
}

const SECONDS_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
const HTTP_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly kernels = this.registry.add(new Gauge('kernelgateway_kernels', 'Kernels by kernelspec and execution state'));
  readonly kernelStarts = this.registry.add(new Counter('kernelgateway_kernel_starts_total', 'Kernels started (ready to serve), by kernelspec'));
  readonly kernelStartFailures = this.registry.add(new Counter('kernelgateway_kernel_start_failures_total', 'Kernel starts that failed, by kernelspec'));
  readonly kernelRestarts = this.registry.add(
    new Counter('kernelgateway_kernel_restarts_total', 'Kernel restarts by kernelspec and cause (requested: REST; auto: after a death)'),
  );
  readonly kernelEnds = this.registry.add(
    new Counter('kernelgateway_kernel_ends_total', 'Kernels that ended after they were started for a client or taken from the pool, by kernelspec and how (shutdown: asked to; dead: the process died and was not restarted)'),
  );
  readonly kernelStartSeconds = this.registry.add(
    new Histogram('kernelgateway_kernel_start_seconds', 'Time from a start request to a ready (and seeded) kernel', SECONDS_BUCKETS),
  );
  readonly pool = this.registry.add(new Gauge('kernelgateway_pool_kernels', 'Prespawned kernels ready to be handed out'));
  readonly websockets = this.registry.add(new Gauge('kernelgateway_websocket_connections', 'Open client WebSockets by protocol'));
  readonly messages = this.registry.add(new Counter('kernelgateway_messages_total', 'Jupyter messages by direction and channel'));
  readonly bytes = this.registry.add(new Counter('kernelgateway_message_bytes_total', 'Bytes of Jupyter messages by direction and channel'));
  readonly closes = this.registry.add(
    new Counter('kernelgateway_websocket_closes_total', 'Client WebSockets the gateway closed, by reason (4008 not_reading, 4009 kernel_not_reading, ...)'),
  );
  readonly offlineDropped = this.registry.add(
    new Counter('kernelgateway_offline_messages_dropped_total', 'Messages not kept for an absent client: its offline buffer was full'),
  );
  readonly httpRequests = this.registry.add(new Counter('kernelgateway_http_requests_total', 'HTTP requests by method, route template and status'));
  readonly httpSeconds = this.registry.add(
    new Histogram('kernelgateway_http_request_duration_seconds', 'HTTP request duration by method and route template', HTTP_BUCKETS),
  );
  readonly memoryReleaseSteps = this.registry.add(
    new Counter('kernelgateway_memory_release_steps_total', 'Quiet seconds after a burst or ended kernels spent giving memory back (a V8 collection, then malloc_trim)'),
  );
  readonly memoryReleased = this.registry.add(
    new Counter('kernelgateway_memory_released_bytes_total', 'Resident memory given back to the system after bursts and ended kernels, measured around each step'),
  );
  readonly #resident = this.registry.add(new Gauge('process_resident_memory_bytes', 'Resident memory size in bytes'));
  readonly #heapUsed = this.registry.add(new Gauge('nodejs_heap_size_used_bytes', 'V8 heap used in bytes'));
  readonly #heapTotal = this.registry.add(new Gauge('nodejs_heap_size_total_bytes', 'V8 heap size in bytes'));
  readonly #external = this.registry.add(new Gauge('nodejs_external_memory_bytes', 'Memory of C++ objects bound to JavaScript (Buffers) in bytes'));
  readonly #lag = this.registry.add(new Gauge('nodejs_eventloop_lag_seconds', 'Event loop lag: the largest delay of a 100 ms timer over the last scrape interval'));
  readonly #fds = this.registry.add(new Gauge('process_open_fds', 'Open file descriptors'));
  readonly #cpu = this.registry.add(new Counter('process_cpu_seconds_total', 'User and system CPU time in seconds'));
  readonly #start = this.registry.add(new Gauge('process_start_time_seconds', 'Start time of the process since the epoch, in seconds'));
  /** Per direction, per channel: kept, so that counting a message builds no key. */
  readonly #messageSeries: Record<Direction, Map<string, MessageSeries>> = {
    from_kernel: new Map(),
    to_client: new Map(),
    from_client: new Map(),
    to_kernel: new Map(),
  };
  #maxLagMs = 0;
  #lagTimer: NodeJS.Timeout | undefined;

  constructor() {
    this.#start.labels().set(Math.round((Date.now() - performance.now()) / 1000));
    this.registry.onCollect(() => this.#collectProcess());
  }

  /** The message and byte series of a direction and channel, to keep and add to. */
  #series(direction: Direction, channel: string): MessageSeries {
    const byChannel = this.#messageSeries[direction];
    let series = byChannel.get(channel);
    if (!series) {
      series = { messages: this.messages.labels({ direction, channel }), bytes: this.bytes.labels({ direction, channel }) };
      byChannel.set(channel, series);
    }
    return series;
  }

  /** One HTTP request answered (a WebSocket upgrade too), by route template. */
  countHttp(method: string, route: string, status: number, seconds: number): void {
    this.httpRequests.labels({ method, route, status: String(status) }).inc();
    this.httpSeconds.labels({ method, route }).observe(seconds);
  }

  /** Count one message (or the same message `copies` times, for a fan-out). */
  count(direction: Direction, channel: string, bytes: number, copies = 1): void {
    const series = this.#series(direction, channel);
    series.messages.inc(copies);
    series.bytes.inc(bytes * copies);
  }

  /** Bytes of messages received so far, from kernels and from clients: unchanged for a while means quiet. */
  bytesReceived(): number {
    let total = 0;
    for (const direction of ['from_kernel', 'from_client'] as const) for (const series of this.#messageSeries[direction].values()) total += series.bytes.value;
    return total;
  }

  /** Start measuring event-loop lag (a 100 ms timer's delays; unref'd). */
  watchEventLoop(): void {
    if (this.#lagTimer) return;
    let expected = performance.now() + 100;
    this.#lagTimer = setInterval(() => {
      const now = performance.now();
      this.#maxLagMs = Math.max(this.#maxLagMs, now - expected);
      expected = now + 100;
    }, 100);
    this.#lagTimer.unref();
  }

  #collectProcess(): void {
    const memory = process.memoryUsage();
    this.#resident.labels().set(memory.rss);
    this.#heapUsed.labels().set(memory.heapUsed);
    this.#heapTotal.labels().set(memory.heapTotal);
    this.#external.labels().set(memory.external);
    this.#lag.labels().set(Math.max(0, this.#maxLagMs) / 1000);
    this.#maxLagMs = 0;
    const cpu = process.cpuUsage();
    this.#cpu.labels().value = (cpu.user + cpu.system) / 1e6;
    try {
      this.#fds.labels().set(readdirSync('/proc/self/fd').length);
    } catch {
      // Not Linux: no such count.
    }
  }
}

/** The process's metrics. */
export const metrics = new GatewayMetrics();
