// The embedded store acknowledges a write only after an fdatasync of the WAL that started after
// its COMMIT (src/store/sqlite/wal-sync.ts). These tests drive the syncs by hand to pin that
// ordering, the sharing of one sync by every commit that waited for it, and failure handling.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { WalSync } from '../../src/store/sqlite/wal-sync.js';

function walFile(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-walsync-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'db-wal');
  writeFileSync(path, '');
  return path;
}

/** A sync function whose calls stay pending until the test settles them. */
function manualSync() {
  const calls: { fd: number; resolve: () => void; reject: (err: Error) => void }[] = [];
  const sync = (fd: number) => new Promise<void>((resolve, reject) => calls.push({ fd, resolve, reject }));
  return { calls, sync };
}

const flush = () => new Promise((r) => setTimeout(r, 5));

/** Waits (bounded) until the WAL file is open and `n` syncs have been requested. */
async function syncsRequested(calls: readonly unknown[], n: number): Promise<void> {
  for (let i = 0; i < 200 && calls.length < n; i++) await flush();
  await flush();
  assert.equal(calls.length, n);
}

function track(p: Promise<void>) {
  const state = { settled: false as boolean | 'rejected' };
  p.then(
    () => {
      state.settled = true;
    },
    () => {
      state.settled = 'rejected';
    },
  );
  return state;
}

test('a commit made while a sync runs waits for the next sync, which every waiter shares', async (t) => {
  const { calls, sync } = manualSync();
  const wal = new WalSync(walFile(t), sync);
  t.after(() => wal.close());
  const a = track(wal.durable());
  await syncsRequested(calls, 1);
  // B and C committed after sync 1 began: sync 1 does not cover them.
  const b = track(wal.durable());
  const c = track(wal.durable());
  await flush();
  assert.equal(calls.length, 1, 'no second sync while one runs');
  calls[0]?.resolve();
  await syncsRequested(calls, 2);
  assert.equal(a.settled, true);
  assert.equal(b.settled, false, 'B is not durable until a sync that started after it finishes');
  assert.equal(c.settled, false);
  calls[1]?.resolve();
  await flush();
  await flush();
  assert.equal(b.settled, true);
  assert.equal(c.settled, true);
});

test('a failed sync rejects its waiters; the next commit starts a fresh sync', async (t) => {
  const { calls, sync } = manualSync();
  const wal = new WalSync(walFile(t), sync);
  t.after(() => wal.close());
  const first = wal.durable();
  await syncsRequested(calls, 1);
  calls[0]?.reject(new Error('EIO'));
  await assert.rejects(first, /EIO/);
  const second = track(wal.durable());
  await syncsRequested(calls, 2);
  calls[1]?.resolve();
  await flush();
  await flush();
  assert.equal(second.settled, true);
});

test('a missing WAL file fails the sync (never reports durable) and is retried at the next commit', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-walsync-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'db-wal');
  const wal = new WalSync(path);
  t.after(() => wal.close());
  await assert.rejects(wal.durable(), { code: 'ENOENT' });
  writeFileSync(path, '');
  await wal.durable();
});

test('the SQLite store commits with synchronous=NORMAL and a write resolves only after its WAL sync', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-walsync-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = openSqliteStore({ path: join(dir, 'm.db') });
  t.after(() => store.close());
  await store.migrate();
  const [mode] = await store.query<{ synchronous: number }>('PRAGMA synchronous');
  assert.equal(mode?.synchronous, 1, 'NORMAL: no fsync inside COMMIT on the event loop');
  // Reads never wait for a sync; writes through query (RETURNING), run and transaction all do.
  await store.run('INSERT INTO audit_meta (name, value) VALUES (?, ?)', ['a', 'x']);
  const rows = await store.query('INSERT INTO audit_meta (name, value) VALUES (?, ?) RETURNING name', ['b', 'y']);
  assert.deepEqual(rows, [{ name: 'b' }]);
  await store.transaction((tx) => tx.run('INSERT INTO audit_meta (name, value) VALUES (?, ?)', ['c', 'z']));
  const names = await store.query<{ name: string }>("SELECT name FROM audit_meta WHERE name IN ('a','b','c') ORDER BY name");
  assert.deepEqual(
    names.map((r) => r.name),
    ['a', 'b', 'c'],
  );
});

test('checkpoints run in a worker thread: the database file catches up with the WAL without a checkpoint in COMMIT', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-walsync-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'm.db');
  const store = openSqliteStore({ path });
  t.after(() => store.close());
  await store.migrate();
  const [auto] = await store.query<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint');
  assert.equal(auto?.wal_autocheckpoint, 0, 'COMMIT never checkpoints on the event loop');
  const before = statSync(path).size;
  // 1 MiB: a quarter of what would trigger SQLite's own automatic checkpoint (1,000 pages).
  await store.run('INSERT INTO audit_meta (name, value) VALUES (?, ?)', ['big', 'x'.repeat(1 << 20)]);
  let after = statSync(path).size;
  for (let i = 0; i < 60 && after < before + (1 << 20); i++) {
    await new Promise((r) => setTimeout(r, 100));
    after = statSync(path).size;
  }
  assert.ok(after >= before + (1 << 20), `the database file grew from ${before} to ${after} bytes: the worker checkpointed`);
});
