// The console's in-browser proof check (console/src/lib/merkle.ts, WebCrypto only) against the
// public RFC 9162 vectors, and against real proofs and checkpoints of a broker, tampered or not.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  checkInclusion,
  fromBase64,
  parseCheckpoint,
  rootFromInclusionProof,
  verifyCheckpointSignature,
} from '../../console/src/lib/merkle.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';

const VECTORS = join(import.meta.dirname, '../vectors/rfc9162/inclusion');

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : name.endsWith('.json') ? [p] : [];
  });
}

const equal = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

describe('in-browser RFC 9162 inclusion verification', () => {
  test('accepts exactly the wantErr:false inclusion vectors', async () => {
    const files = walk(VECTORS);
    assert.ok(files.length > 50);
    let accepted = 0;
    for (const file of files) {
      const v = JSON.parse(readFileSync(file, 'utf8'));
      let ok = false;
      try {
        const root = await rootFromInclusionProof(v.leafIdx, v.treeSize, fromBase64(v.leafHash ?? ''), (v.proof ?? []).map(fromBase64));
        ok = equal(root, fromBase64(v.root ?? ''));
      } catch {
        ok = false;
      }
      assert.equal(!ok, v.wantErr, file);
      if (ok) accepted++;
    }
    assert.ok(accepted > 0);
  });

  describe('against a broker', () => {
    let t: TestApp;
    let data: {
      entry: { seq: number; event: Record<string, unknown> };
      proof: { treeSize: number; leafHash: string; hashes: string[] };
      checkpoint: { note: string };
      vkey: string;
    };
    before(async () => {
      t = await buildTestApp();
      for (let i = 0; i < 11; i++)
        await t.broker.audit.append({ type: 'decision', actors: [], data: { outcome: i % 3 ? 'allow' : 'deny', n: i } });
      const admin = await t.operatorToken('alice');
      data = (await t.app.inject({ url: '/admin/v1/console/audit/6', headers: { authorization: `Bearer ${admin}` } })).json();
    });
    after(() => t.close());

    const run = (over: Partial<Parameters<typeof checkInclusion>[0]> = {}) =>
      checkInclusion({
        event: data.entry.event,
        seq: data.entry.seq,
        proof: data.proof.hashes,
        treeSize: data.proof.treeSize,
        checkpoint: parseCheckpoint(data.checkpoint.note),
        ...over,
      });

    test('the displayed event is proven against the signed checkpoint', async () => {
      const r = await run({ leafHashFromServer: data.proof.leafHash });
      assert.equal(r.ok, true, r.steps.join('\n'));
      assert.equal(await verifyCheckpointSignature(parseCheckpoint(data.checkpoint.note), data.vkey), true);
    });

    test('an edited event, a wrong position or a forged checkpoint fail', async () => {
      const edited = { ...data.entry.event, data: { outcome: 'allow', n: 999 } };
      assert.equal((await run({ event: edited })).ok, false);
      assert.equal((await run({ seq: data.entry.seq + 1 })).ok, false);
      const forged = data.checkpoint.note.replace(/^(.*\n\d+\n)[^\n]+/, `$1${Buffer.alloc(32, 7).toString('base64')}`);
      assert.equal((await run({ checkpoint: parseCheckpoint(forged) })).ok, false);
      assert.equal(await verifyCheckpointSignature(parseCheckpoint(forged), data.vkey), false);
    });
  });
});
