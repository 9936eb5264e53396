// bench/reports: every governance report (src/reports/) over 1,000,000 audit events and 10,000
// agents (BENCH_QUICK=1: 100,000 and 1,000). Rows are bulk-generated with multi-row INSERTs straight
// into the tables, in the shape the audit log writes (canonical leaf `{"event":…,"seq":N}`, its
// RFC 9162 leaf hash and the decision columns derived from it; no Merkle nodes, which no report
// reads). A kept database from an older version is migrated first (the 0063 backfill is timed). SQLite by default; `--pg` also runs
// PostgreSQL.
//   npm run bench -- reports [--pg]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import canonicalize from 'canonicalize';
import pg from 'pg';
import { hashLeaf } from '../src/audit/merkle.js';
import { buildConfig } from '../src/config/load.js';
import { compiledEngine } from '../src/policy/compiled/engine.js';
import { SHIPPED_SCHEMA } from '../src/policy/source.js';
import { controlsReport } from '../src/reports/controls.js';
import { reportNames, runReport } from '../src/reports/index.js';
import type { ReportContext } from '../src/reports/types.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { SqlValue, Store } from '../src/store/types.js';
import { readCatalog } from '../src/upstreams/catalog.js';

const QUICK = process.env.BENCH_QUICK === '1';
const EVENTS = QUICK ? 100_000 : 1_000_000;
const AGENTS = QUICK ? 1_000 : 10_000;
const MANDATES_PER_AGENT = 10;
const OWNERS = 200;
const TOOLS = 20;
const DAY = 86_400_000;
const NOW = Date.parse('2026-06-01T00:00:00Z');
const PG_URL = process.env.MANDATE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Deterministic pseudo-random numbers (mulberry32), so every run generates the same data. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const toolName = (i: number) => `shop.${['search', 'get', 'propose', 'refund', 'delete'][i % 5]}_${i}`;
const toolClass = (i: number) => ['read', 'read', 'propose', 'execute', 'destructive'][i % 5] as string;

async function insertRows(store: Store, table: string, columns: string[], rows: SqlValue[][], perStatement: number): Promise<void> {
  const tuple = `(${columns.map(() => '?').join(', ')})`;
  for (let i = 0; i < rows.length; i += perStatement * 20) {
    await store.transaction(async (tx) => {
      for (let j = i; j < Math.min(rows.length, i + perStatement * 20); j += perStatement) {
        const chunk = rows.slice(j, j + perStatement);
        await tx.run(`INSERT INTO ${table} (${columns.join(', ')}) VALUES ${chunk.map(() => tuple).join(', ')}`, chunk.flat());
      }
    });
  }
}

