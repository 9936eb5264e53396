// Budgets of mandate grants (maxCalls, sum of a numeric argument), exact across replicas without a
// store round trip per call. Each replica leases part of a counter from the store with one atomic,
// guarded UPDATE (`calls + leased_calls + n <= maxCalls`), serves consumes from the lease in memory,
// reports what it consumed in the background (flushIntervalMs) and returns the unused part when the
// lease goes idle or the counter is closed. The store's invariant `consumed + leased <= budget`
// holds at every commit, so the sum of what all replicas allow never exceeds the budget.
//
// Failure behaviour: a replica that dies holding a lease takes the unused part with it. The store
// cannot tell how much of it was consumed (that is what makes the call path free of round trips),
// so the part stays counted as leased: conservative, never an over-spend. Lease sizes adapt to what
// is left (at most 1/8 of the remaining budget, at most leaseMaxCalls, and 1 when nearly spent), so
// a crash costs at most that much of one grant's budget; idle leases are returned after leaseIdleMs,
// so only leases in active use at the moment of the crash are lost. See docs/gateway.md
// "Hot-path state across replicas".
import type { Clock } from '../lib/clock.js';
import { systemClock } from '../lib/clock.js';
import type { Store } from '../store/types.js';
import type { ChainGrant } from './types.js';

export interface BudgetUse {
  readonly mandateId: string;
  readonly index: number;
  readonly maxCalls: number | undefined;
  readonly sumMax: number | undefined;
  /** The amount this call adds to the sum (0 when the grant has no sum budget). */
  readonly amount: number;
}

export type BudgetResult = { ok: true } | { ok: false; reason: string };

/** Budget uses of a call, or why the call cannot be counted (a sum argument that is not a number). */
export function budgetUses(grants: readonly ChainGrant[], args: Record<string, unknown>): BudgetUse[] | string {
  const uses: BudgetUse[] = [];
  for (const { mandateId, index, grant } of grants) {
    if (grant.maxCalls === undefined && grant.sum === undefined) continue;
    let amount = 0;
    if (grant.sum !== undefined) {
      const v = Object.hasOwn(args, grant.sum.arg) ? args[grant.sum.arg] : undefined;
      // Fail closed: a budgeted amount that is missing, negative or not a number cannot be counted.
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
        return `argument ${grant.sum.arg} must be a non-negative number to count against the budget of mandate ${mandateId}`;
      }
      amount = v;
    }
    uses.push({ mandateId, index, maxCalls: grant.maxCalls, sumMax: grant.sum?.max, amount });
  }
  return uses;
}

export interface BudgetCounterOptions {
  readonly clock?: Clock;
  /** Most calls one lease takes from a maxCalls budget (default 32). */
  readonly leaseMaxCalls?: number;
  /** A lease not used for this long is returned to the store (default 10 s). */
  readonly leaseIdleMs?: number;
  /** How often consumption is reported to the store and idle leases returned (default 1 s). */
  readonly flushIntervalMs?: number;
}

/** Current counters of one grant as the store sees them. */
export interface BudgetUsage {
  /** Calls consumed and reported by every replica (at most flushIntervalMs behind). */
  readonly calls: number;
  /** Sum consumed and reported. */
  readonly total: number;
  /** Calls leased to replicas and not yet consumed-and-reported or returned (a dead replica's stay here). */
  readonly leasedCalls: number;
  readonly leasedTotal: number;
}

/** A lease leaves at most this fraction of the remaining budget to one replica at a time. */
const LEASE_DIVISOR = 8;

interface Lease {
  readonly mandateId: string;
  readonly index: number;
  readonly maxCalls: number | undefined;
  readonly sumMax: number | undefined;
  /** Unconsumed calls of the lease (Infinity when the grant has no maxCalls). */
  calls: number;
  /** Unconsumed amount of the lease (Infinity when the grant has no sum budget). */
  amount: number;
  /** Consumed since the last report. */
  usedCalls: number;
  usedAmount: number;
  lastUsed: number;
  /** Calls taken by the last lease (the next one is fetched ahead when a quarter of it is left). */
  lastSize: number;
  /** The acquisition in flight, shared by every call waiting for this counter. */
  pending: Promise<BudgetResult> | undefined;
  /** Why the store refused the last lease (fits() answers from it until a consume succeeds). */
  exhaustedReason: string | undefined;
  exhaustedAt: number;
}

