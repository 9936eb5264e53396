// The change feed keeps every replica's in-memory state (revocations, policies, catalog, agent
// status) current. A change is written in the same transaction as the state it describes, so it
// exists exactly when the state does. Replicas learn of it by PostgreSQL NOTIFY (fast path) and
// by polling the sequence (catch-up), so a lost notification delays a change but never loses it.
import { StoreError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { Mutex } from '../lib/mutex.js';
import { isNotifying, type SqlExecutor, type Store } from './types.js';

export interface Change {
  readonly seq: number;
  readonly topic: string;
  readonly key: string;
  readonly data: Readonly<Record<string, unknown>>;
  /** When the change was committed (epoch ms, the publishing replica's clock). */
  readonly createdAt?: number;
}

export type ChangeHandler = (change: Change) => void | Promise<void>;

export interface ChangeFeedOptions {
  readonly clock: Clock;
  /** Catch-up polling interval; bounds how long a lost notification can delay a change. */
  readonly pollIntervalMs: number;
  /** Rows read per catch-up query. */
  readonly batchSize?: number;
  /** Called when a handler throws; the change still counts as applied (handlers must not fail). */
  readonly onHandlerError?: (err: unknown, change: Change) => void;
  /** Called once per change after every handler ran: it is in force on this replica (metrics). */
  readonly onApplied?: (change: Change) => void;
  /** Lost and failed LISTEN connections and failed catch-ups (the replica keeps polling). */
  readonly onStoreError?: (err: unknown, what: 'listen' | 'catch-up') => void;
}

const CHANNEL = 'mandate_changes';
// Serializes publishers so sequence order equals commit order (a sequence value taken by a slow
// transaction must never become visible after a higher one was already consumed).
const PUBLISH_LOCK = 0x6d636867;

interface ChangeRow {
  [key: string]: unknown;
  seq: number;
  topic: string;
  key: string;
  data: string;
  created_at: number;
}

export class ChangeFeed {
  readonly #store: Store;
  readonly #options: ChangeFeedOptions;
  readonly #handlers = new Map<string, Set<ChangeHandler>>();
  readonly #mutex = new Mutex();
  #lastSeq = 0;
  #lastCurrentAt = 0;
  #timer: NodeJS.Timeout | undefined;
  #listener: { close(): Promise<void> } | undefined;
  #listening = false;
  #stopped = false;

  constructor(store: Store, options: ChangeFeedOptions) {
    this.#store = store;
    this.#options = options;
  }

  /** Highest sequence this replica has applied. */
  get lastSeq(): number {
    return this.#lastSeq;
  }

  /** True when a LISTEN connection is up (always false for the embedded store). */
  get listening(): boolean {
    return this.#listening;
  }

  /**
   * Starts from the current end of the feed: callers load their full state from the store AFTER
   * start() returns, and handlers (idempotent) apply anything newer.
   */
  async start(): Promise<void> {
    const [row] = await this.#store.query<{ seq: number | null }>('SELECT MAX(seq) AS seq FROM changes');
    this.#lastSeq = Number(row?.seq ?? 0);
    this.#lastCurrentAt = this.#options.clock.now();
    await this.#connect();
    this.#timer = setInterval(
      () => void this.catchUp().catch((err: unknown) => this.#storeError(err, 'catch-up')),
      this.#options.pollIntervalMs,
    );
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#listener?.close();
    this.#listener = undefined;
    this.#listening = false;
  }

  /** Records a change inside the caller's transaction. After commit, `await catchUp()` to apply it here at once. */
  async publish(tx: SqlExecutor, topic: string, key: string, data: Record<string, unknown> = {}): Promise<void> {
    const store = this.#store;
    if (isNotifying(store)) await store.lockForTransaction(tx, PUBLISH_LOCK);
    await tx.run('INSERT INTO changes (topic, key, data, created_at) VALUES (?, ?, ?, ?)', [
      topic,
      key,
      JSON.stringify(data),
      this.#options.clock.now(),
    ]);
    if (isNotifying(store)) await store.notify(tx, CHANNEL);
  }

  subscribe(topic: string, handler: ChangeHandler): () => void {
    let set = this.#handlers.get(topic);
    if (set === undefined) {
      set = new Set();
      this.#handlers.set(topic, set);
    }
    set.add(handler);
    return () => set.delete(handler);
  }

  /** Applies every change after `lastSeq`, in order. Concurrent calls share one pass each. */
  catchUp(): Promise<void> {
    return this.#mutex.run(async () => {
      const batch = this.#options.batchSize ?? 1000;
      for (;;) {
        const rows = await this.#store.query<ChangeRow>(
          'SELECT seq, topic, key, data, created_at FROM changes WHERE seq > ? ORDER BY seq LIMIT ?',
          [this.#lastSeq, batch],
        );
        for (const row of rows) {
          const change: Change = {
            seq: Number(row.seq),
            topic: row.topic,
            key: row.key,
            data: JSON.parse(row.data) as Record<string, unknown>,
            createdAt: Number(row.created_at),
          };
          for (const handler of this.#handlers.get(change.topic) ?? []) {
            try {
              await handler(change);
            } catch (err) {
              this.#options.onHandlerError?.(err, change);
            }
          }
          this.#lastSeq = change.seq;
          this.#options.onApplied?.(change);
        }
        if (rows.length < batch) break;
      }
      this.#lastCurrentAt = this.#options.clock.now();
    });
  }

  /** Milliseconds since this replica last confirmed it had applied every change. */
  staleness(): number {
    return this.#options.clock.now() - this.#lastCurrentAt;
  }

  /** Fails closed (ERR_REPLICA_STALE) when this replica may be missing changes, e.g. a revocation. */
  assertCurrent(maxStalenessMs: number): void {
    if (this.staleness() > maxStalenessMs) throw new StoreError('ERR_REPLICA_STALE');
  }

  async #connect(): Promise<void> {
    const store = this.#store;
    if (!isNotifying(store) || this.#stopped) return;
    let failed = false;
    try {
      const listener = await store.listen(CHANNEL, {
        onNotify: () => void this.catchUp().catch((err: unknown) => this.#storeError(err, 'catch-up')),
        onError: (err: unknown) => {
          if (failed) return;
          failed = true;
          this.#storeError(err ?? new Error('the LISTEN connection was lost'), 'listen');
          this.#listening = false;
          if (this.#listener === listener) this.#listener = undefined;
          // The dead connection is closed so its socket and pg client are released.
          void listener.close().catch(() => {});
          // Reconnect, then catch up on whatever was published while we were deaf.
          if (!this.#stopped)
            setTimeout(
              () =>
                void this.#connect()
                  .then(() => this.catchUp())
                  .catch(() => {}),
              500,
            ).unref();
        },
      });
      if (this.#stopped) {
        await listener.close();
        return;
      }
      this.#listener = listener;
      this.#listening = true;
    } catch (err) {
      this.#listening = false;
      this.#storeError(err, 'listen');
      if (!this.#stopped) setTimeout(() => void this.#connect().catch(() => {}), 1000).unref();
    }
  }

  #storeError(err: unknown, what: 'listen' | 'catch-up'): void {
    if (this.#stopped) return;
    try {
      this.#options.onStoreError?.(err, what);
    } catch {
      // Reporting must never stop the feed.
    }
  }
}
