// Store factories for tests: every suite that touches storage runs against both backends.
// SQLite uses a fresh file; PostgreSQL uses a fresh schema in the `test` database so runs never
// collide. Under CI (CI set) an unreachable PostgreSQL fails the run instead of skipping.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/types.js';

export const POSTGRES_URL = process.env.MANDATE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface StoreFactory {
  readonly name: 'sqlite' | 'postgres';
  /** Opens a new, migrated, empty store. */
  open(): Promise<Store>;
  /** Drops everything created by this factory. */
  cleanup(): Promise<void>;
  /** Why this backend is skipped on this machine (never under CI). */
  readonly skip: string | false;
}

let pgReachable: Promise<boolean> | undefined;
function postgresReachable(): Promise<boolean> {
  pgReachable ??= (async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 2000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return pgReachable;
}

export function sqliteFactory(): StoreFactory {
  const dirs: string[] = [];
  const opened: Store[] = [];
  return {
    name: 'sqlite',
    skip: false,
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'mandate-test-'));
      dirs.push(dir);
      const store = openSqliteStore({ path: join(dir, 'mandate.db') });
      opened.push(store);
      await store.migrate();
      return store;
    },
    async cleanup() {
      for (const s of opened) await s.close().catch(() => {});
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}

/** A fresh schema name in the test database. */
export function freshSchema(): string {
  return `t_${randomBytes(6).toString('hex')}`;
}

export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

export async function postgresFactory(): Promise<StoreFactory> {
  const reachable = await postgresReachable();
  if (!reachable && process.env.CI) throw new Error(`PostgreSQL is required under CI but unreachable at ${POSTGRES_URL}`);
  const schemas: string[] = [];
  const opened: Store[] = [];
  return {
    name: 'postgres',
    skip: reachable ? false : `PostgreSQL unreachable at ${POSTGRES_URL}`,
    async open() {
      const schema = freshSchema();
      schemas.push(schema);
      const store = openPostgresStore({ url: POSTGRES_URL, schema, poolMax: 8 });
      opened.push(store);
      await store.migrate();
      return store;
    },
    async cleanup() {
      for (const s of opened) await s.close().catch(() => {});
      for (const schema of schemas) await dropSchema(schema).catch(() => {});
    },
  };
}

/** Both backends; use with `for (const f of await storeFactories()) describe(f.name, { skip: f.skip }, ...)`. */
export async function storeFactories(): Promise<StoreFactory[]> {
  return [sqliteFactory(), await postgresFactory()];
}
