// Group commit, the one mechanism for rows written on hot paths (audit events, mandate rows at the
// token endpoint, DPoP proof ids at every DPoP-bound call): concurrent writers share one transaction
// (one fsync) instead of paying a synchronous commit each, which is what bounds these paths on a
// slow disk. A batch commits through a `BatchCommit`: `inTransaction` runs a write in the store's
// transaction; the audit log and the mandate rows commit precomputed write batches
// (`Store.writeBatch`), which SQLite runs off the event loop. Guarantees, each tested in
// test/store/group-commit.test.ts on both stores:
// - a caller's promise settles only after the transaction holding its item is durable (or failed);
//   an item submitted with `wait: 'committed'` resolves as soon as the commit reports the batch
//   committed (`BatchCommit`'s `committed`), which SQLite's writer thread does before its fdatasync;
// - a failed transaction rejects exactly the items of its batch, and the next batch starts afresh
//   (its `write` sees only what committed: it reads its own state inside the transaction);
// - batches commit one after another, in submission order, items in order within a batch (with a
//   `pipeline` above 1, up to that many are handed to the commit before the first settles);
// - `close()` refuses new items and resolves once every item already submitted has settled.
import type { SqlExecutor, Store } from './types.js';

interface Pending<T, R> {
  readonly item: T;
  readonly resolve: (result: R) => void;
  readonly reject: (err: unknown) => void;
  readonly wait: Wait;
}

/**
 * What a caller waits for: `durable` (default) — the batch survives a power loss; `committed` —
 * the batch is committed (visible, safe from a crash of this process), its fsync may still run.
 */
export type Wait = 'durable' | 'committed';

/** Writes `items` in one transaction and returns one result per item, in order. */
export type GroupWrite<T, R> = (tx: SqlExecutor, items: readonly T[]) => Promise<readonly R[]>;

/**
 * Durably commits `items` and returns one result per item, in order; rejects if nothing committed.
 * Given `committed`, it may call it with the same results once the batch is committed and before it
 * is durable (at most once; a commit that never calls it delays those callers until it resolves).
 */
export type BatchCommit<T, R> = (items: readonly T[], committed?: (results: readonly R[]) => void) => Promise<readonly R[]>;

/** A batch commit that runs `write` in one store transaction. */
export function inTransaction<T, R>(store: Pick<Store, 'transaction'>, write: GroupWrite<T, R>): BatchCommit<T, R> {
  return (items) =>
    store.transaction(async (tx) => {
      const out = await write(tx, items);
      // Checked inside the transaction, so such a batch rolls back instead of committing unaccounted rows.
      checkCount(out, items);
      return out;
    });
}

/** A commit that lost track of its items is a bug: no caller could be told which result is theirs. */
function checkCount(results: readonly unknown[], items: readonly unknown[]): void {
  if (results.length !== items.length) throw new Error(`group write returned ${results.length} results for ${items.length} items`);
}

export interface GroupCommitOptions {
  /** Most items in one transaction (default 512). */
  readonly maxBatch?: number;
  /**
   * Wait one `setImmediate` before the first batch of a burst, so that items submitted by the
   * I/O callbacks of the same event-loop turn share it (the audit log: a request's events arrive
   * from several callbacks). Off by default: the first item of a burst commits at once.
   */
  readonly gather?: boolean;
  /**
   * Batches committing at once (default 1: the next batch starts when the previous one settled).
   * More only for a commit that applies batches in the order it received them and can tell a
   * batch built on one that failed (the audit log's head guard): the next batch is then built and
   * handed over while the previous one waits for its fsync.
   */
  readonly pipeline?: number;
  /** Maps a failed transaction's error to what each caller of that batch receives. */
  readonly failure?: (err: unknown) => unknown;
  /** What `submit` rejects with after `close()` (default: an Error saying so). */
  readonly closed?: () => unknown;
}

export class GroupCommit<T, R = undefined> {
  readonly #commit: BatchCommit<T, R>;
  readonly #maxBatch: number;
  readonly #gather: boolean;
  readonly #pipeline: number;
  readonly #failure: (err: unknown) => unknown;
  readonly #closedError: () => unknown;
  #queue: Pending<T, R>[] = [];
  #inFlight = 0;
  /** A `setImmediate` is pending that starts batches (gather). */
  #scheduled = false;
  #closed = false;
  /** Resolves `close()` once nothing is queued or committing. */
  #drained: (() => void) | undefined;

  constructor(commit: BatchCommit<T, R>, options: GroupCommitOptions = {}) {
    this.#commit = commit;
    this.#maxBatch = options.maxBatch ?? 512;
    if (!Number.isSafeInteger(this.#maxBatch) || this.#maxBatch < 1) throw new RangeError('maxBatch must be a positive integer');
    this.#pipeline = options.pipeline ?? 1;
    if (!Number.isSafeInteger(this.#pipeline) || this.#pipeline < 1) throw new RangeError('pipeline must be a positive integer');
    this.#gather = options.gather ?? false;
    this.#failure = options.failure ?? ((err) => err);
    this.#closedError = options.closed ?? (() => new Error('the group commit is closed'));
  }

  /** Items waiting for a transaction (not counting the batches being committed). */
  get pending(): number {
    return this.#queue.length;
  }

  /**
   * Resolves with the item's result once its batch is durable (or, with `wait: 'committed'`,
   * committed); rejects if its batch failed first.
   */
  submit(item: T, wait: Wait = 'durable'): Promise<R> {
    if (this.#closed) return Promise.reject(this.#closedError());
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, resolve, reject, wait });
      this.#schedule();
    });
  }

  /** Refuses new items; resolves once every submitted item has settled. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#inFlight === 0 && this.#queue.length === 0) return;
    await new Promise<void>((resolve) => {
      const previous = this.#drained;
      this.#drained = () => {
        previous?.();
        resolve();
      };
    });
  }

  #schedule(): void {
    if (this.#scheduled || this.#inFlight >= this.#pipeline || this.#queue.length === 0) return;
    if (!this.#gather) {
      this.#start();
      return;
    }
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#start();
    });
  }

  /** Starts batches while the pipeline has room. Items that arrive meanwhile share the next one. */
  #start(): void {
    while (this.#inFlight < this.#pipeline && this.#queue.length > 0) {
      this.#inFlight++;
      void this.#run(this.#queue.splice(0, this.#maxBatch));
    }
  }

  async #run(batch: Pending<T, R>[]): Promise<void> {
    // Callers settled early are settled: the later resolve or reject of their promise is a no-op.
    const committed = batch.some((p) => p.wait === 'committed')
      ? (results: readonly R[]) => {
          // Called from the store's callbacks: a miscount is left for the final check to reject.
          if (results.length !== batch.length) return;
          for (const [i, p] of batch.entries()) if (p.wait === 'committed') p.resolve(results[i] as R);
        }
      : undefined;
    try {
      const results = await this.#commit(
        batch.map((p) => p.item),
        committed,
      );
      checkCount(results, batch);
      for (const [i, p] of batch.entries()) p.resolve(results[i] as R);
    } catch (err) {
      const failure = this.#failure(err);
      for (const p of batch) p.reject(failure);
    } finally {
      this.#inFlight--;
      if (this.#queue.length > 0) this.#schedule();
      else if (this.#inFlight === 0) {
        const drained = this.#drained;
        this.#drained = undefined;
        drained?.();
      }
    }
  }
}
