// Change feed on both stores: ordered, exactly-once delivery per replica; notifications across
// processes on PostgreSQL; polling catch-up when notifications are lost.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { systemClock } from '../../src/lib/clock.js';
import { type Change, ChangeFeed } from '../../src/store/changes.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { freshSchema, POSTGRES_URL, postgresFactory, storeFactories } from '../helpers/stores.js';

const waitFor = async (predicate: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await new Promise((r) => setTimeout(r, 10));
  }
};

for (const factory of await storeFactories()) {
  describe(`change feed: ${factory.name}`, { skip: factory.skip }, () => {
    after(() => factory.cleanup());

    test('changes published in a transaction are applied in order once, and not when rolled back', async () => {
      const store = await factory.open();
      const feed = new ChangeFeed(store, { clock: systemClock, pollIntervalMs: 60_000 });
      await feed.start();
      const seen: Change[] = [];
      feed.subscribe('mandate', (c) => {
        seen.push(c);
      });
      await store.transaction((tx) => feed.publish(tx, 'mandate', 'm1', { status: 'revoked' }));
      await assert.rejects(
        store.transaction(async (tx) => {
          await feed.publish(tx, 'mandate', 'ghost');
          throw new Error('rollback');
        }),
      );
      await store.transaction((tx) => feed.publish(tx, 'mandate', 'm2'));
      await store.transaction((tx) => feed.publish(tx, 'policy', 'set'));
      await Promise.all([feed.catchUp(), feed.catchUp()]);
      assert.deepEqual(
        seen.map((c) => c.key),
        ['m1', 'm2'],
      );
      assert.deepEqual(seen[0]?.data, { status: 'revoked' });
      assert.ok(feed.lastSeq >= 3);
      assert.ok(feed.staleness() < 1000);
      feed.assertCurrent(1000);
      await feed.stop();
    });

    test('a replica that cannot catch up becomes stale and fails closed', async () => {
      const store = await factory.open();
      let now = 1_000_000;
      const feed = new ChangeFeed(store, { clock: { now: () => now }, pollIntervalMs: 60_000 });
      await feed.start();
      feed.assertCurrent(5000);
      now += 6000;
      assert.throws(
        () => feed.assertCurrent(5000),
        (e: unknown) => (e as { code?: string }).code === 'ERR_REPLICA_STALE',
      );
      await feed.catchUp();
      feed.assertCurrent(5000);
      await feed.stop();
      await store.close();
      now += 6000;
      await assert.rejects(feed.catchUp());
      assert.throws(
        () => feed.assertCurrent(5000),
        (e: unknown) => (e as { code?: string }).code === 'ERR_REPLICA_STALE',
      );
    });

    test('a feed started later begins at the end and sees only newer changes', async () => {
      const store = await factory.open();
      const writer = new ChangeFeed(store, { clock: systemClock, pollIntervalMs: 60_000 });
      await store.transaction((tx) => writer.publish(tx, 'agent', 'old'));
      const reader = new ChangeFeed(store, { clock: systemClock, pollIntervalMs: 60_000 });
      await reader.start();
      const keys: string[] = [];
      reader.subscribe('agent', (c) => {
        keys.push(c.key);
      });
      await store.transaction((tx) => writer.publish(tx, 'agent', 'new'));
      await reader.catchUp();
      assert.deepEqual(keys, ['new']);
      await reader.stop();
    });
  });
}

const pgFactory = await postgresFactory();
describe('change feed across PostgreSQL connections', { skip: pgFactory.skip }, () => {
  const schema = freshSchema();
  const a = openPostgresStore({ url: POSTGRES_URL, schema });
  const b = openPostgresStore({ url: POSTGRES_URL, schema });
  after(async () => {
    await a.close();
    await b.close();
    await pgFactory.cleanup();
    const { dropSchema } = await import('../helpers/stores.js');
    await dropSchema(schema);
  });

  test('NOTIFY delivers a change to another replica without polling', async () => {
    await a.migrate();
    const feedA = new ChangeFeed(a, { clock: systemClock, pollIntervalMs: 60_000 });
    const feedB = new ChangeFeed(b, { clock: systemClock, pollIntervalMs: 60_000 });
    await feedA.start();
    await feedB.start();
    assert.equal(feedB.listening, true);
    const seen: string[] = [];
    feedB.subscribe('mandate', (c) => {
      seen.push(c.key);
    });
    await a.transaction((tx) => feedA.publish(tx, 'mandate', 'revoked-on-a'));
    await waitFor(() => seen.length === 1);
    assert.deepEqual(seen, ['revoked-on-a']);
    await feedA.stop();
    await feedB.stop();
  });

  test('with notifications lost, polling catch-up still applies the change', async () => {
    const feedA = new ChangeFeed(a, { clock: systemClock, pollIntervalMs: 60_000 });
    const feedB = new ChangeFeed(b, { clock: systemClock, pollIntervalMs: 100 });
    await feedA.start();
    await feedB.start();
    // Terminate B's LISTEN connection from the server side, as a network fault would.
    await a.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid() AND datname = current_database()",
    );
    const seen: string[] = [];
    feedB.subscribe('mandate', (c) => {
      seen.push(c.key);
    });
    await a.transaction((tx) => feedA.publish(tx, 'mandate', 'while-deaf'));
    await waitFor(() => seen.includes('while-deaf'));
    assert.deepEqual(seen, ['while-deaf']);
    await feedA.stop();
    await feedB.stop();
  });
});
