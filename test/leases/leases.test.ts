// Leases end to end through the gateway, on both stores: a PostgreSQL dynamic role handed to an
// stdio upstream started per mandate, a Mandate-minted upstream token checked by an upstream
// protected per the MCP authorization spec (JWKS + introspection at Mandate), and an OAuth token
// from an external AS. Obtained on the first call, reused, revoked when the mandate ends (children
// included), fail closed when a provider is down, retried by the reaper, never shown to the agent.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import pg from 'pg';
import { DEV_TRUST_DOMAIN } from '../../src/identity/dev-spiffe.js';
import type { Lease } from '../../src/leases/lease.js';
import { POSTGRES_URL, postgresFactory, type StoreFactory, sqliteFactory } from '../helpers/stores.js';
import { type Running, startBroker } from '../identity/helpers.js';
import { type FakeAs, startFakeAs } from './fixtures/fake-as.js';
import { createLeaseDb, type LeaseDb } from './fixtures/pg-lease-db.js';
import { PG_SERVER_PATH } from './fixtures/pg-server.js';
import { mandateTokenCheck, type ProtectedUpstream, startProtectedUpstream } from './fixtures/protected-upstream.js';

const AGENT = { id: 'lease-tester', spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/lease-tester` };
const HELPER = { id: 'lease-helper', spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/lease-helper` };
const TOOLS = [
  'pgdb.count_items',
  'pgdb.whoami',
  'pgdb.read_payroll',
  'tickets.whoami',
  'tickets.delete_all',
  'crm.whoami',
  'crm.delete_all',
];

const text = (r: unknown): string => ((r as CallToolResult).content?.[0] as { text?: string } | undefined)?.text ?? '';
const errorCode = (r: unknown): unknown => ((r as CallToolResult)._meta?.['mandate/error'] as { code?: unknown } | undefined)?.code;
const mandateIdOf = (token: string): string => JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()).mandate;

const pgFactory = await postgresFactory();
const factories: StoreFactory[] = [sqliteFactory(), pgFactory];

