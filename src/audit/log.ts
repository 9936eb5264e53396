// The store-backed audit log: group-committed, gap-free appends to an RFC 9162 Merkle tree, salted
// HMAC redaction, signed checkpoints, proofs and tlog-tiles reads. One implementation serves SQLite
// and PostgreSQL: appends go through the store's group commit (src/store/group-commit.ts) and each
// batch locks the single tree-head row, so any number of replicas append through one sequencer
// (the database) and the log can neither gap nor fork.
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { MandateError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { Metrics } from '../observability/metrics.js';
import { SPANS, SpanStatusCode, type Tracing } from '../observability/tracing.js';
import type { SecretBox } from '../secrets/secret-box.js';
import { type BatchCommit, GroupCommit, inTransaction } from '../store/group-commit.js';
import type { SqlExecutor, SqlValue, Store } from '../store/types.js';
import { insertStatements, type WriteStatement } from '../store/write-batch.js';
import { type Checkpoint, NoteSigner } from './checkpoint.js';
import { type AuditEntry, columnsOf, decodeLeaf, type EventColumns, encodeEvent, eventId, leafBytes, REDACTED_PREFIX } from './event.js';
import { consistencyPlan, Frontier, HASH_SIZE, hashLeaf, inclusionPlan, perfectRoot, resolvePlan, type SubtreeRef } from './merkle.js';
import type { ConsistencyBundle, InclusionBundle } from './proof-bundle.js';
import type { AppendOptions, AuditEventInput, AuditLog, AuditReceipt } from './types.js';

/** tlog-tiles: every tile is 256 hashes wide and tile level L holds tree level 8L. */
export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 256;

export interface AuditServiceOptions {
  readonly store: Store;
  readonly secrets: SecretBox;
  readonly clock: Clock;
  /** Checkpoint origin and signing key name. */
  readonly origin: string;
  readonly maxBatch?: number;
  /** Sign a checkpoint this often when the log grew; 0 or undefined: on demand only. */
  readonly checkpointIntervalMs?: number;
  /** Called when a background checkpoint fails (logged by the caller). */
  readonly onBackgroundError?: (err: unknown) => void;
  /** Append latency (submission to durable commit) is recorded here. */
  readonly metrics?: Pick<Metrics, 'auditAppended'>;
  /** When tracing is on, each append is a span (a child of the caller's active span). */
  readonly tracing?: Tracing;
}

export interface TreeHead {
  readonly size: number;
  readonly root: Buffer;
}

export interface StoredCheckpoint {
  readonly size: number;
  readonly root: Buffer;
  /** The signed note text, as served at /audit/log/checkpoint. */
  readonly note: string;
  readonly createdAt: number;
}

/** One event waiting for its batch: what the write needs, encoded before it was queued. */
interface Pending {
  readonly canonical: string;
  readonly type: string;
  readonly mandateId: string | null;
  /** Derived from the built event; stored beside the leaf, never hashed. */
  readonly columns: EventColumns;
}

const SALT_META = 'hmac_salt';
const KEY_META = 'checkpoint_key';
const ENTRY_COLUMNS =
  'audit_entries (seq, type, mandate_id, decision_id, approval_id, created_at, body, leaf_hash, outcome, tool, action_class, environment, policies)';
const UPDATE_HEAD = 'UPDATE audit_head SET size = ?, frontier = ?, updated_at = ? WHERE id = 1';
/** Rebuilds of one batch on a moved head before the append fails (another writer keeps winning). */
const HEAD_ATTEMPTS = 8;

/** Reads and writes the audit tables. Shared by the log and by verify. */
export async function readHead(tx: SqlExecutor, forUpdate: boolean): Promise<Frontier> {
  const lock = forUpdate && tx.dialect === 'postgres' ? ' FOR UPDATE' : '';
  const [row] = await tx.query<{ size: number; frontier: Uint8Array }>(`SELECT size, frontier FROM audit_head WHERE id = 1${lock}`);
  if (row === undefined) throw new MandateError('ERR_AUDIT_UNAVAILABLE', 'the audit tree head is missing');
  return Frontier.decode(Number(row.size), row.frontier);
}

/** Sealed per-log material, created once by whichever replica gets there first. */
async function sealedMeta(store: Store, secrets: SecretBox, name: string, create: () => Buffer): Promise<Buffer> {
  const context = `audit_meta:${name}`;
  await store.run('INSERT INTO audit_meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING', [
    name,
    secrets.seal(create(), context),
  ]);
  const [row] = await store.query<{ value: string }>('SELECT value FROM audit_meta WHERE name = ?', [name]);
  if (row === undefined) throw new MandateError('ERR_AUDIT_UNAVAILABLE', `audit ${name} is missing`);
  const plain = secrets.open(row.value, context);
  // After a master key rotation, re-seal under the new active key (only if nobody did meanwhile).
  if (secrets.needsReseal(row.value)) {
    await store.run('UPDATE audit_meta SET value = ? WHERE name = ? AND value = ?', [secrets.seal(plain, context), name, row.value]);
  }
  return plain;
}

export class AuditService implements AuditLog {
  readonly #store: Store;
  readonly #clock: Clock;
  readonly #salt: Buffer;
  readonly #signer: NoteSigner;
  /** The store's group commit: one transaction (one fsync, one tree-head lock) per batch. */
  readonly #writer: GroupCommit<Pending, AuditReceipt>;
  readonly #metrics: AuditServiceOptions['metrics'];
  readonly #tracing: Tracing | undefined;
  /** SQLite: the tree head as this log's last batch left it; undefined: read it before the next batch. */
  #head: Frontier | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  private constructor(options: AuditServiceOptions, salt: Buffer, signer: NoteSigner) {
    this.#store = options.store;
    this.#clock = options.clock;
    this.#salt = salt;
    this.#signer = signer;
    this.#metrics = options.metrics;
    this.#tracing = options.tracing;
    // SQLite: batches built on the cached head, applied off the event loop; PostgreSQL: the head-row lock.
    const onHead = options.store.dialect === 'sqlite';
    const commit: BatchCommit<Pending, AuditReceipt> = onHead
      ? (batch, committed) => this.#commitOnHead(batch, committed)
      : inTransaction(options.store, (tx, batch) => this.#commitLocked(tx, batch));
    this.#writer = new GroupCommit(commit, {
      maxBatch: options.maxBatch ?? 1024,
      // SQLite: the next batch is built and handed to the writer thread while the one before it waits for its fsync.
      pipeline: onHead ? 2 : 1,
      // A request's events come from several I/O callbacks of one turn: let them share a batch.
      gather: true,
      // Fail closed: every append of a failed batch rejects with the one audit failure code. The
      // batch's transaction rolled back, so the next batch re-reads the committed tree head.
      failure: (err) =>
        err instanceof MandateError && err.code === 'ERR_AUDIT_UNAVAILABLE'
          ? err
          : new MandateError('ERR_AUDIT_UNAVAILABLE', undefined, { cause: err }),
      closed: () => new MandateError('ERR_AUDIT_UNAVAILABLE', 'the audit log is closed'),
    });
    const interval = options.checkpointIntervalMs ?? 0;
    if (interval > 0) {
      this.#timer = setInterval(() => {
        this.checkpointIfGrown().catch((err: unknown) => options.onBackgroundError?.(err));
      }, interval);
      this.#timer.unref();
    }
  }

  /** Opens the log on a migrated store: loads (or creates) the HMAC salt and the checkpoint key. */
  static async open(options: AuditServiceOptions): Promise<AuditService> {
    const salt = await sealedMeta(options.store, options.secrets, SALT_META, () => randomBytes(32));
    const pkcs8 = await sealedMeta(options.store, options.secrets, KEY_META, () =>
      generateKeyPairSync('ed25519').privateKey.export({ format: 'der', type: 'pkcs8' }),
    );
    return new AuditService(options, salt, new NoteSigner(options.origin, pkcs8));
  }

  /** The store the log lives in (read-only use: verify, export). */
  get db(): SqlExecutor {
    return this.#store;
  }

  get origin(): string {
    return this.#signer.name;
  }

  /** The C2SP signed-note verifier key of this log's checkpoints. */
  get vkey(): string {
    return this.#signer.vkey;
  }

  redact(secret: string): string {
    return `${REDACTED_PREFIX}${createHmac('sha256', this.#salt).update(secret).digest('base64url')}`;
  }

  append(input: AuditEventInput, options?: AppendOptions): Promise<AuditReceipt> {
    if (this.#closed) return Promise.reject(new MandateError('ERR_AUDIT_UNAVAILABLE', 'the audit log is closed'));
    let encoded: ReturnType<typeof encodeEvent>;
    try {
      encoded = encodeEvent(input, this.#clock.now(), (secret) => this.redact(secret));
    } catch (err) {
      return Promise.reject(err);
    }
    const started = performance.now();
    const written = this.#writer.submit(
      {
        canonical: encoded.canonical,
        type: input.type,
        mandateId: input.mandateId ?? null,
        columns: columnsOf(encoded.event),
      },
      options?.wait,
    );
    const metrics = this.#metrics;
    const span = this.#tracing?.tracer.startSpan(SPANS.auditAppend, { attributes: { 'mandate.audit.event_type': input.type } });
    if (metrics === undefined && span === undefined) return written;
    return written.then(
      (receipt) => {
        metrics?.auditAppended((performance.now() - started) / 1000);
        span?.end();
        return receipt;
      },
      (err: unknown) => {
        span?.setStatus({ code: SpanStatusCode.ERROR, message: 'ERR_AUDIT_UNAVAILABLE' });
        span?.end();
        throw err;
      },
    );
  }

  /**
   * SQLite (one writing process): the batch extends the tree head as this log's previous batch left
   * it and is applied as a write batch, which the store runs in its writer thread, off the event
   * loop; the next batch may be built on it and sent before it is durable (the group commit's
   * pipeline). The head row's update is the batch's guard: if the head is not where the batch was
   * built (the batch before it failed, or a second log on the same file appended), nothing is
   * applied and the batch is rebuilt on the head read afresh. `committed` hears of the COMMIT of
   * the attempt that applied, before its fsync.
   */
  async #commitOnHead(batch: readonly Pending[], committed?: (receipts: readonly AuditReceipt[]) => void): Promise<AuditReceipt[]> {
    const now = this.#clock.now();
    for (let attempt = 1; ; attempt++) {
      const base = this.#head ?? (await readHead(this.#store, false));
      const frontier = base.clone();
      const { receipts, statements } = extend(frontier, batch, now);
      this.#head = frontier;
      const guard = { sql: `${UPDATE_HEAD} AND size = ?`, params: [frontier.size, frontier.encode(), now, base.size], expectChanges: 1 };
      let applied = false;
      try {
        applied = await this.#store.writeBatch([guard, ...statements], committed && (() => committed(receipts)));
      } finally {
        // Unknown after a failure (it may even have committed), moved after a refusal: read it again,
        // unless a later batch has already been built on a head of its own.
        if (!applied && this.#head === frontier) this.#head = undefined;
      }
      if (applied) return receipts;
      if (attempt === HEAD_ATTEMPTS) throw new MandateError('ERR_AUDIT_UNAVAILABLE', 'the audit tree head kept moving under other writers');
    }
  }

  /** PostgreSQL (replicas append at once): the batch locks the head row in its transaction and extends what it read. */
  async #commitLocked(tx: SqlExecutor, batch: readonly Pending[]): Promise<AuditReceipt[]> {
    const now = this.#clock.now();
    const frontier = await readHead(tx, true);
    const { receipts, statements } = extend(frontier, batch, now);
    for (const s of statements) await tx.run(s.sql, s.params);
    await tx.run(UPDATE_HEAD, [frontier.size, frontier.encode(), now]);
    return receipts;
  }

  /** Waits for queued appends, stops the checkpoint timer. The store is closed by its owner. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    await this.#writer.close();
  }

  /** The current tree head (size and RFC 9162 root). */
  async head(): Promise<TreeHead> {
    const frontier = await readHead(this.#store, false);
    return { size: frontier.size, root: frontier.root() };
  }

  /** Signs a checkpoint of the current tree head and stores it (idempotent per size). */
  async checkpoint(): Promise<StoredCheckpoint> {
    const head = await this.head();
    const c: Checkpoint = { origin: this.origin, size: head.size, root: head.root };
    await this.#store.run(
      'INSERT INTO audit_checkpoints (size, root, note, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (size) DO NOTHING',
      [c.size, c.root, this.#signer.sign(c), this.#clock.now()],
    );
    const stored = await this.checkpointAt(c.size);
    if (stored === undefined) throw new MandateError('ERR_AUDIT_UNAVAILABLE', 'the checkpoint was not stored');
    return stored;
  }

  /** Signs a checkpoint only when the log grew since the latest one. */
  async checkpointIfGrown(): Promise<StoredCheckpoint | undefined> {
    const [latest, head] = await Promise.all([this.latestCheckpoint(), this.head()]);
    if (latest !== undefined && latest.size >= head.size) return undefined;
    return this.checkpoint();
  }

  async latestCheckpoint(): Promise<StoredCheckpoint | undefined> {
    const [row] = await this.#store.query<CheckpointRow>(
      'SELECT size, root, note, created_at FROM audit_checkpoints ORDER BY size DESC LIMIT 1',
    );
    return row === undefined ? undefined : toCheckpoint(row);
  }

  async checkpointAt(size: number): Promise<StoredCheckpoint | undefined> {
    const [row] = await this.#store.query<CheckpointRow>('SELECT size, root, note, created_at FROM audit_checkpoints WHERE size = ?', [
      size,
    ]);
    return row === undefined ? undefined : toCheckpoint(row);
  }

  /** Every stored checkpoint, smallest first. */
  async checkpoints(): Promise<StoredCheckpoint[]> {
    return (await this.#store.query<CheckpointRow>('SELECT size, root, note, created_at FROM audit_checkpoints ORDER BY size')).map(
      toCheckpoint,
    );
  }

  /** Entries [from, to) in order (at most 1,000 per call). */
  async entries(from: number, to: number): Promise<AuditEntry[]> {
    return (await readEntryRows(this.#store, from, Math.min(to, from + 1000))).map((r) => decodeLeaf(r.body));
  }

  async entry(seq: number): Promise<AuditEntry | undefined> {
    const [row] = await readEntryRows(this.#store, seq, seq + 1);
    return row === undefined ? undefined : decodeLeaf(row.body);
  }

  /** Entries whose indexed mandate, decision or approval id equals `value`. */
  async entriesBy(
    column: 'mandate_id' | 'decision_id' | 'approval_id',
    value: string,
    options: { types?: readonly string[]; limit?: number } = {},
  ): Promise<AuditEntry[]> {
    const types = options.types ?? [];
    const typeFilter = types.length === 0 ? '' : ` AND type IN (${types.map(() => '?').join(', ')})`;
    const rows = await this.#store.query<{ body: string }>(
      `SELECT body FROM audit_entries WHERE ${column} = ?${typeFilter} ORDER BY seq LIMIT ?`,
      [value, ...types, options.limit ?? 1000],
    );
    return rows.map((r) => decodeLeaf(r.body));
  }

  /** RFC 9162 inclusion proof of leaf `seq` in the tree of `size` (default: current). */
  async inclusionProof(seq: number, size?: number): Promise<{ size: number; leafHash: Buffer; proof: Buffer[] }> {
    const treeSize = await this.#checkSize(size);
    if (!Number.isSafeInteger(seq) || seq < 0 || seq >= treeSize) {
      throw new MandateError('ERR_AUDIT_RANGE', `leaf ${seq} is not in a tree of size ${treeSize}`);
    }
    const [leaf] = await storedHashes(this.#store, 0, seq, seq + 1);
    const proof = await resolvePlan(inclusionPlan(seq, treeSize), (refs) => storedSubtrees(this.#store, refs));
    return { size: treeSize, leafHash: leaf as Buffer, proof };
  }

  /** RFC 9162 consistency proof between two tree sizes. */
  async consistencyProof(size1: number, size2?: number): Promise<{ size1: number; size2: number; proof: Buffer[] }> {
    const to = await this.#checkSize(size2);
    if (!Number.isSafeInteger(size1) || size1 < 1 || size1 > to) {
      throw new MandateError('ERR_AUDIT_RANGE', `no consistency proof from size ${size1} to ${to}`);
    }
    const proof = await resolvePlan(consistencyPlan(size1, to), (refs) => storedSubtrees(this.#store, refs));
    return { size1, size2: to, proof };
  }

  /** A self-contained inclusion proof of entry `seq` against the latest checkpoint (signed now if needed). */
  async inclusionBundle(seq: number): Promise<InclusionBundle> {
    let c = await this.latestCheckpoint();
    if (c === undefined || c.size <= seq) c = await this.checkpoint();
    const { proof } = await this.inclusionProof(seq, c.size);
    const [row] = await readEntryRows(this.#store, seq, seq + 1);
    if (row === undefined) throw new MandateError('ERR_AUDIT_RANGE', `no entry ${seq}`);
    return { kind: 'inclusion', checkpoint: c.note, index: seq, entry: row.body, proof: proof.map((h) => h.toString('base64')) };
  }

  /** A self-contained consistency proof between two signed checkpoints (`size2` defaults to the latest). */
  async consistencyBundle(size1: number, size2?: number): Promise<ConsistencyBundle> {
    const c1 = await this.checkpointAt(size1);
    const c2 = size2 === undefined ? await this.latestCheckpoint() : await this.checkpointAt(size2);
    if (c1 === undefined || c2 === undefined) {
      throw new MandateError('ERR_AUDIT_RANGE', `no signed checkpoint of size ${c1 === undefined ? size1 : size2}`);
    }
    const { proof } = await this.consistencyProof(c1.size, c2.size);
    return { kind: 'consistency', checkpoint1: c1.note, checkpoint2: c2.note, proof: proof.map((h) => h.toString('base64')) };
  }

  /** RFC 9162 root of the tree of `size` (a past size too), from stored hashes. */
  async rootAt(size: number): Promise<Buffer> {
    const treeSize = await this.#checkSize(size);
    const [root] = await resolvePlan([[0, treeSize]], (refs) => storedSubtrees(this.#store, refs));
    return root as Buffer;
  }

  async #checkSize(size: number | undefined): Promise<number> {
    const head = await readHead(this.#store, false);
    if (size === undefined) return head.size;
    if (!Number.isSafeInteger(size) || size < 0 || size > head.size) {
      throw new MandateError('ERR_AUDIT_RANGE', `tree size ${size} is outside the log (size ${head.size})`);
    }
    return size;
  }

  /**
   * tlog-tiles hash tile: hashes of tree level 8L, indices [256N, 256N + width). Throws
   * ERR_AUDIT_RANGE when those hashes do not exist yet (a client asked beyond the tree).
   */
  async tile(level: number, index: number, width: number = TILE_WIDTH): Promise<Buffer> {
    const from = index * TILE_WIDTH;
    const hashes = await storedHashes(this.#store, level * TILE_HEIGHT, from, from + width);
    if (hashes.length !== width) throw new MandateError('ERR_AUDIT_RANGE', `tile ${level}/${index} has fewer than ${width} hashes`);
    return Buffer.concat(hashes);
  }

  /** tlog-tiles entry bundle: each leaf prefixed by its 16-bit big-endian length. */
  async entryBundle(index: number, width: number = TILE_WIDTH): Promise<Buffer> {
    const from = index * TILE_WIDTH;
    const rows = await readEntryRows(this.#store, from, from + width);
    if (rows.length !== width) throw new MandateError('ERR_AUDIT_RANGE', `entry bundle ${index} has fewer than ${width} entries`);
    const parts: Buffer[] = [];
    for (const r of rows) {
      const bytes = Buffer.from(r.body);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(bytes.length);
      parts.push(len, bytes);
    }
    return Buffer.concat(parts);
  }
}

/** Stored hashes of tree level `level` (0 or a multiple of 8), indices [from, to). */
export async function storedHashes(db: SqlExecutor, level: number, from: number, to: number): Promise<Buffer[]> {
  if (level === 0) return (await readEntryRows(db, from, to)).map((r) => Buffer.from(r.leaf_hash));
  const rows = await db.query<{ hash: Uint8Array }>('SELECT hash FROM audit_nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx', [
    level,
    from,
    to,
  ]);
  return rows.map((r) => Buffer.from(r.hash));
}

/** Perfect subtree hashes, folded up from the nearest stored tile level below each. */
export async function storedSubtrees(db: SqlExecutor, refs: readonly SubtreeRef[]): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const ref of refs) {
    const base = ref.level - (ref.level % TILE_HEIGHT);
    const span = 2 ** (ref.level - base);
    const hashes = await storedHashes(db, base, ref.index * span, (ref.index + 1) * span);
    if (hashes.length !== span) throw new MandateError('ERR_AUDIT_UNAVAILABLE', 'stored tree hashes are missing');
    out.push(perfectRoot(hashes));
  }
  return out;
}

type CheckpointRow = {
  size: number;
  root: Uint8Array;
  note: string;
  created_at: number;
};

function toCheckpoint(row: CheckpointRow): StoredCheckpoint {
  return { size: Number(row.size), root: Buffer.from(row.root), note: row.note, createdAt: Number(row.created_at) };
}

export type EntryRow = {
  seq: number;
  body: string;
  leaf_hash: Uint8Array;
};

export async function readEntryRows(db: SqlExecutor, from: number, to: number): Promise<EntryRow[]> {
  const rows = await db.query<EntryRow>('SELECT seq, body, leaf_hash FROM audit_entries WHERE seq >= ? AND seq < ? ORDER BY seq', [
    from,
    to,
  ]);
  for (const r of rows) r.seq = Number(r.seq);
  return rows;
}

/** Extends `frontier` by the batch's leaves: the receipts, and the entry and tile-node rows to insert. */
function extend(frontier: Frontier, batch: readonly Pending[], now: number): { receipts: AuditReceipt[]; statements: WriteStatement[] } {
  const receipts: AuditReceipt[] = [];
  const rows: SqlValue[][] = [];
  const nodes: SqlValue[][] = [];
  for (const p of batch) {
    const seq = frontier.size;
    const body = leafBytes(p.canonical, seq);
    const leaf = hashLeaf(body);
    frontier.push(leaf, (level, index, hash) => {
      if (level % TILE_HEIGHT === 0) nodes.push([level, index, hash]);
    });
    const c = p.columns;
    rows.push([
      seq,
      p.type,
      p.mandateId,
      c.decisionId,
      c.approvalId,
      now,
      body,
      leaf,
      c.outcome,
      c.tool,
      c.actionClass,
      c.environment,
      c.policies,
    ]);
    receipts.push({ seq, id: eventId(seq), leafHash: leaf.toString('hex') });
  }
  const statements = insertStatements(ENTRY_COLUMNS, rows);
  if (nodes.length > 0) statements.push(...insertStatements('audit_nodes (level, idx, hash)', nodes));
  return { receipts, statements };
}

/** Hash size, re-exported for callers that parse tiles. */
export { HASH_SIZE };
