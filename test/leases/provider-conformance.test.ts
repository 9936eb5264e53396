// One conformance suite for the LeaseProvider interface, run against every implementation:
// PostgreSQL dynamic roles (the real PostgreSQL), Mandate-minted upstream tokens (a real broker's
// keys and mandates), and OAuth client credentials (oauth4webapi against an AS we control).
// Each harness says how to tell whether a credential is accepted right now, at its real verifier.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { buildConfig } from '../../src/config/load.js';
import { DEV_TRUST_DOMAIN } from '../../src/identity/dev-spiffe.js';
import type { LeaseConfig } from '../../src/leases/lease.js';
import type { LeaseProvider, LeaseRequest, ObtainedLease } from '../../src/leases/provider.js';
import { MandateTokenProvider, UpstreamTokenVerifier } from '../../src/leases/providers/mandate-token.js';
import { OAuthClientCredentialsProvider } from '../../src/leases/providers/oauth-client-credentials.js';
import { PostgresRoleProvider } from '../../src/leases/providers/postgres-role.js';
import type { Mandate } from '../../src/mandates/mandate.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { postgresFactory } from '../helpers/stores.js';
import { type FakeAs, startFakeAs } from './fixtures/fake-as.js';
import { createLeaseDb, type LeaseDb } from './fixtures/pg-lease-db.js';

type Base = Omit<LeaseRequest, 'handle'>;

interface Subject {
  readonly provider: LeaseProvider;
  /** A request for a fresh mandate (distinct per call). */
  request(overrides?: { ttlMs?: number }): Promise<Base>;
  /** Is this credential accepted right now by whoever verifies it? */
  accepted(obtained: ObtainedLease): Promise<boolean>;
  /** A provider of the same type whose backend is down (undefined: the provider has no remote backend). */
  down?(): LeaseProvider;
  close(): Promise<void>;
}

interface Harness {
  readonly name: string;
  readonly skip: string | false;
  open(): Promise<Subject>;
}

const parse = (c: unknown) =>
  buildConfig({ mode: 'demo', leases: { upstreams: { up: c } } } as never, { env: {} }).leases.upstreams.up as LeaseConfig;

function fakeMandate(ttlMs = 600_000): Mandate {
  const id = `mnd_${randomBytes(12).toString('base64url')}`;
  const now = Date.now();
  return {
    id,
    agentId: 'agent-a',
    rootId: id,
    purpose: 'conformance',
    taskType: 'test',
    environment: 'test',
    scope: { tools: [{ tool: 'up.read' }, { tool: 'up.write' }, { tool: 'other.x' }], delegable: false },
    depth: 0,
    status: 'active',
    expiresAt: now + ttlMs,
    createdAt: now,
  };
}

function baseOf(m: Mandate): Base {
  return {
    leaseId: `lse_${randomBytes(6).toString('hex')}`,
    upstreamId: 'up',
    mandate: m,
    chain: [m],
    tools: ['read', 'write'],
    notAfter: m.expiresAt,
  };
}

/** The one secret value in a credential (env or header), without a header prefix. */
function secretIn(o: ObtainedLease): string {
  const v = Object.values(o.credential.env ?? {})[0] ?? Object.values(o.credential.headers ?? {})[0] ?? '';
  return v.replace(/^Bearer /, '');
}

async function pgHarness(): Promise<Harness> {
  const f = await postgresFactory();
  let db: LeaseDb | undefined;
  return {
    name: 'postgres-role',
    skip: f.skip,
    async open() {
      db = await createLeaseDb();
      const d = db;
      const config = parse({
        type: 'postgres-role',
        adminUrl: d.adminUrl,
        grants: d.grants,
        connectionUrl: d.connectionUrl,
        rolePrefix: d.rolePrefix,
      });
      const provider = new PostgresRoleProvider(config as Extract<LeaseConfig, { type: 'postgres-role' }>);
      return {
        provider,
        request: async (o) => baseOf(fakeMandate(o?.ttlMs)),
        async accepted(obtained) {
          const c = new pg.Client({ connectionString: obtained.credential.env?.DATABASE_URL, connectionTimeoutMillis: 3000 });
          try {
            await c.connect();
            const r = await c.query(`SELECT count(*)::int AS n FROM ${d.schema}.items`);
            return r.rows[0].n === 3;
          } catch {
            return false;
          } finally {
            await c.end().catch(() => {});
          }
        },
        down: () =>
          new PostgresRoleProvider({
            ...(config as Extract<LeaseConfig, { type: 'postgres-role' }>),
            adminUrl: 'postgres://postgres@127.0.0.1:1/test',
          }),
        async close() {
          await provider.close();
          await d.cleanup();
        },
      };
    },
  };
}

