// Counters and histograms for the gateway's call path, registered in a prom-client registry.
// prom-client's own `observe()` costs ~2 µs per call on these machines even unlabelled (a labels
// object, a label hash and a float-keyed bucket map on every observation); these record into
// numbers held by a child bound once to its label values, and prom-client only formats them at
// scrape time. Hand-written because prom-client offers no pre-aggregated child; the exposition
// (names, `le` buckets, `_sum`, `_count`) is prom-client's, through the registry's `get()` contract.
import type { Registry } from 'prom-client';

type Labels = Record<string, string>;

interface Value {
  readonly metricName?: string;
  readonly labels: Labels;
  readonly value: number;
}

abstract class Lean<L extends string, C> {
  readonly aggregator = 'sum' as const;
  readonly #children = new Map<string, { readonly labels: Labels; readonly child: C }>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
    readonly labelNames: readonly L[],
    registry: Registry,
  ) {
    registry.registerMetric(this as never);
  }

  /** The child for these label values (made once; keep it, do not call this per observation). */
  labels(...values: string[]): C {
    const key = values.join('\u0000');
    let found = this.#children.get(key);
    if (found === undefined) {
      const labels: Labels = {};
      this.labelNames.forEach((n, i) => {
        labels[n] = values[i] ?? '';
      });
      found = { labels, child: this.create() };
      this.#children.set(key, found);
    }
    return found.child;
  }

  remove(...values: string[]): void {
    this.#children.delete(values.join('\u0000'));
  }

  protected abstract create(): C;
  protected abstract values(labels: Labels, child: C): Value[];

  get(): { name: string; help: string; type: string; aggregator: 'sum'; values: Value[] } {
    const values: Value[] = [];
    for (const { labels, child } of this.#children.values()) values.push(...this.values(labels, child));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.#children.clear();
  }
}

export class LeanCounterChild {
  value = 0;
  inc(by = 1): void {
    this.value += by;
  }
}

export class LeanCounter<L extends string = never> extends Lean<L, LeanCounterChild> {
  constructor(o: { name: string; help: string; labelNames?: readonly L[]; registry: Registry }) {
    super(o.name, o.help, 'counter', o.labelNames ?? [], o.registry);
  }
  protected create(): LeanCounterChild {
    return new LeanCounterChild();
  }
  protected values(labels: Labels, child: LeanCounterChild): Value[] {
    return [{ labels, value: child.value }];
  }
}

export class LeanHistogramChild {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }
  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= (bounds[i] as number)) {
        (this.counts[i] as number)++;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }
}

export class LeanHistogram<L extends string = never> extends Lean<L, LeanHistogramChild> {
  readonly #bounds: readonly number[];
  constructor(o: { name: string; help: string; labelNames?: readonly L[]; buckets: readonly number[]; registry: Registry }) {
    super(o.name, o.help, 'histogram', o.labelNames ?? [], o.registry);
    this.#bounds = [...o.buckets].sort((a, b) => a - b);
  }
  protected create(): LeanHistogramChild {
    return new LeanHistogramChild(this.#bounds);
  }
  protected values(labels: Labels, child: LeanHistogramChild): Value[] {
    const out: Value[] = [];
    let acc = 0;
    child.bounds.forEach((le, i) => {
      acc += child.counts[i] as number;
      out.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: String(le) }, value: acc });
    });
    out.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: child.count });
    out.push({ metricName: `${this.name}_sum`, labels, value: child.sum });
    out.push({ metricName: `${this.name}_count`, labels, value: child.count });
    return out;
  }
}
