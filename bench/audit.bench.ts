// bench/audit: durable audit appends per second with 1, 16 and 256 concurrent writers on SQLite and
// PostgreSQL (p50/p99 append latency), against a baseline in the same run: one plain durable INSERT
// per transaction (what an audit table without group commit does). Then `verify` throughput on a
// large log (1,000,000 events; BENCH_QUICK=1: 20,000) against bare SHA-256 leaf hashing of the
// same bytes. The load generator shares the process and the machine's cores.
//   npx tsx bench/audit.bench.ts            (BENCH_QUICK=1 for a < 20 s run)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { AuditService, readEntryRows } from '../src/audit/log.js';
import { hashLeaf } from '../src/audit/merkle.js';
import { verifyLog } from '../src/audit/verify.js';
import { systemClock } from '../src/lib/clock.js';
import { generateMasterKeySpec, parseMasterKeys, SecretBox } from '../src/secrets/secret-box.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { Store } from '../src/store/types.js';

const QUICK = process.env.BENCH_QUICK === '1';
const PG_URL = process.env.MANDATE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const APPENDS: Record<number, number> = QUICK ? { 1: 300, 16: 2000, 256: 6000 } : { 1: 2000, 16: 20_000, 256: 60_000 };
const BASELINE = QUICK ? 300 : 2000;
const VERIFY_SIZE = QUICK ? 20_000 : 1_000_000;
const secrets = new SecretBox(parseMasterKeys(generateMasterKeySpec('bench')));
const tmp = mkdtempSync(join(tmpdir(), 'mandate-audit-bench-'));
const schemas: string[] = [];

/** A realistic decision event (~500 bytes canonical). */
const event = (i: number) => ({
  type: 'decision',
  actors: [
    { type: 'human' as const, id: 'alice' },
    { type: 'agent' as const, id: `agent-${i % 50}` },
  ],
  mandateId: `m-${i % 1000}`,
  environment: 'production',
  data: {
    decisionId: `d-${i}`,
    outcome: 'allow',
    tool: 'helpdesk.propose_refund',
    args: { customerId: 'C-1009', amountCents: i % 25000 },
    policies: ['active-agents-within-mandate'],
    grant: { mandateId: `m-${i % 1000}`, index: 2, tool: 'helpdesk.propose_refund' },
  },
});

let sqliteN = 0;
async function open(kind: 'sqlite' | 'postgres'): Promise<Store> {
  if (kind === 'sqlite') {
    const store = openSqliteStore({ path: join(tmp, `a${sqliteN++}.db`) });
    await store.migrate();
    return store;
  }
  const schema = `bench_${Math.random().toString(36).slice(2, 10)}`;
  schemas.push(schema);
  const store = openPostgresStore({ url: PG_URL, schema, poolMax: 8 });
  await store.migrate();
  return store;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;

interface Result {
  perSec: number;
  p50: number;
  p99: number;
}

/** `total` operations from `concurrency` writer loops; latency of each in µs. */
async function load(total: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<Result> {
  const lat: number[] = [];
  let next = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const t = performance.now();
        await op(i);
        lat.push((performance.now() - t) * 1000);
      }
    }),
  );
  const secs = (performance.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  return { perSec: total / secs, p50: pct(lat, 0.5), p99: pct(lat, 0.99) };
}

const line = (label: string, r: Result) =>
  process.stdout.write(
    `${label.padEnd(40)} ${r.perSec.toFixed(0).padStart(8)} /s   p50 ${(r.p50 / 1000).toFixed(2).padStart(7)} ms   p99 ${(r.p99 / 1000).toFixed(2).padStart(7)} ms\n`,
  );

const summary: Record<string, number> = {};
process.stdout.write(
  `audit benchmark${QUICK ? ' (quick)' : ''}: durable appends, group commit; CPU shared with the load generator and other work\n`,
);

async function pgReachable(): Promise<boolean> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await c.connect();
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => {});
  }
}

