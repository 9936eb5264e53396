// Group commit, the one mechanism for rows written on hot paths (audit events, mandate rows at the
// token endpoint, DPoP proof ids at every DPoP-bound call): concurrent writers share one transaction
// (one fsync) instead of paying a synchronous commit each, which is what bounds these paths on a
// slow disk. Guarantees, each tested in test/store/group-commit.test.ts on both stores:
// - a caller's promise settles only after the transaction holding its item has committed (or failed);
// - a failed transaction rejects exactly the items of its batch, and the next batch starts afresh
//   (its `write` sees only what committed: it reads its own state inside the transaction);
// - batches commit one after another, in submission order, items in order within a batch;
// - `close()` refuses new items and resolves once every item already submitted has settled.
import type { SqlExecutor, Store } from './types.js';

interface Pending<T, R> {
  readonly item: T;
  readonly resolve: (result: R) => void;
  readonly reject: (err: unknown) => void;
}

/** Writes `items` in one transaction and returns one result per item, in order. */
export type GroupWrite<T, R> = (tx: SqlExecutor, items: readonly T[]) => Promise<readonly R[]>;

export interface GroupCommitOptions {
  /** Most items in one transaction (default 512). */
  readonly maxBatch?: number;
  /**
   * Wait one `setImmediate` before the first batch of a burst, so that items submitted by the
   * I/O callbacks of the same event-loop turn share it (the audit log: a request's events arrive
   * from several callbacks). Off by default: the first item of a burst commits at once.
   */
  readonly gather?: boolean;
  /** Maps a failed transaction's error to what each caller of that batch receives. */
  readonly failure?: (err: unknown) => unknown;
  /** What `submit` rejects with after `close()` (default: an Error saying so). */
  readonly closed?: () => unknown;
}

export class GroupCommit<T, R = undefined> {
  readonly #store: Store;
  readonly #write: GroupWrite<T, R>;
  readonly #maxBatch: number;
  readonly #gather: boolean;
  readonly #failure: (err: unknown) => unknown;
  readonly #closedError: () => unknown;
  #queue: Pending<T, R>[] = [];
  #flushing: Promise<void> | undefined;
  #closed = false;

  constructor(store: Store, write: GroupWrite<T, R>, options: GroupCommitOptions = {}) {
    this.#store = store;
    this.#write = write;
    this.#maxBatch = options.maxBatch ?? 512;
    if (!Number.isSafeInteger(this.#maxBatch) || this.#maxBatch < 1) throw new RangeError('maxBatch must be a positive integer');
    this.#gather = options.gather ?? false;
    this.#failure = options.failure ?? ((err) => err);
    this.#closedError = options.closed ?? (() => new Error('the group commit is closed'));
  }

  /** Items waiting for a transaction (not counting the batch being committed). */
  get pending(): number {
    return this.#queue.length;
  }

  /** Resolves with the item's result once it is durably committed; rejects if its batch failed. */
  submit(item: T): Promise<R> {
    if (this.#closed) return Promise.reject(this.#closedError());
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, resolve, reject });
      this.#flushing ??= this.#flush();
    });
  }

  /** Refuses new items; resolves once every submitted item has settled. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#flushing;
  }

  async #flush(): Promise<void> {
    if (this.#gather) await new Promise((r) => setImmediate(r));
    try {
      // Items that arrive while a batch commits wait for it and share the next one.
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.#maxBatch);
        let results: readonly R[];
        try {
          results = await this.#store.transaction(async (tx) => {
            const out = await this.#write(
              tx,
              batch.map((p) => p.item),
            );
            // A write that lost track of its items is a bug: no caller could be told which result is
            // theirs. Throwing here rolls the batch back, so it fails as a whole instead.
            if (out.length !== batch.length) throw new Error(`group write returned ${out.length} results for ${batch.length} items`);
            return out;
          });
        } catch (err) {
          const failure = this.#failure(err);
          for (const p of batch) p.reject(failure);
          continue;
        }
        for (const [i, p] of batch.entries()) p.resolve(results[i] as R);
      }
    } finally {
      this.#flushing = undefined;
    }
  }
}