interface UsageRow {
  [key: string]: unknown;
  calls: number | string;
  total: number | string;
  leased_calls: number | string;
  leased_total: number | string;
}

export class BudgetCounter {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #leaseMaxCalls: number;
  readonly #idleMs: number;
  readonly #flushMs: number;
  readonly #leases = new Map<string, Lease>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  #closed = false;

  constructor(store: Store, options: BudgetCounterOptions = {}) {
    this.#store = store;
    this.#clock = options.clock ?? systemClock;
    this.#leaseMaxCalls = options.leaseMaxCalls ?? 32;
    this.#idleMs = options.leaseIdleMs ?? 10_000;
    this.#flushMs = options.flushIntervalMs ?? 1000;
  }

  /**
   * Whether one more call of these uses would fit, from memory: this replica's lease, else what
   * the store said at the last lease (a counter never leased here is assumed to fit; `consume`
   * decides exactly).
   */
  async fits(uses: readonly BudgetUse[]): Promise<BudgetResult> {
    for (const use of uses) {
      const lease = this.#leases.get(keyOf(use));
      if (lease?.exhaustedReason !== undefined && !covers(lease, use)) return { ok: false, reason: lease.exhaustedReason };
    }
    return { ok: true };
  }

  /**
   * Counts one call against every use; refuses (and counts nothing) if any is exhausted. From
   * memory while the leases cover it; a store round trip only to take a new lease.
   */
  async consume(uses: readonly BudgetUse[]): Promise<BudgetResult> {
    if (uses.length === 0) return { ok: true };
    if (this.#closed) throw new Error('budget counter is closed');
    for (;;) {
      const missing = uses.filter((u) => !covers(this.#lease(u), u));
      if (missing.length === 0) {
        // No await between the check above and these decrements: consumes are atomic in memory.
        const now = this.#clock.now();
        for (const u of uses) {
          const lease = this.#lease(u);
          lease.calls -= 1;
          lease.amount -= u.amount;
          lease.usedCalls += 1;
          lease.usedAmount += u.amount;
          lease.lastUsed = now;
          lease.exhaustedReason = undefined;
          // Fetch the next lease while a quarter of this one is left (see #take).
          if (lease.lastSize >= 4 && lease.pending === undefined && lease.calls < lease.lastSize / 4) {
            void this.#acquire(lease, 0, true).catch(() => {});
          }
        }
        this.#schedule();
        return { ok: true };
      }
      for (const u of missing) {
        const lease = this.#lease(u);
        // Refused by the store moments ago: answer from memory, so a spent budget hammered by an
        // agent costs no round trip per call (idle leases elsewhere come back only after leaseIdleMs).
        if (lease.exhaustedReason !== undefined && this.#clock.now() - lease.exhaustedAt < this.#flushMs) {
          return { ok: false, reason: lease.exhaustedReason };
        }
        const got = await this.#acquire(lease, u.amount);
        if (!got.ok) return got;
      }
      // Leases taken; check again (a concurrent call on this replica may have used them first).
    }
  }

  /** Current counters of one mandate grant as the store holds them (console, explain, tests). */
  async usage(mandateId: string, index: number): Promise<BudgetUsage> {
    const [row] = await this.#store.query<UsageRow>(
      'SELECT calls, total, leased_calls, leased_total FROM budget_usage WHERE mandate_id = ? AND grant_index = ?',
      [mandateId, index],
    );
    return {
      calls: Number(row?.calls ?? 0),
      total: Number(row?.total ?? 0),
      leasedCalls: Number(row?.leased_calls ?? 0),
      leasedTotal: Number(row?.leased_total ?? 0),
    };
  }

  /** Reports consumption and returns idle leases now (the timer does this every flushIntervalMs). */
  flush(): Promise<void> {
    this.#flushing ??= this.#flushOnce(false).finally(() => {
      this.#flushing = undefined;
    });
    return this.#flushing;
  }

