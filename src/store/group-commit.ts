// Group commit for small rows written on hot paths (mandate rows at the token endpoint, DPoP proof
// ids at every DPoP-bound call): concurrent writers share one transaction (one fsync) instead of
// paying a synchronous commit each, which is what bounds these paths on a slow disk. Every caller's
// promise settles only after the transaction holding its row has committed.
import type { SqlExecutor, Store } from './types.js';

interface Pending<T, R> {
  readonly item: T;
  readonly resolve: (result: R) => void;
  readonly reject: (err: unknown) => void;
}

/** Writes `items` in one transaction and returns one result per item, in order. */
export type GroupWrite<T, R> = (tx: SqlExecutor, items: readonly T[]) => Promise<readonly R[]>;

export class GroupCommit<T, R = undefined> {
  #queue: Pending<T, R>[] = [];
  #flushing = false;

  constructor(
    private readonly store: Store,
    private readonly write: GroupWrite<T, R>,
    private readonly maxBatch = 512,
  ) {}

  /** Resolves with the item's result once it is durably committed; rejects if its batch failed. */
  submit(item: T): Promise<R> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.maxBatch);
        try {
          const results = await this.store.transaction((tx) =>
            this.write(
              tx,
              batch.map((p) => p.item),
            ),
          );
          for (const [i, p] of batch.entries()) p.resolve(results[i] as R);
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }
}
