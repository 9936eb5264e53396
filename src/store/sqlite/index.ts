// The embedded store: one SQLite file in WAL mode. A write is acknowledged only once it is on
// stable storage, by an fdatasync of the WAL off the event loop (wal-sync.ts), so a committed
// transaction survives a crash or power loss. better-sqlite3 is synchronous; an async mutex keeps
// statements of other callers out of an open transaction.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { LRUCache } from 'lru-cache';
import { StoreError } from '../../errors/index.js';
import { Mutex } from '../../lib/mutex.js';
import { applyMigrations } from '../migrate.js';
import type { Row, SqlExecutor, SqlValue, Store } from '../types.js';
import { writeBatchInTransaction } from '../write-batch.js';
import { type Checkpointer, startCheckpointer } from './checkpointer.js';
import { isBusy, wrap } from './errors.js';
import { WalSync } from './wal-sync.js';
import { WriteThread } from './write-thread.js';

export interface SqliteStoreOptions {
  readonly path: string;
  readonly busyTimeoutMs?: number;
  /** Commit write batches in a worker thread (default true); false: on this connection. */
  readonly writerThread?: boolean;
}

type Db = Database.Database;

function bind(params: readonly SqlValue[]): unknown[] {
  return params.map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : p));
}

/** Prepared statements kept per SQL text: the call path runs the same few statements every time. */
const MAX_CACHED_STATEMENTS = 256;

interface Executor extends SqlExecutor {
  /** Whether `sql` may change the database (INSERT … RETURNING arrives through `query` too). */
  writes(sql: string): boolean;
}

function executor(db: Db): Executor {
  // SQL built with a variable number of placeholders must not grow the cache without bound: the
  // least recently used statement goes (a dropped statement needs no finalizing in better-sqlite3).
  const statements = new LRUCache<string, Database.Statement>({ max: MAX_CACHED_STATEMENTS });
  const prepared = (sql: string): Database.Statement => {
    let statement = statements.get(sql);
    if (statement === undefined) {
      statement = db.prepare(sql);
      statements.set(sql, statement);
    }
    return statement;
  };
  return {
    dialect: 'sqlite',
    async query<T extends Row>(sql: string, params: readonly SqlValue[] = []) {
      return wrap(() => prepared(sql).all(...bind(params)) as T[]);
    },
    async run(sql: string, params: readonly SqlValue[] = []) {
      return wrap(() => ({ changes: prepared(sql).run(...bind(params)).changes }));
    },
    writes(sql: string) {
      return !wrap(() => prepared(sql).readonly);
    },
  };
}

