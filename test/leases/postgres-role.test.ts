// PostgreSQL role leases beyond the conformance suite: what the role created is reassigned (kept,
// owned by the configured role) or dropped, as configured, when the lease is revoked.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { buildConfig } from '../../src/config/load.js';
import type { LeaseConfig } from '../../src/leases/lease.js';
import { PostgresRoleProvider } from '../../src/leases/providers/postgres-role.js';
import type { Mandate } from '../../src/mandates/mandate.js';
import { POSTGRES_URL, postgresFactory } from '../helpers/stores.js';
import { createLeaseDb, type LeaseDb } from './fixtures/pg-lease-db.js';

const pgf = await postgresFactory();
type PgConfig = Extract<LeaseConfig, { type: 'postgres-role' }>;

describe('postgres-role leases: owned objects', { skip: pgf.skip }, () => {
  let db: LeaseDb;
  let admin: pg.Pool;
  const keeper = `keeper_${randomBytes(4).toString('hex')}`;
  before(async () => {
    db = await createLeaseDb();
    admin = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
    await admin.query(`CREATE ROLE ${keeper} NOLOGIN`);
  });
  after(async () => {
    await db?.cleanup();
    await admin?.query(`DROP OWNED BY ${keeper}`).catch(() => {});
    await admin?.query(`DROP ROLE IF EXISTS ${keeper}`).catch(() => {});
    await admin?.end();
  });

  const provider = (ownedObjects: 'drop' | 'reassign') => {
    const c = buildConfig(
      {
        mode: 'demo',
        leases: {
          upstreams: {
            db: {
              type: 'postgres-role',
              adminUrl: db.adminUrl,
              connectionUrl: db.connectionUrl,
              rolePrefix: db.rolePrefix,
              grants: [...db.grants, `GRANT CREATE ON SCHEMA ${db.schema} TO {{role}}`],
              ownedObjects,
              ...(ownedObjects === 'reassign' ? { reassignTo: keeper } : {}),
            },
          },
        },
      },
      { env: {} },
    ).leases.upstreams.db as PgConfig;
    return new PostgresRoleProvider(c);
  };
  const mandate = (): Mandate => {
    const id = `mnd_${randomBytes(9).toString('base64url')}`;
    return {
      id,
      agentId: 'a',
      rootId: id,
      purpose: 'p',
      taskType: 't',
      environment: 'e',
      scope: { tools: [], delegable: false },
      depth: 0,
      status: 'active',
      expiresAt: Date.now() + 60_000,
      createdAt: Date.now(),
    };
  };
  /** Obtains a lease, creates a table as the lease role, revokes; returns the table's owner afterwards (undefined: gone). */
  const run = async (ownedObjects: 'drop' | 'reassign') => {
    const p = provider(ownedObjects);
    const m = mandate();
    const base = { leaseId: 'l', upstreamId: 'db', mandate: m, chain: [m], tools: [], notAfter: m.expiresAt };
    const handle = p.prepare();
    const obtained = await p.obtain({ ...base, handle });
    const table = `t_${randomBytes(4).toString('hex')}`;
    const c = new pg.Client({ connectionString: obtained.credential.env?.DATABASE_URL });
    await c.connect();
    await c.query(`CREATE TABLE ${db.schema}.${table} (x int)`);
    await c.end();
    await p.revoke({
      leaseId: 'l',
      mandateId: m.id,
      handle,
      state: obtained.state,
      details: obtained.details,
      expiresAt: obtained.expiresAt,
    });
    assert.equal(await p.roleExists(handle.role ?? ''), false, 'the role is dropped');
    await p.close();
    const r = await admin.query(`SELECT tableowner FROM pg_tables WHERE schemaname = $1 AND tablename = $2`, [db.schema, table]);
    return { owner: r.rows[0]?.tableowner as string | undefined, role: handle.role };
  };

  test('ownedObjects drop: what the role created goes with it', async () => {
    const { owner } = await run('drop');
    assert.equal(owner, undefined);
    assert.deepEqual(await db.rolesLeft(), []);
  });

  test('ownedObjects reassign: what the role created is kept, owned by reassignTo', async () => {
    const { owner } = await run('reassign');
    assert.equal(owner, keeper);
    assert.deepEqual(await db.rolesLeft(), []);
  });
});
