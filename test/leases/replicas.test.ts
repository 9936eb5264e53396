// Leases across two real replicas over PostgreSQL: leases obtained through replica B are revoked
// when the mandate is revoked through replica A (the role is dropped, the upstream token is refused
// by both replicas' introspection and by the protected upstream). And a full run's lease secrets
// appear in no agent-visible response, no log line of either replica, and no audit event.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import pg from 'pg';
import { DEV_ISSUER_PATH, DevIssuer } from '../../src/identity/dev-issuer.js';
import { DEV_TRUST_DOMAIN } from '../../src/identity/dev-spiffe.js';
import { parseMasterKeys, SecretBox } from '../../src/secrets/index.js';
import { type Cluster, openDemoMandate, startCluster } from '../helpers/replicas.js';
import { POSTGRES_URL, postgresFactory } from '../helpers/stores.js';
import { createLeaseDb, type LeaseDb } from './fixtures/pg-lease-db.js';
import { PG_SERVER_PATH } from './fixtures/pg-server.js';
import { mandateTokenCheck, type ProtectedUpstream, startProtectedUpstream } from './fixtures/protected-upstream.js';

const pgf = await postgresFactory();
const AGENT = `spiffe://${DEV_TRUST_DOMAIN}/agent/lease-replica-agent`;
const text = (r: unknown): string => ((r as CallToolResult).content?.[0] as { text?: string } | undefined)?.text ?? '';

