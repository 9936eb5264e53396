// RFC 9162 Merkle hashing and proofs: the 196 public transparency-dev vectors, plus proofs produced by
// our generator checked against an independent, deliberately naive implementation of the RFC.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  consistencyPlan,
  Frontier,
  hashLeaf,
  inclusionPlan,
  resolvePlan,
  type SubtreeRef,
  verifyConsistency,
  verifyInclusion,
} from '../../src/audit/merkle.js';

const VECTORS = join(import.meta.dirname, '../vectors/rfc9162');

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : name.endsWith('.json') ? [p] : [];
  });
}

const b64 = (s: string | null | undefined) => Buffer.from(s ?? '', 'base64');

describe('RFC 9162 vectors (transparency-dev/merkle testdata)', () => {
  const inclusion = walk(join(VECTORS, 'inclusion'));
  const consistency = walk(join(VECTORS, 'consistency'));

  test('all 196 vectors are present', () => {
    assert.equal(inclusion.length + consistency.length, 196);
  });

  test('inclusion: accepts exactly the wantErr:false cases', () => {
    let accepted = 0;
    for (const file of inclusion) {
      const v = JSON.parse(readFileSync(file, 'utf8'));
      const failure = verifyInclusion(v.leafIdx, v.treeSize, b64(v.leafHash), (v.proof ?? []).map(b64), b64(v.root));
      assert.equal(failure !== undefined, v.wantErr, `${file}: ${failure ?? 'accepted'}`);
      if (failure === undefined) accepted++;
    }
    assert.ok(accepted > 0);
  });

  test('consistency: accepts exactly the wantErr:false cases', () => {
    let accepted = 0;
    for (const file of consistency) {
      const v = JSON.parse(readFileSync(file, 'utf8'));
      const failure = verifyConsistency(v.size1, v.size2, (v.proof ?? []).map(b64), b64(v.root1), b64(v.root2));
      assert.equal(failure !== undefined, v.wantErr, `${file}: ${failure ?? 'accepted'}`);
      if (failure === undefined) accepted++;
    }
    assert.ok(accepted > 0);
  });
});

// ── An independent implementation, written straight from the RFC's recursive definitions ──
const sha = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const refLeaf = (d: Buffer) => sha(Buffer.from([0]), d);
function mth(d: Buffer[]): Buffer {
  if (d.length === 0) return sha();
  if (d.length === 1) return refLeaf(d[0] as Buffer);
  let k = 1;
  while (k * 2 < d.length) k *= 2;
  return sha(Buffer.from([1]), mth(d.slice(0, k)), mth(d.slice(k)));
}
function refPath(m: number, d: Buffer[]): Buffer[] {
  if (d.length <= 1) return [];
  let k = 1;
  while (k * 2 < d.length) k *= 2;
  return m < k ? [...refPath(m, d.slice(0, k)), mth(d.slice(k))] : [...refPath(m - k, d.slice(k)), mth(d.slice(0, k))];
}
function refSubproof(m: number, d: Buffer[], b: boolean): Buffer[] {
  if (m === d.length) return b ? [] : [mth(d)];
  let k = 1;
  while (k * 2 < d.length) k *= 2;
  return m <= k ? [...refSubproof(m, d.slice(0, k), b), mth(d.slice(k))] : [...refSubproof(m - k, d.slice(k), false), mth(d.slice(0, k))];
}
/** Verifies an inclusion proof by rebuilding the root recursively (no bit tricks). */
function refVerifyInclusion(m: number, n: number, leaf: Buffer, proof: Buffer[], root: Buffer): boolean {
  const rebuild = (mm: number, nn: number, p: Buffer[]): Buffer | undefined => {
    if (nn === 1) return p.length === 0 ? leaf : undefined;
    if (p.length === 0) return undefined;
    let k = 1;
    while (k * 2 < nn) k *= 2;
    const sibling = p[p.length - 1] as Buffer;
    const rest = p.slice(0, -1);
    if (mm < k) {
      const left = rebuild(mm, k, rest);
      return left && sha(Buffer.from([1]), left, sibling);
    }
    const right = rebuild(mm - k, nn - k, rest);
    return right && sha(Buffer.from([1]), sibling, right);
  };
  const r = rebuild(m, n, proof);
  return r?.equals(root) === true;
}

describe('proofs from the generator match an independent implementation', () => {
  const data = Array.from({ length: 70 }, (_, i) => Buffer.from(`event-${i}`));
  const leaves = data.map((d) => hashLeaf(d));
  // Perfect subtree hashes computed directly from the data (what a store would read).
  const read = async (refs: readonly SubtreeRef[]) =>
    refs.map((r) => mth(data.slice(r.index * 2 ** r.level, (r.index + 1) * 2 ** r.level)));

  test('frontier roots equal MTH for every size', () => {
    const f = new Frontier();
    assert.deepEqual(f.root(), mth([]));
    for (let n = 0; n < data.length; n++) {
      f.push(leaves[n] as Buffer);
      assert.deepEqual(f.root(), mth(data.slice(0, n + 1)), `size ${n + 1}`);
      const again = Frontier.decode(f.size, f.encode());
      assert.deepEqual(again.root(), f.root());
    }
  });

  test('frontier reports completed perfect subtrees', () => {
    const f = new Frontier();
    const seen: string[] = [];
    for (const leaf of leaves.slice(0, 8))
      f.push(leaf, (level, index, hash) => {
        seen.push(`${level}/${index}`);
        assert.deepEqual(hash, mth(data.slice(index * 2 ** level, (index + 1) * 2 ** level)));
      });
    assert.deepEqual(seen, ['1/0', '1/1', '2/0', '1/2', '1/3', '2/1', '3/0']);
  });

  test('inclusion proofs', async () => {
    for (const n of [1, 2, 3, 5, 8, 13, 64, 70]) {
      const root = mth(data.slice(0, n));
      for (let m = 0; m < n; m++) {
        const proof = await resolvePlan(inclusionPlan(m, n), read);
        assert.deepEqual(proof, refPath(m, data.slice(0, n)), `path ${m}/${n}`);
        assert.ok(refVerifyInclusion(m, n, leaves[m] as Buffer, proof, root));
        assert.equal(verifyInclusion(m, n, leaves[m] as Buffer, proof, root), undefined);
        // A proof for another leaf must not verify.
        if (n > 1) assert.notEqual(verifyInclusion(m, n, leaves[(m + 1) % n] as Buffer, proof, root), undefined);
      }
    }
  });

  test('consistency proofs', async () => {
    for (const n of [1, 2, 3, 7, 8, 9, 33, 70]) {
      for (let m = 1; m <= n; m++) {
        const proof = await resolvePlan(consistencyPlan(m, n), read);
        assert.deepEqual(proof, refSubproof(m, data.slice(0, n), true), `proof ${m}->${n}`);
        const root1 = mth(data.slice(0, m));
        const root2 = mth(data.slice(0, n));
        assert.equal(verifyConsistency(m, n, proof, root1, root2), undefined, `${m}->${n}`);
        if (m < n) assert.notEqual(verifyConsistency(m, n, proof, mth(data.slice(1, m + 1)), root2), undefined);
      }
    }
  });
});
