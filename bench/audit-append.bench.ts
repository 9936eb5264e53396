// bench/audit-append: what one audit append costs the process that makes it, for the decision
// event the gateway writes on every call. Durable appends through AuditService (group commit, 256 in
// flight) on SQLite (the engine runs in this process, so CPU per append covers encoding, the INSERT
// and its indexes) and on PostgreSQL (CPU of this process: encoding and the driver; the server's
// work shows in wall time). Several rounds; the best round is reported, as CPU time is what the
// other processes on a shared machine disturb least. Then the latency of one append at a time on
// SQLite, as a lone call at low load waits for it: `durable` (the decision before forwarding) and
// `committed` (the gateway's tool.result, answered before its fsync), interleaved.
//   npm run bench -- audit-append [--rounds 5] [--appends 20000]
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import * as eventModule from '../src/audit/event.js';
import { AuditService } from '../src/audit/log.js';
import { systemClock } from '../src/lib/clock.js';
import { generateMasterKeySpec, parseMasterKeys, SecretBox } from '../src/secrets/secret-box.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { Store } from '../src/store/types.js';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
};
const QUICK = process.env.BENCH_QUICK === '1';
const ROUNDS = arg('--rounds', QUICK ? 2 : 5);
const APPENDS = arg('--appends', QUICK ? 4000 : 20_000);
const IN_FLIGHT = 256;
const PG_URL = process.env.MANDATE_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const secrets = new SecretBox(parseMasterKeys(generateMasterKeySpec('bench')));

/** The gateway's decision event (src/gateway/gateway.ts #auditDecision), ~600 bytes canonical. */
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
    outcome: i % 10 === 0 ? 'deny' : 'allow',
    tool: 'helpdesk.propose_refund',
    actionClass: 'propose',
    sensitivity: 'internal',
    args: { customerId: 'C-1009', amountCents: i % 25000 },
    reasons: ['within mandate'],
    policies: ['active-agents-within-mandate'],
    grant: { mandateId: `m-${i % 1000}`, index: 2, tool: 'helpdesk.propose_refund' },
    tokenId: `tok-${i % 1000}`,
  },
});

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

interface Round {
  cpuUs: number;
  wallUs: number;
}

async function round(store: Store): Promise<Round> {
  const audit = await AuditService.open({ store, secrets, clock: systemClock, origin: 'bench/audit-append', maxBatch: 1024 });
  // Warm up (statements prepared, JIT), then measure.
  await Promise.all(Array.from({ length: 512 }, (_, i) => audit.append(event(i))));
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < APPENDS) await audit.append(event(next++));
    }),
  );
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  await audit.close();
  return { cpuUs: (cpu.user + cpu.system) / APPENDS, wallUs: (wall * 1000) / APPENDS };
}

/**
 * One append at a time on SQLite, alternating `durable` and `committed` so that both see the same
 * disk and machine: the p50 and p99 of each, in milliseconds.
 */
async function latency(store: Store): Promise<Record<'durable' | 'committed', { p50: number; p99: number }>> {
  const audit = await AuditService.open({ store, secrets, clock: systemClock, origin: 'bench/audit-append', maxBatch: 1024 });
  const N = QUICK ? 500 : 3000;
  const took = { durable: [] as number[], committed: [] as number[] };
  for (let i = 0; i < 200 + 2 * N; i++) {
    const wait = i % 2 === 0 ? 'durable' : 'committed';
    const t0 = performance.now();
    await audit.append(event(i), { wait });
    if (i >= 200) took[wait].push(performance.now() - t0);
  }
  await audit.close();
  const pct = (xs: number[], q: number) => [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(q * xs.length))] as number;
  return {
    durable: { p50: pct(took.durable, 0.5), p99: pct(took.durable, 0.99) },
    committed: { p50: pct(took.committed, 0.5), p99: pct(took.committed, 0.99) },
  };
}