describe('leases across replicas', { skip: pgf.skip }, () => {
  let cluster: Cluster;
  let operators: DevIssuer;
  let db: LeaseDb;
  let tickets: ProtectedUpstream;
  let admin: pg.Pool;
  const logs: string[] = [];
  const agentSaw: string[] = [];
  const clients: Client[] = [];

  before(async () => {
    db = await createLeaseDb();
    admin = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
    let issuer = '';
    let bearer = '';
    tickets = await startProtectedUpstream(mandateTokenCheck({ issuer: () => issuer, introspectionBearer: async () => bearer }));
    cluster = await startCluster({
      replicas: 2,
      config: {
        mode: 'demo',
        log: { level: 'debug' },
        upstreams: {
          stdio: { allowedCommands: [{ command: process.execPath, args: ['--import', 'tsx', PG_SERVER_PATH], env: ['DATABASE_URL'] }] },
        },
        leases: {
          upstreams: {
            pgdb: {
              type: 'postgres-role',
              adminUrl: db.adminUrl,
              grants: db.grants,
              connectionUrl: db.connectionUrl,
              rolePrefix: db.rolePrefix,
            },
            tickets: { type: 'mandate-token', audience: tickets.url },
          },
        },
      },
    });
    for (const r of cluster.replicas) r.child.stdout?.on('data', (d: Buffer) => logs.push(d.toString()));
    issuer = cluster.publicUrl;
    operators = await DevIssuer.open(cluster.dataDir, `${cluster.publicUrl}${DEV_ISSUER_PATH}`);
    bearer = await operators.mint({ sub: 'rs', roles: ['resource-server'] });
    const alice = await operators.mint({ sub: 'alice', roles: ['admin'] });
    const post = async (path: string, body: unknown) => {
      const res = await fetch(`${cluster.replicas[0]?.url}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const raw = await res.text();
      assert.equal(res.status, 201, raw);
    };
    await post('/admin/v1/upstreams', {
      id: 'pgdb',
      transport: { type: 'stdio', command: process.execPath, args: ['--import', 'tsx', PG_SERVER_PATH, db.schema] },
    });
    await post('/admin/v1/upstreams', {
      id: 'tickets',
      transport: { type: 'http', url: tickets.url },
      credential: { headers: { Authorization: `Bearer ${tickets.discoveryKey}` } },
    });
    // After the upstreams: a ceiling may only name tools in the catalog.
    await post('/admin/v1/agents', {
      id: 'lease-replica-agent',
      displayName: 'lease replica agent',
      owner: 'alice',
      environment: 'production',
      identity: { spiffeId: AGENT },
      ceiling: { tools: [{ tool: 'pgdb.count_items' }, { tool: 'pgdb.whoami' }, { tool: 'tickets.whoami' }], delegable: true },
    });
  });

  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await cluster?.close();
    await tickets?.close();
    await db?.cleanup();
    await admin?.end();
  });

  const connect = async (replica: number, token: string) => {
    const client = new Client({ name: 'lease-replica-agent', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL('/mcp', cluster.replicas[replica]?.url), {
        requestInit: { headers: { authorization: `Bearer ${token}` } },
      }),
    );
    clients.push(client);
    return client;
  };
  const introspect = async (replica: number, token: string) => {
    const res = await fetch(`${cluster.replicas[replica]?.url}/oauth/introspect`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await operators.mint({ sub: 'rs', roles: ['resource-server'] })}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token }),
    });
    return ((await res.json()) as { active: boolean }).active;
  };
  const roleExists = async (role: string) => (await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role])).rowCount === 1;

  test('revoking through replica A ends the leases held through replica B', async () => {
    const opened = await openDemoMandate(cluster, {
      spiffeId: AGENT,
      tools: [{ tool: 'pgdb.count_items' }, { tool: 'pgdb.whoami' }, { tool: 'tickets.whoami' }],
    });
    assert.equal(opened.status, 200, JSON.stringify(opened.body));
    agentSaw.push(JSON.stringify(opened.body));
    const onB = await connect(1, opened.token);
    const calls = [
      await onB.callTool({ name: 'pgdb.count_items', arguments: {} }),
      await onB.callTool({ name: 'pgdb.whoami', arguments: {} }),
      await onB.callTool({ name: 'tickets.whoami', arguments: {} }),
    ];
    agentSaw.push(...calls.map((c) => JSON.stringify(c)));
    assert.equal(text(calls[0]), '3');
    const role = text(calls[1]);
    assert.ok(role.startsWith(db.rolePrefix));
    const token = tickets.presented.at(-1) ?? '';
    assert.equal(await introspect(0, token), true, 'replica A vouches for the token B obtained');
    assert.equal(await introspect(1, token), true);

    const alice = await operators.mint({ sub: 'alice', roles: ['admin'] });
    const started = Date.now();
    const res = await fetch(`${cluster.replicas[0]?.url}/admin/v1/mandates/${opened.mandateId}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${alice}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'replica test' }),
    });
    assert.equal(res.status, 200);
    // Both replicas refuse the upstream token at once (the mandate change is applied before the answer on A, within the poll on B).
    for (;;) {
      const gone = !(await roleExists(role)) && !(await introspect(0, token)) && !(await introspect(1, token));
      if (gone) break;
      assert.ok(Date.now() - started < 10_000, 'leases still alive 10 s after the revocation');
      await new Promise((r) => setTimeout(r, 50));
    }
    // The protected upstream refuses the token now (it introspects at Mandate).
    const check = mandateTokenCheck({
      issuer: () => cluster.publicUrl,
      introspectionBearer: () => operators.mint({ sub: 'rs', roles: ['resource-server'] }),
    });
    assert.equal(await check(token, tickets.url).catch(() => undefined), undefined);
    // And the agent, through B, is refused.
    const after = await onB.callTool({ name: 'pgdb.count_items', arguments: {} }).catch((err: unknown) => ({ error: String(err) }));
    agentSaw.push(JSON.stringify(after));
    assert.ok('error' in after || (after as CallToolResult).isError === true, JSON.stringify(after));
    const listed = await fetch(`${cluster.replicas[1]?.url}/admin/v1/mandates/${opened.mandateId}/leases`, {
      headers: { authorization: `Bearer ${alice}` },
    });
    const items = ((await listed.json()) as { items: { status: string }[] }).items;
    assert.deepEqual(
      items.map((l) => l.status),
      ['revoked', 'revoked'],
    );
  });

  test('no lease secret appears in an agent-visible response, a log line of either replica, or an audit event', async () => {
    const box = new SecretBox(parseMasterKeys(cluster.masterKey));
    const client = await admin.connect();
    let rows: { id: string; sealed: string | null }[];
    let audit: string;
    try {
      await client.query(`SET search_path TO "${cluster.schema}"`);
      rows = (await client.query('SELECT id, sealed FROM leases')).rows;
      audit = (await client.query('SELECT body FROM audit_entries ORDER BY seq')).rows.map((r) => String(r.body)).join('\n');
    } finally {
      client.release();
    }
    const secrets = new Set<string>();
    for (const r of rows) {
      if (r.sealed === null) continue;
      const { credential } = JSON.parse(box.open(r.sealed, `lease:${r.id}`).toString()) as {
        credential: { env?: Record<string, string>; headers?: Record<string, string> };
      };
      for (const v of [...Object.values(credential.env ?? {}), ...Object.values(credential.headers ?? {})]) {
        secrets.add(v.replace(/^Bearer /, ''));
        const pw = /:\/\/[^:]+:([^@]+)@/.exec(v)?.[1];
        if (pw !== undefined) secrets.add(decodeURIComponent(pw));
      }
    }
    assert.ok(secrets.size >= 3, `${secrets.size} secrets to look for`);
    const logText = logs.join('');
    assert.ok(logText.length > 1000, 'the replicas logged (debug level)');
    assert.ok(audit.includes('lease.issued') && audit.includes('lease.revoked'));
    for (const s of secrets) {
      assert.ok(!agentSaw.some((b) => b.includes(s)), 'a lease secret reached the agent');
      assert.ok(!logText.includes(s), 'a lease secret is in a log line');
      assert.ok(!audit.includes(s), 'a lease secret is in the audit log');
    }
  });
});
