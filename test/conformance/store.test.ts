// Store conformance: the same behaviour from every Store implementation.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { MandateError } from '../../src/errors/index.js';
import { systemClock } from '../../src/lib/clock.js';
import { PrincipalRepository } from '../../src/principals/repository.js';
import { migrations } from '../../src/store/migrations/index.js';
import { storeFactories } from '../helpers/stores.js';

for (const factory of await storeFactories()) {
  describe(`store conformance: ${factory.name}`, { skip: factory.skip }, () => {
    after(() => factory.cleanup());

    test('migrations apply once and record every id', async () => {
      const store = await factory.open();
      assert.deepEqual(await store.migrate(), [], 'a second migrate applies nothing');
      const rows = await store.query<{ id: number }>('SELECT id FROM schema_migrations ORDER BY id');
      assert.deepEqual(
        rows.map((r) => Number(r.id)),
        migrations.map((m) => m.id),
      );
    });

    test('query and run round-trip values of every portable type', async () => {
      const store = await factory.open();
      await store.run(
        'CREATE TABLE conf_values (k TEXT PRIMARY KEY, n BIGINT, b INTEGER, bytes ' +
          (store.dialect === 'sqlite' ? 'BLOB' : 'BYTEA') +
          ', t TEXT)',
      );
      const bytes = new Uint8Array([0, 1, 2, 255]);
      const { changes } = await store.run('INSERT INTO conf_values (k, n, b, bytes, t) VALUES (?, ?, ?, ?, ?)', [
        'a',
        2 ** 52,
        true,
        bytes,
        null,
      ]);
      assert.equal(changes, 1);
      const [row] = await store.query<{ k: string; n: number; b: number; bytes: Uint8Array; t: null }>(
        'SELECT k, n, b, bytes, t FROM conf_values WHERE k = ?',
        ['a'],
      );
      assert.equal(row?.n, 2 ** 52);
      assert.equal(row?.b, 1);
      assert.deepEqual(new Uint8Array(row?.bytes ?? []), bytes);
      assert.equal(row?.t, null);
    });

    test('a duplicate primary key is ERR_STORE_CONFLICT', async () => {
      const store = await factory.open();
      const repo = new PrincipalRepository(store, systemClock);
      await repo.create({ id: 'h1', actorType: 'human', displayName: 'H' });
      await assert.rejects(
        repo.create({ id: 'h1', actorType: 'human', displayName: 'H' }),
        (err: unknown) => err instanceof MandateError && err.code === 'ERR_STORE_CONFLICT',
      );
    });

    test('a transaction that throws leaves nothing behind', async () => {
      const store = await factory.open();
      await assert.rejects(
        store.transaction(async (tx) => {
          await tx.run(
            "INSERT INTO principals (id, actor_type, display_name, status, created_at, updated_at) VALUES ('x', 'human', 'X', 'active', 1, 1)",
          );
          throw new Error('boom');
        }),
        /boom/,
      );
      assert.equal((await store.query('SELECT id FROM principals WHERE id = ?', ['x'])).length, 0);
    });

    test('concurrent transactions serialize without losing increments', async () => {
      const store = await factory.open();
      await store.run('CREATE TABLE conf_counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)');
      await store.run('INSERT INTO conf_counter (id, n) VALUES (1, 0)');
      await Promise.all(
        Array.from({ length: 20 }, () =>
          store.transaction(async (tx) => {
            // UPDATE takes the row lock first on PostgreSQL, so the read-modify-write below is safe on both.
            await tx.run('UPDATE conf_counter SET n = n + 1 WHERE id = 1');
          }),
        ),
      );
      const [row] = await store.query<{ n: number }>('SELECT n FROM conf_counter WHERE id = 1');
      assert.equal(Number(row?.n), 20);
    });

    test('principals: create, get, list with paging, update, delete; agents need an owner', async () => {
      const store = await factory.open();
      const repo = new PrincipalRepository(store, systemClock);
      await repo.create({ id: 'alice', actorType: 'human', displayName: 'Alice', roles: ['admin'] });
      await repo.create({ id: 'agent-1', actorType: 'agent', displayName: 'Triage', owner: 'alice', environment: 'production' });
      await repo.create({ id: 'svc', actorType: 'service', displayName: 'CI' });
      await assert.rejects(repo.create({ id: 'a2', actorType: 'agent', displayName: 'No owner' }));
      assert.deepEqual((await repo.get('alice'))?.roles, ['admin']);
      const page1 = await repo.list({ limit: 2 });
      assert.deepEqual(
        page1.map((p) => p.id),
        ['agent-1', 'alice'],
      );
      const page2 = await repo.list({ limit: 2, after: 'alice' });
      assert.deepEqual(
        page2.map((p) => p.id),
        ['svc'],
      );
      assert.deepEqual(
        (await repo.list({ actorType: 'agent' })).map((p) => p.id),
        ['agent-1'],
      );
      const updated = await repo.update('agent-1', { status: 'quarantined' });
      assert.equal(updated.status, 'quarantined');
      assert.equal((await repo.get('agent-1'))?.status, 'quarantined');
      await assert.rejects(
        repo.update('nobody', { status: 'disabled' }),
        (e: unknown) => e instanceof MandateError && e.code === 'ERR_NOT_FOUND',
      );
      assert.equal(await repo.delete('svc'), true);
      assert.equal(await repo.delete('svc'), false);
    });

    test('ping succeeds while open and fails with ERR_STORE_UNAVAILABLE after close', async () => {
      const store = await factory.open();
      await store.ping();
      await store.close();
      await assert.rejects(store.ping(), (e: unknown) => e instanceof MandateError && e.code === 'ERR_STORE_UNAVAILABLE');
    });
  });
}
