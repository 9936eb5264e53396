// `verify`: recomputes the whole Merkle tree from the stored entries and checks it against every
// stored signed checkpoint, the stored tile hashes and the tree head. It names the first bad index:
// each leaf carries its own position, so an altered, removed or reordered entry is caught where it is.

import type { SqlExecutor } from '../store/types.js';
import { openCheckpoint, parseVkey, type VerifierKey } from './checkpoint.js';
import { readEntryRows, readHead, storedSubtrees, TILE_HEIGHT } from './log.js';
import { consistencyPlan, Frontier, hashLeaf, resolvePlan, verifyConsistency } from './merkle.js';

export interface VerifyFailure {
  /** First leaf index that is wrong or missing, when one can be named. */
  readonly index?: number;
  /** Size of the checkpoint involved, when the failure is about a checkpoint. */
  readonly checkpointSize?: number;
  readonly reason: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  /** Entries read and recomputed. */
  readonly entries: number;
  /** Checkpoints whose signature and root were checked. */
  readonly checkpoints: number;
  /** Recomputed root at the end of the log (hex). */
  readonly root: string;
  readonly failure?: VerifyFailure;
}

export interface VerifyOptions {
  /** Pinned verifier key (vkey text or parsed). Checkpoint signatures are checked against it. */
  readonly vkey: string | VerifierKey;
  /** Expected checkpoint origin; defaults to the vkey name. */
  readonly origin?: string;
  /** Entries read per query. */
  readonly pageSize?: number;
  /** Called after each page with entries done and the stored tree size. */
  readonly onProgress?: (done: number, total: number) => void;
}

type CheckpointRow = {
  size: number;
  root: Uint8Array;
  note: string;
};

