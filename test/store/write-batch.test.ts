// Store.writeBatch on both stores (SQLite runs it in its writer thread, PostgreSQL in one transaction):
// statements apply in order and durably, a failed precondition rolls the whole batch back, a constraint
// failure rejects with the store's code and applies nothing, batches in flight at close commit, and a
// batch reports its commit (onCommitted) before it resolves and only when it applied.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/types.js';
import { insertStatements } from '../../src/store/write-batch.js';
import { storeFactories } from '../helpers/stores.js';

const rows = async (store: Store) =>
  (await store.query<{ k: string; v: number }>('SELECT k, v FROM wb ORDER BY k')).map((r) => [r.k, Number(r.v)]);

/** SQLite once more with its write batches on the event-loop connection (store.sqlite.writerThread: false). */
function sqliteWithoutThread() {
  const dirs: string[] = [];
  const opened: Store[] = [];
  return {
    name: 'sqlite without writer thread',
    skip: false as const,
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'mandate-wb-'));
      dirs.push(dir);
      const store = openSqliteStore({ path: join(dir, 'm.db'), writerThread: false });
      opened.push(store);
      await store.migrate();
      return store;
    },
    async cleanup() {
      for (const s of opened) await s.close();
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
}

for (const factory of [...(await storeFactories()), sqliteWithoutThread()]) {
  // The PostgreSQL half skips only on a developer machine where PostgreSQL is unreachable (`factory.skip`
  // is the reason); under CI `storeFactories()` throws instead, so CI never skips it. SQLite never skips.
  describe(`write batch: ${factory.name}`, { skip: factory.skip }, () => {
    after(() => factory.cleanup());
    const open = async () => {
      const store = await factory.open();
      await store.run('CREATE TABLE wb (k TEXT PRIMARY KEY, v INTEGER NOT NULL)');
      await store.run("INSERT INTO wb (k, v) VALUES ('head', 0)");
      return store;
    };

    test('applies every statement in order and resolves true', async () => {
      const store = await open();
      const applied = await store.writeBatch([
        ...insertStatements('wb (k, v)', [
          ['a', 1],
          ['b', true],
        ]),
        { sql: 'UPDATE wb SET v = v + 10 WHERE k = ?', params: ['a'] },
        { sql: 'UPDATE wb SET v = ? WHERE k = ?', params: [1, 'head'], expectChanges: 1 },
      ]);
      assert.equal(applied, true);
      assert.deepEqual(await rows(store), [
        ['a', 11],
        ['b', 1],
        ['head', 1],
      ]);
    });

    test('a precondition that does not hold rolls back the statements before it and resolves false', async () => {
      const store = await open();
      const guarded = (expected: number) => [
        { sql: "INSERT INTO wb (k, v) VALUES ('x', 1)", params: [] },
        { sql: "UPDATE wb SET v = v + 1 WHERE k = 'head' AND v = ?", params: [expected], expectChanges: 1 },
      ];
      assert.equal(await store.writeBatch(guarded(5)), false);
      assert.deepEqual(await rows(store), [['head', 0]]);
      assert.equal(await store.writeBatch(guarded(0)), true);
      assert.deepEqual(await rows(store), [
        ['head', 1],
        ['x', 1],
      ]);
    });

    test('a constraint failure rejects with ERR_STORE_CONFLICT, applies nothing, and the next batch commits', async () => {
      const store = await open();
      await assert.rejects(
        store.writeBatch([
          { sql: "INSERT INTO wb (k, v) VALUES ('y', 1)", params: [] },
          { sql: "INSERT INTO wb (k, v) VALUES ('head', 1)", params: [] },
        ]),
        { code: 'ERR_STORE_CONFLICT' },
      );
      assert.deepEqual(await rows(store), [['head', 0]]);
      assert.equal(await store.writeBatch([{ sql: "INSERT INTO wb (k, v) VALUES ('y', 2)", params: [] }]), true);
      assert.deepEqual(await rows(store), [
        ['head', 0],
        ['y', 2],
      ]);
    });

    test('onCommitted is called once, before the batch resolves, when its rows are visible; never for a batch not applied', async () => {
      const store = await open();
      let resolved = false;
      const calls: Promise<unknown[]>[] = [];
      const written = store
        .writeBatch([{ sql: "INSERT INTO wb (k, v) VALUES ('c', 7)", params: [] }], () => {
          assert.equal(resolved, false, 'called before the batch resolved');
          // Read at the moment of the call: the commit is already visible to another reader.
          calls.push(rows(store));
        })
        .then((applied) => {
          resolved = true;
          return applied;
        });
      assert.equal(await written, true);
      assert.equal(calls.length, 1);
      assert.deepEqual(await calls[0], [
        ['c', 7],
        ['head', 0],
      ]);
      const refused = [{ sql: "UPDATE wb SET v = 1 WHERE k = 'nobody'", params: [], expectChanges: 1 }];
      assert.equal(await store.writeBatch(refused, () => calls.push(Promise.resolve([]))), false);
      await assert.rejects(
        store.writeBatch([{ sql: "INSERT INTO wb (k, v) VALUES ('c', 8)", params: [] }], () => calls.push(Promise.resolve([]))),
        {
          code: 'ERR_STORE_CONFLICT',
        },
      );
      assert.equal(calls.length, 1, 'not called for a batch that was refused or failed');
    });

    test('SQL the store cannot run rejects and leaves the store usable', async () => {
      const store = await open();
      await assert.rejects(store.writeBatch([{ sql: 'INSERT INTO no_such_table VALUES (1)', params: [] }]));
      assert.equal(await store.writeBatch([{ sql: "INSERT INTO wb (k, v) VALUES ('z', 3)", params: [] }]), true);
    });
  });
}