// Needs the real PostgreSQL (dynamic roles): skipped only when it is unreachable on a developer
// machine (the reason is the skip value); postgresFactory never skips under CI.
describe('leases through the gateway', { skip: pgFactory.skip }, () => {
  for (const factory of factories) {
    describe(`store: ${factory.name}`, () => {
      let b: Running;
      let db: LeaseDb;
      let as: FakeAs;
      let tickets: ProtectedUpstream;
      let crm: ProtectedUpstream;
      let issuer = '';
      const adminPg = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
      const clients: Client[] = [];
      /** Every body an agent received from the broker in these tests (responses it can see). */
      const agentSaw: string[] = [];

      before(async () => {
        db = await createLeaseDb();
        as = await startFakeAs();
        let introspector: (() => Promise<string>) | undefined;
        const check = mandateTokenCheck({ issuer: () => issuer, introspectionBearer: () => (introspector as () => Promise<string>)() });
        // Lazily bound: the issuer is known once the broker listens.
        tickets = await startProtectedUpstream((token, url) => check(token, url));
        crm = await startProtectedUpstream(async (token) => (as.isActive(token) ? { ok: true } : undefined));
        b = await startBroker({
          store: await factory.open(),
          config: {
            upstreams: {
              stdio: { allowedCommands: [{ command: process.execPath, args: ['--import', 'tsx', PG_SERVER_PATH], env: ['DATABASE_URL'] }] },
            },
            leases: {
              reapIntervalMs: 3_600_000,
              obtainTimeoutMs: 1000,
              upstreams: {
                pgdb: {
                  type: 'postgres-role',
                  adminUrl: db.adminUrl,
                  grants: db.grants,
                  connectionUrl: db.connectionUrl,
                  rolePrefix: db.rolePrefix,
                },
                tickets: { type: 'mandate-token', audience: tickets.url, maxTtlSeconds: 120 },
                crm: {
                  type: 'oauth-client-credentials',
                  issuer: as.issuer,
                  clientId: as.clientId,
                  clientSecret: as.clientSecret,
                  scopes: { whoami: ['crm.read'], delete_all: ['crm.admin'] },
                  allowInsecureHttp: true,
                },
              },
            },
          },
        });
        issuer = b.base;
        const introspection = await b.operatorToken('alice', ['resource-server']);
        introspector = async () => introspection;
        for (const a of [AGENT, HELPER]) {
          await b.broker.agents.register({
            id: a.id,
            displayName: a.id,
            owner: 'alice',
            environment: 'production',
            identity: { spiffeId: a.spiffeId },
            ceiling: { tools: TOOLS.map((tool) => ({ tool })), delegable: true },
            mayReceiveDelegation: true,
          });
        }
        const admin = await b.operatorToken('alice');
        const register = async (body: unknown) => {
          const res = await fetch(`${b.base}/admin/v1/upstreams`, {
            method: 'POST',
            headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
            body: JSON.stringify(body),
          });
          const raw = await res.text();
          assert.equal(res.status, 201, raw);
          const u = JSON.parse(raw) as { discoveryError?: string };
          assert.equal(u.discoveryError, undefined);
        };
        await register({
          id: 'pgdb',
          transport: { type: 'stdio', command: process.execPath, args: ['--import', 'tsx', PG_SERVER_PATH, db.schema] },
          isolation: 'shared',
        });
        // The static credential is the discovery key; each mandate's lease replaces it on its calls.
        for (const [id, u] of [
          ['tickets', tickets],
          ['crm', crm],
        ] as const) {
          await register({
            id,
            transport: { type: 'http', url: u.url },
            credential: { headers: { Authorization: `Bearer ${u.discoveryKey}` } },
          });
        }
      });

      after(async () => {
        for (const c of clients) await c.close().catch(() => {});
        await b?.close();
        await tickets?.close();
        await crm?.close();
        await as?.close();
        await db?.cleanup();
        await adminPg.end();
        await factory.cleanup();
      });

      const open = async (tools: string[], spiffeId = AGENT.spiffeId) => {
        const res = await b.open(spiffeId, {
          type: 'mandate',
          purpose: 'lease test',
          taskType: 'support.refund',
          environment: 'production',
          ttlSeconds: 600,
          tools: tools.map((tool) => ({ tool })),
          delegable: true,
        });
        agentSaw.push(JSON.stringify(res));
        return { token: res.access_token, mandateId: mandateIdOf(res.access_token) };
      };
      const connect = async (token: string) => {
        const client = new Client({ name: 'lease-agent', version: '1' });
        await client.connect(
          new StreamableHTTPClientTransport(new URL('/mcp', b.base), { requestInit: { headers: { authorization: `Bearer ${token}` } } }),
        );
        clients.push(client);
        return client;
      };
      const call = async (client: Client, name: string) => {
        const r = await client.callTool({ name, arguments: {} });
        agentSaw.push(JSON.stringify(r));
        return r;
      };
      const end = async (token: string, mandateId: string, verb: 'complete' | 'revoke' = 'complete') => {
        const res = await fetch(`${b.base}/mandate/v1/mandates/${mandateId}/${verb}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: '{}',
        });
        agentSaw.push(await res.text());
        assert.equal(res.status, 200);
        await b.broker.leases.service.settled();
      };
      const leases = async (mandateId: string): Promise<Lease[]> => {
        const res = await fetch(`${b.base}/admin/v1/mandates/${mandateId}/leases`, {
          headers: { authorization: `Bearer ${await b.operatorToken('alice')}` },
        });
        assert.equal(res.status, 200);
        return ((await res.json()) as { items: Lease[] }).items;
      };
      const introspect = async (token: string) => {
        const res = await fetch(`${b.base}/oauth/introspect`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${await b.operatorToken('alice', ['resource-server'])}`,
            'content-type': 'application/x-www-form-urlencoded',
          },
          body: new URLSearchParams({ token }),
        });
        return (await res.json()) as Record<string, unknown>;
      };
      const roleWorks = async (role: string) => (await adminPg.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;

      test('the first call obtains each lease; the upstream gets it; later calls reuse it; completing revokes all', async () => {
        const m = await open(['pgdb.count_items', 'pgdb.whoami', 'pgdb.read_payroll', 'tickets.whoami', 'crm.whoami']);
        assert.deepEqual(await leases(m.mandateId), [], 'nothing is obtained before the first call');
        const client = await connect(m.token);
        assert.equal(text(await call(client, 'pgdb.count_items')), '3');
        const role = text(await call(client, 'pgdb.whoami'));
        assert.ok(role.startsWith(db.rolePrefix), `the upstream runs as the lease role, not ${role}`);
        const payroll = await call(client, 'pgdb.read_payroll');
        assert.equal(payroll.isError, true, 'the role has only what the grant template gives');
        assert.match(text(payroll), /42501/);

        const who = JSON.parse(text(await call(client, 'tickets.whoami'))) as Record<string, unknown>;
        assert.equal(who.typ, 'at+jwt');
        assert.equal(who.mandate, m.mandateId);
        assert.equal(who.aud, tickets.url);
        assert.equal(who.scope, 'whoami', 'scope narrowed to the tools this mandate grants on this upstream');
        assert.equal(who.client_id, AGENT.id);
        assert.equal(JSON.parse(text(await call(client, 'crm.whoami'))).ok, true);
        assert.equal(as.requestedScopes.at(-1), 'crm.read', 'the OAuth scope is down-selected to the granted tools');
        await call(client, 'crm.whoami');
        await call(client, 'tickets.whoami');

        const held = await leases(m.mandateId);
        assert.deepEqual(held.map((l) => `${l.upstream}:${l.status}`).sort(), ['crm:active', 'pgdb:active', 'tickets:active']);
        assert.equal(as.requestedScopes.filter((s) => s === 'crm.read').length, 1, 'one OAuth token per mandate, cached');
        const pgLease = held.find((l) => l.provider === 'postgres-role');
        assert.equal(pgLease?.details.role, role);
        for (const l of held) {
          assert.ok(l.expiresAt <= Date.now() + 600_000 + 1000, 'no lease outlives the mandate');
          assert.ok(l.secretHmacs.length > 0);
        }
        const ticketToken = tickets.presented.at(-1) ?? '';
        const crmToken = crm.presented.at(-1) ?? '';
        assert.equal((await introspect(ticketToken)).active, true);
        assert.equal(as.isActive(crmToken), true);

        // The upstream token is not an agent token: refused at the gateway (audience).
        const asAgent = await fetch(`${b.base}/mcp`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${ticketToken}`,
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
          },
          body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
        });
        assert.equal(asAgent.status, 401);
        // And the agent's own token is refused by the upstream (its audience is the broker).
        assert.equal(
          await mandateTokenCheck({ issuer: () => issuer, introspectionBearer: async () => '' })(m.token, tickets.url).catch(
            () => undefined,
          ),
          undefined,
        );

        await end(m.token, m.mandateId);
        const after = await leases(m.mandateId);
        assert.deepEqual(
          after.map((l) => l.status),
          ['revoked', 'revoked', 'revoked'],
        );
        assert.equal(await roleWorks(role), false, 'the role is dropped');
        assert.equal((await introspect(ticketToken)).active, false, 'the upstream token is refused');
        assert.equal(as.isActive(crmToken), false, 'the OAuth token was revoked (RFC 7009)');
        assert.ok(as.revoked.has(crmToken));
        const events = await b.broker.audit.entriesBy('mandate_id', m.mandateId, { types: ['lease.issued', 'lease.revoked'] });
        assert.equal(events.filter((e) => e.event.type === 'lease.issued').length, 3);
        assert.equal(events.filter((e) => e.event.type === 'lease.revoked').length, 3);
      });

      test('sessions opened before the end are terminated with the role', async () => {
        const m = await open(['pgdb.whoami']);
        const client = await connect(m.token);
        const role = text(await call(client, 'pgdb.whoami'));
        const [lease] = await leases(m.mandateId);
        // A session the upstream (or anyone with the lease) keeps open.
        const url = (
          JSON.parse(
            b.broker.secrets
              .open(
                (await b.broker.store.query<{ sealed: string }>('SELECT sealed FROM leases WHERE id = ?', [lease?.id ?? '']))[0]?.sealed ??
                  '',
                `lease:${lease?.id}`,
              )
              .toString(),
          ) as { credential: { env: Record<string, string> } }
        ).credential.env.DATABASE_URL;
        const held = new pg.Client({ connectionString: url });
        held.on('error', () => {});
        await held.connect();
        assert.equal((await held.query('SELECT current_user AS u')).rows[0].u, role);
        await end(m.token, m.mandateId, 'revoke');
        await assert.rejects(held.query('SELECT 1'), 'the open session was terminated');
        await held.end().catch(() => {});
        await assert.rejects(new pg.Client({ connectionString: url }).connect(), 'no new session either');
      });

      test('revoking a parent revokes the leases its children obtained; the child token carries the act chain', async () => {
        const parent = await open(['pgdb.count_items', 'tickets.whoami']);
        const child = await b.delegate(parent.token, HELPER.spiffeId, {
          type: 'mandate',
          purpose: 'child',
          taskType: 'support.refund',
          environment: 'production',
          ttlSeconds: 300,
          tools: [{ tool: 'pgdb.count_items' }, { tool: 'tickets.whoami' }],
        });
        const childId = mandateIdOf(child.access_token);
        const client = await connect(child.access_token);
        assert.equal(text(await call(client, 'pgdb.count_items')), '3');
        const who = JSON.parse(text(await call(client, 'tickets.whoami'))) as Record<string, unknown>;
        assert.equal(who.mandate, childId);
        assert.deepEqual(who.act, { sub: HELPER.id }, 'the act chain names the delegate (the subject is the root agent)');
        assert.equal(who.sub, AGENT.id);
        const [pgLease] = (await leases(childId)).filter((l) => l.provider === 'postgres-role');
        const role = String(pgLease?.details.role);
        assert.equal(await roleWorks(role), true);
        await end(parent.token, parent.mandateId, 'revoke');
        assert.deepEqual(
          (await leases(childId)).map((l) => l.status),
          ['revoked', 'revoked'],
        );
        assert.equal(await roleWorks(role), false);
      });

      test('a provider down at the first call: the call fails closed with RPC_LEASE_UNAVAILABLE, nothing is forwarded', async () => {
        const m = await open(['crm.whoami']);
        const client = await connect(m.token);
        const before = crm.presented.length;
        as.down = true;
        try {
          const r = await call(client, 'crm.whoami');
          assert.equal(r.isError, true);
          assert.equal(errorCode(r), 'RPC_LEASE_UNAVAILABLE');
          assert.equal(crm.presented.length, before, 'the upstream was never called');
        } finally {
          as.down = false;
        }
        const [failed] = await leases(m.mandateId);
        assert.equal(failed?.status, 'failed');
        const events = await b.broker.audit.entriesBy('mandate_id', m.mandateId, { types: ['lease.failed'] });
        assert.equal(events.length, 1);
        // The provider is back: the next call obtains a lease and goes through.
        assert.equal(JSON.parse(text(await call(client, 'crm.whoami'))).ok, true);
        await end(m.token, m.mandateId);
      });

      test('a revocation that fails is recorded, audited and retried by the reaper', async () => {
        const m = await open(['crm.whoami']);
        const client = await connect(m.token);
        await call(client, 'crm.whoami');
        const token = crm.presented.at(-1) ?? '';
        as.down = true;
        try {
          await end(m.token, m.mandateId);
        } finally {
          as.down = false;
        }
        const [pending] = await leases(m.mandateId);
        assert.equal(pending?.status, 'revoking');
        assert.equal(pending?.attempts, 1);
        assert.match(pending?.lastError ?? '', /503|unavailable|status/i);
        assert.equal(as.isActive(token), true, 'not revoked yet');
        assert.equal(
          (await b.broker.audit.entriesBy('mandate_id', m.mandateId, { types: ['lease.revoke_failed'] })).length,
          1,
          'the failure is audited',
        );
        // A failed revocation is retried once its claim is stale (2 × obtainTimeoutMs).
        await new Promise((r) => setTimeout(r, 2100));
        assert.ok((await b.broker.leases.service.reap()) >= 1);
        assert.equal((await leases(m.mandateId))[0]?.status, 'revoked');
        assert.equal(as.isActive(token), false);
      });

      test('the reaper revokes leases of expired mandates and drops roles of obtains a crash interrupted', async () => {
        const m = await open(['pgdb.whoami']);
        const client = await connect(m.token);
        const role = text(await call(client, 'pgdb.whoami'));
        // The mandate expired while no replica was up to hear it.
        await b.broker.store.run('UPDATE mandates SET expires_at = ? WHERE id = ?', [Date.now() - 1000, m.mandateId]);
        // A crash after the role was created but before the lease was recorded as active (another, live mandate).
        const other = await open(['pgdb.whoami']);
        const orphan = `${db.rolePrefix}crashed`;
        await adminPg.query(`CREATE ROLE ${orphan} LOGIN`);
        await b.broker.store.run(
          `INSERT INTO leases (id, mandate_id, upstream, provider, status, handle, details, expires_at, created_at, attempts)
           VALUES ('lse_crashed', ?, 'pgdb', 'postgres-role', 'obtaining', ?, '{}', ?, ?, 0)`,
          [other.mandateId, JSON.stringify({ role: orphan }), Date.now() + 60_000, Date.now() - 60_000],
        );
        assert.ok((await b.broker.leases.service.reap()) >= 2);
        assert.equal(await roleWorks(role), false);
        assert.equal(await roleWorks(orphan), false);
        const after = await leases(m.mandateId);
        assert.ok(after.every((l) => l.status === 'revoked'));
        assert.ok(after.some((l) => l.revokeReason === 'mandate expired'));
        const [crashed] = await leases(other.mandateId);
        assert.equal(crashed?.status, 'revoked');
        assert.equal(crashed?.revokeReason, 'obtain interrupted');
        // The live mandate is not harmed: its next call obtains a fresh lease.
        assert.ok(text(await call(await connect(other.token), 'pgdb.whoami')).startsWith(db.rolePrefix));
      });

      test('no lease secret is ever visible to the agent or in the audit log', async () => {
        const rows = await b.broker.store.query<{ id: string; sealed: string | null }>('SELECT id, sealed FROM leases');
        const secrets = new Set<string>([...tickets.presented, ...crm.presented].filter((t) => t !== '' && !t.startsWith('discovery-')));
        for (const r of rows) {
          if (r.sealed === null) continue;
          const { credential, state } = JSON.parse(b.broker.secrets.open(r.sealed, `lease:${r.id}`).toString()) as {
            credential: { env?: Record<string, string>; headers?: Record<string, string> };
            state: string | null;
          };
          for (const v of [...Object.values(credential.env ?? {}), ...Object.values(credential.headers ?? {})]) {
            secrets.add(v.replace(/^Bearer /, ''));
            const pw = /:\/\/[^:]+:([^@]+)@/.exec(v)?.[1];
            if (pw !== undefined) secrets.add(decodeURIComponent(pw));
          }
          if (state !== null) secrets.add(state);
        }
        assert.ok(secrets.size >= 6, `found ${secrets.size} secrets to look for`);
        const size = (await b.broker.audit.head()).size;
        const audit = JSON.stringify(await b.broker.audit.entries(0, size));
        for (const s of secrets) {
          assert.ok(!agentSaw.some((body) => body.includes(s)), 'a lease secret reached the agent');
          assert.ok(!audit.includes(s), 'a lease secret is in the audit log');
        }
        assert.ok(audit.includes('lease.issued'));
      });
    });
  }
});