/** Verifies the log in `db` (a store or a transaction). Never throws for tampering: it reports. */
export async function verifyLog(db: SqlExecutor, options: VerifyOptions): Promise<VerifyReport> {
  const key = typeof options.vkey === 'string' ? parseVkey(options.vkey) : options.vkey;
  const origin = options.origin ?? key.name;
  const pageSize = options.pageSize ?? 10_000;
  // Checkpoints first, then the head: every checkpoint read was signed from a head no larger than
  // the one read next, so the log can keep growing while it is verified (only the prefix up to
  // that head is checked), and a checkpoint beyond the head is evidence of truncation.
  const checkpoints = (await db.query<CheckpointRow>('SELECT size, root, note FROM audit_checkpoints ORDER BY size')).map((r) => ({
    size: Number(r.size),
    root: Buffer.from(r.root),
    note: r.note,
  }));
  const head = await readHead(db, false);
  const frontier = new Frontier();
  let checked = 0;
  let nextCheckpoint = 0;
  const report = (failure?: VerifyFailure): VerifyReport => ({
    ok: failure === undefined,
    entries: frontier.size,
    checkpoints: checked,
    root: frontier.root().toString('hex'),
    ...(failure === undefined ? {} : { failure }),
  });

  // A checkpoint must carry a valid signature by the pinned key, over the root stored next to it.
  const checkCheckpoint = (c: (typeof checkpoints)[number], prevSize: number): VerifyFailure | undefined => {
    const opened = openCheckpoint(c.note, key, origin);
    if (typeof opened === 'string') return { checkpointSize: c.size, index: prevSize, reason: `checkpoint of size ${c.size}: ${opened}` };
    if (opened.size !== c.size || !opened.root.equals(c.root)) {
      return {
        checkpointSize: c.size,
        index: prevSize,
        reason: `checkpoint of size ${c.size}: the stored row differs from its signed note`,
      };
    }
    const root = frontier.root();
    if (!root.equals(opened.root)) {
      return {
        checkpointSize: c.size,
        index: prevSize,
        reason: `entries [${prevSize}, ${c.size}) do not produce the root signed by the checkpoint of size ${c.size}`,
      };
    }
    checked++;
    return undefined;
  };

  const drainCheckpoints = (): VerifyFailure | undefined => {
    while (nextCheckpoint < checkpoints.length && (checkpoints[nextCheckpoint]?.size ?? 0) <= frontier.size) {
      const c = checkpoints[nextCheckpoint] as (typeof checkpoints)[number];
      if (c.size < frontier.size) return { checkpointSize: c.size, reason: `checkpoint of size ${c.size} was skipped` };
      const prev = nextCheckpoint === 0 ? 0 : (checkpoints[nextCheckpoint - 1]?.size ?? 0);
      const failure = checkCheckpoint(c, prev);
      if (failure !== undefined) return failure;
      nextCheckpoint++;
    }
    return undefined;
  };

  let failure = drainCheckpoints(); // a checkpoint of size 0
  if (failure !== undefined) return report(failure);
  for (;;) {
    const from = frontier.size;
    const rows = await readEntryRows(db, from, Math.min(head.size, from + pageSize));
    const nodes: Array<{ level: number; index: number; hash: Buffer }> = [];
    const onNode = (level: number, index: number, hash: Buffer) => {
      if (level % TILE_HEIGHT === 0) nodes.push({ level, index, hash });
    };
    for (const row of rows) {
      const seq = frontier.size;
      if (row.seq !== seq) return report({ index: seq, reason: `entry ${seq} is missing (next stored entry is ${row.seq})` });
      const leaf = hashLeaf(row.body);
      if (!leaf.equals(row.leaf_hash)) {
        return report({ index: seq, reason: `entry ${seq}: its stored leaf hash does not match its bytes` });
      }
      const claimed = leafSeq(row.body);
      if (claimed !== seq) {
        return report({ index: seq, reason: `entry ${seq}: its bytes belong at index ${claimed ?? 'none (malformed)'}` });
      }
      frontier.push(leaf, onNode);
      if (nextCheckpoint < checkpoints.length && (checkpoints[nextCheckpoint]?.size ?? 0) <= frontier.size) {
        failure = drainCheckpoints();
        if (failure !== undefined) return report(failure);
      }
    }
    failure = await checkStoredNodes(db, nodes);
    if (failure !== undefined) return report(failure);
    options.onProgress?.(frontier.size, head.size);
    if (rows.length < pageSize || frontier.size >= head.size) break;
  }

  if (frontier.size < head.size) {
    return report({
      index: frontier.size,
      reason: `the log is truncated: the tree head says ${head.size} entries, ${frontier.size} are stored`,
    });
  }
  if (!frontier.root().equals(head.root())) return report({ reason: 'the stored tree head does not match the entries' });
  const beyond = checkpoints[nextCheckpoint];
  if (beyond !== undefined) {
    return report({
      index: frontier.size,
      checkpointSize: beyond.size,
      reason: `the log is truncated: a checkpoint signs ${beyond.size} entries, ${frontier.size} are stored`,
    });
  }
  // Successive checkpoints must be consistent: prove it with RFC 9162 consistency proofs built
  // from the (now validated) stored hashes, as any client of the tiles would.
  for (let i = 1; i < checkpoints.length; i++) {
    const a = checkpoints[i - 1] as (typeof checkpoints)[number];
    const b = checkpoints[i] as (typeof checkpoints)[number];
    if (a.size === 0) continue;
    const proof = await resolvePlan(consistencyPlan(a.size, b.size), (refs) => storedSubtrees(db, refs));
    const bad = verifyConsistency(a.size, b.size, proof, a.root, b.root);
    if (bad !== undefined)
      return report({ checkpointSize: b.size, reason: `checkpoints ${a.size} and ${b.size} are inconsistent: ${bad}` });
  }
  return report();
}

/** The position a leaf names for itself (`{"event":…,"seq":N}` ends with its seq). */
function leafSeq(body: string): number | undefined {
  const at = body.lastIndexOf(',"seq":');
  if (at < 0 || !body.startsWith('{"event":{') || !body.endsWith('}')) return undefined;
  const digits = body.slice(at + 7, -1);
  return /^(0|[1-9]\d{0,15})$/.test(digits) ? Number(digits) : undefined;
}

async function checkStoredNodes(db: SqlExecutor, nodes: Array<{ level: number; index: number; hash: Buffer }>) {
  for (const n of nodes) {
    const [row] = await db.query<{ hash: Uint8Array }>('SELECT hash FROM audit_nodes WHERE level = ? AND idx = ?', [n.level, n.index]);
    const first = n.index * 2 ** n.level;
    if (row === undefined || !Buffer.from(row.hash).equals(n.hash)) {
      return { index: first, reason: `stored tree hash for entries [${first}, ${first + 2 ** n.level}) is missing or wrong` };
    }
  }
  return undefined;
}
