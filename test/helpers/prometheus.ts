/**
 * Scraping /metrics, read by a strict parser of Prometheus's text exposition format (0.0.4), written
 * from the format's description and independent of the gateway's renderer: HELP and TYPE lines,
 * sample lines with escaped label values, and for histograms cumulative buckets that end in +Inf
 * equal to _count. Anything off is an error naming the line.
 */
import { api, type Gateway } from './gateway.ts';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let at = 0;
  while (at < text.length) {
    const eq = text.indexOf('=', at);
    if (eq < 0) throw new Error(`bad labels in: ${line}`);
    const name = text.slice(at, eq).trim();
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) throw new Error(`bad label name ${JSON.stringify(name)} in: ${line}`);
    if (text[eq + 1] !== '"') throw new Error(`label value not quoted in: ${line}`);
    let value = '';
    let i = eq + 2;
    for (; i < text.length && text[i] !== '"'; i++) {
      if (text[i] === '\\') {
        const next = text[++i];
        if (next === 'n') value += '\n';
        else if (next === '\\' || next === '"') value += next;
        else throw new Error(`bad escape \\${next} in: ${line}`);
      } else value += text[i];
    }
    if (text[i] !== '"') throw new Error(`unterminated label value in: ${line}`);
    labels[name] = value;
    at = i + 1;
    if (text[at] === ',') at++;
    else if (at < text.length) throw new Error(`expected , between labels in: ${line}`);
  }
  return labels;
}

function parseNumber(text: string, line: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  if (text === 'NaN') return NaN;
  const value = Number(text);
  if (text === '' || Number.isNaN(value)) throw new Error(`bad value ${JSON.stringify(text)} in: ${line}`);
  return value;
}

export class Scrape {
  readonly types = new Map<string, string>();
  readonly samples: Sample[] = [];

  constructor(text: string) {
    if (!text.endsWith('\n')) throw new Error('the exposition does not end with a newline');
    for (const line of text.split('\n')) {
      if (line === '') continue;
      if (line.startsWith('#')) {
        const match = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
        if (!match) continue; // a plain comment
        if (!NAME.test(match[2])) throw new Error(`bad metric name in: ${line}`);
        if (match[1] === 'TYPE') {
          if (!TYPES.has(match[3])) throw new Error(`bad type in: ${line}`);
          if (this.types.has(match[2])) throw new Error(`second TYPE for ${match[2]}`);
          this.types.set(match[2], match[3]);
        }
        continue;
      }
      const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
      if (!match) throw new Error(`bad sample line: ${line}`);
      const name = match[1];
      const family = [name, name.replace(/_(bucket|sum|count)$/, '')].find((n) => this.types.has(n));
      if (!family) throw new Error(`sample ${name} has no TYPE line before it`);
      this.samples.push({ name, labels: match[2] ? parseLabels(match[2], line) : {}, value: parseNumber(match[3], line) });
    }
    this.#checkHistograms();
  }

  #checkHistograms(): void {
    for (const [family, type] of this.types) {
      if (type !== 'histogram') continue;
      const series = new Map<string, Sample[]>();
      for (const sample of this.samples.filter((s) => s.name === `${family}_bucket`)) {
        const { le, ...rest } = sample.labels;
        if (le === undefined) throw new Error(`${family}_bucket without le`);
        const key = JSON.stringify(rest);
        series.set(key, [...(series.get(key) ?? []), sample]);
      }
      for (const [key, buckets] of series) {
        let previous = -Infinity;
        let count = 0;
        for (const bucket of buckets) {
          if (bucket.value < count) throw new Error(`${family}${key}: buckets are not cumulative`);
          const le = parseNumber(bucket.labels.le, family);
          if (le <= previous) throw new Error(`${family}${key}: bucket bounds are not increasing`);
          previous = le;
          count = bucket.value;
        }
        if (previous !== Infinity) throw new Error(`${family}${key}: no +Inf bucket`);
        const total = this.value(`${family}_count`, JSON.parse(key) as Record<string, string>);
        if (total !== count) throw new Error(`${family}${key}: +Inf bucket ${count} differs from _count ${total}`);
      }
    }
  }

  /** The sum of the samples of `name` whose labels include `labels` (0 when there is none). */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.samples
      .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
      .reduce((sum, s) => sum + s.value, 0);
  }

  type(name: string): string | undefined {
    return this.types.get(name);
  }
}

export async function scrape(gw: Gateway, token: string | false = gw.token): Promise<Scrape> {
  const res = await api(gw, 'GET', 'metrics', { token });
  if (res.status !== 200) throw new Error(`GET /metrics → ${res.status} ${res.text}`);
  if (!/^text\/plain; version=0\.0\.4/.test(res.headers.get('content-type') ?? '')) {
    throw new Error(`GET /metrics: Content-Type ${res.headers.get('content-type')}`);
  }
  return new Scrape(res.text);
}
