// bench/leases: 200 mandates each hold a dynamic PostgreSQL role and a Mandate-minted upstream
// token; then all 200 are completed at once, and we time, per mandate, how long until its role is
// gone from pg_roles and its token is refused by the verifier introspection uses.
// Also the latency a first call adds by obtaining a lease: through the governed call path
// (decide, audit, forward), a mandate's first call to an upstream with a token lease against its
// first call to an identical upstream without one (both open a per-mandate session); and, at the
// injection seam, what obtaining a role costs (CREATE ROLE + grants + audit) over a held lease.
// In-process broker on SQLite (BENCH_STORE=postgres: on PostgreSQL); roles on the PostgreSQL at MANDATE_TEST_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/test). BENCH_QUICK=1 uses 50 mandates.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import pg from 'pg';
import { createBroker } from '../src/broker.js';
import { buildConfig } from '../src/config/load.js';
import { DEV_TRUST_DOMAIN } from '../src/identity/dev-spiffe.js';
import type { AccessTokenClaims } from '../src/oauth/access-token.js';
import { summarize } from './lib/stats.js';

const N = process.env.BENCH_QUICK === '1' ? 50 : 200;
const PG_URL = process.env.MANDATE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const tag = randomBytes(4).toString('hex');
const schema = `lease_bench_${tag}`;
const prefix = `lb_${tag}_`;

/** A stateless streamable-HTTP MCP server with one read-only tool (the upstream of the gateway-level measurement). */
async function startUpstream(): Promise<{ url: string; server: Server }> {
  const server = createServer(async (req, res) => {
    const mcp = new McpServer({ name: 'bench-upstream', version: '1' });
    mcp.registerTool('read', { description: 'reads', annotations: { readOnlyHint: true } }, async () => ({
      content: [{ type: 'text', text: 'ok' }],
    }));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => void mcp.close().catch(() => {}));
    await mcp.connect(transport);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString();
    await transport.handleRequest(req, res, raw === '' ? undefined : JSON.parse(raw));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`, server };
}
const plainUp = await startUpstream();
const leasedUp = await startUpstream();

const admin = new pg.Pool({ connectionString: PG_URL, max: 2 });
await admin.query(`CREATE SCHEMA ${schema}`);
await admin.query(`CREATE TABLE ${schema}.items (id int PRIMARY KEY)`);
const u = new URL(PG_URL);
const dataDir = mkdtempSync(join(tmpdir(), 'mandate-lease-bench-'));
const config = buildConfig(
  {
    mode: 'demo',
    dataDir,
    log: { level: 'warn' },
    // BENCH_STORE=postgres: the broker's own store on PostgreSQL too (a schema of its own), as replicas at scale run.
    ...(process.env.BENCH_STORE === 'postgres'
      ? { store: { driver: 'postgres' as const, postgres: { url: PG_URL, schema: `${schema}_store` } } }
      : {}),
    leases: {
      reapIntervalMs: 3_600_000,
      upstreams: {
        pgdb: {
          type: 'postgres-role',
          adminUrl: PG_URL,
          rolePrefix: prefix,
          grants: [`GRANT USAGE ON SCHEMA ${schema} TO {{role}}`, `GRANT SELECT ON ALL TABLES IN SCHEMA ${schema} TO {{role}}`],
          connectionUrl: `postgresql://{{role}}:{{password}}@${u.host}${u.pathname}`,
        },
        tickets: { type: 'mandate-token', audience: leasedUp.url },
      },
    },
  },
  { env: {} },
);
const broker = await createBroker(config);
const rolesLeft = async () =>
  (await admin.query('SELECT count(*)::int AS n FROM pg_roles WHERE starts_with(rolname, $1)', [prefix])).rows[0].n as number;
