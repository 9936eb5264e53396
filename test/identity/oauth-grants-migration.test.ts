// Upgrading a database that ran every migration but 14 (an existing deployment): agent profiles
// keep their rows and read back with no templates, the refresh-token and client-grant tables
// appear, and the one-active-refresh-token-per-mandate index holds. Both stores.
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

/** Every migration except 14, applied in order, with one agent profile an older broker wrote. */
function without14(dialect: Dialect): string {
  const t = sqlTypes(dialect);
  const old = migrations.filter((m) => m.id !== 14);
  return [
    `${BOOKKEEPING};`,
    ...old.map((m) => `${m.up(t)};`),
    ...old.map((m) => `INSERT INTO schema_migrations (id, name, applied_at) VALUES (${m.id}, '${m.name}', 'then');`),
    `INSERT INTO agent_profiles (agent_id, identity_key, ceiling, task_types, max_ttl_seconds, dpop_required, may_receive_delegation, created_at, updated_at)
     VALUES ('old-agent', 'spiffe:spiffe://example.org/old', '{"tools":[],"delegable":false}', '[]', 600, 0, 0, 1, 1);`,
  ].join('\n');
}

async function check(store: Store): Promise<void> {
  assert.deepEqual(await store.migrate(), [14], 'only the missing migration runs');
  const [row] = await store.query<{ templates: string }>("SELECT templates FROM agent_profiles WHERE agent_id = 'old-agent'");
  assert.deepEqual(JSON.parse(row?.templates ?? 'null'), {});
  const insert = (hash: string, status: string) =>
    store.run(
      "INSERT INTO refresh_tokens (token_hash, mandate_id, binding, generation, status, expires_at, created_at) VALUES (?, 'm1', 'jkt:x', 0, ?, 9, 1)",
      [hash, status],
    );
  await insert('h1', 'active');
  await insert('h2', 'used');
  await assert.rejects(insert('h3', 'active'), 'one active refresh token per mandate');
  await assert.rejects(insert('h4', 'bogus'), 'status is checked');
  await store.run("INSERT INTO client_grants (agent_id, request_key, mandate_id, expires_at) VALUES ('a', 'k', 'm1', 9)");
  await assert.rejects(store.run("INSERT INTO client_grants (agent_id, request_key, mandate_id, expires_at) VALUES ('a', 'k', 'm2', 9)"));
}

describe('migration 14 upgrades a live database', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => {
    for (const c of cleanups) await c();
  });

  it('on SQLite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-upgrade-14-'));
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'mandate.db');
    const db = new Database(file);
    db.exec(without14('sqlite'));
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
      await client.query(without14('postgres'));
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
