// Risk signals across replicas. Each replica counts what it sees; every `intervalMs` it publishes
// the counts it gathered since its last message (and the responses it latched) as one change on
// the `risk` topic of the change feed, and adds up the messages of the other replicas. So the
// signals of one mandate counted on several replicas add up within about one interval plus the
// feed's delivery (NOTIFY at once, polling at worst), and a response latched on one replica is in
// force on all. Only for stores shared by several processes (PostgreSQL); the embedded store
// serves one process. Messages older than RETAIN_MS are pruned: a replica that was away longer
// starts from its own counts, which only delays a response.
import type { ChangeFeed } from '../store/changes.js';
import type { Store } from '../store/types.js';
import type { RiskEngine, SharedRisk } from './engine.js';

export const RISK_TOPIC = 'risk';
const RETAIN_MS = 10 * 60_000;
const PRUNE_EVERY = 240;

export interface RiskSharingOptions {
  readonly engine: RiskEngine;
  readonly store: Store;
  readonly changes: ChangeFeed;
  /** This replica's name: its own messages come back through the feed and are skipped. */
  readonly replicaId: string;
  readonly intervalMs: number;
  readonly now: () => number;
  readonly onError: (err: unknown) => void;
}

export class RiskSharing {
  readonly #o: RiskSharingOptions;
  readonly #unsubscribe: () => void;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #flushes = 0;
  /** Feed positions over time, so old messages are pruned by a bounded range of the primary key. */
  #marks: { at: number; seq: number }[] = [];
  #prunedThrough = 0;

  constructor(options: RiskSharingOptions) {
    this.#o = options;
    options.engine.shareWithReplicas();
    this.#unsubscribe = options.changes.subscribe(RISK_TOPIC, (change) => {
      if (change.key === options.replicaId) return;
      options.engine.merge(change.data as unknown as SharedRisk);
    });
    this.#timer = setInterval(() => void this.flush(), options.intervalMs);
    this.#timer.unref();
  }

  /** Publishes what this replica gathered since the last message (one at a time). */
  flush(): Promise<void> {
    this.#flushing ??= this.#publish().finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#unsubscribe();
    await this.flush().catch(() => {});
  }

  /** The newest feed position older than RETAIN_MS (undefined while there is none); records the current one. */
  #pruneThrough(): number | undefined {
    const now = this.#o.now();
    this.#marks.push({ at: now, seq: this.#o.changes.lastSeq });
    let through: number | undefined;
    while (this.#marks.length > 0 && (this.#marks[0] as { at: number }).at < now - RETAIN_MS) through = this.#marks.shift()?.seq;
    return through;
  }

  async #publish(): Promise<void> {
    const shared = this.#o.engine.takeShared();
    if (shared === undefined) return;
    const through = ++this.#flushes % PRUNE_EVERY === 0 ? this.#pruneThrough() : undefined;
    try {
      await this.#o.store.transaction(async (tx) => {
        await this.#o.changes.publish(tx, RISK_TOPIC, this.#o.replicaId, shared as unknown as Record<string, unknown>);
        // The feed's primary key range since the last prune: no scan of the whole table.
        if (through !== undefined) {
          await tx.run('DELETE FROM changes WHERE seq > ? AND seq <= ? AND topic = ?', [this.#prunedThrough, through, RISK_TOPIC]);
        }
      });
      if (through !== undefined) this.#prunedThrough = through;
    } catch (err) {
      // Counts not shared are lost to the other replicas (this one keeps them): a delay, not a gap
      // in enforcement. The next interval tries again with what comes next.
      this.#o.onError(err);
    }
  }
}
