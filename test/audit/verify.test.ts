// Checkpoints and verify on both stores: signed notes open with the pinned vkey only, and verify
// names the first bad index after each kind of tampering.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkpointBody, openCheckpoint, parseVkey } from '../../src/audit/checkpoint.js';
import { AuditService } from '../../src/audit/log.js';
import { verifyLog } from '../../src/audit/verify.js';
import type { Store } from '../../src/store/types.js';
import { storeFactories } from '../helpers/stores.js';
import { fakeClock, openAudit, TEST_ORIGIN, testSecrets } from './helpers.js';

const event = (i: number) => ({
  type: 'decision',
  actors: [{ type: 'agent' as const, id: `agent-${i % 3}` }],
  mandateId: `m-${i % 5}`,
  data: { decisionId: `d-${i}`, outcome: i % 4 === 0 ? 'deny' : 'allow', tool: 'helpdesk.search_tickets' },
});

/** A log of 300 entries with checkpoints at 100, 200 and 300. */
async function seeded(open: () => Promise<Store>): Promise<{ store: Store; audit: AuditService }> {
  const store = await open();
  const audit = await openAudit(store);
  for (const upTo of [100, 200, 300]) {
    const head = await audit.head();
    await Promise.all(Array.from({ length: upTo - head.size }, (_, i) => audit.append(event(head.size + i))));
    await audit.checkpoint();
  }
  return { store, audit };
}