try {
  const agent = await broker.agents.register({
    id: 'lease-bench',
    displayName: 'lease bench',
    owner: 'alice',
    environment: 'production',
    identity: { spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/lease-bench` },
    ceiling: {
      tools: [{ tool: 'pgdb.query' }, { tool: 'tickets.read' }, { tool: 'plain.read' }],
      delegable: false,
    },
  });
  // Registered, never connected: the benchmark stops at the seam, before any upstream session.
  for (const id of ['pgdb']) {
    await broker.upstreams.registry.create({ id, transport: { type: 'http', url: `http://127.0.0.1:9/${id}` } }, { discover: false });
  }
  // Two identical upstreams behind the gateway, one session per mandate each; only `tickets` has a lease.
  await broker.upstreams.registry.create({ id: 'plain', transport: { type: 'http', url: plainUp.url }, isolation: 'mandate' });
  await broker.upstreams.registry.create({ id: 'tickets', transport: { type: 'http', url: leasedUp.url }, isolation: 'mandate' });
  await broker.changes.catchUp();
  const gateway = broker.gateway.gateway;
  const gwPlain: number[] = [];
  const gwLeased: number[] = [];
  const seam = broker.leases.service;
  const first: number[] = [];
  const repeat: number[] = [];
  const held: { mandateId: string; role: string; token: string }[] = [];
  for (let i = 0; i < N; i++) {
    const m = await broker.mandates.open(agent, {
      type: 'mandate',
      purpose: 'lease bench',
      taskType: 'bench',
      environment: 'production',
      ttlSeconds: 900,
      tools: [{ tool: 'pgdb.query' }, { tool: 'tickets.read' }, { tool: 'plain.read' }],
      delegable: false,
    });
    // Through the governed call path (decide, audit, forward): a mandate's first call to each upstream.
    const caller = { tokenId: `bench-${i}`, mandate: m, chain: [m], agent: agent.principal, claims: {} as AccessTokenClaims };
    let g0 = performance.now();
    const a = await gateway.callTool(caller, 'plain.read', {});
    gwPlain.push(performance.now() - g0);
    g0 = performance.now();
    const b = await gateway.callTool(caller, 'tickets.read', {});
    gwLeased.push(performance.now() - g0);
    if (a.isError === true || b.isError === true) throw new Error(`gateway call failed: ${JSON.stringify(a.isError ? a : b)}`);
    // First ask for the role at the seam: obtains it (CREATE ROLE + grants, audit); the token is held already.
    let t0 = performance.now();
    const db = await seam.credentialFor({ upstreamId: 'pgdb', mandateId: m.id });
    const tk = await seam.credentialFor({ upstreamId: 'tickets', mandateId: m.id });
    first.push(performance.now() - t0);
    t0 = performance.now();
    await seam.credentialFor({ upstreamId: 'pgdb', mandateId: m.id });
    await seam.credentialFor({ upstreamId: 'tickets', mandateId: m.id });
    repeat.push(performance.now() - t0);
    const url = db?.env?.DATABASE_URL ?? '';
    const role = decodeURIComponent(/^postgresql:\/\/([^:]+):/.exec(url)?.[1] ?? '');
    const token = (tk?.headers?.Authorization ?? '').replace(/^Bearer /, '');
    held.push({ mandateId: m.id, role, token });
  }
  if ((await rolesLeft()) !== N) throw new Error(`expected ${N} lease roles, found ${await rolesLeft()}`);
  for (const h of held.slice(0, 3)) await broker.leases.upstreamTokens.verify(h.token); // accepted before

  // Complete all at once; per mandate, time from its completion call until role gone AND token refused.
  const started = new Map<string, number>();
  const done = new Map<string, number>();
  const completed = new Map<string, number>();
  const completions = held.map(async (h) => {
    started.set(h.mandateId, performance.now());
    await broker.mandates.complete(h.mandateId, { type: 'agent', id: agent.principal.id });
    completed.set(h.mandateId, performance.now());
  });
  const poll = (async () => {
    const deadline = performance.now() + 30_000;
    while (done.size < held.length && performance.now() < deadline) {
      const pending = held.filter((h) => !done.has(h.mandateId) && started.has(h.mandateId));
      const alive = new Set(
        (await admin.query('SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)', [prefix])).rows.map((r) => r.rolname as string),
      );
      for (const h of pending) {
        if (alive.has(h.role)) continue;
        const refused = await broker.leases.upstreamTokens.verify(h.token).then(
          () => false,
          () => true,
        );
        if (refused) done.set(h.mandateId, performance.now());
      }
      // 10 ms between looks: resolution enough for a 1 s goal, without the poller competing for the event loop.
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  await Promise.all(completions);
  await poll;
  await broker.leases.service.settled();
  const revoke = summarize(held.map((h) => (done.get(h.mandateId) ?? Number.NaN) - (started.get(h.mandateId) ?? 0)));
  const answered = summarize(held.map((h) => (completed.get(h.mandateId) ?? Number.NaN) - (started.get(h.mandateId) ?? 0)));
  const after = summarize(held.map((h) => (done.get(h.mandateId) ?? Number.NaN) - (completed.get(h.mandateId) ?? 0)));
  process.stdout.write(`completion answered p50 ${answered.p50.toFixed(0)} ms p99 ${answered.p99.toFixed(0)} ms\n`);
  process.stdout.write(
    `from the completion answer until role gone and token refused p50 ${after.p50.toFixed(0)} ms p99 ${after.p99.toFixed(0)} ms\n`,
  );
  const left = await rolesLeft();
  const f = summarize(first);
  const r = summarize(repeat);
  const gp = summarize(gwPlain);
  const gl = summarize(gwLeased);
  // What obtaining the token lease adds to a first call through the gateway (both open a per-mandate session).
  const added = gl.p50 - gp.p50;
  const roleAdded = f.p50 - r.p50;
  process.stdout.write(
    `first call through the gateway: no lease p50 ${gp.p50.toFixed(1)} ms, obtaining an upstream-token lease p50 ${gl.p50.toFixed(1)} ms p99 ${gl.p99.toFixed(1)} ms\n`,
  );
  process.stdout.write(
    `mandates ${N}; at the seam, obtaining a role p50 ${f.p50.toFixed(1)} ms p99 ${f.p99.toFixed(1)} ms; ` +
      `with the leases held p50 ${r.p50.toFixed(2)} ms\n`,
  );
  process.stdout.write(
    `all ${N} completed at once: role gone and token refused per mandate p50 ${revoke.p50.toFixed(0)} ms p99 ${revoke.p99.toFixed(0)} ms max ${revoke.max.toFixed(0)} ms; revoked ${done.size}/${N}; roles left ${left}\n`,
  );
  process.stdout.write(
    `RESULT leases revoke_p99_ms=${revoke.p99.toFixed(0)} first_call_added_ms=${added.toFixed(1)} roles_left=${left} revoke_p50_ms=${revoke.p50.toFixed(0)} role_obtain_added_ms=${roleAdded.toFixed(1)}\n`,
  );
  if (done.size < N || left > 0) process.exitCode = 1;
} finally {
  await broker.close();
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
  await admin.query(`DROP SCHEMA IF EXISTS ${schema}_store CASCADE`).catch(() => {});
  for (const r of (await admin.query('SELECT rolname FROM pg_roles WHERE starts_with(rolname, $1)', [prefix])).rows) {
    await admin.query(`DROP OWNED BY "${r.rolname}"`).catch(() => {});
    await admin.query(`DROP ROLE IF EXISTS "${r.rolname}"`).catch(() => {});
  }
  await admin.end();
  for (const u of [plainUp, leasedUp]) {
    u.server.closeAllConnections();
    u.server.close();
  }
  rmSync(dataDir, { recursive: true, force: true });
}
