// Shared setup for task tests: two "replicas" (two store handles, change feeds, audit logs and
// TaskServices) on one database — one SQLite file, or one PostgreSQL schema in the `test` database.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditService } from '../../src/audit/log.js';
import type { Clock } from '../../src/lib/clock.js';
import type { SecretBox } from '../../src/secrets/secret-box.js';
import { ChangeFeed } from '../../src/store/changes.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/types.js';
import { TaskService } from '../../src/tasks/index.js';
import { openAudit } from '../audit/helpers.js';
import { dropSchema, freshSchema, POSTGRES_URL, postgresFactory } from '../helpers/stores.js';

export interface Replica {
  readonly store: Store;
  readonly changes: ChangeFeed;
  readonly audit: AuditService;
  readonly tasks: TaskService;
}

export interface Database {
  readonly name: 'sqlite' | 'postgres';
  readonly skip: string | false;
  /** The SQLite file (undefined on PostgreSQL). */
  file?: string;
  /** Opens one more handle on the same database (migrated). */
  openStore(): Promise<Store>;
  cleanup(): Promise<void>;
}

export async function databases(): Promise<Database[]> {
  const pg = await postgresFactory();
  const dir = mkdtempSync(join(tmpdir(), 'mandate-tasks-'));
  const file = join(dir, 'mandate.db');
  const schema = freshSchema();
  const sqliteStores: Store[] = [];
  const pgStores: Store[] = [];
  return [
    {
      name: 'sqlite',
      skip: false,
      file,
      // One handle shared by both "replicas": SQLite is the single-node store, and two handles in
      // one thread would block each other (better-sqlite3 waits synchronously on a busy file).
      async openStore() {
        let s = sqliteStores[0];
        if (s === undefined) {
          s = openSqliteStore({ path: file });
          sqliteStores.push(s);
          await s.migrate();
        }
        return s;
      },
      async cleanup() {
        for (const s of sqliteStores) await s.close().catch(() => {});
        rmSync(dir, { recursive: true, force: true });
      },
    },
    {
      name: 'postgres',
      skip: pg.skip,
      async openStore() {
        const s = openPostgresStore({ url: POSTGRES_URL, schema, poolMax: 8 });
        pgStores.push(s);
        await s.migrate();
        return s;
      },
      async cleanup() {
        for (const s of pgStores) await s.close().catch(() => {});
        await dropSchema(schema).catch(() => {});
      },
    },
  ];
}

export async function openReplica(db: Database, clock: Clock, secrets: SecretBox, over: { replicaId?: string } = {}): Promise<Replica> {
  const store = await db.openStore();
  const changes = new ChangeFeed(store, { clock, pollIntervalMs: 60_000 });
  await changes.start();
  const audit = await openAudit(store, secrets, clock);
  const tasks = new TaskService({
    store,
    clock,
    secrets,
    changes,
    audit,
    pollIntervalMs: 2000,
    ttlMs: 60_000,
    retentionMs: 3_600_000,
    defaultForwardTimeoutMs: 30_000,
    sweepIntervalMs: 0,
    ...(over.replicaId === undefined ? {} : { replicaId: over.replicaId }),
  });
  tasks.start();
  return { store, changes, audit, tasks };
}

export async function closeReplica(r: Replica): Promise<void> {
  await r.tasks.close();
  await r.audit.close();
  await r.changes.stop();
}
