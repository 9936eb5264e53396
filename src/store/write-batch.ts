// Write batches: a fixed list of statements applied in one transaction with no reads between them,
// so a store may run them away from the event loop (SQLite: in its writer thread). A statement can
// carry a precondition (`expectChanges`): when it changes a different number of rows the batch is
// rolled back and reported as not applied, which is how a caller that computed the batch from what
// it last saw (the audit log's tree head) finds out somebody else wrote first.
import type { SqlExecutor, SqlValue, Store } from './types.js';

export interface WriteStatement {
  readonly sql: string;
  readonly params: readonly SqlValue[];
  /** The batch applies only if this statement changes exactly this many rows. */
  readonly expectChanges?: number;
}

/** Thrown inside the transaction to roll a batch back whose precondition did not hold. */
const NOT_APPLIED = Symbol('write batch not applied');

/** Runs a write batch in `store.transaction` (PostgreSQL, and SQLite when its writer thread is gone). */
export async function writeBatchInTransaction(
  store: Pick<Store, 'transaction'>,
  statements: readonly WriteStatement[],
  onCommitted?: () => void,
): Promise<boolean> {
  try {
    await store.transaction((tx) => applyStatements(tx, statements));
  } catch (err) {
    if (err === NOT_APPLIED) return false;
    throw err;
  }
  onCommitted?.();
  return true;
}

async function applyStatements(tx: SqlExecutor, statements: readonly WriteStatement[]): Promise<void> {
  for (const s of statements) {
    const { changes } = await tx.run(s.sql, s.params);
    if (s.expectChanges !== undefined && changes !== s.expectChanges) throw NOT_APPLIED;
  }
}

/**
 * Multi-row INSERTs of `rows` into `into` ("table (col, …)"), at most `chunk` rows per statement
 * (bound parameters are limited: SQLite 32,766, PostgreSQL 65,535).
 */
export function insertStatements(into: string, rows: readonly SqlValue[][], chunk = 256): WriteStatement[] {
  const out: WriteStatement[] = [];
  for (let i = 0; i < rows.length; i += chunk) {
    const part = rows.slice(i, i + chunk);
    const width = (part[0] as SqlValue[]).length;
    const tuple = `(${Array.from({ length: width }, () => '?').join(', ')})`;
    out.push({ sql: `INSERT INTO ${into} VALUES ${part.map(() => tuple).join(', ')}`, params: part.flat() });
  }
  return out;
}
