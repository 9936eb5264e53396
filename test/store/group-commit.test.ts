// GroupCommit on both stores: results in submission order, batches no larger than maxBatch, a failed
// batch rejects exactly its own items (and its rows roll back) while the batches around it commit,
// and close() drains what was submitted and refuses the rest.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { GroupCommit, inTransaction } from '../../src/store/group-commit.js';
import type { SqlExecutor, Store } from '../../src/store/types.js';
import { storeFactories } from '../helpers/stores.js';

/** Appends items as rows numbered after the committed ones (read inside the transaction). */
function writer(batches: string[][], poison?: string) {
  return async (tx: SqlExecutor, items: readonly string[]): Promise<number[]> => {
    batches.push([...items]);
    const [row] = await tx.query<{ n: number | string }>('SELECT COUNT(*) AS n FROM gc_items');
    let seq = Number(row?.n ?? 0);
    const out: number[] = [];
    for (const item of items) {
      await tx.run('INSERT INTO gc_items (seq, item) VALUES (?, ?)', [seq, item]);
      out.push(seq++);
    }
    // After the rows are written: the rollback must remove them.
    if (poison !== undefined && items.includes(poison)) throw new Error(`poisoned by ${poison}`);
    return out;
  };
}

async function table(store: Store): Promise<string[]> {
  return (await store.query<{ item: string }>('SELECT item FROM gc_items ORDER BY seq')).map((r) => r.item);
}

const items = (n: number) => Array.from({ length: n }, (_, i) => `i${i}`);

for (const factory of await storeFactories()) {
  describe(`group commit: ${factory.name}`, { skip: factory.skip }, () => {
    after(() => factory.cleanup());
    const open = async () => {
      const store = await factory.open();
      await store.run('CREATE TABLE gc_items (seq INTEGER PRIMARY KEY, item TEXT NOT NULL)');
      return store;
    };

    test('without gather the first item commits alone; later ones share batches of at most maxBatch, in order', async () => {
      const store = await open();
      const batches: string[][] = [];
      const group = new GroupCommit(inTransaction(store, writer(batches)), { maxBatch: 3 });
      const results = await Promise.all(items(7).map((i) => group.submit(i)));
      assert.deepEqual(results, [0, 1, 2, 3, 4, 5, 6]);
      assert.deepEqual(batches, [['i0'], ['i1', 'i2', 'i3'], ['i4', 'i5', 'i6']]);
      assert.deepEqual(await table(store), items(7));
    });

    test('with gather, items of the same turn share the first batch', async () => {
      const store = await open();
      const batches: string[][] = [];
      const group = new GroupCommit(inTransaction(store, writer(batches)), { maxBatch: 3, gather: true });
      const first = group.submit('i0');
      // Submitted from another callback of the same turn, after the first.
      const rest = await new Promise<Promise<number>[]>((resolve) =>
        queueMicrotask(() =>
          resolve(
            items(7)
              .slice(1)
              .map((i) => group.submit(i)),
          ),
        ),
      );
      assert.deepEqual(await Promise.all([first, ...rest]), [0, 1, 2, 3, 4, 5, 6]);
      assert.deepEqual(batches, [['i0', 'i1', 'i2'], ['i3', 'i4', 'i5'], ['i6']]);
    });

    test('a failed batch rejects exactly its items, rolls back, and the next batch continues from what committed', async () => {
      const store = await open();
      const batches: string[][] = [];
      const seen: unknown[] = [];
      const group = new GroupCommit(inTransaction(store, writer(batches, 'i4')), {
        maxBatch: 3,
        gather: true,
        failure: (err) => {
          seen.push(err);
          return new Error('batch failed', { cause: err });
        },
      });
      const settled = await Promise.allSettled(items(9).map((i) => group.submit(i)));
      assert.deepEqual(
        settled.map((s) => s.status),
        ['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'rejected', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled'],
      );
      for (const s of settled.slice(3, 6)) {
        const reason = (s as PromiseRejectedResult).reason as Error;
        assert.equal(reason.message, 'batch failed');
        assert.match(String((reason.cause as Error).message), /poisoned by i4/);
      }
      assert.equal(seen.length, 1, 'the failure is mapped once per batch');
      // The batch after the failure numbers its rows right after the committed ones: no gap.
      assert.deepEqual(
        settled.filter((s) => s.status === 'fulfilled').map((s) => (s as PromiseFulfilledResult<number>).value),
        [0, 1, 2, 3, 4, 5],
      );
      assert.deepEqual(await table(store), ['i0', 'i1', 'i2', 'i6', 'i7', 'i8']);
    });

    test('a write that returns the wrong number of results fails its batch, rolled back, instead of misattributing', async () => {
      const store = await open();
      const batches: string[][] = [];
      const write = writer(batches);
      const short = new GroupCommit<string, number>(
        inTransaction(store, async (tx, items) => (await write(tx, items)).slice(1)),
        { gather: true },
      );
      const settled = await Promise.allSettled([short.submit('a'), short.submit('b')]);
      assert.deepEqual(
        settled.map((s) => s.status),
        ['rejected', 'rejected'],
      );
      assert.match(String((settled[0] as PromiseRejectedResult).reason), /returned 1 results for 2 items/);
      assert.deepEqual(batches, [['a', 'b']]);
      assert.deepEqual(await table(store), [], 'the rows it wrote were rolled back');
    });

    test('close drains every submitted item, then refuses new ones', async () => {
      const store = await open();
      const batches: string[][] = [];
      const group = new GroupCommit(inTransaction(store, writer(batches)), {
        maxBatch: 4,
        gather: true,
        closed: () => Object.assign(new Error('closed'), { code: 'CLOSED' }),
      });
      let settled = 0;
      const pending = items(10).map((i) => group.submit(i).finally(() => settled++));
      assert.equal(group.pending, 10);
      await group.close();
      // Every promise had settled before close() resolved (each `finally` runs when its item settles).
      await Promise.resolve();
      assert.equal(settled, 10);
      await Promise.all(pending);
      assert.deepEqual(await table(store), items(10));
      await assert.rejects(group.submit('late'), { code: 'CLOSED' });
      await group.close();
      assert.deepEqual(await table(store), items(10));
    });

    test('with a pipeline of 2, the next batch is handed over before the first settles; close waits for both', async () => {
      const started: string[][] = [];
      const release: (() => void)[] = [];
      const group = new GroupCommit<string, string>(
        async (batch) => {
          started.push([...batch]);
          await new Promise<void>((resolve) => release.push(resolve));
          return batch.map((i) => `${i}!`);
        },
        { pipeline: 2, maxBatch: 2 },
      );
      const results = items(5).map((i) => group.submit(i));
      await new Promise((r) => setImmediate(r));
      // Without gather each of the first two items starts a batch at once; the rest wait for room.
      assert.deepEqual(started, [['i0'], ['i1']], 'two batches in flight, no third');
      let closed = false;
      const closing = group.close().then(() => {
        closed = true;
      });
      (release.shift() as () => void)();
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(started, [['i0'], ['i1'], ['i2', 'i3']], 'a settled batch makes room for the next');
      for (const r of release.splice(0)) r();
      await new Promise((r) => setImmediate(r));
      assert.equal(closed, false, 'the last batch is still committing');
      (release.shift() as () => void)();
      await closing;
      assert.deepEqual(await Promise.all(results), ['i0!', 'i1!', 'i2!', 'i3!', 'i4!']);
      assert.throws(() => new GroupCommit(async (b) => b, { pipeline: 0 }), RangeError);
    });

    test('maxBatch must be a positive integer', async () => {
      const store = await open();
      assert.throws(() => new GroupCommit(inTransaction(store, writer([])), { maxBatch: 0 }), RangeError);
    });
  });
}

