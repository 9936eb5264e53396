// The store-backed audit log on both stores: gap-free group-committed appends (also from two
// replicas at once), roots and proofs that an independent computation accepts, fail-closed appends,
// redaction and oversized events.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { MAX_EVENT_BYTES } from '../../src/audit/event.js';
import { readEntryRows } from '../../src/audit/log.js';
import { hashLeaf, verifyConsistency, verifyInclusion } from '../../src/audit/merkle.js';
import { generateMasterKeySpec, parseMasterKeys, SecretBox } from '../../src/secrets/secret-box.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/types.js';
import { dropSchema, freshSchema, POSTGRES_URL, storeFactories } from '../helpers/stores.js';
import { openAudit, testSecrets } from './helpers.js';

// Independent MTH straight from RFC 9162's recursive definition.
const sha = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
function mth(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return sha();
  if (leaves.length === 1) return leaves[0] as Buffer;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return sha(Buffer.from([1]), mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

async function storedLeaves(store: Store): Promise<Buffer[]> {
  const rows = await readEntryRows(store, 0, Number.MAX_SAFE_INTEGER);
  return rows.map((r) => hashLeaf(r.body));
}

const event = (i: number) => ({
  type: 'tool.forwarded',
  actors: [
    { type: 'human' as const, id: 'alice' },
    { type: 'agent' as const, id: 'agent-1' },
  ],
  mandateId: `m-${i % 7}`,
  environment: 'production',
  data: { tool: 'helpdesk.get_customer', i, decisionId: `d-${i}` },
});

for (const factory of await storeFactories()) {
  describe(`audit log: ${factory.name}`, { skip: factory.skip }, () => {
    after(() => factory.cleanup());

    test('concurrent appends get gap-free sequence numbers and the root matches an independent MTH', async () => {
      const store = await factory.open();
      const audit = await openAudit(store);
      const receipts = await Promise.all(Array.from({ length: 600 }, (_, i) => audit.append(event(i))));
      assert.deepEqual(
        receipts.map((r) => r.seq).sort((a, b) => a - b),
        Array.from({ length: 600 }, (_, i) => i),
      );
      const leaves = await storedLeaves(store);
      assert.equal(leaves.length, 600);
      for (const r of receipts) assert.equal(r.leafHash, leaves[r.seq]?.toString('hex'));
      const head = await audit.head();
      assert.equal(head.size, 600);
      assert.deepEqual(head.root, mth(leaves));
      // Past roots come from stored tile hashes (tree level 8 is stored once 256 leaves complete).
      for (const size of [1, 255, 256, 257, 512, 599])
        assert.deepEqual(await audit.rootAt(size), mth(leaves.slice(0, size)), `size ${size}`);
      const entry = await audit.entry(5);
      assert.equal(entry?.event.type, 'tool.forwarded');
      assert.equal(entry?.id, '5');
      assert.equal((await audit.entriesBy('decision_id', 'd-5'))[0]?.seq, 5);
      await audit.close();
    });

    test('inclusion and consistency proofs verify against the roots', async () => {
      const store = await factory.open();
      const audit = await openAudit(store);
      await Promise.all(Array.from({ length: 530 }, (_, i) => audit.append(event(i))));
      const leaves = await storedLeaves(store);
      const { root } = await audit.head();
      for (const seq of [0, 1, 200, 255, 256, 511, 512, 529]) {
        const p = await audit.inclusionProof(seq);
        assert.equal(verifyInclusion(seq, 530, p.leafHash, p.proof, root), undefined, `leaf ${seq}`);
        const older = await audit.inclusionProof(seq, seq + 1);
        assert.equal(verifyInclusion(seq, seq + 1, older.leafHash, older.proof, mth(leaves.slice(0, seq + 1))), undefined);
      }
      for (const size1 of [1, 7, 256, 300, 529, 530]) {
        const c = await audit.consistencyProof(size1);
        assert.equal(verifyConsistency(size1, 530, c.proof, mth(leaves.slice(0, size1)), root), undefined, `from ${size1}`);
      }
      await assert.rejects(audit.inclusionProof(530), { code: 'ERR_AUDIT_RANGE' });
      await assert.rejects(audit.consistencyProof(0), { code: 'ERR_AUDIT_RANGE' });
      await audit.close();
    });

    test('fails closed when the store cannot commit, and the failed batch leaves no gap', async () => {
      const store = await factory.open();
      const secrets = testSecrets();
      const audit = await openAudit(store, secrets);
      await audit.append(event(0));
      await store.run('ALTER TABLE audit_entries RENAME TO audit_entries_away');
      await assert.rejects(audit.append(event(1)), { code: 'ERR_AUDIT_UNAVAILABLE' });
      await store.run('ALTER TABLE audit_entries_away RENAME TO audit_entries');
      const r = await audit.append(event(2));
      assert.equal(r.seq, 1);
      await audit.close();
      await assert.rejects(audit.append(event(3)), { code: 'ERR_AUDIT_UNAVAILABLE' });
      const reopened = await openAudit(store, secrets);
      await store.close();
      await assert.rejects(reopened.append(event(4)), { code: 'ERR_AUDIT_UNAVAILABLE' });
    });

    test('an event that is not canonical JSON is refused alone; its neighbours commit', async () => {
      const store = await factory.open();
      const audit = await openAudit(store);
      const results = await Promise.allSettled([
        audit.append(event(0)),
        audit.append({ type: 'risk.signal', actors: [], data: { score: Number.NaN } }),
        audit.append({ type: 'Not A Type', actors: [], data: {} }),
        audit.append(event(1)),
      ]);
      assert.deepEqual(
        results.map((r) => r.status),
        ['fulfilled', 'rejected', 'rejected', 'fulfilled'],
      );
      assert.equal((results[1] as PromiseRejectedResult).reason.code, 'ERR_AUDIT_EVENT_INVALID');
      assert.equal((await audit.head()).size, 2);
      await audit.close();
    });

    test('oversized data fields are stored as their hash, never truncated', async () => {
      const store = await factory.open();
      const audit = await openAudit(store);
      const big = 'x'.repeat(100_000);
      const r = await audit.append({ type: 'tool.result', actors: [], data: { result: big, status: 'ok' } });
      const entry = await audit.entry(r.seq);
      const elided = entry?.event.data.result as { $elided: { sha256: string; bytes: number } };
      assert.equal(elided.$elided.sha256, createHash('sha256').update(JSON.stringify(big)).digest('hex'));
      assert.equal(elided.$elided.bytes, big.length + 2);
      assert.equal(entry?.event.data.status, 'ok');
      const [row] = await readEntryRows(store, r.seq, r.seq + 1);
      assert.ok(Buffer.byteLength(row?.body ?? '') <= MAX_EVENT_BYTES + 64);
      await audit.close();
    });

    test('after a master key rotation the log keeps its key and salt and re-seals them', async () => {
      const store = await factory.open();
      const oldKey = generateMasterKeySpec('old');
      const before = await openAudit(store, new SecretBox(parseMasterKeys(oldKey)));
      const rotated = new SecretBox(parseMasterKeys(`${generateMasterKeySpec('new')},${oldKey}`));
      const reopened = await openAudit(store, rotated);
      assert.equal(reopened.vkey, before.vkey);
      assert.equal(reopened.redact('s3cret'), before.redact('s3cret'));
      const rows = await store.query<{ value: string }>('SELECT value FROM audit_meta');
      assert.ok(rows.length >= 2 && rows.every((r) => !rotated.needsReseal(r.value)));
      await Promise.all([before.close(), reopened.close()]);
    });

    test('redaction is a salted HMAC: stable per log, different across logs, never the secret', async () => {
      const secrets = testSecrets();
      const storeA = await factory.open();
      const a = await openAudit(storeA, secrets);
      const a2 = await openAudit(storeA, secrets);
      const b = await openAudit(await factory.open());
      const secret = 'sk-live-0123456789abcdef';
      assert.equal(a.redact(secret), a2.redact(secret), 'the salt is stored once per log');
      assert.notEqual(a.redact(secret), b.redact(secret));
      assert.notEqual(a.redact(secret), a.redact(`${secret}x`));
      assert.ok(!a.redact(secret).includes('0123456789'));
      await Promise.all([a.close(), a2.close(), b.close()]);
    });
  });
}

/** Two replicas = two connections/pools on one database, each with its own AuditService. */
async function twoReplicas(kind: 'sqlite' | 'postgres'): Promise<{ stores: [Store, Store]; cleanup: () => Promise<void> }> {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-audit-'));
    const path = join(dir, 'm.db');
    const one = openSqliteStore({ path });
    await one.migrate();
    const two = openSqliteStore({ path });
    return {
      stores: [one, two],
      cleanup: async () => {
        await one.close();
        await two.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const schema = freshSchema();
  const one = openPostgresStore({ url: POSTGRES_URL, schema, poolMax: 4 });
  await one.migrate();
  const two = openPostgresStore({ url: POSTGRES_URL, schema, poolMax: 4 });
  return {
    stores: [one, two],
    cleanup: async () => {
      await one.close();
      await two.close();
      await dropSchema(schema);
    },
  };
}

for (const factory of await storeFactories()) {
  test(`two replicas appending at once neither gap nor fork (${factory.name})`, { skip: factory.skip }, async () => {
    const { stores, cleanup } = await twoReplicas(factory.name);
    try {
      const secrets = testSecrets();
      const [a, b] = await Promise.all(stores.map((s) => openAudit(s, secrets)));
      if (a === undefined || b === undefined) throw new Error('unreachable');
      const all = await Promise.all(Array.from({ length: 400 }, (_, i) => (i % 2 === 0 ? a : b).append(event(i))));
      assert.deepEqual(
        all.map((r) => r.seq).sort((x, y) => x - y),
        Array.from({ length: 400 }, (_, i) => i),
      );
      const leaves = await storedLeaves(stores[0]);
      assert.deepEqual((await a.head()).root, mth(leaves));
      assert.deepEqual((await b.head()).root, mth(leaves));
      assert.equal(a.vkey, b.vkey, 'replicas share one checkpoint key');
      await Promise.all([a.close(), b.close()]);
    } finally {
      await cleanup();
    }
  });
}
