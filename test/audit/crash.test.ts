// Crash test on both stores: a child process appending under load is killed with SIGKILL; every
// event it saw acknowledged is present afterwards with the same leaf hash, and the log verifies.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AuditService, readEntryRows } from '../../src/audit/log.js';
import { verifyLog } from '../../src/audit/verify.js';
import { systemClock } from '../../src/lib/clock.js';
import { generateMasterKeySpec, parseMasterKeys, SecretBox } from '../../src/secrets/secret-box.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { dropSchema, freshSchema, POSTGRES_URL, storeFactories } from '../helpers/stores.js';

const CHILD = join(import.meta.dirname, 'fixtures/append-child.ts');

for (const factory of await storeFactories()) {
  test(`SIGKILL while appending loses no acknowledged event (${factory.name})`, { skip: factory.skip, timeout: 120_000 }, async () => {
    const masterKey = generateMasterKeySpec('crash');
    const dir = mkdtempSync(join(tmpdir(), 'mandate-crash-'));
    const where = factory.name === 'sqlite' ? join(dir, 'audit.db') : freshSchema();
    try {
      const child = spawn(process.execPath, ['--import', 'tsx', CHILD, factory.name, where], {
        env: { ...process.env, MASTER_KEY: masterKey },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const acked = new Map<number, string>();
      let buffer = '';
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
      await new Promise<void>((resolve, reject) => {
        child.on('exit', () => reject(new Error('child exited before it was killed')));
        child.stdout.on('data', (chunk: Buffer) => {
          buffer += chunk.toString();
          const lines = buffer.split('\n');
          buffer = lines.pop() ?? '';
          for (const line of lines) {
            const [seq, hash] = line.split(' ');
            if (hash !== undefined) acked.set(Number(seq), hash);
          }
          // Kill in the middle of the load, with group commits in flight.
          if (acked.size >= 3000) {
            child.kill('SIGKILL');
            resolve();
          }
        });
      });
      assert.equal(await exited, 'SIGKILL');

      const store = factory.name === 'sqlite' ? openSqliteStore({ path: where }) : openPostgresStore({ url: POSTGRES_URL, schema: where });
      try {
        const rows = await readEntryRows(store, 0, Number.MAX_SAFE_INTEGER);
        const stored = new Map(rows.map((r) => [r.seq, Buffer.from(r.leaf_hash).toString('hex')]));
        for (const [seq, hash] of acked) assert.equal(stored.get(seq), hash, `acknowledged event ${seq}`);
        assert.ok(rows.length >= acked.size);
        const audit = await AuditService.open({
          store,
          secrets: new SecretBox(parseMasterKeys(masterKey)),
          clock: systemClock,
          origin: 'audit.test/log',
        });
        const report = await verifyLog(store, { vkey: audit.vkey });
        assert.equal(report.ok, true, report.failure?.reason);
        assert.equal(report.entries, rows.length);
        assert.ok(report.checkpoints >= 2);
        // The restarted log continues gap-free.
        assert.equal((await audit.append({ type: 'risk.signal', actors: [], data: {} })).seq, rows.length);
        await audit.close();
      } finally {
        await store.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      if (factory.name === 'postgres') await dropSchema(where).catch(() => {});
    }
  });
}
