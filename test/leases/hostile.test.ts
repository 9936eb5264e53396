// Leases under attack and races: a tampered role handle never reaches SQL, a sealed credential
// moved to another lease does not open, upstream tokens for an unconfigured audience or signed by
// another key are inactive at introspection, an ended mandate gets no credential, and concurrent
// first calls (also from a second LeaseService on the same store, as another replica) share one lease.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateKeyPair, SignJWT } from 'jose';
import pg from 'pg';
import type { Agent } from '../../src/agents/agent.js';
import { DEV_TRUST_DOMAIN } from '../../src/identity/dev-spiffe.js';
import { createProvider } from '../../src/leases/index.js';
import type { LeaseConfig } from '../../src/leases/lease.js';
import { LeaseService } from '../../src/leases/service.js';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { POSTGRES_URL, postgresFactory } from '../helpers/stores.js';
import { createLeaseDb, type LeaseDb } from './fixtures/pg-lease-db.js';

const pgf = await postgresFactory();
const AUDIENCE = 'https://tickets.hostile.example/mcp';

// Needs the real PostgreSQL (dynamic roles): skipped only when it is unreachable on a developer
// machine (the reason is the skip value); postgresFactory never skips under CI.
describe('leases: hostile input and races', { skip: pgf.skip }, () => {
  let t: TestApp;
  let db: LeaseDb;
  let agent: Agent;
  let admin: pg.Pool;

  before(async () => {
    db = await createLeaseDb();
    admin = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
    t = await buildTestApp({
      config: {
        leases: {
          reapIntervalMs: 3_600_000,
          obtainTimeoutMs: 2000,
          upstreams: {
            pgdb: {
              type: 'postgres-role',
              adminUrl: db.adminUrl,
              grants: db.grants,
              connectionUrl: db.connectionUrl,
              rolePrefix: db.rolePrefix,
            },
            tickets: { type: 'mandate-token', audience: AUDIENCE },
          },
        },
      },
    });
    for (const id of ['pgdb', 'tickets']) {
      await t.broker.upstreams.registry.create({ id, transport: { type: 'http', url: `http://127.0.0.1:9/${id}` } }, { discover: false });
    }
    agent = await t.broker.agents.register({
      id: 'hostile-lease-agent',
      displayName: 'hostile',
      owner: 'alice',
      environment: 'production',
      identity: { spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/hostile-lease-agent` },
      ceiling: { tools: [{ tool: 'pgdb.q' }, { tool: 'tickets.read' }], delegable: false },
    });
  });
  after(async () => {
    await t?.close();
    await db?.cleanup();
    await admin?.end();
  });

  const open = () =>
    t.broker.mandates.open(agent, {
      type: 'mandate',
      purpose: 'hostile',
      taskType: 'support.refund',
      environment: 'production',
      ttlSeconds: 300,
      tools: [{ tool: 'pgdb.q' }, { tool: 'tickets.read' }],
      delegable: false,
    });
  const introspect = async (token: string) => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/oauth/introspect',
      headers: {
        authorization: `Bearer ${await t.operatorToken('alice', ['resource-server'])}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      payload: new URLSearchParams({ token }).toString(),
    });
    return res.json() as Record<string, unknown>;
  };
  const seam = () => t.broker.leases.service;

  test('a tampered role handle never reaches SQL: the revocation fails, is recorded and audited', async () => {
    const m = await open();
    const evil = `${db.rolePrefix}x"; DROP TABLE ${db.schema}.items; --`;
    await t.broker.store.run(
      `INSERT INTO leases (id, mandate_id, upstream, provider, status, handle, details, expires_at, created_at, attempts)
       VALUES ('lse_evil', ?, 'pgdb', 'postgres-role', 'active', ?, '{}', ?, ?, 0)`,
      [m.id, JSON.stringify({ role: evil }), Date.now() + 60_000, Date.now()],
    );
    await t.broker.mandates.revoke(m.id, { type: 'system', id: 'test' });
    await seam().settled();
    const lease = await seam().get('lse_evil');
    assert.equal(lease?.status, 'revoking');
    assert.match(lease?.lastError ?? '', /no valid role/);
    assert.equal((await admin.query(`SELECT count(*)::int AS n FROM ${db.schema}.items`)).rows[0].n, 3, 'the table is still there');
    assert.equal((await t.broker.audit.entriesBy('mandate_id', m.id, { types: ['lease.revoke_failed'] })).length, 1);
    await t.broker.store.run("UPDATE leases SET status = 'failed' WHERE id = 'lse_evil'");
  });

  test('a sealed credential moved to another lease does not open (bound to its lease id): fail closed', async () => {
    const a = await open();
    const b = await open();
    await seam().credentialFor({ upstreamId: 'tickets', mandateId: a.id });
    const [la] = await seam().list(a.id);
    // Another mandate's lease row, carrying A's sealed credential.
    await t.broker.store.run(
      `INSERT INTO leases (id, mandate_id, upstream, provider, status, handle, details, sealed, expires_at, created_at, attempts)
       SELECT 'lse_moved', ?, upstream, provider, 'active', handle, details, sealed, expires_at, created_at, 0 FROM leases WHERE id = ?`,
      [b.id, la?.id ?? ''],
    );
    await assert.rejects(seam().credentialFor({ upstreamId: 'tickets', mandateId: b.id }), { code: 'ERR_SECRET_UNDECRYPTABLE' });
  });

  test('upstream tokens for an unconfigured audience, or signed by another key, are inactive at introspection', async () => {
    const m = await open();
    const cred = await seam().credentialFor({ upstreamId: 'tickets', mandateId: m.id });
    const good = (cred?.headers?.Authorization ?? '').replace(/^Bearer /, '');
    assert.equal((await introspect(good)).active, true);
    assert.equal((await introspect(good)).scope, 'read');
    // Same key, same mandate, an audience no lease is configured for.
    const config = {
      type: 'mandate-token',
      audience: 'https://elsewhere.example',
      maxTtlSeconds: 60,
      obtain: 'lazy',
      inject: { header: 'Authorization', prefix: '' },
    } as LeaseConfig;
    const other = createProvider(config, {
      ...t.broker,
      keys: t.broker.identity.keys,
      issuer: t.broker.identity.issuer,
      obtainTimeoutMs: 1000,
    });
    const base = { leaseId: 'lse_x', upstreamId: 'tickets', mandate: m, chain: [m], tools: ['read'], notAfter: m.expiresAt };
    const foreign = await other.obtain({ ...base, handle: other.prepare(base) });
    assert.equal((await introspect(foreign.secrets[0] ?? '')).active, false);
    // The right claims, signed by a key that is not Mandate's (same kid header).
    const [, payload] = good.split('.');
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString()) as Record<string, unknown>;
    const kid = JSON.parse(Buffer.from(good.split('.')[0] ?? '', 'base64url').toString()).kid as string;
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const forged = await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid }).sign(privateKey);
    assert.equal((await introspect(forged)).active, false);
    // Agent tokens still introspect as before (regression: the fallback only adds upstream tokens).
    assert.equal((await introspect('not.a.jwt')).active, false);
  });

  test('an upstream token is no agent token: refused as a subject token at the token endpoint and at the agent API', async () => {
    const m = await open();
    const cred = await seam().credentialFor({ upstreamId: 'tickets', mandateId: m.id });
    const upstreamToken = (cred?.headers?.Authorization ?? '').replace(/^Bearer /, '');
    // A malicious upstream tries to delegate (or refresh) with the token it was handed.
    const exchanged = await t.app.inject({
      method: 'POST',
      url: '/oauth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({
        grant_type: GRANT_TOKEN_EXCHANGE,
        subject_token: upstreamToken,
        subject_token_type: TOKEN_TYPE.accessToken,
        authorization_details: JSON.stringify([
          {
            type: 'mandate',
            purpose: 'x',
            taskType: 'support.refund',
            environment: 'production',
            ttlSeconds: 60,
            tools: [{ tool: 'pgdb.q' }],
          },
        ]),
      }).toString(),
    });
    assert.equal(exchanged.statusCode, 400, exchanged.body);
    assert.ok(!exchanged.body.includes('access_token'));
    // ... or to end the mandate through the agent API.
    const ended = await t.app.inject({
      method: 'POST',
      url: `/mandate/v1/mandates/${m.id}/revoke`,
      headers: { authorization: `Bearer ${upstreamToken}`, 'content-type': 'application/json' },
      payload: '{}',
    });
    assert.equal(ended.statusCode, 401, ended.body);
    assert.equal((await t.broker.mandates.get(m.id))?.status, 'active');
  });

  test('an ended mandate gets no credential, even one it held', async () => {
    const m = await open();
    await seam().credentialFor({ upstreamId: 'tickets', mandateId: m.id });
    await t.broker.mandates.complete(m.id, { type: 'agent', id: agent.principal.id });
    await assert.rejects(seam().credentialFor({ upstreamId: 'tickets', mandateId: m.id }), { code: 'ERR_LEASE_UNAVAILABLE' });
    await seam().settled();
    assert.deepEqual(
      (await seam().list(m.id)).map((l) => l.status),
      ['revoked'],
    );
  });

  test('concurrent first calls, on this replica and another, share one lease (one role)', async () => {
    const m = await open();
    const { broker } = t;
    // A second LeaseService on the same store, with its own provider: another replica.
    const cfg = broker.config.leases.upstreams.pgdb as LeaseConfig;
    const replica = new LeaseService({
      store: broker.store,
      clock: broker.clock,
      secrets: broker.secrets,
      changes: broker.changes,
      audit: broker.audit,
      mandates: broker.mandates,
      registry: broker.upstreams.registry,
      bindings: new Map([
        [
          'pgdb',
          {
            config: cfg,
            provider: createProvider(cfg, { ...broker, keys: broker.identity.keys, issuer: broker.identity.issuer, obtainTimeoutMs: 2000 }),
          },
        ],
      ]),
      obtainTimeoutMs: 2000,
      reapIntervalMs: 3_600_000,
    });
    try {
      const results = await Promise.all([
        ...Array.from({ length: 5 }, () => seam().credentialFor({ upstreamId: 'pgdb', mandateId: m.id })),
        ...Array.from({ length: 5 }, () => replica.credentialFor({ upstreamId: 'pgdb', mandateId: m.id })),
      ]);
      assert.equal(new Set(results.map((r) => r?.leaseId)).size, 1, 'one lease');
      assert.equal(new Set(results.map((r) => r?.env?.DATABASE_URL)).size, 1, 'one credential');
      assert.equal((await seam().list(m.id)).filter((l) => l.upstream === 'pgdb').length, 1);
      assert.equal((await db.rolesLeft()).length >= 1, true);
    } finally {
      await replica.close();
    }
    await broker.mandates.revoke(m.id, { type: 'system', id: 'test' });
    await seam().settled();
    assert.deepEqual(await db.rolesLeft(), []);
  });
});