/** JS only: building and canonicalizing the event, and (when this version has it) reading its columns. */
function encodeCost(): void {
  const N = QUICK ? 20_000 : 200_000;
  const inputs = Array.from({ length: 1000 }, (_, i) => event(i));
  const redact = (s: string) => `hmac-sha256:${s.length}`;
  const built = inputs.map((e) => eventModule.encodeEvent(e, Date.now(), redact).event);
  for (let round = 0; round < 2; round++) {
    let t0 = performance.now();
    for (let i = 0; i < N; i++) eventModule.encodeEvent(inputs[i % 1000] as ReturnType<typeof event>, 1_780_000_000_000, redact);
    const encodeUs = ((performance.now() - t0) * 1000) / N;
    // Columns read from the built event (src/audit/event.ts columnsOf), absent before migration 0063.
    const columnsOf = (eventModule as Record<string, unknown>).columnsOf as ((e: unknown) => unknown) | undefined;
    let columnsNs = Number.NaN;
    if (columnsOf !== undefined) {
      let sink = 0;
      t0 = performance.now();
      for (let i = 0; i < N; i++) sink += columnsOf(built[i % 1000]) === undefined ? 1 : 0;
      columnsNs = ((performance.now() - t0) * 1e6) / N - sink;
    }
    if (round === 1) {
      process.stdout.write(
        `encode   encodeEvent ${encodeUs.toFixed(2)} µs/event; columnsOf ${Number.isNaN(columnsNs) ? 'n/a (this version has no columns)' : `${columnsNs.toFixed(0)} ns/event`}\n`,
      );
      result.encode_us = encodeUs.toFixed(2);
      if (!Number.isNaN(columnsNs)) result.columns_ns = columnsNs.toFixed(0);
    }
  }
}

const tmp = mkdtempSync(join(tmpdir(), 'mandate-audit-append-'));
const schemas: string[] = [];
const result: Record<string, string> = {};
encodeCost();
try {
  const kinds: Array<'sqlite' | 'postgres'> = (await pgReachable()) ? ['sqlite', 'postgres'] : ['sqlite'];
  for (const kind of kinds) {
    const rounds: Round[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      let store: Store;
      if (kind === 'sqlite') store = openSqliteStore({ path: join(tmp, `r${r}.db`) });
      else {
        const schema = `bench_append_${process.pid}_${r}`;
        schemas.push(schema);
        store = openPostgresStore({ url: PG_URL, schema, poolMax: 8 });
      }
      await store.migrate();
      try {
        rounds.push(await round(store));
      } finally {
        await store.close();
      }
    }
    const cpu = Math.min(...rounds.map((r) => r.cpuUs));
    const wall = Math.min(...rounds.map((r) => r.wallUs));
    process.stdout.write(
      `${kind.padEnd(8)} ${APPENDS} decision appends, ${IN_FLIGHT} in flight: best of ${ROUNDS} rounds ${cpu.toFixed(1)} µs cpu/append, ${wall.toFixed(1)} µs wall/append  (rounds cpu: ${rounds.map((r) => r.cpuUs.toFixed(1)).join(' ')})\n`,
    );
    result[`${kind}_cpu_us`] = cpu.toFixed(1);
    result[`${kind}_wall_us`] = wall.toFixed(1);
  }
  const store = openSqliteStore({ path: join(tmp, 'latency.db') });
  await store.migrate();
  try {
    const l = await latency(store);
    process.stdout.write(
      `sqlite   one append at a time: durable p50 ${l.durable.p50.toFixed(3)} p99 ${l.durable.p99.toFixed(3)} ms; ` +
        `committed p50 ${l.committed.p50.toFixed(3)} p99 ${l.committed.p99.toFixed(3)} ms\n`,
    );
    result.durable_p50_ms = l.durable.p50.toFixed(3);
    result.durable_p99_ms = l.durable.p99.toFixed(3);
    result.committed_p50_ms = l.committed.p50.toFixed(3);
    result.committed_p99_ms = l.committed.p99.toFixed(3);
  } finally {
    await store.close();
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
  if (schemas.length > 0) {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    for (const s of schemas) await c.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
    await c.end();
  }
}
process.stdout.write(
  `load average at the end: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')} on ${cpus().length} cores\n`,
);
process.stdout.write(
  `RESULT audit-append ${Object.entries(result)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')} appends=${APPENDS}\n`,
);