export function openSqliteStore(options: SqliteStoreOptions): Store {
  const busyTimeoutMs = Math.trunc(options.busyTimeoutMs ?? 5000);
  let db: Db;
  try {
    mkdirSync(dirname(options.path), { recursive: true });
    db = new Database(options.path);
    db.pragma('journal_mode = WAL');
    // NORMAL: COMMIT writes the WAL without an fsync; WalSync makes it durable before anyone is told.
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    // This connection never sleeps in SQLite's busy handler: see `whenNotBusy`.
    db.pragma('busy_timeout = 0');
  } catch (err) {
    throw new StoreError('ERR_STORE_UNAVAILABLE', `cannot open SQLite database ${options.path}`, { cause: err });
  }
  const mutex = new Mutex();
  const direct = executor(db);
  const wal = new WalSync(`${options.path}-wal`);
  let closed = false;

  const guard = () => {
    if (closed) throw new StoreError('ERR_STORE_UNAVAILABLE', 'the store is closed');
  };
  // Checkpoints move to a worker at the first write (a store that only reads never starts one).
  let checkpointer: Checkpointer | undefined;
  const checkpointOffLoop = () => {
    checkpointer = startCheckpointer(options.path, () => {
      // The worker is gone: SQLite checkpoints in COMMIT again, so the WAL stays bounded.
      if (closed) return;
      db.pragma('wal_autocheckpoint = 1000');
      thread?.checkpointInCommit();
    });
    db.pragma('wal_autocheckpoint = 0');
  };
  // Write batches run in the writer thread, started at the first one.
  let thread: WriteThread | undefined;
  const durable = () => {
    if (checkpointer === undefined) checkpointOffLoop();
    return wal.durable().catch((err: unknown) => {
      throw new StoreError('ERR_STORE_UNAVAILABLE', 'the SQLite write-ahead log could not be synced to disk', { cause: err });
    });
  };
  /**
   * Runs `attempt` (a BEGIN or an autocommitted statement) and, while SQLite refuses it with
   * SQLITE_BUSY (the writer thread or another process holds the write lock), runs it again from a
   * timer until the store's busy timeout has passed. SQLite's own busy handler would sleep instead,
   * stalling the event loop, and every request with it, for a millisecond or more each time.
   */
  const whenNotBusy = async <T>(attempt: () => T | Promise<T>): Promise<T> => {
    const deadline = performance.now() + busyTimeoutMs;
    for (let delayMs = 0; ; delayMs = Math.min(Math.max(1, delayMs * 2), 20)) {
      try {
        return await attempt();
      } catch (err) {
        if (!isBusy(err) || performance.now() >= deadline) throw err;
      }
      await new Promise((resolve) => (delayMs === 0 ? setImmediate(resolve) : setTimeout(resolve, delayMs)));
    }
  };
  /** Runs one autocommitted statement; a statement that may write resolves once it is durable. */
  const autocommit = async <T>(sql: string, statement: () => Promise<T>): Promise<T> => {
    const attempt = () => whenNotBusy(statement);
    const result = await (mutex.idle() ? attempt() : mutex.run(attempt));
    if (direct.writes(sql)) await durable();
    return result;
  };

  const store: Store = {
    dialect: 'sqlite',
    async query(sql, params) {
      guard();
      return autocommit(sql, () => direct.query(sql, params));
    },
    async run(sql, params) {
      guard();
      return autocommit(sql, () => direct.run(sql, params));
    },
    async transaction(fn) {
      guard();
      const result = await mutex.run(async () => {
        await whenNotBusy(() => wrap(() => db.exec('BEGIN IMMEDIATE')));
        try {
          const result = await fn(direct);
          wrap(() => db.exec('COMMIT'));
          return result;
        } catch (err) {
          // A ROLLBACK that fails too (the file is gone) must not replace the error that explains why.
          if (db.inTransaction) {
            try {
              db.exec('ROLLBACK');
            } catch {}
          }
          throw err;
        }
      });
      // The lock is free again while the WAL syncs: the next transaction commits meanwhile and
      // shares the next fdatasync.
      await durable();
      return result;
    },
    async writeBatch(statements, onCommitted) {
      guard();
      if (options.writerThread === false) return writeBatchInTransaction(store, statements, onCommitted);
      if (thread === undefined) {
        thread = new WriteThread(options.path, busyTimeoutMs);
        if (checkpointer === undefined) checkpointOffLoop();
      }
      return thread.lost ? writeBatchInTransaction(store, statements, onCommitted) : thread.write(statements, onCommitted);
    },
    async ping() {
      guard();
      // SELECT 1 answers even when the file can no longer be written (full disk, read-only or
      // immutable file), so readiness would lie. Rewriting user_version (unused by Mandate) commits
      // one page to the WAL, then syncs it: the probe succeeds exactly when writes are durable again.
      await mutex.run(() =>
        whenNotBusy(() =>
          wrap(() => {
            const version = Number(db.pragma('user_version', { simple: true }));
            db.pragma(`user_version = ${version}`);
          }),
        ),
      );
      await durable();
    },
    async migrate() {
      guard();
      // Startup, before any request: here SQLite may wait for another process's lock in its own handler.
      let applied: number[];
      db.pragma(`busy_timeout = ${busyTimeoutMs}`);
      try {
        applied = await mutex.run(() =>
          applyMigrations({
            dialect: 'sqlite',
            async script(sql) {
              try {
                db.exec(sql);
              } catch (err) {
                if (db.inTransaction) db.exec('ROLLBACK');
                throw err;
              }
            },
            async appliedIds() {
              return (db.prepare('SELECT id FROM schema_migrations').all() as { id: number }[]).map((r) => r.id);
            },
          }),
        );
      } finally {
        db.pragma('busy_timeout = 0');
      }
      await durable();
      return applied;
    },
    async close() {
      if (closed) return;
      closed = true;
      await mutex.run(async () => {
        // The workers' connections close first: the store's own close then runs the last checkpoint.
        await thread?.close();
        await checkpointer?.close();
        await wal.close();
        db.close();
      });
    },
  };
  return store;
}