const kinds: Array<'sqlite' | 'postgres'> = (await pgReachable()) ? ['sqlite', 'postgres'] : ['sqlite'];
try {
  for (const kind of kinds) {
    // Baseline: one durable INSERT per transaction, one writer (no Merkle, no batching).
    const base = await open(kind);
    await base.run('CREATE TABLE plain_audit (seq INTEGER PRIMARY KEY, body TEXT NOT NULL)');
    const baseline = await load(BASELINE, 1, (i) =>
      base.transaction((tx) => tx.run('INSERT INTO plain_audit (seq, body) VALUES (?, ?)', [i, JSON.stringify(event(i))])),
    );
    line(`${kind} baseline: 1 INSERT per commit`, baseline);
    await base.close();
    for (const c of [1, 16, 256]) {
      const store = await open(kind);
      const audit = await AuditService.open({ store, secrets, clock: systemClock, origin: 'bench/audit', maxBatch: 1024 });
      const r = await load(APPENDS[c] as number, c, (i) => audit.append(event(i)));
      line(`${kind} audit.append, ${c} writer${c === 1 ? '' : 's'}`, r);
      summary[`${kind}_c${c}_per_s`] = Math.round(r.perSec);
      summary[`${kind}_c${c}_p99_ms`] = Number((r.p99 / 1000).toFixed(2));
      await audit.close();
      await store.close();
    }
    summary[`${kind}_baseline_per_s`] = Math.round(baseline.perSec);
    summary[`${kind}_c256_vs_baseline`] = Number(((summary[`${kind}_c256_per_s`] ?? 0) / baseline.perSec).toFixed(1));
    process.stdout.write(`  ratio ${kind} 256 writers / baseline: ${summary[`${kind}_c256_vs_baseline`]}x\n`);
  }

  // Verify throughput on a large log (SQLite: the embedded default).
  const store = await open('sqlite');
  const audit = await AuditService.open({ store, secrets, clock: systemClock, origin: 'bench/audit', maxBatch: 4096 });
  const fillStart = performance.now();
  const CHUNK = 8192;
  for (let at = 0; at < VERIFY_SIZE; at += CHUNK) {
    await Promise.all(Array.from({ length: Math.min(CHUNK, VERIFY_SIZE - at) }, (_, i) => audit.append(event(at + i))));
    if (at % 200_000 === 0 && at > 0) await audit.checkpoint();
  }
  await audit.checkpoint();
  const fillSecs = (performance.now() - fillStart) / 1000;
  process.stdout.write(
    `filled ${VERIFY_SIZE} events in ${fillSecs.toFixed(1)} s (${(VERIFY_SIZE / fillSecs).toFixed(0)} appends/s, 8192 in flight)\n`,
  );
  const vStart = performance.now();
  const report = await verifyLog(store, { vkey: audit.vkey });
  const vSecs = (performance.now() - vStart) / 1000;
  if (!report.ok) throw new Error(`verify failed: ${report.failure?.reason}`);
  // Baseline: read the same rows and SHA-256 each leaf, nothing else.
  const bStart = performance.now();
  for (let at = 0; at < VERIFY_SIZE; at += 10_000) for (const r of await readEntryRows(store, at, at + 10_000)) hashLeaf(r.body);
  const bSecs = (performance.now() - bStart) / 1000;
  const verifyRate = VERIFY_SIZE / vSecs;
  const baseRate = VERIFY_SIZE / bSecs;
  process.stdout.write(
    `${'sqlite verify (full tree, checkpoints)'.padEnd(40)} ${verifyRate.toFixed(0).padStart(8)} events/s  (${vSecs.toFixed(2)} s for ${VERIFY_SIZE})\n`,
  );
  process.stdout.write(`${'baseline: read + SHA-256 leaves only'.padEnd(40)} ${baseRate.toFixed(0).padStart(8)} events/s\n`);
  summary.verify_events = VERIFY_SIZE;
  summary.verify_per_s = Math.round(verifyRate);
  summary.verify_vs_hash_only = Number((verifyRate / baseRate).toFixed(2));
  await audit.close();
  await store.close();
} finally {
  rmSync(tmp, { recursive: true, force: true });
  if (schemas.length > 0) {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await c.end();
  }
}
process.stdout.write(`BENCH audit ${JSON.stringify(summary)}\n`);