describe('write batch: SQLite writer thread', () => {
  test('batches in flight when the store closes commit, and are on disk for the next opener', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-wb-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'm.db');
    const store = openSqliteStore({ path });
    await store.run('CREATE TABLE wb (k TEXT PRIMARY KEY, v INTEGER NOT NULL)');
    const pending = Array.from({ length: 50 }, (_, i) => store.writeBatch(insertStatements('wb (k, v)', [[`k${i}`, i]])));
    await store.close();
    assert.deepEqual(await Promise.all(pending), Array(50).fill(true));
    await assert.rejects(store.writeBatch([]), { code: 'ERR_STORE_UNAVAILABLE' });
    const again = openSqliteStore({ path });
    t.after(() => again.close());
    const [count] = await again.query<{ n: number }>('SELECT COUNT(*) AS n FROM wb');
    assert.equal(Number(count?.n), 50);
  });
});

describe('SQLite: the event-loop connection never sleeps for the write lock', () => {
  /** A second process that takes the write lock and holds it for `ms`, then commits. */
  async function holdLock(path: string, ms: number) {
    const { spawn } = await import('node:child_process');
    const { createRequire } = await import('node:module');
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const db = new (require(${JSON.stringify(driver)}))(${JSON.stringify(path)});
         db.exec('BEGIN IMMEDIATE'); console.log('locked');
         setTimeout(() => { db.exec('COMMIT'); db.close(); }, ${ms});`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`the lock holder exited (code ${code})`)));
    });
    // Wrapped: an async function returning the promise itself would wait for the exit.
    return { released: new Promise<void>((resolve) => child.once('exit', () => resolve())) };
  }

  test('a transaction waits for another writer without blocking timers, then commits; past the busy timeout it fails clearly', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-busy-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'm.db');
    const store = openSqliteStore({ path, busyTimeoutMs: 1500 });
    t.after(() => store.close());
    await store.run('CREATE TABLE wb (k TEXT PRIMARY KEY, v INTEGER NOT NULL)');

    const { released } = await holdLock(path, 300);
    const order: string[] = [];
    // SQLite's busy handler would sleep on this thread until the lock is free: the timer could
    // only fire after the transaction. Retried from timers, the timer fires while it waits.
    setTimeout(() => order.push('timer'), 20);
    await store.transaction((tx) => tx.run("INSERT INTO wb (k, v) VALUES ('t', 1)"));
    order.push('transaction');
    await store.run("INSERT INTO wb (k, v) VALUES ('r', 2)");
    assert.deepEqual(order, ['timer', 'transaction']);
    await released;

    const { released: held } = await holdLock(path, 3000);
    await assert.rejects(store.run("INSERT INTO wb (k, v) VALUES ('late', 3)"), { code: 'ERR_STORE_UNAVAILABLE' });
    await held;
    const keys = (await store.query<{ k: string }>('SELECT k FROM wb ORDER BY k')).map((r) => r.k);
    assert.deepEqual(keys, ['r', 't']);
  });
});
