// Counts refusals of unauthenticated requests per source and writes ONE `refusal.aggregated` audit
// event per source and window, so a flood of garbage cannot grow the permanent log by one event per
// request. Only for callers nobody authenticated: a decision about an authenticated call is never
// routed here (it is appended on its own, durably, by the code that made it).
import type { AuditActor, AuditLog } from './types.js';

/** One refused, unauthenticated request. */
export interface Refusal {
  /** Where it came from: the client address as the HTTP layer saw it. */
  readonly source: string;
  /** Which door it knocked on: `token`, `mcp`, `authzen`, `admin`, … (a short fixed name, not the URL). */
  readonly endpoint: string;
  /** The registry code it was refused with. */
  readonly code: string;
}

/** What domain code needs to report an unauthenticated refusal (see RefusalAggregator). */
export interface RefusalRecorder {
  record(refusal: Refusal): void;
}

export interface RefusalAggregatorOptions {
  readonly audit: AuditLog;
  readonly windowMs: number;
  /** Sources counted separately per window; beyond it, new sources share the `other` bucket (bounded memory under a spread flood). */
  readonly maxSources: number;
  readonly now?: () => number;
}

interface Bucket {
  count: number;
  first: number;
  last: number;
  readonly endpoints: Map<string, number>;
  readonly codes: Map<string, number>;
}

export const OTHER_SOURCES = 'other';
// Endpoint and code names come from code, but cap their variety anyway: the event stays small.
const MAX_KEYS = 32;

const bump = (m: Map<string, number>, key: string) => {
  if (m.has(key) || m.size < MAX_KEYS) m.set(key, (m.get(key) ?? 0) + 1);
  else m.set(OTHER_SOURCES, (m.get(OTHER_SOURCES) ?? 0) + 1);
};

export class RefusalAggregator implements RefusalRecorder {
  readonly #o: RefusalAggregatorOptions;
  readonly #now: () => number;
  #buckets = new Map<string, Bucket>();
  #windowStart: number;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(options: RefusalAggregatorOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#windowStart = this.#now();
    this.#timer = setInterval(() => void this.flush(), options.windowMs);
    this.#timer.unref();
  }

  record(refusal: Refusal): void {
    if (this.#closed) return;
    let key = refusal.source === '' ? 'unknown' : refusal.source.slice(0, 64);
    if (!this.#buckets.has(key) && this.#buckets.size >= this.#o.maxSources) key = OTHER_SOURCES;
    const now = this.#now();
    let b = this.#buckets.get(key);
    if (b === undefined) {
      b = { count: 0, first: now, last: now, endpoints: new Map(), codes: new Map() };
      this.#buckets.set(key, b);
    }
    b.count++;
    b.last = now;
    bump(b.endpoints, refusal.endpoint);
    bump(b.codes, refusal.code);
  }

  /**
   * Ends the window: one event per source, appended together (one group commit). Best effort: a
   * refusal happened whether or not the log takes its summary, and the requests were refused anyway.
   */
  flush(): Promise<void> {
    const buckets = this.#buckets;
    const windowStart = this.#windowStart;
    const windowEnd = this.#now();
    this.#buckets = new Map();
    this.#windowStart = windowEnd;
    if (buckets.size === 0) return this.#flushing;
    const actors: AuditActor[] = [{ type: 'system', id: 'refusal-aggregator' }];
    const written = Promise.all(
      [...buckets].map(([source, b]) =>
        this.#o.audit
          .append({
            type: 'refusal.aggregated',
            actors,
            data: {
              source,
              count: b.count,
              windowStart: new Date(windowStart).toISOString(),
              windowEnd: new Date(windowEnd).toISOString(),
              firstAt: new Date(b.first).toISOString(),
              lastAt: new Date(b.last).toISOString(),
              endpoints: Object.fromEntries(b.endpoints),
              codes: Object.fromEntries(b.codes),
            },
          })
          .catch(() => {}),
      ),
    ).then(() => {});
    this.#flushing = this.#flushing.then(() => written);
    return this.#flushing;
  }

  /** Writes the open window and stops counting. Call before the audit log closes. */
  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
    this.#closed = true;
  }
}
