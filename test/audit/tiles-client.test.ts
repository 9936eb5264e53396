// The auditor's tiles client against logs served from real stores: it accepts an honest log that
// extends a saved checkpoint, and catches a fork (same key, different history) and a shrunk log.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { AuditService } from '../../src/audit/log.js';
import { type TileFetch, verifyRemoteLog } from '../../src/audit/tiles-client.js';
import { parseTilePath } from '../../src/http/routes/audit.js';
import type { Store } from '../../src/store/types.js';
import { storeFactories } from '../helpers/stores.js';
import { openAudit, testSecrets } from './helpers.js';

/** Serves a log the way /audit/log/ does (checkpoint = latest stored). */
function serve(audit: AuditService): TileFetch {
  return async (path) => {
    if (path === 'checkpoint') {
      const c = await audit.latestCheckpoint();
      return c === undefined ? { status: 404, body: Buffer.alloc(0) } : { status: 200, body: Buffer.from(c.note) };
    }
    const tile = parseTilePath(path.replace(/^tile\//, ''));
    if (tile === undefined || tile.level !== 'entries') return { status: 404, body: Buffer.alloc(0) };
    return { status: 200, body: await audit.entryBundle(tile.index, tile.width) };
  };
}

async function fill(audit: AuditService, n: number, tag: string): Promise<string> {
  for (let i = 0; i < n; i++) await audit.append({ type: 'risk.signal', actors: [], data: { tag, i } });
  return (await audit.checkpoint()).note;
}

for (const factory of await storeFactories()) {
  describe(`tiles client: ${factory.name}`, { skip: factory.skip }, () => {
    after(() => factory.cleanup());

    test('an honest log extends the saved checkpoint; a fork with the same key and a shrunk log are caught', async () => {
      const secrets = testSecrets();
      const storeA: Store = await factory.open();
      const a = await openAudit(storeA, secrets);
      const saved = await fill(a, 10, 'a');
      // A second log holding the same sealed key (as a compromised operator could set up).
      const storeB: Store = await factory.open();
      for (const row of await storeA.query<{ name: string; value: string }>('SELECT name, value FROM audit_meta')) {
        await storeB.run('INSERT INTO audit_meta (name, value) VALUES (?, ?)', [row.name, row.value]);
      }
      const b = await openAudit(storeB, secrets);
      assert.equal(b.vkey, a.vkey);
      await fill(b, 300, 'b');
      await fill(a, 290, 'a');

      const honest = await verifyRemoteLog({ vkey: a.vkey, fetch: serve(a), previous: saved });
      assert.equal(honest.ok, true, honest.reason);
      assert.equal(honest.size, 300);
      const fork = await verifyRemoteLog({ vkey: a.vkey, fetch: serve(b), previous: saved });
      assert.equal(fork.ok, false);
      assert.match(fork.reason ?? '', /fork/);
      // Same size and key, different history: the roots differ.
      const sameSize = await verifyRemoteLog({ vkey: a.vkey, fetch: serve(b), previous: (await a.checkpoint()).note });
      assert.match(sameSize.reason ?? '', /fork/);
      // A server that rolls back to an older checkpoint.
      const current = (await a.checkpoint()).note;
      const rolledBack: TileFetch = async (path) => (path === 'checkpoint' ? { status: 200, body: Buffer.from(saved) } : serve(a)(path));
      const shrunk = await verifyRemoteLog({ vkey: a.vkey, fetch: rolledBack, previous: current });
      assert.equal(shrunk.ok, false);
      assert.match(shrunk.reason ?? '', /shrank from 300 to 10/);
      await Promise.all([a.close(), b.close()]);
    });
  });
}
