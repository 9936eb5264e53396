// Durable MCP tasks (`broker.tasks`): a tools/call that waits for a human approval becomes a task
// row any replica can serve. Every transition is one conditional UPDATE, so two replicas racing
// (claim against claim, cancel against claim, sweep against complete) leave exactly one winner.
//
// Exactly once, and what a crash costs: a call is forwarded only by the replica whose claim moved
// the task `working → forwarding`. A claim is never re-taken. If that replica dies before it
// records the result, nobody can know whether the upstream ran the call, so after the claim's
// bound (2 × the upstream timeout) the task ends `failed` with RPC_TASK_OUTCOME_UNKNOWN instead of
// being forwarded a second time: at most once, and an honest answer when it is not exactly once.

import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { AuditLog } from '../audit/types.js';
import type { Clock } from '../lib/clock.js';
import type { SecretBox } from '../secrets/secret-box.js';
import type { ChangeFeed } from '../store/changes.js';
import type { SqlExecutor, SqlValue, Store } from '../store/types.js';
import { isTerminal, type StoredTask, type TaskError, type TaskStatus, taskError, toWireTask } from './task.js';

export const TASK_TOPIC = 'task';
/** The mandate change topic (src/mandates/service.ts MANDATE_TOPIC), named here so tasks import no domain above them. */
const MANDATE_TOPIC = 'mandate';

/** Longest task id accepted from a client; ours are 48 characters. Anything longer is not ours. */
const MAX_TASK_ID = 64;
/** Rows one sweep pass handles per kind, so a backlog never turns into one huge transaction. */
const SWEEP_BATCH = 500;

export interface TaskServiceOptions {
  readonly store: Store;
  readonly clock: Clock;
  /** Seals the call arguments and the result at rest (the broker's master key). */
  readonly secrets: SecretBox;
  readonly changes: Pick<ChangeFeed, 'publish' | 'subscribe'>;
  readonly audit: AuditLog;
  /** Suggested polling interval sent with every task (`pollIntervalMs`). */
  readonly pollIntervalMs: number;
  /** Least TTL of a task, from creation (a longer one asked for in `create` wins). */
  readonly ttlMs: number;
  /** How long an ended task stays readable after its TTL before it is deleted. */
  readonly retentionMs: number;
  /** Upstream timeout used for a claim's bound when the caller gives none. */
  readonly defaultForwardTimeoutMs: number;
  /** How often the sweep runs; 0 disables the timer (tests call `sweep()`). */
  readonly sweepIntervalMs?: number;
  /** Identifies this replica in `claimed_by` (diagnostics only). */
  readonly replicaId?: string;
}

export interface CreateTaskInput {
  readonly mandateId: string;
  readonly approvalId: string;
  readonly callHash: string;
  readonly tool: string;
  /** The real call arguments, needed to forward the call later; sealed at rest. */
  readonly args: Record<string, unknown>;
  readonly statusMessage: string;
  /** Asked-for TTL; the task gets at least the configured `gateway.tasks.ttlMs`. */
  readonly ttlMs?: number;
}

export interface ClaimOptions {
  /** The upstream timeout the forward will use; the claim is bound to twice this. */
  readonly forwardTimeoutMs?: number;
}

interface TaskRow {
  [key: string]: unknown;
  id: string;
  mandate_id: string;
  approval_id: string;
  call_hash: string;
  tool: string;
  args_sealed: string;
  status: TaskStatus;
  status_message: string | null;
  result_sealed: string | null;
  error: string | null;
  created_at: number | string;
  updated_at: number | string;
  ttl_ms: number | string;
  expires_at: number | string;
  claimed_by: string | null;
  claimed_at: number | string | null;
  claim_expires_at: number | string | null;
}

const COLUMNS =
  'id, mandate_id, approval_id, call_hash, tool, args_sealed, status, status_message, result_sealed, error, created_at, updated_at, ttl_ms, expires_at, claimed_by, claimed_at, claim_expires_at';

const argsContext = (id: string) => `task-args:${id}`;
const resultContext = (id: string) => `task-result:${id}`;

export class TaskService {
  readonly #o: TaskServiceOptions;
  readonly #replicaId: string;
  #timer: NodeJS.Timeout | undefined;
  #offMandate: (() => void) | undefined;
  #sweeping: Promise<unknown> | undefined;

