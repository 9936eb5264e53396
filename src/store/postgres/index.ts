// The scaled store: a pooled PostgreSQL connection shared by every replica. Tables live in the
// configured schema (search_path), so tests and tenants can keep runs apart.
import pg from 'pg';
import { StoreError } from '../../errors/index.js';
import { applyMigrations } from '../migrate.js';
import type { Notifying, Row, SqlExecutor, SqlValue, Store } from '../types.js';
import { writeBatchInTransaction } from '../write-batch.js';

export interface PostgresStoreOptions {
  readonly url: string;
  readonly schema?: string;
  readonly poolMax?: number;
  readonly connectTimeoutMs?: number;
}

const INT8_OID = 20;
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    // Mandate keeps 64-bit integers (timestamps in ms, sequence numbers) below 2^53.
    if (oid === INT8_OID) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

/** Rewrites portable `?` placeholders to PostgreSQL's `$n`. Mandate's SQL has no `?` in literals. */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

function bind(params: readonly SqlValue[]): unknown[] {
  return params.map((p) => (typeof p === 'boolean' ? (p ? 1 : 0) : typeof p === 'bigint' ? p.toString() : p));
}

// Loss of the server or of the connection: class 08, admin/crash shutdown and "cannot connect now"
// (57P01-57P03), too many connections (53300), and socket errors from the driver.
const UNAVAILABLE = new Set(['57P01', '57P02', '57P03', '53300', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH']);

function translate(err: unknown): unknown {
  const code = (err as { code?: string }).code;
  if (code === '23505') return new StoreError('ERR_STORE_CONFLICT', undefined, { cause: err });
  if (code === undefined || code.startsWith('08') || UNAVAILABLE.has(code)) {
    if (err instanceof StoreError) return err;
    if (code !== undefined || /connect|terminat|timeout/i.test(String((err as Error).message))) {
      return new StoreError('ERR_STORE_UNAVAILABLE', undefined, { cause: err });
    }
  }
  return err;
}

function executor(client: pg.Pool | pg.PoolClient): SqlExecutor {
  return {
    dialect: 'postgres',
    async query<T extends Row>(sql: string, params: readonly SqlValue[] = []) {
      try {
        return (await client.query(numberPlaceholders(sql), bind(params))).rows as T[];
      } catch (err) {
        throw translate(err);
      }
    },
    async run(sql: string, params: readonly SqlValue[] = []) {
      try {
        return { changes: (await client.query(numberPlaceholders(sql), bind(params))).rowCount ?? 0 };
      } catch (err) {
        throw translate(err);
      }
    },
  };
}

// Any constant works; it only has to be the same for every replica of Mandate.
const MIGRATION_LOCK_KEY = 0x6d616e64;

export function openPostgresStore(options: PostgresStoreOptions): Store & Notifying {
  const schema = options.schema ?? 'public';
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolMax ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    options: `-c search_path=${schema}`,
    types,
  });
  // An idle client that loses its connection must not crash the process.
  pool.on('error', () => {});
  const direct = executor(pool);

  /**
   * A checked-out client. pg-pool listens for errors only on idle clients: a connection that dies
   * while checked out but between queries (inside a transaction, while the caller computes) emits
   * 'error' with no listener, which kills the process. Listen for the checkout, and hand a broken
   * client back as broken so the pool drops it instead of lending it out again.
   */
  async function connect(): Promise<pg.PoolClient> {
    let client: pg.PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw new StoreError('ERR_STORE_UNAVAILABLE', 'cannot connect to PostgreSQL', { cause: err });
    }
    let broken: Error | undefined;
    const onError = (err: Error) => {
      broken ??= err;
    };
    client.on('error', onError);
    const release = client.release.bind(client);
    client.release = (err?: Error | boolean) => {
      client.off('error', onError);
      client.release = release;
      release(err ?? broken);
    };
    return client;
  }

  const store: Store & Notifying = {
    dialect: 'postgres',
    query: (sql, params) => direct.query(sql, params),
    run: (sql, params) => direct.run(sql, params),
    async transaction(fn) {
      const client = await connect();
      try {
        await client.query('BEGIN');
        const result = await fn(executor(client));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw translate(err);
      } finally {
        client.release();
      }
    },
    writeBatch: (statements, onCommitted) => writeBatchInTransaction(store, statements, onCommitted),
    async ping() {
      const client = await connect();
      try {
        await client.query('SELECT 1');
      } catch (err) {
        throw new StoreError('ERR_STORE_UNAVAILABLE', undefined, { cause: err });
      } finally {
        client.release();
      }
    },
    async migrate() {
      // One dedicated connection holds the advisory lock, so replicas starting together migrate once.
      const client = await connect();
      try {
        await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
        await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
        try {
          return await applyMigrations({
            dialect: 'postgres',
            async script(sql) {
              try {
                await client.query(sql);
              } catch (err) {
                await client.query('ROLLBACK').catch(() => {});
                throw err;
              }
            },
            async appliedIds() {
              return (await client.query('SELECT id FROM schema_migrations')).rows.map((r: { id: number }) => r.id);
            },
          });
        } finally {
          await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {});
        }
      } finally {
        client.release();
      }
    },
    async notify(tx, channel) {
      await tx.query('SELECT pg_notify(?, ?)', [channel, '']);
    },
    async lockForTransaction(tx, key) {
      await tx.query('SELECT pg_advisory_xact_lock(?)', [key]);
    },
    async listen(channel, handlers) {
      const client = new pg.Client({ connectionString: options.url, connectionTimeoutMillis: options.connectTimeoutMs ?? 5000 });
      client.on('notification', (msg) => {
        if (msg.channel === channel) handlers.onNotify();
      });
      // Until LISTEN is in place a failure is reported once, by the rejection below; reporting it
      // through onError too made callers start a second reconnect loop per failed attempt, which
      // multiplied during an outage and leaked LISTEN connections once the database came back.
      client.on('error', () => {});
      try {
        await client.connect();
        await client.query(`LISTEN "${channel.replace(/"/g, '')}"`);
      } catch (err) {
        await client.end().catch(() => {});
        throw new StoreError('ERR_STORE_UNAVAILABLE', 'cannot LISTEN on PostgreSQL', { cause: err });
      }
      client.on('error', (err) => handlers.onError(err));
      client.on('end', () => handlers.onError(new Error('LISTEN connection ended')));
      return {
        async close() {
          client.removeAllListeners('end');
          client.removeAllListeners('error');
          client.on('error', () => {});
          await client.end().catch(() => {});
        },
      };
    },
    async close() {
      await pool.end();
    },
  };
  return store;
}
