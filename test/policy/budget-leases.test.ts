// Budget leases (src/policy/budgets.ts) on both stores: two counters over two connections to one
// database are two replicas. Exactness under concurrency, adaptive lease sizes for small budgets,
// no store round trip while a lease covers a call, consumed vs leased in usage(), returns on close
// and when idle, and a crash (a counter abandoned with its lease) that never over-spends.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { BudgetCounter, type BudgetUse } from '../../src/policy/budgets.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { SqlExecutor, Store } from '../../src/store/types.js';
import { dropSchema, freshSchema, POSTGRES_URL, postgresFactory } from '../helpers/stores.js';

/** Two handles on one database, as two replicas have (PostgreSQL: two connection pools). */
interface Pair {
  readonly a: Store;
  readonly b: Store;
  close(): Promise<void>;
}

const backends: { name: string; skip: string | false; open(): Promise<Pair> }[] = [
  {
    name: 'sqlite',
    skip: false,
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'mandate-leases-'));
      // One handle: SQLite serves one process (its replicas share a file only through one writer).
      const a = openSqliteStore({ path: join(dir, 'm.db') });
      await a.migrate();
      return {
        a,
        b: a,
        async close() {
          await a.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    name: 'postgres',
    skip: (await postgresFactory()).skip,
    async open() {
      const schema = freshSchema();
      const a = openPostgresStore({ url: POSTGRES_URL, schema, poolMax: 4 });
      await a.migrate();
      const b = openPostgresStore({ url: POSTGRES_URL, schema, poolMax: 4 });
      return {
        a,
        b,
        async close() {
          await a.close();
          await b.close();
          await dropSchema(schema);
        },
      };
    },
  },
];

