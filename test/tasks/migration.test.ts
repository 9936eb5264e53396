// Upgrading a database that ran before migrations 42/43: approvals keep their rows, duplicate
// pending approvals of one call (left by replicas racing the old check-then-insert) collapse to
// the newest, and the one-pending-per-call index then holds. Both stores.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { migrations, sqlTypes } from '../../src/store/migrations/index.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Dialect, Store } from '../../src/store/types.js';
import { dropSchema, freshSchema, POSTGRES_URL, postgresFactory } from '../helpers/stores.js';

const BOOKKEEPING = 'CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)';

/** The schema as of migration 41, with approvals a pre-42 broker could have written. */
function before42(dialect: Dialect): string {
  const t = sqlTypes(dialect);
  const old = migrations.filter((m) => m.id <= 41);
  const row = (id: string, hash: string, status: string, createdAt: number) =>
    `INSERT INTO approvals (id, call_hash, mandate_id, tool, agent_id, status, required_roles, forbid_approvers, decision_id, reasons, context, created_at, expires_at)
     VALUES ('${id}', '${hash}', 'm1', 't', 'a', '${status}', '[]', '[]', 'd-${id}', '[]', '{}', ${createdAt}, ${createdAt + 900_000});`;
  return [
    `${BOOKKEEPING};`,
    ...old.map((m) => `${m.up(t)};`),
    ...old.map((m) => `INSERT INTO schema_migrations (id, name, applied_at) VALUES (${m.id}, '${m.name}', 'then');`),
    row('apr_old', 'h1', 'pending', 1000),
    row('apr_new', 'h1', 'pending', 2000),
    row('apr_tie_a', 'h2', 'pending', 3000),
    row('apr_tie_b', 'h2', 'pending', 3000),
    row('apr_other', 'h3', 'pending', 1000),
    row('apr_done', 'h1', 'consumed', 500),
  ].join('\n');
}

async function check(store: Store): Promise<void> {
  assert.deepEqual(
    (await store.migrate()).filter((id) => id === 42 || id === 43),
    [42, 43],
  );
  const rows = await store.query<{ id: string; status: string }>('SELECT id, status FROM approvals ORDER BY id');
  assert.deepEqual(Object.fromEntries(rows.map((r) => [r.id, r.status])), {
    apr_done: 'consumed',
    apr_new: 'pending',
    apr_old: 'expired',
    apr_other: 'pending',
    apr_tie_a: 'expired',
    apr_tie_b: 'pending',
  });
  await assert.rejects(store.run("UPDATE approvals SET status = 'pending' WHERE id = 'apr_old'"), 'one pending per call');
  assert.equal((await store.run("UPDATE approvals SET status = 'withdrawn' WHERE id = 'apr_new'")).changes, 1);
  await assert.rejects(store.run("UPDATE approvals SET status = 'bogus' WHERE id = 'apr_new'"));
  assert.deepEqual(await store.query('SELECT id FROM tasks'), []);
}

describe('migrations 42 and 43 upgrade a live database', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups) await c();
  });

  it('on SQLite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-upgrade-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'mandate.db');
    const db = new Database(file);
    db.exec(before42('sqlite'));
    db.close();
    const store = openSqliteStore({ path: file });
    try {
      await check(store);
    } finally {
      await store.close();
    }
  });

  it('on PostgreSQL', async (t) => {
    const f = await postgresFactory();
    if (f.skip) return t.skip(f.skip);
    const schema = freshSchema();
    cleanups.push(() => dropSchema(schema));
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    try {
      await client.query(`CREATE SCHEMA "${schema}"; SET search_path TO "${schema}";`);
      await client.query(before42('postgres'));
    } finally {
      await client.end();
    }
    const store = openPostgresStore({ url: POSTGRES_URL, schema, poolMax: 2 });
    try {
      await check(store);
    } finally {
      await store.close();
    }
  });
});
