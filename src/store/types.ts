// The storage interface every backend implements. Domain repositories are written once against it
// with portable SQL (`?` placeholders; the PostgreSQL backend renumbers them), so the SQLite and
// PostgreSQL backends differ only in how they connect, lock and commit.
import type { WriteStatement } from './write-batch.js';

export type Dialect = 'sqlite' | 'postgres';

export type SqlValue = string | number | bigint | boolean | null | Uint8Array;
export type Row = Record<string, unknown>;

/** Runs statements. Implemented by the store itself and by a transaction handle. */
export interface SqlExecutor {
  readonly dialect: Dialect;
  /** Rows of a SELECT (or a statement with RETURNING). */
  query<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** Runs a statement and returns how many rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<{ changes: number }>;
}

export interface Store extends SqlExecutor {
  /**
   * Runs `fn` in one transaction: committed when it resolves, rolled back when it throws.
   * Durable when it resolves (SQLite: the WAL is fdatasync-ed after COMMIT, off the event loop; PostgreSQL: default fsync).
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /**
   * Applies `statements` in one transaction, in order, and resolves true once that is durable; when a
   * statement's `expectChanges` does not hold, rolls the whole batch back and resolves false. No
   * reads happen between the statements, so the store may run them off the event loop (SQLite: in
   * its writer thread, on a second connection; PostgreSQL: one transaction on the pool).
   * `onCommitted`, when given, is called once the batch is committed (applied, visible, and safe
   * from a crash of this process) and no later than the promise resolves: SQLite's writer thread
   * calls it before the fdatasync that makes the batch survive a power loss; elsewhere a commit is
   * durable already and it is called just before the promise resolves. Not called when the batch
   * was not applied.
   */
  writeBatch(statements: readonly WriteStatement[], onCommitted?: () => void): Promise<boolean>;
  /** Throws ERR_STORE_UNAVAILABLE when the backend cannot answer. */
  ping(): Promise<void>;
  /** Applies pending migrations; safe to call from several replicas at once. Returns applied ids. */
  migrate(): Promise<number[]>;
  close(): Promise<void>;
}

/**
 * Capability of backends shared by several processes (PostgreSQL): cross-process notifications.
 * `notify` runs inside a transaction and is delivered on commit; `listen` keeps a dedicated
 * connection and reports loss of it so callers can fall back to polling.
 */
export interface Notifying {
  notify(tx: SqlExecutor, channel: string): Promise<void>;
  listen(channel: string, handlers: { onNotify: () => void; onError: (err: unknown) => void }): Promise<{ close(): Promise<void> }>;
  /** Serializes the rest of `tx` against other holders of `key` (released at commit). */
  lockForTransaction(tx: SqlExecutor, key: number): Promise<void>;
}

export function isNotifying(store: Store): store is Store & Notifying {
  return typeof (store as Partial<Notifying>).listen === 'function';
}
