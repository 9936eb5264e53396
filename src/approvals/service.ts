// Approvals (`broker.approvals`): created by the gateway when a decision says approval_required,
// decided by a human with a required role (never an agent of the chain, and not the on-behalf-of
// human when configured), consumed at most once by the exact same call. Every transition is
// audited inside its transaction and published on the `approval` change topic.
//
// Retries (docs/approvals.md, Retries of the same call): at most one pending approval exists per
// exact call (a partial unique index, so two replicas racing still create one), a retry of a
// pending call creates and audits nothing, and `findForCall` gives the gateway the one approval
// that answers a retry: pending, approved and unused, or denied within `ttlMs` of the denial.

import { randomUUID } from 'node:crypto';
import type { AuditActor, AuditLog } from '../audit/types.js';
import { AuthError, MandateError } from '../errors/index.js';
import type { Operator } from '../identity/operators.js';
import type { Clock } from '../lib/clock.js';
import type { Metrics } from '../observability/metrics.js';
import type { ChangeFeed } from '../store/changes.js';
import type { SqlExecutor, Store } from '../store/types.js';
import type { Approval, ApprovalContext, ApprovalStatus, UsableApproval } from './approval.js';
import type { ApprovalNotifier } from './notifier.js';

export const APPROVAL_TOPIC = 'approval';

/** What the gateway knows when it asks for an approval. */
export interface ApprovalRequest {
  readonly callHash: string;
  readonly mandateId: string;
  readonly tool: string;
  readonly agentId: string;
  readonly onBehalfOf: string | undefined;
  readonly requiredRoles: readonly string[];
  readonly forbiddenApprovers: readonly string[];
  readonly decisionId: string;
  readonly reasons: readonly string[];
  readonly context: ApprovalContext;
  readonly environment: string;
  readonly actors: readonly AuditActor[];
}

/** The human deciding (an authenticated operator). */
export interface Approver {
  readonly id: string;
  readonly name: string;
  readonly roles: readonly string[];
  /** Only `oidc` operators are identified humans; the shared bootstrap token or an mTLS service cannot approve. */
  readonly via: Operator['via'];
}

export interface ApprovalDecisionInput {
  readonly approve: boolean;
  /** The role the approver decides in; defaults to the first of their roles that is required. */
  readonly role?: string;
  readonly note?: string;
}

export interface ApprovalServiceOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly audit: AuditLog;
  readonly changes: Pick<ChangeFeed, 'publish' | 'catchUp'>;
  readonly notifier: ApprovalNotifier;
  /** How long an approval may wait and, once approved, be used. */
  readonly ttlMs: number;
  /** `<publicUrl>/console/approvals/` */
  readonly consoleBaseUrl: string;
  /** Actor type of a principal, to refuse approvers registered as agents or services. */
  readonly actorTypeOf: (id: string) => Promise<string | undefined>;
  /** Whether the mandate can still act; approvals of an ended mandate cannot be granted. */
  readonly isMandateActive?: (mandateId: string) => Promise<boolean>;
  /** Requests and the time humans take to decide are recorded here. */
  readonly metrics?: Pick<Metrics, 'approvalRequested' | 'approvalDecided'>;
  /** Told of every decision made on this replica (the risk engine counts denials). */
  readonly onDecided?: (approval: Approval) => void;
}

interface ApprovalRow {
  [key: string]: unknown;
  id: string;
  call_hash: string;
  mandate_id: string;
  tool: string;
  agent_id: string;
  on_behalf_of: string | null;
  status: ApprovalStatus;
  required_roles: string;
  forbid_approvers: string;
  decision_id: string;
  reasons: string;
  context: string;
  decided_by: string | null;
  decided_role: string | null;
  decided_note: string | null;
  created_at: number;
  expires_at: number;
  decided_at: number | null;
  consumed_at: number | null;
}

const COLUMNS =
  'id, call_hash, mandate_id, tool, agent_id, on_behalf_of, status, required_roles, forbid_approvers, decision_id, reasons, context, decided_by, decided_role, decided_note, created_at, expires_at, decided_at, consumed_at';

export interface ListApprovalsOptions {
  readonly status?: ApprovalStatus;
  readonly mandateId?: string;
  readonly limit?: number;
}

export class ApprovalService {
  constructor(private readonly o: ApprovalServiceOptions) {}

