// A count over a sliding time window, kept as a ring of fixed buckets with a running total: O(1)
// amortized to add and to read. The window slides by whole buckets, so a count leaves it between
// `span - bucket` and `span` after it was added. Time that runs backwards (a clock step) counts
// into the newest bucket.

export class SlidingCount {
  readonly #bucketMs: number;
  readonly #counts: Float64Array;
  /** The newest bucket number (time / bucketMs) the ring holds. */
  #epoch = Number.NEGATIVE_INFINITY;
  #total = 0;

  constructor(spanMs: number, buckets: number) {
    if (!(spanMs > 0) || !Number.isInteger(buckets) || buckets < 1) throw new RangeError('span and buckets must be positive');
    this.#bucketMs = spanMs / buckets;
    this.#counts = new Float64Array(buckets);
  }

  add(now: number, n = 1): void {
    this.#advance(now);
    const slot = this.#epoch % this.#counts.length;
    this.#counts[slot] = (this.#counts[slot] as number) + n;
    this.#total += n;
  }

  /** The count over the window ending at `now`. */
  sum(now: number): number {
    this.#advance(now);
    return this.#total;
  }

  /** Empties the buckets that left the window since the newest one. */
  #advance(now: number): void {
    const epoch = Math.floor(now / this.#bucketMs);
    if (epoch <= this.#epoch) return;
    const len = this.#counts.length;
    if (epoch - this.#epoch >= len) {
      this.#counts.fill(0);
      this.#total = 0;
    } else {
      for (let e = this.#epoch + 1; e <= epoch; e++) {
        const slot = e % len;
        this.#total -= this.#counts[slot] as number;
        this.#counts[slot] = 0;
      }
    }
    this.#epoch = epoch;
  }
}
