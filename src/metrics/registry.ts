/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * exposition format (version 0.0.4). Hot paths hold a labelled child and only add numbers; gauges
 * that describe state are computed when scraped.
 */

type Labels = Record<string, string>;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labelText(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`;
}

function number(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

interface Metric {
  readonly name: string;
  render(): string;
}

abstract class Family<Child> implements Metric {
  readonly #children = new Map<string, { labels: Labels; child: Child }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
  ) {}

  /** The series for these labels (made on first use); keep it to update without a lookup. */
  labels(labels: Labels = {}): Child {
    const key = labelText(labels);
    let entry = this.#children.get(key);
    if (!entry) {
      entry = { labels, child: this.create() };
      this.#children.set(key, entry);
    }
    return entry.child;
  }

  protected abstract create(): Child;
  protected abstract lines(labels: Labels, child: Child): string[];

  render(): string {
    const lines = [`# HELP ${this.name} ${this.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${this.name} ${this.type}`];
    for (const { labels, child } of this.#children.values()) lines.push(...this.lines(labels, child));
    return lines.join('\n');
  }

  /** Every series' child, in the order they were made. */
  protected children(): Child[] {
    return [...this.#children.values()].map((entry) => entry.child);
  }

  /** Forget every series (for gauges recomputed at each scrape). */
  reset(): void {
    this.#children.clear();
  }
}

/** A counter's one number: it only goes up. */
export class CounterChild {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

/** A gauge's one number, which may also be set. */
export class GaugeChild extends CounterChild {
  set(value: number): void {
    this.value = value;
  }
}

/** Counters and gauges: one number per series. */
abstract class ValueFamily<Child extends CounterChild> extends Family<Child> {
  /** The sum over every series. */
  total(): number {
    return this.children().reduce((sum, child) => sum + child.value, 0);
  }

  protected lines(labels: Labels, child: Child): string[] {
    return [`${this.name}${labelText(labels)} ${number(child.value)}`];
  }
}

export class Counter extends ValueFamily<CounterChild> {
  constructor(name: string, help: string) {
    super(name, help, 'counter');
  }
  protected create(): CounterChild {
    return new CounterChild();
  }
}

export class Gauge extends ValueFamily<GaugeChild> {
  constructor(name: string, help: string) {
    super(name, help, 'gauge');
  }
  protected create(): GaugeChild {
    return new GaugeChild();
  }
}

export class HistogramChild {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly buckets: readonly number[]) {
    this.counts = buckets.map(() => 0);
  }
  observe(value: number): void {
    this.sum += value;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) this.counts[i]++;
  }
}

export class Histogram extends Family<HistogramChild> {
  constructor(
    name: string,
    help: string,
    readonly buckets: readonly number[],
  ) {
    super(name, help, 'histogram');
  }
  protected create(): HistogramChild {
    return new HistogramChild(this.buckets);
  }
  protected lines(labels: Labels, child: HistogramChild): string[] {
    const lines = this.buckets.map((le, i) => `${this.name}_bucket${labelText({ ...labels, le: number(le) })} ${child.counts[i]}`);
    lines.push(`${this.name}_bucket${labelText({ ...labels, le: '+Inf' })} ${child.count}`);
    lines.push(`${this.name}_sum${labelText(labels)} ${number(child.sum)}`);
    lines.push(`${this.name}_count${labelText(labels)} ${child.count}`);
    return lines;
  }
}

/** Metrics in the order they are registered; `collect` hooks update state gauges before rendering. */
export class Registry {
  readonly #metrics: Metric[] = [];
  readonly #collectors: Array<() => void> = [];

  add<M extends Metric>(metric: M): M {
    this.#metrics.push(metric);
    return metric;
  }

  /** Called at every scrape, before rendering. */
  onCollect(collector: () => void): void {
    this.#collectors.push(collector);
  }

  render(): string {
    for (const collect of this.#collectors) collect();
    return `${this.#metrics.map((m) => m.render()).join('\n')}\n`;
  }
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
