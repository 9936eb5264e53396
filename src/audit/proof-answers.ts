// The proofs the admin API serves and `mandate audit prove` prints: one shape from one place.
// RFC 9162 paths for any sizes inside the log, plus a self-contained signed bundle
// (proof-bundle.ts) when both ends are signed checkpoints, so it can be checked offline.

import type { AuditService } from './log.js';
import type { ConsistencyBundle, InclusionBundle } from './proof-bundle.js';

const b64 = (h: Buffer) => h.toString('base64');

export interface InclusionAnswer {
  readonly leafIndex: number;
  readonly treeSize: number;
  readonly leafHash: string;
  readonly inclusionPath: readonly string[];
  /** Against the latest checkpoint (signed now if needed); only when no explicit `size` was asked for. */
  readonly bundle?: InclusionBundle;
}

export interface ConsistencyAnswer {
  readonly treeSize1: number;
  readonly treeSize2: number;
  readonly consistencyPath: readonly string[];
  /** Present when both sizes are signed checkpoints. */
  readonly bundle?: ConsistencyBundle;
}

/** Inclusion of entry `index` in the tree of `size` (default: the current tree). */
export async function inclusionAnswer(audit: AuditService, index: number, size?: number): Promise<InclusionAnswer> {
  const p = await audit.inclusionProof(index, size);
  return {
    leafIndex: index,
    treeSize: p.size,
    leafHash: b64(p.leafHash),
    inclusionPath: p.proof.map(b64),
    ...(size === undefined ? { bundle: await audit.inclusionBundle(index) } : {}),
  };
}

/** Consistency of the tree of `from` with the tree of `to` (default: the current tree). */
export async function consistencyAnswer(audit: AuditService, from: number, to?: number): Promise<ConsistencyAnswer> {
  const p = await audit.consistencyProof(from, to);
  const signed = (await audit.checkpointAt(p.size1)) !== undefined && (await audit.checkpointAt(p.size2)) !== undefined;
  return {
    treeSize1: p.size1,
    treeSize2: p.size2,
    consistencyPath: p.proof.map(b64),
    ...(signed ? { bundle: await audit.consistencyBundle(p.size1, p.size2) } : {}),
  };
}