  /** Console link of an approval. */
  consoleUrl(id: string): string {
    return `${this.o.consoleBaseUrl}${encodeURIComponent(id)}`;
  }

  /**
   * Creates a pending approval for this exact call, or returns the one already pending for it, so
   * an agent retrying before a human decided does not flood approvers: `created: false` means no
   * row, no audit event and no notification. Exact across replicas: the store admits one pending
   * approval per (mandate, call hash), and the loser of an insert race returns the winner's.
   */
  async request(req: ApprovalRequest): Promise<{ approval: Approval; created: boolean }> {
    const now = this.o.clock.now();
    const existing = await this.#pendingFor(req.mandateId, req.callHash, now);
    if (existing !== undefined) return { approval: existing, created: false };
    const id = `apr_${randomUUID()}`;
    const expiresAt = now + this.o.ttlMs;
    let lapsed: { id: string; decision_id: string }[] = [];
    let inserted = false;
    await this.o.store.transaction(async (tx) => {
      // A pending row past its expiry still holds the one-pending slot until the sweep records it;
      // record it here (audited below) so the new request can take the slot.
      lapsed = [];
      const due = await tx.query<{ id: string; decision_id: string }>(
        `SELECT id, decision_id FROM approvals WHERE mandate_id = ? AND call_hash = ? AND status = 'pending' AND expires_at <= ?`,
        [req.mandateId, req.callHash, now],
      );
      for (const row of due) {
        // Conditional, like the sweep's: whichever records the expiry first audits it.
        if ((await tx.run(`UPDATE approvals SET status = 'expired' WHERE id = ? AND status = 'pending'`, [row.id])).changes !== 1) continue;
        lapsed.push(row);
        await this.o.changes.publish(tx, APPROVAL_TOPIC, row.id, {});
      }
      const { changes } = await tx.run(
        `INSERT INTO approvals (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, ?, NULL, NULL)
          ON CONFLICT DO NOTHING`,
        [
          id,
          req.callHash,
          req.mandateId,
          req.tool,
          req.agentId,
          req.onBehalfOf ?? null,
          JSON.stringify(req.requiredRoles),
          JSON.stringify(req.forbiddenApprovers),
          req.decisionId,
          JSON.stringify(req.reasons),
          JSON.stringify(req.context),
          now,
          expiresAt,
        ],
      );
      inserted = changes === 1;
      if (inserted) await this.o.changes.publish(tx, APPROVAL_TOPIC, id, {});
    });
    await this.o.changes.catchUp();
    for (const row of lapsed) await this.#auditExpired(row.id, req.mandateId, row.decision_id);
    if (!inserted) {
      // Another request (this replica or another) created the pending approval first.
      const winner = await this.#pendingFor(req.mandateId, req.callHash, now);
      if (winner !== undefined) return { approval: winner, created: false };
      throw new MandateError('ERR_STORE_CONFLICT', 'the approval request raced with another; retry the call');
    }
    // After the commit: the audit log group-commits in its own transactions (SQLite has one writer).
    await this.o.audit.append({
      type: 'approval.requested',
      actors: req.actors,
      mandateId: req.mandateId,
      environment: req.environment,
      data: {
        approvalId: id,
        decisionId: req.decisionId,
        tool: req.tool,
        callHash: req.callHash,
        requiredRoles: req.requiredRoles,
        expiresAt,
      },
    });
    const approval = await this.require(id);
    this.o.metrics?.approvalRequested();
    void this.o.notifier.notify({ type: 'approval.requested', sentAt: now, approval: this.#summary(approval) });
    return { approval, created: true };
  }

  /**
   * The approval that answers a call needing one, by one indexed query (the newest approval of
   * this exact call): `pending` (a human has not decided: the retry changes nothing), `approved`
   * and unused (the call may run once), or `denied` less than `ttlMs` after the denial (the retry
   * is told it was denied instead of opening a new request). Anything else (expired unanswered,
   * consumed, withdrawn, a denial older than that) is undefined: the call may ask again, and
   * each new request is one approval and one audit event, so retries cannot flood approvers.
   */
  async findForCall(mandateId: string, callHash: string): Promise<Approval | undefined> {
    const [row] = await this.o.store.query<ApprovalRow>(
      `SELECT ${COLUMNS} FROM approvals WHERE mandate_id = ? AND call_hash = ? ORDER BY created_at DESC, id DESC LIMIT 1`,
      [mandateId, callHash],
    );
    if (row === undefined) return undefined;
    const a = this.#fromRow(row);
    if (a.status === 'pending') return a;
    if (a.status === 'approved' && a.consumedAt === undefined) return a;
    if (a.status === 'denied' && (a.decidedAt ?? a.createdAt) + this.o.ttlMs > this.o.clock.now()) return a;
    return undefined;
  }

  /**
   * The agent takes back its request (tasks/cancel): a pending, or approved but unused, approval
   * becomes `withdrawn` by one conditional update, so it is never used and no longer actionable
   * in the console. True for the one call that withdrew it (audited once); false when it is
   * missing, another mandate's, decided otherwise, used, expired or already withdrawn.
   */
  async withdraw(
    id: string,
    audit: { actors: readonly AuditActor[]; mandateId: string; taskId?: string; reason?: string },
  ): Promise<boolean> {
    const now = this.o.clock.now();
    let withdrawn = false;
    await this.#transition(id, async (tx) => {
      const { changes } = await tx.run(
        `UPDATE approvals SET status = 'withdrawn'
          WHERE id = ? AND mandate_id = ? AND (status = 'pending' OR (status = 'approved' AND consumed_at IS NULL)) AND expires_at > ?`,
        [id, audit.mandateId, now],
      );
      withdrawn = changes === 1;
    });
    if (!withdrawn) return false;
    const approval = await this.require(id);
    await this.o.audit.append({
      type: 'approval.withdrawn',
      actors: audit.actors,
      mandateId: audit.mandateId,
      data: {
        approvalId: id,
        decisionId: approval.decisionId,
        tool: approval.tool,
        callHash: approval.callHash,
        ...(audit.taskId === undefined ? {} : { taskId: audit.taskId }),
        ...(audit.reason === undefined ? {} : { reason: audit.reason }),
      },
    });
    void this.o.notifier.notify({ type: 'approval.withdrawn', sentAt: now, approval: this.#summary(approval) });
    return true;
  }

  /**
   * Mandates ended (completed, failed, revoked, expired — and their descendants): their open
   * approvals are withdrawn, so no approver spends attention on a request nobody can use. Every
   * replica hears the change and may run this; `withdraw` makes each one happen (and be audited) once.
   */
  async withdrawForMandates(mandateIds: readonly string[], reason: string): Promise<number> {
    let withdrawn = 0;
    for (const mandateId of mandateIds) {
      const open = await this.o.store.query<{ id: string }>(
        `SELECT id FROM approvals WHERE mandate_id = ? AND (status = 'pending' OR (status = 'approved' AND consumed_at IS NULL)) AND expires_at > ?`,
        [mandateId, this.o.clock.now()],
      );
      for (const { id } of open) {
        if (await this.withdraw(id, { actors: [{ type: 'system', id: 'mandate-ended' }], mandateId, reason })) withdrawn++;
      }
    }
    return withdrawn;
  }

  /** An approved, unexpired, unconsumed approval of exactly this call, if any. */
  async findUsable(mandateId: string, hash: string): Promise<UsableApproval | undefined> {
    const [row] = await this.o.store.query<{ id: string; decided_by: string; decided_role: string }>(
      `SELECT id, decided_by, decided_role FROM approvals
        WHERE mandate_id = ? AND call_hash = ? AND status = 'approved' AND consumed_at IS NULL AND expires_at > ?
        ORDER BY decided_at LIMIT 1`,
      [mandateId, hash, this.o.clock.now()],
    );
    return row === undefined ? undefined : { id: row.id, approverId: row.decided_by, approverRole: row.decided_role };
  }

  /**
   * Marks an approval used, atomically in the store: of any number of concurrent callers on any
   * number of replicas, exactly one gets true; then audited (a rejected append throws).
   */
  async consume(id: string, audit: { actors: readonly AuditActor[]; mandateId: string; decisionId: string }): Promise<boolean> {
    const now = this.o.clock.now();
    let consumed = false;
    await this.#transition(id, async (tx) => {
      const { changes } = await tx.run(
        `UPDATE approvals SET status = 'consumed', consumed_at = ? WHERE id = ? AND status = 'approved' AND consumed_at IS NULL AND expires_at > ?`,
        [now, id, now],
      );
      consumed = changes === 1;
    });
    if (!consumed) return false;
    // A rejected append throws: the approval is then spent but the call is not forwarded (fail closed).
    await this.o.audit.append({
      type: 'approval.consumed',
      actors: audit.actors,
      mandateId: audit.mandateId,
      data: { approvalId: id, decisionId: audit.decisionId },
    });
    return true;
  }

