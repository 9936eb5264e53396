// Self-contained proof files: a signed checkpoint plus an RFC 9162 inclusion or consistency proof.
// An auditor checks one with nothing but the log's pinned vkey (`mandate audit verify-proof`).
import { z } from 'zod';
import { openCheckpoint, parseVkey } from './checkpoint.js';
import { hashLeaf, verifyConsistency, verifyInclusion } from './merkle.js';

const b64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/);

export const inclusionBundleSchema = z.strictObject({
  kind: z.literal('inclusion'),
  /** Signed checkpoint note the proof is relative to. */
  checkpoint: z.string(),
  index: z.number().int().min(0),
  /** The leaf bytes (canonical `{"event":…,"seq":N}`); its hash is recomputed. */
  entry: z.string(),
  proof: z.array(b64),
});

export const consistencyBundleSchema = z.strictObject({
  kind: z.literal('consistency'),
  checkpoint1: z.string(),
  checkpoint2: z.string(),
  proof: z.array(b64),
});

export const proofBundleSchema = z.discriminatedUnion('kind', [inclusionBundleSchema, consistencyBundleSchema]);

export type InclusionBundle = z.infer<typeof inclusionBundleSchema>;
export type ConsistencyBundle = z.infer<typeof consistencyBundleSchema>;
export type ProofBundle = z.infer<typeof proofBundleSchema>;

export interface BundleResult {
  readonly ok: boolean;
  readonly reason?: string;
  /** What was proven, for display. */
  readonly summary: string;
}

/** Verifies a proof bundle against a pinned vkey. Never throws on bad input: it reports. */
export function verifyProofBundle(input: unknown, vkey: string): BundleResult {
  let key: ReturnType<typeof parseVkey>;
  try {
    key = parseVkey(vkey);
  } catch (err) {
    return { ok: false, reason: (err as Error).message, summary: 'unusable verifier key' };
  }
  const parsed = proofBundleSchema.safeParse(input);
  if (!parsed.success) return { ok: false, reason: 'not a Mandate proof bundle', summary: 'malformed bundle' };
  const bundle = parsed.data;
  const proof = bundle.proof.map((p) => Buffer.from(p, 'base64'));
  if (bundle.kind === 'inclusion') {
    const summary = `entry ${bundle.index} is in the log`;
    const c = openCheckpoint(bundle.checkpoint, key);
    if (typeof c === 'string') return { ok: false, reason: `checkpoint: ${c}`, summary };
    const failure = verifyInclusion(bundle.index, c.size, hashLeaf(bundle.entry), proof, c.root);
    return failure === undefined
      ? { ok: true, summary: `${summary} of size ${c.size} (${c.origin})` }
      : { ok: false, reason: failure, summary };
  }
  const summary = 'the later checkpoint extends the earlier one';
  const c1 = openCheckpoint(bundle.checkpoint1, key);
  const c2 = openCheckpoint(bundle.checkpoint2, key);
  if (typeof c1 === 'string') return { ok: false, reason: `checkpoint1: ${c1}`, summary };
  if (typeof c2 === 'string') return { ok: false, reason: `checkpoint2: ${c2}`, summary };
  if (c1.origin !== c2.origin) return { ok: false, reason: 'the checkpoints are from different logs', summary };
  const failure = verifyConsistency(c1.size, c2.size, proof, c1.root, c2.root);
  return failure === undefined
    ? { ok: true, summary: `checkpoint of size ${c2.size} extends checkpoint of size ${c1.size} (${c1.origin})` }
    : { ok: false, reason: failure, summary };
}