// Two-stage settlement is the group commit's own logic: a commit function stands in for the store.
describe("group commit: 'committed' and 'durable' callers", () => {
  test("an item submitted with wait 'committed' resolves when the commit reports the batch committed; the others when it is durable", async () => {
    let durable: (() => void) | undefined;
    let reportCommitted: (() => void) | undefined;
    const group = new GroupCommit<string, string>(
      (batch, committed) =>
        new Promise((resolve) => {
          const results = batch.map((i) => `${i}!`);
          reportCommitted = () => committed?.(results);
          durable = () => resolve(results);
        }),
      { gather: true },
    );
    const settled: string[] = [];
    const early = group.submit('a', 'committed').then((r) => settled.push(`committed ${r}`));
    const late = group.submit('b').then((r) => settled.push(`durable ${r}`));
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(settled, [], 'nothing settles before the commit reports');
    (reportCommitted as () => void)();
    await early;
    assert.deepEqual(settled, ['committed a!'], "only the 'committed' item settled");
    (durable as () => void)();
    await late;
    assert.deepEqual(settled, ['committed a!', 'durable b!']);
  });

  test("a batch that fails after its commit was reported rejects its durable items; its 'committed' items stay resolved", async () => {
    const group = new GroupCommit<string, string>(
      async (batch, committed) => {
        committed?.(batch.map((i) => `${i}!`));
        throw new Error('fsync failed');
      },
      { gather: true },
    );
    const [early, late] = await Promise.allSettled([group.submit('a', 'committed'), group.submit('b')]);
    assert.deepEqual(early, { status: 'fulfilled', value: 'a!' });
    assert.equal(late?.status, 'rejected');
    // A commit that never reports `committed` (a store whose commit is durable) settles everybody at the end.
    const plain = new GroupCommit<string, string>(async (batch) => batch.map((i) => `${i}?`));
    assert.deepEqual(await Promise.all([plain.submit('x', 'committed'), plain.submit('y')]), ['x?', 'y?']);
  });
});
