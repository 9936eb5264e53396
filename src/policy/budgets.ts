// Budgets of mandate grants (maxCalls, sum of a numeric argument), counted in the store so every
// replica sees the same totals. A call consumes the budget of the matched grant of its own mandate
// and of every ancestor, all in one transaction: either every counter moves or none does.
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

class Exhausted extends Error {}

export class BudgetCounter {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  /** Whether one more call of these uses would fit, without counting it (read only). */
  async fits(uses: readonly BudgetUse[]): Promise<BudgetResult> {
    for (const use of uses) {
      const [row] = await this.#store.query<{ calls: number | string; total: number | string }>(
        'SELECT calls, total FROM budget_usage WHERE mandate_id = ? AND grant_index = ?',
        [use.mandateId, use.index],
      );
      const why = exceeds(use, Number(row?.calls ?? 0), Number(row?.total ?? 0));
      if (why !== undefined) return { ok: false, reason: why };
    }
    return { ok: true };
  }

  /** Counts one call against every use atomically; refuses (and counts nothing) if any is exhausted. */
  async consume(uses: readonly BudgetUse[]): Promise<BudgetResult> {
    if (uses.length === 0) return { ok: true };
    try {
      await this.#store.transaction(async (tx) => {
        for (const use of uses) {
          await tx.run('INSERT INTO budget_usage (mandate_id, grant_index, calls, total) VALUES (?, ?, 0, 0) ON CONFLICT DO NOTHING', [
            use.mandateId,
            use.index,
          ]);
          // The limits are in the WHERE clause, so the check and the increment are one atomic step
          // under the row lock (PostgreSQL re-evaluates it after waiting for a concurrent writer).
          const { changes } = await tx.run(
            `UPDATE budget_usage SET calls = calls + 1, total = total + ?
             WHERE mandate_id = ? AND grant_index = ? AND calls + 1 <= ? AND total + ? <= ?`,
            [use.amount, use.mandateId, use.index, use.maxCalls ?? Number.MAX_SAFE_INTEGER, use.amount, use.sumMax ?? Number.MAX_VALUE],
          );
          if (changes !== 1) {
            const [row] = await tx.query<{ calls: number | string; total: number | string }>(
              'SELECT calls, total FROM budget_usage WHERE mandate_id = ? AND grant_index = ?',
              [use.mandateId, use.index],
            );
            throw new Exhausted(
              exceeds(use, Number(row?.calls ?? 0), Number(row?.total ?? 0)) ?? `budget of mandate ${use.mandateId} is exhausted`,
            );
          }
        }
      });
      return { ok: true };
    } catch (err) {
      if (err instanceof Exhausted) return { ok: false, reason: err.message };
      throw err;
    }
  }

  /** Current counters of one mandate grant (for explain and tests). */
  async usage(mandateId: string, index: number): Promise<{ calls: number; total: number }> {
    const [row] = await this.#store.query<{ calls: number | string; total: number | string }>(
      'SELECT calls, total FROM budget_usage WHERE mandate_id = ? AND grant_index = ?',
      [mandateId, index],
    );
    return { calls: Number(row?.calls ?? 0), total: Number(row?.total ?? 0) };
  }
}

function exceeds(use: BudgetUse, calls: number, total: number): string | undefined {
  if (use.maxCalls !== undefined && calls + 1 > use.maxCalls) {
    return `mandate ${use.mandateId} grant #${use.index} has used all ${use.maxCalls} calls`;
  }
  if (use.sumMax !== undefined && total + use.amount > use.sumMax) {
    return `mandate ${use.mandateId} grant #${use.index} would exceed its budget (${total} + ${use.amount} > ${use.sumMax})`;
  }
  return undefined;
}
