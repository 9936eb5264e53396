// Group commit for mandate rows: concurrent opens share one transaction (one fsync) instead of
// paying a synchronous commit each, which is what bounds the token endpoint on a slow disk.
// Every caller's promise settles only after the transaction holding its row has committed.
import type { SqlExecutor, Store } from '../store/index.js';

interface Pending<T> {
  readonly item: T;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

export class GroupInsert<T> {
  #queue: Pending<T>[] = [];
  #flushing = false;

  constructor(
    private readonly store: Store,
    private readonly write: (tx: SqlExecutor, items: readonly T[]) => Promise<void>,
    private readonly maxBatch = 512,
  ) {}

  /** Resolves once `item` is durably committed; rejects if its batch failed. */
  submit(item: T): Promise<void> {
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
          await this.store.transaction((tx) =>
            this.write(
              tx,
              batch.map((p) => p.item),
            ),
          );
          for (const p of batch) p.resolve();
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }
}