test('the checkpoint and vkey shown in docs/audit.md are real and verify', () => {
  const doc = readFileSync(join(import.meta.dirname, '../../docs/audit.md'), 'utf8');
  const note = /```\n(mandate\.example\.com\/audit\n\d+\n[^\n]+\n\n\u2014 [^\n]+\n)```/.exec(doc)?.[1];
  const vkey = /`(mandate\.example\.com\/audit\+[0-9a-f]{8}\+[^`]+)`/.exec(doc)?.[1];
  assert.ok(note !== undefined && vkey !== undefined);
  const c = openCheckpoint(note, parseVkey(vkey), 'mandate.example.com/audit');
  assert.ok(typeof c !== 'string', String(c));
  assert.equal(c.size, 21);
});

for (const factory of await storeFactories()) {
  describe(`checkpoints and verify: ${factory.name}`, { skip: factory.skip }, () => {
    after(() => factory.cleanup());

    test('a checkpoint is a C2SP signed note that opens with the log vkey and no other', async () => {
      const { audit } = await seeded(() => factory.open());
      const c = await audit.latestCheckpoint();
      assert.ok(c);
      const head = await audit.head();
      assert.equal(c.size, 300);
      assert.ok(c.note.startsWith(checkpointBody({ origin: TEST_ORIGIN, size: 300, root: head.root })));
      assert.match(c.note, /\n\n\u2014 audit\.test\/log [A-Za-z0-9+/]+=*\n$/);
      assert.match(audit.vkey, /^audit\.test\/log\+[0-9a-f]{8}\+[A-Za-z0-9+/]{43}[A-Za-z0-9+/=]$/);
      const opened = openCheckpoint(c.note, parseVkey(audit.vkey), TEST_ORIGIN);
      assert.deepEqual(opened, { origin: TEST_ORIGIN, size: 300, root: head.root });
      // Another log's key, a changed size, a wrong origin: all refused.
      const other = await openAudit(await factory.open());
      assert.equal(typeof openCheckpoint(c.note, parseVkey(other.vkey)), 'string');
      assert.equal(typeof openCheckpoint(c.note.replace('\n300\n', '\n301\n'), parseVkey(audit.vkey)), 'string');
      assert.equal(typeof openCheckpoint(c.note, parseVkey(audit.vkey), 'elsewhere/log'), 'string');
      // Idempotent per size; only signs when the log grew.
      assert.equal((await audit.checkpoint()).note, c.note);
      assert.equal(await audit.checkpointIfGrown(), undefined);
      await audit.append(event(300));
      assert.equal((await audit.checkpointIfGrown())?.size, 301);
      await Promise.all([audit.close(), other.close()]);
    });

    test('checkpoints are signed on an interval when the log grew', async () => {
      const store = await factory.open();
      const audit = await AuditService.open({
        store,
        secrets: testSecrets(),
        clock: fakeClock(),
        origin: TEST_ORIGIN,
        checkpointIntervalMs: 20,
      });
      await Promise.all(Array.from({ length: 30 }, (_, i) => audit.append(event(i))));
      const deadline = Date.now() + 10_000;
      while ((await audit.latestCheckpoint())?.size !== 30) {
        assert.ok(Date.now() < deadline, 'no interval checkpoint within 10 s');
        await new Promise((r) => setTimeout(r, 20));
      }
      await audit.close();
      const r = await verifyLog(store, { vkey: audit.vkey });
      assert.equal(r.ok, true);
      assert.ok(r.checkpoints >= 1);
    });

    test('verify checks the prefix it started with while appends and checkpoints go on', async () => {
      const { store, audit } = await seeded(() => factory.open());
      const writers = Promise.all(
        Array.from({ length: 4 }, async (_, w) => {
          for (let i = 0; i < 60; i++) {
            await audit.append(event(1000 + w * 100 + i));
            if (i % 20 === 0) await audit.checkpoint();
          }
        }),
      );
      const r = await verifyLog(store, { vkey: audit.vkey, pageSize: 50 });
      await writers;
      assert.equal(r.ok, true, r.failure?.reason);
      assert.ok(r.entries >= 300);
      const after = await verifyLog(store, { vkey: audit.vkey });
      assert.equal(after.ok, true, after.failure?.reason);
      assert.equal(after.entries, 540);
      await audit.close();
    });

    describe('tampering', () => {
      let store: Store;
      let audit: AuditService;
      const verify = () => verifyLog(store, { vkey: audit.vkey });
      before(async () => {
        ({ store, audit } = await seeded(() => factory.open()));
      });

      test('an untouched log verifies, with progress, against its pinned key', async () => {
        const progress: number[] = [];
        const r = await verifyLog(store, { vkey: audit.vkey, pageSize: 128, onProgress: (done) => progress.push(done) });
        assert.equal(r.ok, true, r.failure?.reason);
        assert.equal(r.entries, 300);
        assert.equal(r.checkpoints, 3);
        assert.equal(r.root, (await audit.head()).root.toString('hex'));
        assert.deepEqual(progress, [128, 256, 300]);
      });

      test('the wrong verifier key fails on the first checkpoint', async () => {
        const other = await openAudit(await factory.open());
        const r = await verifyLog(store, { vkey: other.vkey, origin: TEST_ORIGIN });
        assert.equal(r.ok, false);
        assert.equal(r.failure?.checkpointSize, 100);
        await other.close();
      });

      // Each case tampers, verifies, and restores, so the cases are independent.
      test('one changed byte in one event names its index', async () => {
        const [row] = await store.query<{ body: string }>('SELECT body FROM audit_entries WHERE seq = 150');
        const body = row?.body ?? '';
        await store.run('UPDATE audit_entries SET body = ? WHERE seq = 150', [body.replace('"allow"', '"allov"')]);
        const r = await verify();
        await store.run('UPDATE audit_entries SET body = ? WHERE seq = 150', [body]);
        assert.equal(r.ok, false);
        assert.equal(r.failure?.index, 150, r.failure?.reason);
        assert.equal((await verify()).ok, true);
      });

      test('a deleted row names its index', async () => {
        const [row] = await store.query<{ [k: string]: string | number | Uint8Array | null }>('SELECT * FROM audit_entries WHERE seq = 42');
        await store.run('DELETE FROM audit_entries WHERE seq = 42');
        const r = await verify();
        await store.run(
          'INSERT INTO audit_entries (seq, type, mandate_id, decision_id, approval_id, created_at, body, leaf_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
          [
            42,
            row?.type ?? '',
            row?.mandate_id ?? null,
            row?.decision_id ?? null,
            null,
            Number(row?.created_at),
            row?.body ?? '',
            row?.leaf_hash as Uint8Array,
          ],
        );
        assert.equal(r.failure?.index, 42, r.failure?.reason);
        assert.equal((await verify()).ok, true);
      });

      test('two swapped rows name the first of them', async () => {
        const swap = async () => {
          await store.run('UPDATE audit_entries SET seq = -1 WHERE seq = 10');
          await store.run('UPDATE audit_entries SET seq = 10 WHERE seq = 20');
          await store.run('UPDATE audit_entries SET seq = 20 WHERE seq = -1');
        };
        await swap();
        const r = await verify();
        await swap();
        assert.equal(r.failure?.index, 10, r.failure?.reason);
        assert.equal((await verify()).ok, true);
      });

      test('a replaced checkpoint is named', async () => {
        const [row] = await store.query<{ note: string }>('SELECT note FROM audit_checkpoints WHERE size = 200');
        const forger = await openAudit(await factory.open());
        await Promise.all(Array.from({ length: 200 }, (_, i) => forger.append(event(i + 1))));
        const forged = await forger.checkpoint();
        await store.run('UPDATE audit_checkpoints SET note = ?, root = ? WHERE size = 200', [forged.note, forged.root]);
        const r = await verify();
        await store.run('UPDATE audit_checkpoints SET note = ? WHERE size = 200', [row?.note ?? '']);
        assert.equal(r.ok, false);
        assert.equal(r.failure?.checkpointSize, 200, r.failure?.reason);
        await forger.close();
        // Restore the stored root column from the signed note of the original checkpoint.
        const original = openCheckpoint(row?.note ?? '', parseVkey(audit.vkey));
        assert.ok(typeof original !== 'string');
        await store.run('UPDATE audit_checkpoints SET root = ? WHERE size = 200', [original.root]);
        assert.equal((await verify()).ok, true);
      });

      test('a truncated tail names the first missing index (runs last: not restored)', async () => {
        await store.run('DELETE FROM audit_entries WHERE seq >= 250');
        const r = await verify();
        assert.equal(r.ok, false);
        assert.equal(r.failure?.index, 250, r.failure?.reason);
        await audit.close();
      });
    });
  });
}