  /** A human approves or denies. Refuses agents, the bootstrap token, the wrong role, and decided or expired approvals. */
  async decide(id: string, approver: Approver, input: ApprovalDecisionInput): Promise<Approval> {
    const approval = await this.require(id);
    if (approver.via !== 'oidc')
      throw new AuthError('ERR_APPROVER_NOT_ALLOWED', 'approvals are decided by an identified human, not the bootstrap token');
    const actorType = await this.o.actorTypeOf(approver.id);
    if (actorType !== undefined && actorType !== 'human') {
      throw new AuthError('ERR_APPROVER_NOT_ALLOWED', `approvals are decided by humans; ${approver.id} is a ${actorType}`);
    }
    if (approval.forbiddenApprovers.includes(approver.id)) {
      throw new AuthError(
        'ERR_APPROVER_NOT_ALLOWED',
        approver.id === approval.onBehalfOf
          ? 'the human on whose behalf the agent acts may not approve its request'
          : 'an agent of the delegation chain may not approve its own request',
      );
    }
    const role = input.role ?? approver.roles.find((r) => approval.requiredRoles.includes(r));
    if (role === undefined || !approver.roles.includes(role) || !approval.requiredRoles.includes(role)) {
      throw new AuthError('ERR_APPROVER_NOT_ALLOWED', `this approval needs one of the roles: ${approval.requiredRoles.join(', ')}`);
    }
    if (approval.status !== 'pending') throw new MandateError('ERR_APPROVAL_NOT_PENDING', `approval ${id} is ${approval.status}`);
    if (input.approve && this.o.isMandateActive !== undefined && !(await this.o.isMandateActive(approval.mandateId))) {
      throw new MandateError('ERR_APPROVAL_NOT_PENDING', `the mandate of approval ${id} is no longer active`);
    }
    const now = this.o.clock.now();
    const status: ApprovalStatus = input.approve ? 'approved' : 'denied';
    // Audit before acting: an approval that is not durably recorded never takes effect. (Two racing
    // approvers can leave one extra `approval.decided` event; the conditional update lets one win.)
    await this.o.audit.append({
      type: 'approval.decided',
      actors: [{ type: 'human', id: approver.id }],
      mandateId: approval.mandateId,
      data: {
        approvalId: id,
        decisionId: approval.decisionId,
        outcome: status,
        role,
        tool: approval.tool,
        callHash: approval.callHash,
        // The approver's own words are part of the evidence (why a refund was let through).
        ...(input.note === undefined ? {} : { note: input.note }),
      },
    });
    await this.#transition(id, async (tx) => {
      const { changes } = await tx.run(
        `UPDATE approvals SET status = ?, decided_by = ?, decided_role = ?, decided_note = ?, decided_at = ?
          WHERE id = ? AND status = 'pending' AND expires_at > ?`,
        [status, approver.id, role, input.note ?? null, now, id, now],
      );
      if (changes !== 1) throw new MandateError('ERR_APPROVAL_NOT_PENDING', `approval ${id} is no longer pending`);
    });
    const decided = await this.require(id);
    this.o.metrics?.approvalDecided(status === 'approved' ? 'approved' : 'denied', (now - approval.createdAt) / 1000);
    void this.o.notifier.notify({ type: 'approval.decided', sentAt: now, approval: this.#summary(decided) });
    this.o.onDecided?.(decided);
    return decided;
  }

  /** Records expiry of pending approvals past their deadline (audited). Returns how many. */
  async sweep(): Promise<number> {
    const now = this.o.clock.now();
    const due = await this.o.store.query<{ id: string; mandate_id: string; decision_id: string }>(
      `SELECT id, mandate_id, decision_id FROM approvals WHERE status IN ('pending', 'approved') AND expires_at <= ? LIMIT 500`,
      [now],
    );
    let n = 0;
    for (const row of due) {
      let expired = false;
      await this.#transition(row.id, async (tx) => {
        const sql = `UPDATE approvals SET status = 'expired' WHERE id = ? AND status IN ('pending', 'approved')`;
        expired = (await tx.run(sql, [row.id])).changes === 1;
      });
      if (!expired) continue;
      n++;
      await this.#auditExpired(row.id, row.mandate_id, row.decision_id);
    }
    return n;
  }

  async #auditExpired(id: string, mandateId: string, decisionId: string): Promise<void> {
    await this.o.audit.append({
      type: 'approval.expired',
      actors: [{ type: 'system', id: 'mandate' }],
      mandateId,
      data: { approvalId: id, decisionId },
    });
  }

  async #pendingFor(mandateId: string, hash: string, now: number): Promise<Approval | undefined> {
    const [row] = await this.o.store.query<ApprovalRow>(
      `SELECT ${COLUMNS} FROM approvals WHERE mandate_id = ? AND call_hash = ? AND status = 'pending' AND expires_at > ? ORDER BY created_at DESC LIMIT 1`,
      [mandateId, hash, now],
    );
    return row === undefined ? undefined : this.#fromRow(row);
  }

  async get(id: string): Promise<Approval | undefined> {
    const [row] = await this.o.store.query<ApprovalRow>(`SELECT ${COLUMNS} FROM approvals WHERE id = ?`, [id]);
    return row === undefined ? undefined : this.#fromRow(row);
  }

  async require(id: string): Promise<Approval> {
    const a = await this.get(id);
    if (a === undefined) throw new MandateError('ERR_NOT_FOUND', `no approval "${id}"`);
    return a;
  }

  /** Newest first. `status: 'pending'` lists only approvals a human can still decide. */
  async list(options: ListApprovalsOptions = {}): Promise<Approval[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    const now = this.o.clock.now();
    if (options.status === 'expired') {
      where.push("(status = 'expired' OR (status IN ('pending', 'approved') AND expires_at <= ?))");
      params.push(now);
    } else if (options.status === 'pending' || options.status === 'approved') {
      where.push('status = ? AND expires_at > ?');
      params.push(options.status, now);
    } else if (options.status !== undefined) {
      where.push('status = ?');
      params.push(options.status);
    }
    if (options.mandateId !== undefined) {
      where.push('mandate_id = ?');
      params.push(options.mandateId);
    }
    const rows = await this.o.store.query<ApprovalRow>(
      `SELECT ${COLUMNS} FROM approvals ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id LIMIT ?`,
      [...params, Math.min(options.limit ?? 100, 1000)],
    );
    return rows.map((r) => this.#fromRow(r));
  }

  async #transition(id: string, fn: (tx: SqlExecutor) => Promise<void>): Promise<void> {
    await this.o.store.transaction(async (tx) => {
      await fn(tx);
      await this.o.changes.publish(tx, APPROVAL_TOPIC, id, {});
    });
    await this.o.changes.catchUp();
  }

  #fromRow(r: ApprovalRow): Approval {
    const expiresAt = Number(r.expires_at);
    const live = r.status === 'pending' || r.status === 'approved';
    return {
      id: r.id,
      callHash: r.call_hash,
      mandateId: r.mandate_id,
      tool: r.tool,
      agentId: r.agent_id,
      onBehalfOf: r.on_behalf_of ?? undefined,
      status: live && expiresAt <= this.o.clock.now() ? 'expired' : r.status,
      requiredRoles: JSON.parse(r.required_roles) as string[],
      forbiddenApprovers: JSON.parse(r.forbid_approvers) as string[],
      decisionId: r.decision_id,
      reasons: JSON.parse(r.reasons) as string[],
      context: JSON.parse(r.context) as ApprovalContext,
      decidedBy: r.decided_by ?? undefined,
      decidedRole: r.decided_role ?? undefined,
      decidedNote: r.decided_note ?? undefined,
      createdAt: Number(r.created_at),
      expiresAt,
      decidedAt: r.decided_at === null ? undefined : Number(r.decided_at),
      consumedAt: r.consumed_at === null ? undefined : Number(r.consumed_at),
    };
  }

  #summary(a: Approval): Record<string, unknown> {
    return {
      id: a.id,
      status: a.status,
      tool: a.tool,
      mandateId: a.mandateId,
      agentId: a.agentId,
      onBehalfOf: a.onBehalfOf ?? null,
      purpose: a.context.purpose,
      reasons: a.reasons,
      requiredRoles: a.requiredRoles,
      decidedBy: a.decidedBy ?? null,
      expiresAt: a.expiresAt,
      url: this.consoleUrl(a.id),
    };
  }
}