async function generate(store: Store, perStatement: number): Promise<void> {
  const r = rng(42);
  const principals: SqlValue[][] = [];
  for (let o = 0; o < OWNERS; o++)
    principals.push([
      `owner-${o}`,
      'human',
      `Owner ${o}`,
      null,
      null,
      o % 50 === 0 ? 'disabled' : 'active',
      NOW - 400 * DAY,
      NOW - 400 * DAY,
    ]);
  const profiles: SqlValue[][] = [];
  for (let a = 0; a < AGENTS; a++) {
    const owner = a % 97 === 0 ? `gone-${a}` : `owner-${a % OWNERS}`;
    principals.push([
      `agent-${a}`,
      'agent',
      `Agent ${a}`,
      owner,
      a % 3 === 0 ? 'staging' : 'production',
      a % 41 === 0 ? 'quarantined' : 'active',
      NOW - 200 * DAY,
      NOW - 200 * DAY,
    ]);
    const tools = Array.from({ length: 5 }, (_, k) => ({
      tool: toolName((a + k * 3) % TOOLS),
      ...(toolClass((a + k * 3) % TOOLS) === 'execute' ? { args: { amountCents: { max: 100_000 } } } : {}),
    }));
    profiles.push([`agent-${a}`, `spiffe:spiffe://bench/agent-${a}`, JSON.stringify({ tools, delegable: true }), 3600, NOW, NOW]);
  }
  await insertRows(
    store,
    'principals',
    ['id', 'actor_type', 'display_name', 'owner', 'environment', 'status', 'created_at', 'updated_at'],
    principals,
    perStatement,
  );
  await insertRows(
    store,
    'agent_profiles',
    ['agent_id', 'identity_key', 'ceiling', 'max_ttl_seconds', 'created_at', 'updated_at'],
    profiles,
    perStatement,
  );
  const mandates: SqlValue[][] = [];
  const mandateCount = AGENTS * MANDATES_PER_AGENT;
  for (let m = 0; m < mandateCount; m++) {
    const agent = m % AGENTS;
    // Every fifth mandate is delegated from the one before it (depth 1), every 25th two levels down.
    const depth = m % 25 === 2 ? 2 : m % 5 === 1 || m % 25 === 2 ? 1 : 0;
    const parent = depth === 0 ? null : `m-${m - 1}`;
    const created = NOW - Math.floor(r() * 60 * DAY);
    mandates.push([
      `m-${m}`,
      `agent-${agent}`,
      parent,
      `m-${m - depth}`,
      `/m-${m}/`,
      depth,
      depth === 0 ? `owner-${agent % OWNERS}` : null,
      'bench',
      'bench.task',
      'production',
      '{"tools":[]}',
      'completed',
      created + 900_000,
      created,
    ]);
  }
  await insertRows(
    store,
    'mandates',
    [
      'id',
      'agent_id',
      'parent_id',
      'root_id',
      'path',
      'depth',
      'on_behalf_of',
      'purpose',
      'task_type',
      'environment',
      'scope',
      'status',
      'expires_at',
      'created_at',
    ],
    mandates,
    perStatement,
  );
  const approvals: SqlValue[][] = [];
  for (let i = 0; i < EVENTS / 100; i++) {
    const created = NOW - Math.floor(r() * 60 * DAY);
    const status = ['consumed', 'approved', 'denied', 'expired', 'pending'][i % 5] as string;
    const decided = status === 'expired' || status === 'pending' ? null : created + Math.floor(r() * 600_000);
    approvals.push([
      `ap-${i}`,
      'h',
      `m-${i % mandateCount}`,
      toolName(4),
      `agent-${i % AGENTS}`,
      status,
      '[]',
      '[]',
      `d-${i}`,
      '[]',
      '{}',
      decided === null ? null : `owner-${i % 7}`,
      decided === null ? null : 'admin',
      created,
      created + DAY,
      decided,
    ]);
  }
  await insertRows(
    store,
    'approvals',
    [
      'id',
      'call_hash',
      'mandate_id',
      'tool',
      'agent_id',
      'status',
      'required_roles',
      'forbid_approvers',
      'decision_id',
      'reasons',
      'context',
      'decided_by',
      'decided_role',
      'created_at',
      'expires_at',
      'decided_at',
    ],
    approvals,
    perStatement,
  );
  const upstreams: SqlValue[][] = [];
  for (let u = 0; u < 5; u++)
    upstreams.push([
      `up${u}`,
      `Upstream ${u}`,
      '{"type":"http","url":"https://x.example/mcp"}',
      'shared',
      'internal',
      'sealed',
      '{"headers":["Authorization"],"env":[]}',
      NOW - 200 * DAY,
      NOW - u * 40 * DAY,
    ]);
  await insertRows(
    store,
    'upstreams',
    [
      'id',
      'display_name',
      'transport',
      'isolation',
      'default_sensitivity',
      'credential_sealed',
      'credential_names',
      'created_at',
      'updated_at',
    ],
    upstreams,
    perStatement,
  );
  const tools: SqlValue[][] = [];
  for (let t = 0; t < TOOLS; t++) {
    const cls = toolClass(t);
    tools.push([
      toolName(t),
      'up0',
      toolName(t).split('.')[1] as string,
      null,
      null,
      '{"type":"object","properties":{"amountCents":{},"customerId":{},"q":{}}}',
      JSON.stringify(cls === 'destructive' ? { destructiveHint: true } : cls === 'read' ? { readOnlyHint: true } : {}),
      NOW,
    ]);
  }
  await insertRows(
    store,
    'catalog_tools',
    ['name', 'upstream', 'upstream_tool', 'title', 'description', 'input_schema', 'annotations', 'discovered_at'],
    tools,
    perStatement,
  );

  const types = [
    'decision',
    'decision',
    'decision',
    'decision',
    'decision',
    'decision',
    'tool.forwarded',
    'tool.result',
    'mandate.opened',
    'approval.decided',
  ];
  let batch: SqlValue[][] = [];
  const flush = async () => {
    await insertRows(
      store,
      'audit_entries',
      [
        'seq',
        'type',
        'mandate_id',
        'decision_id',
        'approval_id',
        'created_at',
        'body',
        'leaf_hash',
        'outcome',
        'tool',
        'action_class',
        'environment',
        'policies',
      ],
      batch,
      perStatement,
    );
    batch = [];
  };
  for (let seq = 0; seq < EVENTS; seq++) {
    const m = Math.floor(r() * mandateCount);
    const agent = m % AGENTS;
    const k = Math.floor(r() * 5);
    const t = (agent + k * 3) % TOOLS;
    const created = NOW - Math.floor(r() * 60 * DAY);
    const type = seq % 5000 === 0 ? 'admin.agent.updated' : (types[seq % types.length] as string);
    const decisionId = `d-${seq}`;
    const cls = toolClass(t);
    const data: Record<string, unknown> =
      type === 'decision'
        ? {
            decisionId,
            outcome: r() < 0.9 ? 'allow' : 'deny',
            tool: toolName(t),
            actionClass: cls,
            sensitivity: 'internal',
            args:
              cls === 'execute'
                ? { amountCents: Math.floor(r() * 50_000), customerId: `C-${agent}` }
                : { q: `query ${Math.floor(r() * 10)}` },
            reasons: ['within mandate'],
            policies: [r() < 0.5 ? 'active-agents' : 'destructive-needs-admin'],
            ...(cls === 'destructive' && r() < 0.5 ? { approvalId: `ap-${seq % 1000}` } : {}),
            tokenId: `tok-${m}`,
          }
        : type === 'tool.forwarded'
          ? { decisionId, tool: toolName(t), args: { q: 'x' } }
          : type === 'tool.result'
            ? { decisionId, status: 'ok', size: 120, resultHash: 'ab'.repeat(32) }
            : type === 'approval.decided'
              ? { approvalId: `ap-${seq % 1000}`, decisionId, outcome: 'approved', role: 'admin', tool: toolName(4), callHash: 'h' }
              : { agentId: `agent-${agent}`, purpose: 'bench', taskType: 'bench.task', scope: { tools: [] } };
    const event = {
      v: 1,
      time: new Date(created).toISOString(),
      type,
      actors: type === 'approval.decided' ? [{ type: 'human', id: `owner-${agent % 7}` }] : [{ type: 'agent', id: `agent-${agent}` }],
      ...(type.startsWith('admin.') ? {} : { mandateId: `m-${m}`, environment: 'production' }),
      data,
    };
    const body = `{"event":${canonicalize(event)},"seq":${seq}}`;
    batch.push([
      seq,
      type,
      type.startsWith('admin.') ? null : `m-${m}`,
      'decisionId' in data ? decisionId : null,
      'approvalId' in data ? (data.approvalId as string) : null,
      created,
      body,
      hashLeaf(body),
      // The decision columns the audit log derives at append (src/audit/event.ts columnsOf).
      type === 'decision' ? (data.outcome as string) : null,
      type === 'decision' ? (data.tool as string) : null,
      type === 'decision' ? (data.actionClass as string) : null,
      type === 'decision' ? 'production' : null,
      type === 'decision' ? JSON.stringify(data.policies) : null,
    ]);
    if (batch.length >= 50_000) await flush();
  }
  await flush();
  await store.run('UPDATE audit_head SET size = ? WHERE id = 1', [EVENTS]);
}