  constructor(options: TaskServiceOptions) {
    this.#o = options;
    this.#replicaId = options.replicaId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  }

  /** Suggested polling interval (ms) sent with every task. */
  get pollIntervalMs(): number {
    return this.#o.pollIntervalMs;
  }

  /**
   * Starts the periodic sweep and follows mandate changes: tasks of a mandate that ended are
   * cancelled on whichever replica sees the change first (the others' updates change nothing).
   */
  start(): void {
    this.#offMandate = this.#o.changes.subscribe(MANDATE_TOPIC, async (change) => {
      const { status, ids } = change.data;
      if (typeof status !== 'string' || status === 'active') return;
      const ended = Array.isArray(ids) ? ids.filter((x): x is string => typeof x === 'string') : [change.key];
      await this.endForMandates(ended, status).catch(() => {});
    });
    const every = this.#o.sweepIntervalMs ?? 30_000;
    if (every > 0) {
      this.#timer = setInterval(() => void this.sweep().catch(() => {}), every);
      this.#timer.unref();
    }
  }

  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#offMandate?.();
    await this.#sweeping?.catch(() => {});
  }

  /** TTL for a task that waits for an approval expiring at `approvalExpiresAt`: the configured TTL, or longer so the task outlives the approval. */
  ttlFor(approvalExpiresAt: number, forwardTimeoutMs = this.#o.defaultForwardTimeoutMs): number {
    return Math.max(this.#o.ttlMs, approvalExpiresAt - this.#o.clock.now() + 2 * forwardTimeoutMs);
  }

  /**
   * Creates a `working` task for a call waiting for approval `approvalId`. Resolves only after the
   * row is committed, so a `tasks/get` on any replica finds it (the extension requires this before
   * a CreateTaskResult is returned).
   */
  async create(input: CreateTaskInput): Promise<StoredTask> {
    const now = this.#o.clock.now();
    const id = `task_${randomBytes(32).toString('base64url')}`;
    const ttlMs = Math.max(this.#o.ttlMs, Math.floor(input.ttlMs ?? 0));
    const sealed = this.#o.secrets.seal(JSON.stringify(input.args), argsContext(id));
    await this.#transition(id, input.mandateId, 'working', async (tx) => {
      await tx.run(`INSERT INTO tasks (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 'working', ?, NULL, NULL, ?, ?, ?, ?, NULL, NULL, NULL)`, [
        id,
        input.mandateId,
        input.approvalId,
        input.callHash,
        input.tool,
        sealed,
        input.statusMessage,
        now,
        now,
        ttlMs,
        now + ttlMs,
      ]);
      return true;
    });
    const task = await this.get(id, input.mandateId);
    if (task === undefined) throw new Error(`task ${id} vanished after commit`);
    return task;
  }

  /**
   * The task, if it exists AND belongs to `mandateId`; otherwise undefined (the same answer for
   * "missing" and "someone else's", so a task id leaks nothing about other mandates).
   */
  async get(taskId: string, mandateId: string): Promise<StoredTask | undefined> {
    if (typeof taskId !== 'string' || taskId.length === 0 || taskId.length > MAX_TASK_ID) return undefined;
    const [row] = await this.#o.store.query<TaskRow>(`SELECT ${COLUMNS} FROM tasks WHERE id = ? AND mandate_id = ?`, [taskId, mandateId]);
    return row === undefined ? undefined : this.#fromRow(row);
  }

  /** The newest task of `mandateId` still waiting on `approvalId` (a retried call reuses it instead of opening another). */
  async findByApproval(approvalId: string, mandateId: string): Promise<StoredTask | undefined> {
    const [row] = await this.#o.store.query<TaskRow>(
      `SELECT ${COLUMNS} FROM tasks WHERE approval_id = ? AND mandate_id = ? AND status IN ('working', 'forwarding') AND expires_at > ?
        ORDER BY created_at DESC LIMIT 1`,
      [approvalId, mandateId, this.#o.clock.now()],
    );
    return row === undefined ? undefined : this.#fromRow(row);
  }

  /**
   * Takes the right to forward: `working → forwarding` by one conditional UPDATE, so of any number
   * of requests on any number of replicas exactly one gets the arguments. Fails (undefined) when
   * the task is missing, another mandate's, past its TTL, cancelled, ended or already claimed.
   * The claim is bound to 2 × `forwardTimeoutMs`; the task's TTL is stretched to cover it.
   */
  async claim(
    taskId: string,
    mandateId: string,
    options: ClaimOptions = {},
  ): Promise<{ args: Record<string, unknown>; task: StoredTask } | undefined> {
    if (typeof taskId !== 'string' || taskId.length > MAX_TASK_ID) return undefined;
    const now = this.#o.clock.now();
    const bound = now + 2 * Math.max(1, options.forwardTimeoutMs ?? this.#o.defaultForwardTimeoutMs);
    const won = await this.#transition(taskId, mandateId, 'forwarding', async (tx) => {
      const { changes } = await tx.run(
        `UPDATE tasks SET status = 'forwarding', claimed_by = ?, claimed_at = ?, claim_expires_at = ?, updated_at = ?,
            ttl_ms = CASE WHEN expires_at < ? THEN ? - created_at ELSE ttl_ms END,
            expires_at = CASE WHEN expires_at < ? THEN ? ELSE expires_at END
          WHERE id = ? AND mandate_id = ? AND status = 'working' AND expires_at > ?`,
        [this.#replicaId, now, bound, now, bound, bound, bound, bound, taskId, mandateId, now],
      );
      return changes === 1;
    });
    if (!won) return undefined;
    const [row] = await this.#o.store.query<TaskRow>(`SELECT ${COLUMNS} FROM tasks WHERE id = ?`, [taskId]);
    if (row === undefined) return undefined;
    let args: Record<string, unknown>;
    try {
      args = JSON.parse(this.#o.secrets.open(row.args_sealed, argsContext(taskId)).toString('utf8')) as Record<string, unknown>;
    } catch (err) {
      // Sealed under a key this broker no longer holds, or tampered with: the call cannot run.
      // End the task now (not after the claim's bound: nothing was forwarded) and surface the error.
      await this.fail(
        taskId,
        taskError('RPC_INTERNAL_ERROR', 'the stored call arguments could not be opened; the call was not forwarded'),
        'The call could not be forwarded.',
      );
      throw err;
    }
    return { args, task: this.#fromRow(row) };
  }

  /**
   * Records the call's result (a CallToolResult, `isError` ones included: the extension's
   * `completed`). From `working` (a refusal decided without forwarding, e.g. a denial) or
   * `forwarding`. False when the task had already ended (e.g. the claim outlived its bound).
   */
  async complete(taskId: string, result: Record<string, unknown>, statusMessage?: string): Promise<boolean> {
    const sealed = this.#o.secrets.seal(JSON.stringify(result), resultContext(taskId));
    return this.#end(taskId, 'completed', statusMessage, { result_sealed: sealed });
  }

  /** Ends the task `failed` with a JSON-RPC error (only for protocol errors; tool errors are `complete`d). */
  async fail(taskId: string, error: TaskError, statusMessage: string): Promise<boolean> {
    return this.#end(taskId, 'failed', statusMessage, { error: JSON.stringify(error) });
  }

  /**
   * tasks/cancel: `working → cancelled`. A task being forwarded or already ended stays as it is
   * (cancellation is cooperative). Returns the task as it now is, or undefined when missing or
   * another mandate's. `cancelled` tells the caller whether this call cancelled it.
   */
  async cancel(
    taskId: string,
    mandateId: string,
    statusMessage = 'Cancelled by the client; the call was not forwarded.',
  ): Promise<(StoredTask & { readonly cancelledNow: boolean }) | undefined> {
    if (typeof taskId !== 'string' || taskId.length > MAX_TASK_ID) return undefined;
    const now = this.#o.clock.now();
    const cancelled = await this.#transition(taskId, mandateId, 'cancelled', async (tx) => {
      const sql = `UPDATE tasks SET status = 'cancelled', status_message = ?, updated_at = ?
                    WHERE id = ? AND mandate_id = ? AND status = 'working' AND expires_at > ?`;
      return (await tx.run(sql, [statusMessage, now, taskId, mandateId, now])).changes === 1;
    });
    const task = await this.get(taskId, mandateId);
    return task === undefined ? undefined : { ...task, cancelledNow: cancelled };
  }

  /** Replaces the status message of a task that has not ended (e.g. "approved, forwarding"). */
  async setMessage(taskId: string, statusMessage: string): Promise<boolean> {
    const now = this.#o.clock.now();
    const { changes } = await this.#o.store.run(
      `UPDATE tasks SET status_message = ?, updated_at = ? WHERE id = ? AND status IN ('working', 'forwarding')`,
      [statusMessage, now, taskId],
    );
    return changes === 1;
  }

  /** The extension's Task (`resultType: 'task'`, CreateTaskResult) or DetailedTask (`'complete'`, tasks/get). */
  toWire(task: StoredTask, resultType?: 'task' | 'complete'): Record<string, unknown> {
    return toWireTask(task, this.#o.pollIntervalMs, resultType);
  }

  /**
   * Cancels the waiting (`working`) tasks of mandates that ended. Tasks being forwarded finish on
   * their own. Idempotent; run on every replica that sees the change, and by the sweep.
   */
  async endForMandates(mandateIds: readonly string[], why: string): Promise<number> {
    let n = 0;
    for (let i = 0; i < mandateIds.length; i += 100) {
      const ids = mandateIds.slice(i, i + 100);
      const now = this.#o.clock.now();
      const rows = await this.#o.store.query<{ id: string; mandate_id: string }>(
        `SELECT id, mandate_id FROM tasks WHERE status = 'working' AND mandate_id IN (${ids.map(() => '?').join(', ')})`,
        ids,
      );
      for (const row of rows) {
        const message = `Cancelled: mandate ${row.mandate_id} ended (${why}) before the call was approved; it was not forwarded.`;
        const ended = await this.#transition(row.id, row.mandate_id, 'cancelled', async (tx) => {
          const sql = `UPDATE tasks SET status = 'cancelled', status_message = ?, updated_at = ? WHERE id = ? AND status = 'working'`;
          return (await tx.run(sql, [message, now, row.id])).changes === 1;
        });
        if (!ended) continue;
        n++;
        await this.#auditEnded(row.id, row.mandate_id, 'mandate_ended', message);
      }
    }
    return n;
  }

  /**
   * Records what reads already show, durably and once across replicas: `working` tasks past their
   * TTL fail (RPC_TASK_EXPIRED), claims past their bound fail (RPC_TASK_OUTCOME_UNKNOWN), waiting
   * tasks of ended mandates are cancelled, and ended tasks past TTL + retention are deleted.
   */
  async sweep(): Promise<{ expired: number; abandoned: number; mandateEnded: number; deleted: number }> {
    const run = this.#sweep();
    this.#sweeping = run;
    return run;
  }

  async #sweep(): Promise<{ expired: number; abandoned: number; mandateEnded: number; deleted: number }> {
    const now = this.#o.clock.now();
    let expired = 0;
    let abandoned = 0;
    const due = await this.#o.store.query<{ id: string; mandate_id: string; expires_at: number | string }>(
      `SELECT id, mandate_id, expires_at FROM tasks WHERE status = 'working' AND expires_at <= ? LIMIT ${SWEEP_BATCH}`,
      [now],
    );
    for (const row of due) {
      const err = expiredError(row.id, Number(row.expires_at));
      const ok = await this.#transition(row.id, row.mandate_id, 'failed', async (tx) => {
        const sql = `UPDATE tasks SET status = 'failed', status_message = ?, error = ?, updated_at = ? WHERE id = ? AND status = 'working' AND expires_at <= ?`;
        return (await tx.run(sql, [err.message, JSON.stringify(err), now, row.id, now])).changes === 1;
      });
      if (!ok) continue;
      expired++;
      await this.#auditEnded(row.id, row.mandate_id, 'expired', err.message);
    }
    const stale = await this.#o.store.query<{ id: string; mandate_id: string; claimed_by: string | null }>(
      `SELECT id, mandate_id, claimed_by FROM tasks WHERE status = 'forwarding' AND claim_expires_at <= ? LIMIT ${SWEEP_BATCH}`,
      [now],
    );
    for (const row of stale) {
      const err = abandonedError(row.id, row.claimed_by);
      const ok = await this.#transition(row.id, row.mandate_id, 'failed', async (tx) => {
        const sql = `UPDATE tasks SET status = 'failed', status_message = ?, error = ?, updated_at = ? WHERE id = ? AND status = 'forwarding' AND claim_expires_at <= ?`;
        return (await tx.run(sql, [err.message, JSON.stringify(err), now, row.id, now])).changes === 1;
      });
      if (!ok) continue;
      abandoned++;
      await this.#auditEnded(row.id, row.mandate_id, 'outcome_unknown', err.message);
    }
    // A replica that was down when a mandate ended missed its change: catch up from the store.
    const orphaned = await this.#o.store.query<{ mandate_id: string; status: string }>(
      `SELECT DISTINCT t.mandate_id, m.status FROM tasks t JOIN mandates m ON m.id = t.mandate_id
        WHERE t.status = 'working' AND (m.status <> 'active' OR m.expires_at <= ?) LIMIT ${SWEEP_BATCH}`,
      [now],
    );
    let mandateEnded = 0;
    for (const row of orphaned) {
      mandateEnded += await this.endForMandates([row.mandate_id], row.status === 'active' ? 'expired' : row.status);
    }
    const { changes: deleted } = await this.#o.store.run(
      `DELETE FROM tasks WHERE status IN ('completed', 'failed', 'cancelled') AND expires_at <= ?`,
      [now - this.#o.retentionMs],
    );
    return { expired, abandoned, mandateEnded, deleted };
  }

  async #end(
    taskId: string,
    status: 'completed' | 'failed',
    statusMessage: string | undefined,
    set: { result_sealed?: string; error?: string },
  ): Promise<boolean> {
    const now = this.#o.clock.now();
    const [row] = await this.#o.store.query<{ mandate_id: string }>('SELECT mandate_id FROM tasks WHERE id = ?', [taskId]);
    if (row === undefined) return false;
    return this.#transition(taskId, row.mandate_id, status, async (tx) => {
      const sql = `UPDATE tasks SET status = ?, status_message = COALESCE(?, status_message), result_sealed = ?, error = ?, updated_at = ?
                    WHERE id = ? AND (status = 'forwarding' OR (status = 'working' AND expires_at > ?))`;
      const params: SqlValue[] = [status, statusMessage ?? null, set.result_sealed ?? null, set.error ?? null, now, taskId, now];
      return (await tx.run(sql, params)).changes === 1;
    });
  }

  async #auditEnded(taskId: string, mandateId: string, reason: string, message: string): Promise<void> {
    await this.#o.audit
      .append({ type: 'task.ended', actors: [{ type: 'system', id: 'mandate' }], mandateId, data: { taskId, reason, message } })
      .catch(() => {});
  }

  /** Runs `fn` in a transaction and, when it changed the task, publishes a `task` change in the same transaction. */
  async #transition(id: string, mandateId: string, status: TaskStatus, fn: (tx: SqlExecutor) => Promise<boolean>): Promise<boolean> {
    const changed = await this.#o.store.transaction(async (tx) => {
      const ok = await fn(tx);
      if (ok) await this.#o.changes.publish(tx, TASK_TOPIC, id, { mandateId, status: status === 'forwarding' ? 'working' : status });
      return ok;
    });
    // No catchUp() here: this also runs inside a change handler (mandate ended), which holds the
    // feed's mutex, and no in-memory state on this replica depends on task changes.
    return changed;
  }

  #fromRow(r: TaskRow): StoredTask {
    const now = this.#o.clock.now();
    const expiresAt = Number(r.expires_at);
    const claimExpiresAt = r.claim_expires_at === null ? undefined : Number(r.claim_expires_at);
    let status = r.status;
    let statusMessage = r.status_message ?? undefined;
    let error = r.error === null ? undefined : (JSON.parse(r.error) as TaskError);
    // Reads show what the sweep will record, so a client never waits on a dead task.
    if (status === 'working' && expiresAt <= now) {
      error = expiredError(r.id, expiresAt);
      status = 'failed';
      statusMessage = error.message;
    } else if (status === 'forwarding' && claimExpiresAt !== undefined && claimExpiresAt <= now) {
      error = abandonedError(r.id, r.claimed_by);
      status = 'failed';
      statusMessage = error.message;
    }
    const result =
      status === 'completed' && r.result_sealed !== null
        ? (JSON.parse(this.#o.secrets.open(r.result_sealed, resultContext(r.id)).toString('utf8')) as Record<string, unknown>)
        : undefined;
    return {
      id: r.id,
      mandateId: r.mandate_id,
      approvalId: r.approval_id,
      callHash: r.call_hash,
      tool: r.tool,
      status,
      statusMessage,
      result,
      error: isTerminal(status) ? error : undefined,
      createdAt: Number(r.created_at),
      updatedAt: Number(r.updated_at),
      ttlMs: Number(r.ttl_ms),
      claimedBy: r.claimed_by ?? undefined,
      claimedAt: r.claimed_at === null ? undefined : Number(r.claimed_at),
    };
  }
}

function expiredError(taskId: string, expiresAt: number): TaskError {
  return taskError(
    'RPC_TASK_EXPIRED',
    `Task expired at ${new Date(expiresAt).toISOString()} before its call was approved and forwarded; the call did not run.`,
    { taskId },
  );
}

function abandonedError(taskId: string, claimedBy: string | null): TaskError {
  return taskError(
    'RPC_TASK_OUTCOME_UNKNOWN',
    'The replica forwarding this call stopped before recording its result; the call may or may not have run upstream, and it will not be forwarded again.',
    { taskId, ...(claimedBy === null ? {} : { replica: claimedBy }) },
  );
}
