// RFC 9162 §2.1 Merkle tree hashing, the compact "frontier" that makes appends O(log n), and
// inclusion / consistency proof generation and verification. Hand-written on purpose: there is no
// maintained JavaScript library that implements RFC 9162 proofs conformantly (the Go reference is
// transparency-dev/merkle, whose test vectors test/audit/merkle-vectors.test.ts runs).
import { createHash, hash, timingSafeEqual } from 'node:crypto';

export const HASH_SIZE = 32;
const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/** MTH({}) = SHA-256 of the empty string. */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

// One-shot crypto.hash is markedly cheaper than a createHash() chain for small inputs, and leaves
// and nodes are hashed once per append and twice per entry verified.

/** RFC 9162: leaf hash = SHA-256(0x00 || data). A string is hashed as its UTF-8 bytes. */
export function hashLeaf(data: Uint8Array | string): Buffer {
  // U+0000 encodes as the single byte 0x00 in UTF-8.
  return typeof data === 'string' ? hash('sha256', `\0${data}`, 'buffer') : hash('sha256', Buffer.concat([LEAF_PREFIX, data]), 'buffer');
}

/** RFC 9162: node hash = SHA-256(0x01 || left || right). */
export function hashChildren(left: Uint8Array, right: Uint8Array): Buffer {
  return hash('sha256', Buffer.concat([NODE_PREFIX, left, right]), 'buffer');
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Largest power of two strictly smaller than n (n >= 2). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

const isBitSet = (x: number) => x % 2 === 1;
const half = (x: number) => Math.floor(x / 2);

/**
 * The right edge of a Merkle tree: the roots of its perfect subtrees, largest (leftmost) first.
 * Holds at most log2(size) hashes, so appending a leaf and computing the root are O(log n).
 */
export class Frontier {
  #size: number;
  readonly #hashes: Buffer[];

  constructor(size = 0, hashes: readonly Buffer[] = []) {
    if (!Number.isSafeInteger(size) || size < 0 || popcount(size) !== hashes.length) {
      throw new RangeError(`a frontier of size ${size} needs ${popcount(size)} hashes, got ${hashes.length}`);
    }
    this.#size = size;
    this.#hashes = [...hashes];
  }

  get size(): number {
    return this.#size;
  }

  get hashes(): readonly Buffer[] {
    return this.#hashes;
  }

  /**
   * Appends one leaf hash. `onNode(level, index, hash)` sees every perfect subtree root this
   * completes (level 1 and up), so a store can keep the tile-level nodes (RFC 9162 / tlog-tiles).
   */
  push(leaf: Buffer, onNode?: (level: number, index: number, hash: Buffer) => void): void {
    let hash = leaf;
    let n = this.#size;
    let level = 0;
    while (isBitSet(n)) {
      const left = this.#hashes.pop() as Buffer;
      hash = hashChildren(left, hash);
      n = half(n);
      level++;
      onNode?.(level, n, hash);
    }
    this.#hashes.push(hash);
    this.#size++;
  }

  /**
   * Appends a whole perfect subtree of `2^level` leaves; the tree size must be a multiple of its
   * width. This is how a verifier skips over leaves it does not hold (range proofs of exports).
   */
  pushSubtree(level: number, subtree: Buffer): void {
    const width = 2 ** level;
    if (this.#size % width !== 0) throw new RangeError(`a subtree of ${width} leaves cannot start at ${this.#size}`);
    let hash = subtree;
    let n = this.#size / width;
    while (isBitSet(n)) {
      hash = hashChildren(this.#hashes.pop() as Buffer, hash);
      n = half(n);
    }
    this.#hashes.push(hash);
    this.#size += width;
  }

  root(): Buffer {
    const hashes = this.#hashes;
    if (hashes.length === 0) return EMPTY_ROOT;
    let root = hashes[hashes.length - 1] as Buffer;
    for (let i = hashes.length - 2; i >= 0; i--) root = hashChildren(hashes[i] as Buffer, root);
    return root;
  }

  clone(): Frontier {
    return new Frontier(this.#size, this.#hashes);
  }

  /** Serialized form: the concatenated hashes (the size is stored next to it). */
  encode(): Buffer {
    return Buffer.concat(this.#hashes);
  }

  static decode(size: number, bytes: Uint8Array): Frontier {
    const hashes: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += HASH_SIZE) hashes.push(Buffer.from(bytes.subarray(i, i + HASH_SIZE)));
    return new Frontier(size, hashes);
  }
}

function popcount(n: number): number {
  let count = 0;
  for (let x = n; x > 0; x = half(x)) if (isBitSet(x)) count++;
  return count;
}

/** A perfect subtree: `2^level` leaves starting at leaf `index * 2^level`. */
export interface SubtreeRef {
  readonly level: number;
  readonly index: number;
}

/** The perfect subtrees that make up leaves [lo, hi) when lo is aligned as RFC 9162's recursion guarantees. */
export function decomposeRange(lo: number, hi: number): SubtreeRef[] {
  const out: SubtreeRef[] = [];
  let start = lo;
  while (start < hi) {
    let level = 0;
    while (start % 2 ** (level + 1) === 0 && start + 2 ** (level + 1) <= hi) level++;
    out.push({ level, index: start / 2 ** level });
    start += 2 ** level;
  }
  return out;
}

/** MTH of leaves [lo, hi) from the hashes of its perfect subtrees (folded right to left). */
export function foldRange(parts: readonly Buffer[]): Buffer {
  if (parts.length === 0) return EMPTY_ROOT;
  let root = parts[parts.length - 1] as Buffer;
  for (let i = parts.length - 2; i >= 0; i--) root = hashChildren(parts[i] as Buffer, root);
  return root;
}

/** Root of a perfect subtree from its 2^k bottom hashes (pairwise, level by level). */
export function perfectRoot(hashes: readonly Buffer[]): Buffer {
  let level = [...hashes];
  if (level.length === 0 || (level.length & (level.length - 1)) !== 0) throw new RangeError('a perfect subtree needs 2^k hashes');
  while (level.length > 1) {
    const up: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) up.push(hashChildren(level[i] as Buffer, level[i + 1] as Buffer));
    level = up;
  }
  return level[0] as Buffer;
}

/** A proof as ranges of leaves whose MTH the proof lists, bottom first. */
export type ProofPlan = Array<readonly [lo: number, hi: number]>;

/** RFC 9162 §2.1.3.1 PATH(m, D[n]) as leaf ranges. */
export function inclusionPlan(index: number, size: number): ProofPlan {
  if (!(index >= 0 && index < size)) throw new RangeError(`leaf ${index} is not in a tree of size ${size}`);
  const plan: ProofPlan = [];
  const walk = (m: number, lo: number, hi: number) => {
    const n = hi - lo;
    if (n === 1) return;
    const k = splitPoint(n);
    if (m < k) {
      walk(m, lo, lo + k);
      plan.push([lo + k, hi]);
    } else {
      walk(m - k, lo + k, hi);
      plan.push([lo, lo + k]);
    }
  };
  walk(index, 0, size);
  return plan;
}

/** RFC 9162 §2.1.4.1 PROOF(m, D[n]) as leaf ranges. */
export function consistencyPlan(size1: number, size2: number): ProofPlan {
  if (!(size1 >= 1 && size1 <= size2)) throw new RangeError(`no consistency proof from size ${size1} to ${size2}`);
  const plan: ProofPlan = [];
  const sub = (m: number, lo: number, hi: number, complete: boolean) => {
    const n = hi - lo;
    if (m === n) {
      if (!complete) plan.push([lo, hi]);
      return;
    }
    const k = splitPoint(n);
    if (m <= k) {
      sub(m, lo, lo + k, complete);
      plan.push([lo + k, hi]);
    } else {
      sub(m - k, lo + k, hi, false);
      plan.push([lo, lo + k]);
    }
  };
  sub(size1, 0, size2, true);
  return plan;
}

/** Reads perfect subtree hashes from wherever the tree is kept (store tiles, memory). */
export type SubtreeReader = (refs: readonly SubtreeRef[]) => Promise<Buffer[]>;

/** Resolves a proof plan into hashes with one batched read. */
export async function resolvePlan(plan: ProofPlan, read: SubtreeReader): Promise<Buffer[]> {
  const parts = plan.map(([lo, hi]) => decomposeRange(lo, hi));
  const hashes = await read(parts.flat());
  let at = 0;
  return parts.map((refs) => {
    const slice = hashes.slice(at, at + refs.length);
    at += refs.length;
    return foldRange(slice);
  });
}

/** Why a proof did not verify; `undefined` means it did. */
export type ProofFailure = string | undefined;

/** RFC 9162 §2.1.3.2: verifies that `leafHash` is leaf `index` of the tree of `size` with `root`. */
export function verifyInclusion(
  index: number,
  size: number,
  leafHash: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): ProofFailure {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
    return `leaf index ${index} is outside a tree of size ${size}`;
  }
  if (leafHash.length !== HASH_SIZE) return 'leaf hash has the wrong length';
  if (proof.some((p) => p.length !== HASH_SIZE)) return 'a proof element has the wrong length';
  let fn = index;
  let sn = size - 1;
  let r: Buffer = Buffer.from(leafHash);
  for (const p of proof) {
    if (sn === 0) return 'proof is longer than the tree is deep';
    if (isBitSet(fn) || fn === sn) {
      r = hashChildren(p, r);
      if (!isBitSet(fn)) {
        while (!isBitSet(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) return 'proof is shorter than the tree is deep';
  return equalBytes(r, root) ? undefined : 'computed root does not match';
}

/** RFC 9162 §2.1.4.2: verifies that the tree (size2, root2) extends the tree (size1, root1). */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): ProofFailure {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 < 1 || size2 < size1) {
    return `no consistency proof exists from size ${size1} to size ${size2}`;
  }
  if (size1 === size2) {
    if (proof.length > 0) return 'sizes are equal but the proof is not empty';
    return equalBytes(root1, root2) ? undefined : 'sizes are equal but the roots differ';
  }
  if (proof.length === 0) return 'proof is empty';
  if (proof.some((p) => p.length !== HASH_SIZE)) return 'a proof element has the wrong length';
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (isBitSet(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr: Buffer = Buffer.from(path[0] as Uint8Array);
  let sr: Buffer = Buffer.from(path[0] as Uint8Array);
  for (const c of path.slice(1)) {
    if (sn === 0) return 'proof is longer than expected';
    if (isBitSet(fn) || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      if (!isBitSet(fn)) {
        while (!isBitSet(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  if (sn !== 0) return 'proof is shorter than expected';
  if (!equalBytes(fr, root1)) return 'proof does not lead to the first root';
  if (!equalBytes(sr, root2)) return 'proof does not lead to the second root';
  return undefined;
}

function isPowerOfTwo(n: number): boolean {
  let x = n;
  while (x > 1) {
    if (isBitSet(x)) return false;
    x = half(x);
  }
  return x === 1;
}