  /** Reports consumption and returns every unused lease; later consumes throw. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#flushing?.catch(() => {});
    // Leases being taken (a prefetch, a call that was waiting) are returned too, once they land.
    await Promise.allSettled([...this.#leases.values()].map((l) => l.pending));
    await this.#flushOnce(true);
  }

  /**
   * Stops the timer without reporting or returning anything: what a crash does (tests of the
   * failure behaviour use it; the leases stay counted in the store).
   */
  abandon(): void {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#leases.clear();
  }

  #lease(use: BudgetUse): Lease {
    const key = keyOf(use);
    let lease = this.#leases.get(key);
    if (lease === undefined) {
      lease = {
        mandateId: use.mandateId,
        index: use.index,
        maxCalls: use.maxCalls,
        sumMax: use.sumMax,
        calls: use.maxCalls === undefined ? Number.POSITIVE_INFINITY : 0,
        amount: use.sumMax === undefined ? Number.POSITIVE_INFINITY : 0,
        usedCalls: 0,
        usedAmount: 0,
        lastUsed: this.#clock.now(),
        lastSize: 0,
        pending: undefined,
        exhaustedReason: undefined,
        exhaustedAt: 0,
      };
      this.#leases.set(key, lease);
    }
    return lease;
  }

  /** Takes more of the counter into the lease (one transaction); concurrent callers share it. */
  #acquire(lease: Lease, amount: number, ahead = false): Promise<BudgetResult> {
    if (lease.pending !== undefined) return lease.pending;
    const pending = this.#take(lease, amount, ahead).finally(() => {
      lease.pending = undefined;
    });
    lease.pending = pending;
    return pending;
  }

  /**
   * `ahead`: a prefetch while the lease still covers calls, so the call that would have emptied it
   * does not wait for the store. Only while plenty is left (leases of 4 calls or more, at least 16
   * left): in the tail, a replica holding budget ahead would make another replica refuse calls the
   * budget still has.
   */
  async #take(lease: Lease, need: number, ahead: boolean): Promise<BudgetResult> {
    const { mandateId, index, maxCalls, sumMax } = lease;
    return this.#store.transaction(async (tx) => {
      await tx.run(
        'INSERT INTO budget_usage (mandate_id, grant_index, calls, total, leased_calls, leased_total) VALUES (?, ?, 0, 0, 0, 0) ON CONFLICT DO NOTHING',
        [mandateId, index],
      );
      // A few attempts: the guarded UPDATE fails only when another replica leased in between.
      for (let attempt = 0; attempt < 8; attempt++) {
        const [row] = await tx.query<UsageRow>(
          'SELECT calls, total, leased_calls, leased_total FROM budget_usage WHERE mandate_id = ? AND grant_index = ?',
          [mandateId, index],
        );
        const spentCalls = Number(row?.calls ?? 0) + Number(row?.leased_calls ?? 0);
        const spentTotal = Number(row?.total ?? 0) + Number(row?.leased_total ?? 0);
        const leftCalls = maxCalls === undefined ? Number.POSITIVE_INFINITY : maxCalls - spentCalls;
        const leftTotal = sumMax === undefined ? Number.POSITIVE_INFINITY : sumMax - spentTotal;
        // What this call needs beyond the lease, and whether the store still has it.
        const short = sumMax === undefined ? 0 : Math.max(0, need - Math.max(lease.amount, 0));
        if (lease.calls < 1 && leftCalls < 1)
          return this.#exhausted(lease, `mandate ${mandateId} grant #${index} has used all ${maxCalls} calls`);
        if (short > leftTotal) {
          const used = spentTotal - Math.max(lease.amount, 0);
          return this.#exhausted(lease, `mandate ${mandateId} grant #${index} would exceed its budget (${used} + ${need} > ${sumMax})`);
        }
        // Calls: a fraction of what is left, at least 1, at most leaseMaxCalls; none if the lease still has one.
        const size = Math.max(1, Math.min(this.#leaseMaxCalls, Math.floor(leftCalls / LEASE_DIVISOR)));
        if (ahead && (maxCalls === undefined || leftCalls < 2 * LEASE_DIVISOR)) {
          lease.lastSize = 0;
          return { ok: true };
        }
        const n = maxCalls === undefined || (lease.calls >= 1 && !ahead) ? 0 : size;
        // Amount: what this call still needs beyond the lease, or a fraction of what is left if larger.
        const a = sumMax === undefined || short === 0 ? 0 : Math.min(leftTotal, Math.max(short, Math.floor(leftTotal / LEASE_DIVISOR)));
        const { changes } = await tx.run(
          `UPDATE budget_usage SET leased_calls = leased_calls + ?, leased_total = leased_total + ?
           WHERE mandate_id = ? AND grant_index = ? AND calls + leased_calls + ? <= ? AND total + leased_total + ? <= ?`,
          [n, a, mandateId, index, n, maxCalls ?? Number.MAX_SAFE_INTEGER, a, sumMax ?? Number.MAX_VALUE],
        );
        if (changes === 1) {
          lease.calls += n;
          lease.amount += a;
          if (n > 0) lease.lastSize = n;
          lease.exhaustedReason = undefined;
          this.#schedule();
          return { ok: true };
        }
      }
      throw new Error(`budget of mandate ${mandateId} grant #${index} could not be leased (contention)`);
    });
  }

  #exhausted(lease: Lease, reason: string): BudgetResult {
    lease.exhaustedReason = reason;
    lease.exhaustedAt = this.#clock.now();
    return { ok: false, reason };
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setInterval(() => void this.flush().catch(() => {}), this.#flushMs);
    this.#timer.unref();
  }

  /** One report: consumption of every lease, and the unused part of idle ones (all if `all`). */
  async #flushOnce(all: boolean): Promise<void> {
    const now = this.#clock.now();
    const reports: { lease: Lease; calls: number; amount: number; returnCalls: number; returnAmount: number; drop: boolean }[] = [];
    for (const [key, lease] of this.#leases) {
      if (lease.pending !== undefined) continue;
      const idle = all || now - lease.lastUsed >= this.#idleMs;
      const returnCalls = idle && lease.maxCalls !== undefined ? lease.calls : 0;
      const returnAmount = idle && lease.sumMax !== undefined ? lease.amount : 0;
      if (lease.usedCalls === 0 && lease.usedAmount === 0 && returnCalls === 0 && returnAmount === 0) {
        if (idle) this.#leases.delete(key);
        continue;
      }
      reports.push({ lease, calls: lease.usedCalls, amount: lease.usedAmount, returnCalls, returnAmount, drop: idle });
      // Taken out of memory before the write; put back if it fails, so nothing is reported twice.
      lease.usedCalls = 0;
      lease.usedAmount = 0;
      lease.calls -= returnCalls;
      lease.amount -= returnAmount;
      if (idle) this.#leases.delete(key);
    }
    if (reports.length === 0) {
      if (this.#leases.size === 0 && this.#timer !== undefined) {
        clearInterval(this.#timer);
        this.#timer = undefined;
      }
      return;
    }
    try {
      await this.#store.transaction(async (tx) => {
        for (const r of reports) {
          const leasedCalls = r.lease.maxCalls === undefined ? 0 : r.calls + r.returnCalls;
          const leasedAmount = r.lease.sumMax === undefined ? 0 : r.amount + r.returnAmount;
          await tx.run(
            `UPDATE budget_usage SET calls = calls + ?, total = total + ?, leased_calls = leased_calls - ?, leased_total = leased_total - ?
             WHERE mandate_id = ? AND grant_index = ?`,
            [r.calls, r.amount, leasedCalls, leasedAmount, r.lease.mandateId, r.lease.index],
          );
        }
      });
    } catch (err) {
      // Keep it for the next report; a lease being dropped is put back (its consumption is not lost).
      for (const r of reports) {
        const key = `${r.lease.mandateId}#${r.lease.index}`;
        const current = this.#leases.get(key) ?? r.lease;
        if (!this.#leases.has(key)) this.#leases.set(key, current);
        current.usedCalls += r.calls;
        current.usedAmount += r.amount;
        current.calls += r.returnCalls;
        current.amount += r.returnAmount;
      }
      throw err;
    }
  }
}

const keyOf = (use: { mandateId: string; index: number }) => `${use.mandateId}#${use.index}`;

/** Whether the lease has room for one more call of this use. */
function covers(lease: Lease, use: BudgetUse): boolean {
  return lease.calls >= 1 && lease.amount >= use.amount;
}
