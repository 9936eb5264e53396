// The storage interface every backend implements. Domain repositories are written once against it
// with portable SQL (`?` placeholders; the PostgreSQL backend renumbers them), so the SQLite and
// PostgreSQL backends differ only in how they connect, lock and commit.

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
   * Durable on commit (SQLite WAL with synchronous=FULL; PostgreSQL default fsync).
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** Throws ERR_STORE_UNAVAILABLE when the backend cannot answer. */
  ping(): Promise<void>;
  /** Applies pending migrations; safe to call from several replicas at once. Returns applied ids. */
  migrate(): Promise<number[]>;
  close(): Promise<void>;
}
