// Applies pending migrations in order, each in its own transaction with its bookkeeping row.
import { StoreError } from '../errors/index.js';
import { migrations, sqlTypes } from './migrations/index.js';
import type { Dialect } from './types.js';

export interface MigrationRunner {
  readonly dialect: Dialect;
  /** Runs a multi-statement script; on failure rolls back and throws. */
  script(sql: string): Promise<void>;
  appliedIds(): Promise<number[]>;
}

const BOOKKEEPING = 'CREATE TABLE IF NOT EXISTS schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)';

export async function applyMigrations(runner: MigrationRunner): Promise<number[]> {
  await runner.script(BOOKKEEPING);
  const done = new Set(await runner.appliedIds());
  const known = new Set(migrations.map((m) => m.id));
  const unknown = [...done].filter((id) => !known.has(id));
  if (unknown.length > 0) {
    throw new StoreError(
      'ERR_STORE_MIGRATION',
      `the database has migrations this version does not know (${unknown.join(', ')}); upgrade Mandate`,
    );
  }
  const types = sqlTypes(runner.dialect);
  const applied: number[] = [];
  for (const m of migrations) {
    if (done.has(m.id)) continue;
    const record = `INSERT INTO schema_migrations (id, name, applied_at) VALUES (${m.id}, '${m.name}', '${new Date().toISOString()}')`;
    try {
      await runner.script(`BEGIN;\n${m.up(types)};\n${record};\nCOMMIT;`);
    } catch (err) {
      throw new StoreError('ERR_STORE_MIGRATION', `migration ${m.id} (${m.name}) failed: ${(err as Error).message}`, { cause: err });
    }
    applied.push(m.id);
  }
  return applied;
}
