// Streaming export of a range of the log as JSON lines: each line is the entry's exact leaf bytes
// (JSONL) or an OCSF-shaped record carrying them in `raw_data`. The last line is a range proof: a
// signed checkpoint plus the subtree hashes left and right of the range, so the exported entries
// alone reproduce the checkpoint's root.
import { z } from 'zod';
import { MandateError } from '../errors/index.js';
import { openCheckpoint, parseVkey } from './checkpoint.js';
import { type AuditEntry, type AuditEvent, decodeLeaf } from './event.js';
import { type AuditService, readEntryRows, storedSubtrees } from './log.js';
import { decomposeRange, Frontier, hashLeaf } from './merkle.js';

export type ExportFormat = 'jsonl' | 'ocsf';

export interface ExportOptions {
  readonly from?: number;
  /** End (exclusive); defaults to the latest checkpoint, signed now when the log grew. */
  readonly to?: number;
  readonly format?: ExportFormat;
  readonly pageSize?: number;
}

export const rangeProofSchema = z.strictObject({
  kind: z.literal('range'),
  checkpoint: z.string(),
  from: z.number().int().min(0),
  to: z.number().int().min(0),
  /** Hashes of the perfect subtrees covering [0, from), largest first (base64). */
  left: z.array(z.string()),
  /** Hashes of the aligned perfect subtrees covering [to, checkpoint size), left to right (base64). */
  right: z.array(z.string()),
});
export type RangeProof = z.infer<typeof rangeProofSchema>;

/** Streams the export, one line (without newline) at a time. */
export async function* exportLog(log: AuditService, options: ExportOptions = {}): AsyncGenerator<string> {
  const from = options.from ?? 0;
  let checkpoint = await log.latestCheckpoint();
  if (checkpoint === undefined || (options.to ?? Number.POSITIVE_INFINITY) > checkpoint.size) {
    checkpoint = (await log.checkpointIfGrown()) ?? checkpoint ?? (await log.checkpoint());
  }
  const to = options.to ?? checkpoint.size;
  if (!(from <= to && to <= checkpoint.size)) {
    throw new MandateError('ERR_AUDIT_RANGE', `range [${from}, ${to}) is outside the signed log (size ${checkpoint.size})`);
  }
  const pageSize = options.pageSize ?? 1000;
  for (let at = from; at < to; at += pageSize) {
    const rows = await readEntryRows(log.db, at, Math.min(to, at + pageSize));
    for (const row of rows) yield options.format === 'ocsf' ? JSON.stringify(toOcsf(decodeLeaf(row.body), row.body, log.origin)) : row.body;
  }
  const read = (lo: number, hi: number) => storedSubtrees(log.db, decomposeRange(lo, hi));
  const proof: RangeProof = {
    kind: 'range',
    checkpoint: checkpoint.note,
    from,
    to,
    left: (await read(0, from)).map((h) => h.toString('base64')),
    right: (await read(to, checkpoint.size)).map((h) => h.toString('base64')),
  };
  yield JSON.stringify({ proof });
}

/** OCSF 1.x API Activity (class 6003) shape; the leaf bytes ride along in `raw_data` for verification. */
export function toOcsf(entry: AuditEntry, leaf: string, origin: string): Record<string, unknown> {
  const e: AuditEvent = entry.event;
  const outcome = typeof e.data.outcome === 'string' ? e.data.outcome : undefined;
  const failed = outcome === 'deny' || e.type.endsWith('.refused') || e.type.endsWith('.rejected') || e.type.endsWith('.failed');
  return {
    class_uid: 6003,
    class_name: 'API Activity',
    category_uid: 6,
    category_name: 'Application Activity',
    activity_id: 99,
    activity_name: e.type,
    type_uid: 600399,
    time: Date.parse(e.time),
    severity_id: 1,
    status_id: failed ? 2 : 1,
    status: failed ? 'Failure' : 'Success',
    metadata: { version: '1.3.0', uid: entry.id, log_name: origin, product: { name: 'Mandate', vendor_name: 'Mandate' } },
    actor: {
      user: e.actors[0] === undefined ? undefined : { uid: e.actors[0].id, type: e.actors[0].type },
      authorizations: e.mandateId === undefined ? undefined : [{ policy: { uid: e.mandateId, name: 'mandate' } }],
    },
    api: { operation: e.type },
    unmapped: { seq: entry.seq, actors: e.actors, mandateId: e.mandateId, environment: e.environment, data: e.data },
    raw_data: leaf,
  };
}

export interface ExportCheck {
  readonly ok: boolean;
  readonly entries: number;
  readonly reason?: string;
  /** First exported line that is wrong, when one can be named. */
  readonly index?: number;
}

/**
 * Verifies an exported file (JSONL or OCSF lines + range proof) with only the pinned vkey: every
 * entry is where it says it is, and together with the proof they reproduce the signed root.
 */
export function verifyExport(lines: readonly string[], vkey: string): ExportCheck {
  const body = lines.filter((l) => l.trim() !== '');
  const last = body.pop();
  let proof: RangeProof;
  try {
    proof = rangeProofSchema.parse((JSON.parse(last ?? '') as { proof?: unknown }).proof);
  } catch {
    return { ok: false, entries: 0, reason: 'the last line is not a range proof' };
  }
  const c = openCheckpoint(proof.checkpoint, parseVkey(vkey));
  if (typeof c === 'string') return { ok: false, entries: 0, reason: `checkpoint: ${c}` };
  if (proof.to - proof.from !== body.length) {
    return { ok: false, entries: body.length, reason: `the proof covers ${proof.to - proof.from} entries, the file has ${body.length}` };
  }
  const b64 = (s: string) => Buffer.from(s, 'base64');
  let frontier: Frontier;
  try {
    frontier = new Frontier(proof.from, proof.left.map(b64));
  } catch {
    return { ok: false, entries: 0, reason: 'the left part of the proof does not fit its start' };
  }
  for (const [i, line] of body.entries()) {
    const index = proof.from + i;
    let leaf = line;
    if (!line.startsWith('{"event":')) {
      const raw = (JSON.parse(line) as { raw_data?: unknown }).raw_data;
      if (typeof raw !== 'string') return { ok: false, entries: i, index, reason: `line ${i + 1} carries no leaf bytes` };
      leaf = raw;
    }
    if (!leaf.endsWith(`,"seq":${index}}`)) return { ok: false, entries: i, index, reason: `line ${i + 1} is not entry ${index}` };
    frontier.push(hashLeaf(leaf));
  }
  const rightRefs = decomposeRange(proof.to, c.size);
  if (rightRefs.length !== proof.right.length)
    return { ok: false, entries: body.length, reason: 'the right part of the proof does not fit' };
  try {
    for (const [i, ref] of rightRefs.entries()) frontier.pushSubtree(ref.level, b64(proof.right[i] ?? ''));
  } catch {
    return { ok: false, entries: body.length, reason: 'the right part of the proof does not fit' };
  }
  if (frontier.size !== c.size || !frontier.root().equals(c.root)) {
    return { ok: false, entries: body.length, reason: 'the entries do not reproduce the signed root' };
  }
  return { ok: true, entries: body.length };
}
