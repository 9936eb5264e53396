// Store-level faults behind the broker-level outage tests: an unwritable SQLite file and a
// PostgreSQL server that dies under an open transaction surface as ERR_STORE_UNAVAILABLE (never a
// raw driver error, never a crash), the same store instance works again once the database is back,
// and the change feed's LISTEN reconnects once instead of leaking a connection per retry.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { AuditService } from '../../src/audit/log.js';
import { MandateError } from '../../src/errors/index.js';
import { systemClock } from '../../src/lib/clock.js';
import { generateMasterKeySpec, parseMasterKeys, SecretBox } from '../../src/secrets/secret-box.js';
import { ChangeFeed } from '../../src/store/changes.js';
import { GroupCommit, inTransaction } from '../../src/store/group-commit.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/types.js';
import { sleep } from './harness.js';
import { pgClusterSkip, startPgCluster } from './pg-cluster.js';

const code = (want: string) => (err: unknown) => err instanceof MandateError && err.code === want;

function chattrWorks(): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-chattr-'));
  try {
    execFileSync('chattr', ['+i', dir], { stdio: 'ignore' });
    execFileSync('chattr', ['-i', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function openAudit(store: Store): Promise<AuditService> {
  return AuditService.open({
    store,
    secrets: new SecretBox(parseMasterKeys(generateMasterKeySpec('faults'))),
    clock: systemClock,
    origin: 'faults.test/log',
  });
}

test('SQLite: an unwritable database fails every write with ERR_STORE_UNAVAILABLE, then recovers in place', {
  skip: chattrWorks() ? false : 'chattr +i is not available here',
}, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-sqlite-fault-'));
  const path = join(dir, 'mandate.db');
  const files = [path, `${path}-wal`, dir];
  const store = openSqliteStore({ path, busyTimeoutMs: 200 });
  t.after(async () => {
    execFileSync('chattr', ['-i', ...files], { stdio: 'ignore' });
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  await store.migrate();
  const audit = await openAudit(store);
  const group = new GroupCommit<string, number>(
    inTransaction(store, async (tx, items) => {
      for (const i of items) await tx.run('INSERT INTO audit_meta (name, value) VALUES (?, ?)', [i, 'x']);
      return items.map(() => 1);
    }),
  );
  await audit.append({ type: 'risk.signal', actors: [], data: { n: 0 } });

  // Root ignores file modes; the immutable attribute holds even for root.
  execFileSync('chattr', ['+i', ...files]);
  await assert.rejects(store.run('INSERT INTO audit_meta (name, value) VALUES (?, ?)', ['a', 'x']), code('ERR_STORE_UNAVAILABLE'));
  await assert.rejects(
    store.transaction(async (tx) => tx.run('INSERT INTO audit_meta (name, value) VALUES (?, ?)', ['b', 'x'])),
    code('ERR_STORE_UNAVAILABLE'),
  );
  const grouped = await Promise.allSettled(['c', 'd', 'e'].map((i) => group.submit(i)));
  for (const r of grouped) {
    assert.equal(r.status, 'rejected');
    assert.ok(code('ERR_STORE_UNAVAILABLE')(r.reason), String(r.reason));
  }
  const appended = await Promise.allSettled([1, 2, 3].map((n) => audit.append({ type: 'risk.signal', actors: [], data: { n } })));
  for (const r of appended) {
    assert.equal(r.status, 'rejected');
    assert.ok(code('ERR_AUDIT_UNAVAILABLE')(r.reason), String(r.reason));
  }
  // Reads still work from the WAL and the file, but the readiness probe must not say ready.
  assert.equal((await audit.head()).size, 1);
  await assert.rejects(store.ping(), code('ERR_STORE_UNAVAILABLE'));

  execFileSync('chattr', ['-i', ...files]);
  await store.ping();
  await group.submit('f');
  const receipt = await audit.append({ type: 'risk.signal', actors: [], data: { n: 4 } });
  assert.equal(receipt.seq, 1, 'the failed appends left no gap');
  assert.deepEqual(
    (await store.query<{ name: string }>("SELECT name FROM audit_meta WHERE value = 'x' ORDER BY name")).map((r) => r.name),
    ['f'],
  );
  await audit.close();
});

test('PostgreSQL: the server dies under an open transaction and while idle; no crash, clear errors, same pool recovers', {
  skip: pgClusterSkip() ?? false,
  timeout: 90_000,
}, async (t) => {
  const cluster = await startPgCluster();
  const store = openPostgresStore({ url: cluster.url, schema: 'faults', poolMax: 4, connectTimeoutMs: 1000 });
  t.after(async () => {
    await store.close().catch(() => {});
    cluster.destroy();
  });
  await store.migrate();
  const audit = await openAudit(store);
  await audit.append({ type: 'risk.signal', actors: [], data: { n: 0 } });

  // The transaction holds a checked-out client, idle between two queries, when the server goes.
  // Before the fix its 'error' event had no listener and killed the process.
  await assert.rejects(
    store.transaction(async (tx) => {
      await tx.query('SELECT 1');
      cluster.stop();
      await sleep(300);
      await tx.query('SELECT 1');
    }),
    code('ERR_STORE_UNAVAILABLE'),
  );
  await assert.rejects(store.run('INSERT INTO audit_meta (name, value) VALUES (?, ?)', ['a', 'x']), code('ERR_STORE_UNAVAILABLE'));
  await assert.rejects(
    store.transaction(async (tx) => tx.query('SELECT 1')),
    code('ERR_STORE_UNAVAILABLE'),
  );
  await assert.rejects(audit.append({ type: 'risk.signal', actors: [], data: { n: 1 } }), code('ERR_AUDIT_UNAVAILABLE'));
  await assert.rejects(store.ping(), code('ERR_STORE_UNAVAILABLE'));

  cluster.start();
  await store.ping();
  const receipt = await audit.append({ type: 'risk.signal', actors: [], data: { n: 2 } });
  assert.equal(receipt.seq, 1);
  await audit.close();
});

test('PostgreSQL: the change feed reconnects LISTEN once after an outage instead of leaking connections', {
  skip: pgClusterSkip() ?? false,
  timeout: 90_000,
}, async (t) => {
  const cluster = await startPgCluster();
  const store = openPostgresStore({ url: cluster.url, schema: 'feed', poolMax: 2, connectTimeoutMs: 500 });
  const feed = new ChangeFeed(store, { clock: systemClock, pollIntervalMs: 200 });
  const admin = () => new pg.Client({ connectionString: cluster.url });
  t.after(async () => {
    await feed.stop().catch(() => {});
    await store.close().catch(() => {});
    cluster.destroy();
  });
  await store.migrate();
  await feed.start();
  assert.equal(feed.listening, true);
  cluster.stop();
  await sleep(4000);
  assert.equal(feed.listening, false);
  cluster.start();
  const deadline = Date.now() + 15_000;
  while (!feed.listening && Date.now() < deadline) await sleep(100);
  assert.equal(feed.listening, true, 'LISTEN is back without a restart');
  // Give any duplicate reconnect loops time to connect too.
  await sleep(3000);
  const client = admin();
  await client.connect();
  try {
    const { rows } = await client.query<{ n: string }>(
      "SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    );
    assert.equal(Number(rows[0]?.n), 1, 'exactly one LISTEN connection');
  } finally {
    await client.end();
  }
});