async function run(name: string, store: Store, perStatement: number): Promise<number> {
  let t0 = performance.now();
  const [head] = await store.query<{ size: number }>('SELECT size FROM audit_head WHERE id = 1');
  if (Number(head?.size) === EVENTS) {
    process.stdout.write(`${name}: reusing ${EVENTS} bulk-generated audit events and ${AGENTS} agents from a kept database\n`);
  } else {
    await generate(store, perStatement);
    process.stdout.write(
      `${name}: bulk-generated ${EVENTS} audit events, ${AGENTS} agents, ${AGENTS * MANDATES_PER_AGENT} mandates in ${((performance.now() - t0) / 1000).toFixed(1)} s (direct multi-row INSERTs, not through the audit log)\n`,
    );
  }
  // Statistics, as autovacuum keeps them. On PostgreSQL also the visibility map, as autovacuum sets
  // it on an insert-only table (PostgreSQL 13+: autovacuum_vacuum_insert_threshold), so index-only
  // scans of the decision index apply; BENCH_REPORTS_NO_VACUUM=1 measures a log autovacuum has not
  // reached yet (every decision scan then reads the table).
  t0 = performance.now();
  const vacuum = store.dialect === 'postgres' && process.env.BENCH_REPORTS_NO_VACUUM !== '1';
  await store.run(vacuum ? 'VACUUM ANALYZE' : 'ANALYZE');
  process.stdout.write(`${name}: ${vacuum ? 'VACUUM ANALYZE' : 'ANALYZE'} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  const policy = compiledEngine.load({ path: SHIPPED_SCHEMA, text: readFileSync(SHIPPED_SCHEMA, 'utf8') }, [
    {
      path: 'bench.cedar',
      text: `@id("active-agents")
permit (principal is Mandate::Agent, action == Mandate::Action::"call", resource) when { principal.status == "active" };
@id("destructive-needs-admin")
forbid (principal, action == Mandate::Action::"call", resource) when { resource.actionClass == "destructive" }
unless { context has approval && context.approval.approverRole == "admin" };
@id("never-fires")
forbid (principal, action == Mandate::Action::"call", resource) when { context.environment == "nowhere" };`,
    },
  ]);
  if (!policy.ok) throw new Error('bench policy invalid');
  const ctx: ReportContext = {
    db: store,
    config: buildConfig({ mode: 'production', log: { level: 'silent' }, dataDir: '/tmp/unused' }, { env: {} }),
    now: NOW,
    catalog: await readCatalog(store),
    policySet: policy.set,
  };
  let slowest = 0;
  for (const report of [...reportNames, 'controls'] as const) {
    t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const r = report === 'controls' ? await controlsReport(ctx, {}) : await runReport(report, ctx, {});
    const s = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    slowest = Math.max(slowest, s);
    // CPU of this process: the SQLite engine runs in it; PostgreSQL's work is in the server's processes.
    process.stdout.write(
      `${name}: ${report.padEnd(15)} ${s.toFixed(2)} s wall, ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s cpu  (${r.rows.length} rows; ${JSON.stringify(r.summary).slice(0, 120)})\n`,
    );
  }
  t0 = performance.now();
  const one = await runReport('over-privilege', ctx, { agentId: 'agent-7' });
  const s = (performance.now() - t0) / 1000;
  slowest = Math.max(slowest, s);
  process.stdout.write(
    `${name}: over-privilege --agent agent-7 ${s.toFixed(2)} s  (suggested ceiling: ${JSON.stringify((one.rows[0] as { suggestedCeiling?: unknown })?.suggestedCeiling).slice(0, 150)})\n`,
  );
  return slowest;
}

/** Migrates, and says how long it took when a kept database had migrations to apply. */
async function migrate(name: string, store: Store): Promise<void> {
  const t0 = performance.now();
  const applied = await store.migrate();
  const [head] = await store.query<{ size: number }>('SELECT size FROM audit_head WHERE id = 1');
  if (Number(head?.size) > 0 && applied.length > 0) {
    process.stdout.write(
      `${name}: migrations ${applied.join(', ')} applied to a kept database of ${head?.size} events in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`,
    );
  }
}

// BENCH_REPORTS_KEEP=DIR keeps the generated SQLite file there (for EXPLAIN QUERY PLAN sessions).
const keep = process.env.BENCH_REPORTS_KEEP;
const dir = keep ?? mkdtempSync(join(tmpdir(), 'mandate-reports-bench-'));
let slowest = 0;
try {
  const sqlite = openSqliteStore({ path: join(dir, 'bench.db') });
  await migrate('sqlite', sqlite);
  try {
    slowest = Math.max(slowest, await run('sqlite', sqlite, 500));
  } finally {
    await sqlite.close();
  }
  if (process.argv.includes('--pg')) {
    // BENCH_REPORTS_PG_SCHEMA=NAME keeps (and reuses) the generated PostgreSQL schema.
    const keptSchema = process.env.BENCH_REPORTS_PG_SCHEMA;
    const schema = keptSchema ?? `bench_reports_${process.pid}`;
    const store = openPostgresStore({ url: PG_URL, schema, poolMax: 4 });
    try {
      await migrate('postgres', store);
      slowest = Math.max(slowest, await run('postgres', store, 1000));
    } finally {
      await store.close();
      if (keptSchema === undefined) {
        const c = new pg.Client({ connectionString: PG_URL });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await c.end();
      }
    }
  }
} finally {
  if (keep === undefined) rmSync(dir, { recursive: true, force: true });
}
process.stdout.write(
  `load average at the end: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')} on ${cpus().length} cores\n`,
);
process.stdout.write(`RESULT reports slowest_s=${slowest.toFixed(2)} events=${EVENTS} agents=${AGENTS}\n`);