function tokenHarness(): Harness {
  let t: TestApp | undefined;
  return {
    name: 'mandate-token',
    skip: false,
    async open() {
      t = await buildTestApp();
      const app = t;
      const { broker } = app;
      const agent = await broker.agents.register({
        id: 'lease-agent',
        displayName: 'lease agent',
        owner: 'alice',
        environment: 'production',
        identity: { spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/lease-agent` },
        ceiling: { tools: [{ tool: 'up.read' }, { tool: 'up.write' }, { tool: 'other.x' }], delegable: false },
      });
      const audience = 'https://upstream.example/mcp';
      const config = parse({ type: 'mandate-token', audience });
      const provider = new MandateTokenProvider(config as Extract<LeaseConfig, { type: 'mandate-token' }>, {
        keys: broker.identity.keys,
        clock: broker.clock,
        issuer: broker.identity.issuer,
        mandates: broker.mandates,
      });
      const verifier = new UpstreamTokenVerifier({
        keys: broker.identity.keys,
        clock: broker.clock,
        issuer: broker.identity.issuer,
        mandates: broker.mandates,
        audiences: [audience],
        leewaySeconds: 0,
      });
      return {
        provider,
        async request(o) {
          const m = await broker.mandates.open(agent, {
            type: 'mandate',
            purpose: 'conformance',
            taskType: 'support.refund',
            environment: 'production',
            ttlSeconds: Math.max(10, Math.round((o?.ttlMs ?? 600_000) / 1000)),
            tools: [{ tool: 'up.read' }, { tool: 'up.write' }, { tool: 'other.x' }],
            delegable: false,
          });
          return baseOf(m);
        },
        async accepted(obtained) {
          return verifier.verify(secretIn(obtained)).then(
            () => true,
            () => false,
          );
        },
        async close() {
          await provider.close();
          await app.close();
        },
      };
    },
  };
}

function oauthHarness(): Harness {
  let as: FakeAs | undefined;
  return {
    name: 'oauth-client-credentials',
    skip: false,
    async open() {
      as = await startFakeAs();
      const a = as;
      const config = parse({
        type: 'oauth-client-credentials',
        issuer: a.issuer,
        clientId: a.clientId,
        clientSecret: a.clientSecret,
        scopes: { read: ['crm.read'], write: ['crm.write'] },
        allowInsecureHttp: true,
      }) as Extract<LeaseConfig, { type: 'oauth-client-credentials' }>;
      const clock = { now: () => Date.now() };
      const provider = new OAuthClientCredentialsProvider(config, clock, 3000);
      return {
        provider,
        request: async (o) => baseOf(fakeMandate(o?.ttlMs)),
        accepted: async (obtained) => a.isActive(secretIn(obtained)),
        down: () => new OAuthClientCredentialsProvider({ ...config, issuer: 'http://127.0.0.1:1' }, clock, 3000),
        async close() {
          await provider.close();
          await a.close();
        },
      };
    },
  };
}

for (const harness of [await pgHarness(), tokenHarness(), oauthHarness()]) {
  describe(`lease provider conformance: ${harness.name}`, { skip: harness.skip }, () => {
    let s: Subject;
    before(async () => {
      s = await harness.open();
    });
    after(async () => {
      await s?.close();
    });

    const obtain = async (base?: Base) => {
      const b = base ?? (await s.request());
      const handle = s.provider.prepare(b);
      const obtained = await s.provider.obtain({ ...b, handle });
      return {
        base: b,
        handle,
        obtained,
        revokeRequest: {
          leaseId: b.leaseId,
          mandateId: b.mandate.id,
          handle,
          state: obtained.state,
          details: obtained.details,
          expiresAt: obtained.expiresAt,
        },
      };
    };

    test('obtain: a working credential, its secrets listed, never outliving the mandate', async () => {
      const { base, obtained } = await obtain();
      assert.equal(await s.accepted(obtained), true, 'the credential is accepted');
      assert.ok(obtained.secrets.length > 0 && obtained.secrets.every((x) => x.length >= 16), 'secrets are listed');
      const injected = [...Object.values(obtained.credential.env ?? {}), ...Object.values(obtained.credential.headers ?? {})];
      assert.ok(injected.length > 0);
      for (const v of injected)
        assert.ok(
          obtained.secrets.some((x) => v.includes(x)),
          'every injected value carries a listed secret',
        );
      assert.ok(obtained.expiresAt <= base.notAfter, 'expires no later than the mandate');
      assert.ok(obtained.expiresAt > Date.now());
      // Details are shown to operators: no secret in them.
      const details = JSON.stringify(obtained.details);
      for (const x of obtained.secrets) assert.ok(!details.includes(x), 'details carry no secret');
    });

    test('a short mandate caps the lease lifetime', async () => {
      const { base, obtained } = await obtain(await s.request({ ttlMs: 20_000 }));
      assert.ok(obtained.expiresAt <= base.notAfter);
      assert.ok(base.notAfter - Date.now() <= 20_500);
    });

    test('revoke: refused from then on; revoking again succeeds (idempotent)', async () => {
      const l = await obtain();
      assert.equal(await s.accepted(l.obtained), true);
      await s.provider.revoke(l.revokeRequest);
      assert.equal(await s.accepted(l.obtained), false, 'refused after revocation');
      await s.provider.revoke(l.revokeRequest);
    });

    test('leases are per mandate: distinct secrets, and revoking one leaves the other working', async () => {
      const a = await obtain();
      const b = await obtain();
      assert.notEqual(secretIn(a.obtained), secretIn(b.obtained));
      await s.provider.revoke(a.revokeRequest);
      assert.equal(await s.accepted(a.obtained), false);
      assert.equal(await s.accepted(b.obtained), true);
      await s.provider.revoke(b.revokeRequest);
    });

    test('revoking a lease that was reserved but never obtained (a crash in between) succeeds', async () => {
      const b = await s.request();
      const handle = s.provider.prepare(b);
      await s.provider.revoke({
        leaseId: b.leaseId,
        mandateId: b.mandate.id,
        handle,
        state: undefined,
        details: {},
        expiresAt: b.notAfter,
      });
    });

    test('a provider whose backend is down fails the obtain (the caller fails closed)', async (t) => {
      if (s.down === undefined) return t.skip('minted in process: no remote backend to be down');
      const down = s.down();
      const b = await s.request();
      await assert.rejects(down.obtain({ ...b, handle: down.prepare(b) }));
      await down.close();
    });
  });
}