/** A store that counts the statements it runs (to prove the call path does not touch it). */
function counting(store: Store): { store: Store; count(): number } {
  let n = 0;
  const wrap = <T extends SqlExecutor>(e: T): T =>
    new Proxy(e, {
      get(target, prop) {
        const v = Reflect.get(target, prop, target);
        if (prop === 'query' || prop === 'run') {
          return (...args: unknown[]) => {
            n++;
            return (v as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        if (prop === 'transaction') {
          return (fn: (tx: SqlExecutor) => Promise<unknown>) => (v as Store['transaction']).call(target, (tx) => fn(wrap(tx)));
        }
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
  return { store: wrap(store), count: () => n };
}

const use = (mandateId: string, over: Partial<BudgetUse> = {}): BudgetUse => ({
  mandateId,
  index: 0,
  maxCalls: undefined,
  sumMax: undefined,
  amount: 0,
  ...over,
});

const options = { leaseMaxCalls: 32, leaseIdleMs: 60_000, flushIntervalMs: 60_000 };

for (const backend of backends) {
  describe(`budget leases across two replicas (${backend.name})`, { skip: backend.skip }, () => {
    const pairs: Pair[] = [];
    const counters: BudgetCounter[] = [];
    const open = async () => {
      const pair = await backend.open();
      pairs.push(pair);
      const a = new BudgetCounter(pair.a, options);
      const b = new BudgetCounter(pair.b, options);
      counters.push(a, b);
      return { pair, a, b };
    };
    after(async () => {
      for (const c of counters) await c.close().catch(() => {});
      for (const p of pairs) await p.close().catch(() => {});
    });

    test('a budget of N calls hammered from both replicas allows exactly N', async () => {
      const { a, b } = await open();
      for (const n of [3, 50, 200]) {
        const u = [use(`m-${randomUUID()}`, { maxCalls: n })];
        const results = await Promise.all(Array.from({ length: 2 * n + 20 }, (_, i) => (i % 2 === 0 ? a : b).consume(u)));
        assert.equal(results.filter((r) => r.ok).length, n, `budget ${n}`);
        const refusal = results.find((r) => !r.ok);
        assert.ok(refusal !== undefined && !refusal.ok);
        assert.match(refusal.reason, new RegExp(`has used all ${n} calls`));
      }
    });

    test('a sum budget hammered from both replicas never exceeds its maximum and spends all that fits', async () => {
      const { a, b } = await open();
      const u = (amount: number) => [use(`m-${randomUUID()}`, { sumMax: 1000, amount })];
      const id = `m-${randomUUID()}`;
      const same = (amount: number) => [{ ...u(amount)[0], mandateId: id } as BudgetUse];
      const results = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? a : b).consume(same(30))));
      assert.equal(results.filter((r) => r.ok).length, 33, '33 × 30 = 990 fits, a 34th would be 1020');
      await a.close();
      await b.close();
      const usage = await a.usage(id, 0);
      assert.equal(usage.total, 990);
      assert.equal(usage.leasedTotal, 0, 'every unused lease was returned on close');
    });

    test('a call consumes its own grant and every ancestor grant atomically: an exhausted ancestor consumes nothing', async () => {
      const { pair, a, b } = await open();
      const parent = use(`p-${randomUUID()}`, { maxCalls: 2 });
      const child1 = use(`c-${randomUUID()}`, { maxCalls: 5 });
      const child2 = use(`c-${randomUUID()}`, { maxCalls: 5 });
      assert.ok((await a.consume([parent, child1])).ok);
      assert.ok((await b.consume([parent, child2])).ok);
      const third = await a.consume([parent, child1]);
      assert.equal(third.ok, false);
      await a.close();
      await b.close();
      const reader = new BudgetCounter(pair.a);
      assert.equal((await reader.usage(parent.mandateId, 0)).calls, 2);
      assert.equal((await reader.usage(child1.mandateId, 0)).calls, 1, 'the refused call took nothing from the child');
    });

    test('while a lease covers the call, consume touches no store; the next lease is fetched ahead; sizes adapt', async () => {
      const { pair } = await open();
      const { store, count } = counting(pair.a);
      const c = new BudgetCounter(store, { ...options, leaseMaxCalls: 16 });
      counters.push(c);
      const u = [use(`m-${randomUUID()}`, { maxCalls: 1000 })];
      assert.ok((await c.consume(u)).ok);
      const afterFirst = count();
      assert.ok(afterFirst > 0, 'the first call took a lease of 16');
      for (let i = 0; i < 11; i++) assert.ok((await c.consume(u)).ok);
      assert.equal(count(), afterFirst, '11 more calls from the lease: no statement');
      // The 13th call leaves 3 (under a quarter): the next lease is taken in the background.
      assert.ok((await c.consume(u)).ok);
      await new Promise((r) => setTimeout(r, 100));
      const afterAhead = count();
      assert.ok(afterAhead > afterFirst, 'the next lease was fetched ahead');
      for (let i = 0; i < 4; i++) assert.ok((await c.consume(u)).ok);
      assert.equal(count(), afterAhead, 'calls 14 to 17 (past the first lease) waited for no statement');
      await c.flush();
      const usage = await c.usage(u[0]?.mandateId ?? '', 0);
      assert.deepEqual(usage, { calls: 17, total: 0, leasedCalls: 15, leasedTotal: 0 });
      // A budget of 3: leases of one call each, so another replica is never starved by a big lease.
      const small = [use(`m-${randomUUID()}`, { maxCalls: 3 })];
      assert.ok((await c.consume(small)).ok);
      const smallUsage = await c.usage(small[0]?.mandateId ?? '', 0);
      assert.deepEqual(smallUsage, { calls: 0, total: 0, leasedCalls: 1, leasedTotal: 0 });
    });

    test('usage shows consumed vs leased; flush reports, idle leases and close return the rest', async () => {
      const { pair } = await open();
      let now = 1_000_000;
      const c = new BudgetCounter(pair.a, { leaseMaxCalls: 10, leaseIdleMs: 5000, flushIntervalMs: 60_000, clock: { now: () => now } });
      counters.push(c);
      const u = [use(`m-${randomUUID()}`, { maxCalls: 100 })];
      for (let i = 0; i < 4; i++) assert.ok((await c.consume(u)).ok);
      const id = u[0]?.mandateId ?? '';
      assert.deepEqual(await c.usage(id, 0), { calls: 0, total: 0, leasedCalls: 10, leasedTotal: 0 });
      await c.flush();
      assert.deepEqual(await c.usage(id, 0), { calls: 4, total: 0, leasedCalls: 6, leasedTotal: 0 }, 'consumption reported');
      now += 5000;
      await c.flush();
      assert.deepEqual(await c.usage(id, 0), { calls: 4, total: 0, leasedCalls: 0, leasedTotal: 0 }, 'idle lease returned');
      assert.ok((await c.consume(u)).ok, 'a returned counter is leased again on demand');
      await c.close();
      assert.deepEqual(await c.usage(id, 0), { calls: 5, total: 0, leasedCalls: 0, leasedTotal: 0 });
      await assert.rejects(c.consume(u), /closed/);
    });

    test('a replica that crashes with a lease never lets the budget over-spend', async () => {
      const { a, b } = await open();
      const n = 40;
      const u = [use(`m-${randomUUID()}`, { maxCalls: n })];
      let crashedAllowed = 0;
      for (let i = 0; i < 3; i++) if ((await a.consume(u)).ok) crashedAllowed++;
      a.abandon();
      const results = await Promise.all(Array.from({ length: 2 * n }, () => b.consume(u)));
      const survivorAllowed = results.filter((r) => r.ok).length;
      await b.close();
      const usage = await b.usage(u[0]?.mandateId ?? '', 0);
      assert.ok(crashedAllowed + survivorAllowed <= n, `${crashedAllowed} + ${survivorAllowed} > ${n}`);
      // What is lost is exactly the crashed replica's outstanding lease, still counted as leased.
      assert.equal(usage.calls, survivorAllowed);
      assert.equal(usage.calls + usage.leasedCalls, n);
      assert.ok(usage.leasedCalls >= crashedAllowed && usage.leasedCalls <= Math.ceil(n / 8), JSON.stringify(usage));
    });

    test('close returns a lease still being fetched ahead', async () => {
      const { pair } = await open();
      const c = new BudgetCounter(pair.a, { ...options, leaseMaxCalls: 8 });
      const u = [use(`m-${randomUUID()}`, { maxCalls: 1000 })];
      // 7 of an 8-call lease leaves 1 (under a quarter): the next lease is being fetched as we close.
      for (let i = 0; i < 7; i++) assert.ok((await c.consume(u)).ok);
      await c.close();
      assert.deepEqual(await c.usage(u[0]?.mandateId ?? '', 0), { calls: 7, total: 0, leasedCalls: 0, leasedTotal: 0 });
    });

    test('fits answers from memory: unknown counters fit, a counter the store refused does not', async () => {
      const { a } = await open();
      const u = [use(`m-${randomUUID()}`, { maxCalls: 1 })];
      assert.deepEqual(await a.fits(u), { ok: true });
      assert.ok((await a.consume(u)).ok);
      assert.equal((await a.consume(u)).ok, false);
      const fits = await a.fits(u);
      assert.equal(fits.ok, false);
    });
  });
}
