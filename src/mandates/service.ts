// Mandates: open (checked against the agent's ceiling), delegate (child ⊆ parent, TTL within the
// parent's, bounded depth), end (complete, fail, revoke) with a cascade to every descendant in one
// transaction, and expiry. Ends are published on the `mandate` change topic so every replica's
// in-memory revocation state (MandateCache) is current before the caller gets an answer.
import type { Agent } from '../agents/agent.js';
import type { AuditActor, AuditLog } from '../audit/types.js';
import { MandateError, OAuthError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { randomBase64url } from '../lib/random-pool.js';
import { isSubset, type Scope } from '../scope/scope.js';
import type { ChangeFeed } from '../store/changes.js';
import { GroupCommit } from '../store/group-commit.js';
import type { Store } from '../store/index.js';
import type { WriteStatement } from '../store/write-batch.js';
import type { TemplateRegistry } from '../templates/registry.js';
import { templateRequestSchema } from '../templates/resolve.js';
import type { TemplateRef } from '../templates/template.js';
import { isLive, type Mandate, type MandateRequest, type MandateStatus, mandateRequestSchema } from './mandate.js';
import { ceilingRefusals, checkAgainstProfile, type HolderRole } from './profile.js';

export const MANDATE_TOPIC = 'mandate';
/** Bound of the in-memory mandate cache (oldest entries are dropped and re-read on demand). */
const MAX_CACHED = 100_000;

interface MandateRow {
  [key: string]: unknown;
  id: string;
  agent_id: string;
  parent_id: string | null;
  root_id: string;
  path: string;
  depth: number;
  on_behalf_of: string | null;
  purpose: string;
  task_type: string;
  environment: string;
  scope: string;
  status: MandateStatus;
  expires_at: number;
  created_at: number;
  ended_at: number | null;
  ended_by: string | null;
  end_reason: string | null;
  request_text: string | null;
  template: string | null;
}

const COLUMNS =
  'id, agent_id, parent_id, root_id, path, depth, on_behalf_of, purpose, task_type, environment, scope, status, expires_at, created_at, ended_at, ended_by, end_reason, request_text, template';

function fromRow(r: MandateRow): Mandate {
  return {
    id: r.id,
    agentId: r.agent_id,
    ...(r.parent_id === null ? {} : { parentId: r.parent_id }),
    rootId: r.root_id,
    ...(r.on_behalf_of === null ? {} : { onBehalfOf: r.on_behalf_of }),
    purpose: r.purpose,
    taskType: r.task_type,
    environment: r.environment,
    scope: JSON.parse(r.scope) as Scope,
    depth: Number(r.depth),
    status: r.status,
    expiresAt: Number(r.expires_at),
    createdAt: Number(r.created_at),
    ...(r.ended_at === null ? {} : { endedAt: Number(r.ended_at) }),
    ...(r.ended_by === null ? {} : { endedBy: r.ended_by }),
    ...(r.end_reason === null ? {} : { endReason: r.end_reason }),
    ...(r.request_text === null ? {} : { requestText: r.request_text }),
    ...(r.template === null ? {} : { template: JSON.parse(r.template) as TemplateRef }),
  };
}

export interface MandateServiceOptions {
  readonly store: Store;
  readonly changes: ChangeFeed;
  readonly clock: Clock;
  readonly audit: AuditLog | undefined;
  readonly maxTtlSeconds: number;
  readonly maxDelegationDepth: number;
  /** The loaded task templates (src/templates/), for requests that name one; absent: none are. */
  readonly templates?: () => TemplateRegistry | undefined;
}

export type EndStatus = 'completed' | 'failed' | 'revoked';

/** Who ends a mandate (recorded as `ended_by` and in the audit event). */
export interface EndActor {
  readonly type: AuditActor['type'];
  readonly id: string;
}

const details = (message: string, path?: string) =>
  new OAuthError('OAUTH_INVALID_AUTHORIZATION_DETAILS', message, path === undefined ? {} : { details: { path } });

export class MandateService {
  readonly #o: MandateServiceOptions;
  /** Mandates by id; entries are immutable snapshots replaced on change. */
  readonly #cache = new Map<string, Mandate>();
  /** Ids known to have ended (from the change feed), kept until their expiry: a load racing an end cannot resurrect them. */
  readonly #ended = new Map<string, number>();
  /** Individually revoked access tokens (RFC 7009): jti → exp (seconds). */
  readonly #revokedTokens = new Map<string, number>();
  readonly #writer: GroupCommit<{ m: Mandate; path: string; also?: WriteStatement }, undefined>;
  readonly #opened = new Set<(m: Mandate) => void>();
  readonly #ceilingRefused = new Set<(agentId: string) => void>();

  constructor(options: MandateServiceOptions) {
    this.#o = options;
    // Plain INSERTs: a write batch, which the SQLite store commits in its writer thread (with the
    // audit log's batches, so the token endpoint's writes never wait for each other's write lock).
    this.#writer = new GroupCommit(async (rows) => {
      await options.store.writeBatch(
        rows.flatMap(({ m, path, also }) => (also === undefined ? [insertRow(m, path)] : [insertRow(m, path), also])),
      );
      return rows.map(() => undefined);
    });
    options.changes.subscribe(MANDATE_TOPIC, (change) => {
      const data = change.data as { ids?: string[]; expires?: number[]; status?: MandateStatus; jti?: string; exp?: number };
      if (typeof data.jti === 'string') {
        this.#revokedTokens.set(data.jti, Number(data.exp ?? 0));
        return;
      }
      const ids = data.ids ?? [change.key];
      ids.forEach((id, i) => {
        // Remembered until the mandate would have expired anyway; after that time alone refuses it.
        this.#ended.set(id, data.expires?.[i] ?? this.#cache.get(id)?.expiresAt ?? Number.MAX_SAFE_INTEGER);
        this.#cache.delete(id);
      });
    });
  }

  /**
   * Calls `fn` on this replica after a mandate (root or delegated) is durably recorded, e.g. to
   * obtain eager leases. `fn` must not throw or block: the answer to the agent does not wait for it.
   */
  onOpened(fn: (m: Mandate) => void): () => void {
    this.#opened.add(fn);
    return () => this.#opened.delete(fn);
  }

  /** Calls `fn` with the agent whose request exceeded its ceiling (the risk engine's scope probing). */
  onCeilingRefused(fn: (agentId: string) => void): () => void {
    this.#ceilingRefused.add(fn);
    return () => this.#ceilingRefused.delete(fn);
  }

  /** Runs checkAgainstProfile; tells the onCeilingRefused listeners when the ceiling refused. */
  #checkProfile(agent: Agent, request: MandateRequest, role: HolderRole): Scope {
    try {
      return checkAgainstProfile(agent, request, this.#o.maxTtlSeconds, role);
    } catch (err) {
      if (err instanceof Error && ceilingRefusals.has(err)) for (const fn of this.#ceilingRefused) fn(agent.principal.id);
      throw err;
    }
  }

  /** Loads the revoked-token list (call after the change feed started). */
  async start(): Promise<void> {
    const rows = await this.#o.store.query<{ jti: string; expires_at: number }>(
      'SELECT jti, expires_at FROM revoked_tokens WHERE expires_at > ?',
      [Math.floor(this.#o.clock.now() / 1000)],
    );
    for (const r of rows) this.#revokedTokens.set(r.jti, Number(r.expires_at));
  }

  /**
   * Parses and validates an `authorization_details` mandate request (RFC 9396): a complete request,
   * or one naming a task template with parameters (`{ type, template, version?, params, request? }`),
   * resolved against the loaded templates. Template errors are `invalid_authorization_details` with
   * the template error code (ERR_TEMPLATE_UNKNOWN, ERR_TEMPLATE_PARAMS) in `details.code`.
   */
  parseRequest(value: unknown, agentEnvironment?: string): MandateRequest {
    if (value !== null && typeof value === 'object' && 'template' in value) {
      try {
        return this.fromTemplate(value, agentEnvironment);
      } catch (err) {
        // At the token endpoint every refusal of the request is an OAuth error (RFC 9396 §5).
        if (err instanceof MandateError && !(err instanceof OAuthError)) {
          throw new OAuthError('OAUTH_INVALID_AUTHORIZATION_DETAILS', err.message, { details: { ...err.details, code: err.code } });
        }
        throw err;
      }
    }
    const result = mandateRequestSchema.safeParse(value);
    if (!result.success) {
      const issue = result.error.issues[0];
      const path = issue?.path.map(String).join('.') ?? '';
      throw details(`authorization_details${path === '' ? '' : `.${path}`}: ${issue?.message ?? 'invalid'}`, path);
    }
    return result.data;
  }

  /**
   * The mandate request a template request stands for (src/templates/resolve.ts): parameters
   * validated and substituted, environment from the request, the template, else `agentEnvironment`.
   * Throws MandateError ERR_VALIDATION (shape), ERR_TEMPLATE_UNKNOWN or ERR_TEMPLATE_PARAMS.
   *
   * @example
   * mandates.fromTemplate({ type: 'mandate', template: 'payments.transfer', params: { iban, amount: 120 },
   *                         request: 'Pay 120 EUR to DE89 3704 0044 0532 0130 00' }, 'production')
   */
  fromTemplate(value: unknown, agentEnvironment?: string): MandateRequest {
    const parsed = templateRequestSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const path = issue?.path.map(String).join('.') ?? '';
      throw new MandateError('ERR_VALIDATION', `authorization_details${path === '' ? '' : `.${path}`}: ${issue?.message ?? 'invalid'}`, {
        details: { path },
      });
    }
    const registry = this.#o.templates?.();
    if (registry === undefined) throw new MandateError('ERR_TEMPLATE_UNKNOWN', 'no task templates are loaded');
    const r = registry.resolve(parsed.data);
    const environment = r.environment ?? agentEnvironment;
    if (environment === undefined) {
      throw new MandateError('ERR_TEMPLATE_PARAMS', `template ${r.template.name} names no environment: send one`, {
        details: { template: r.template.name },
      });
    }
    return {
      type: 'mandate',
      purpose: r.purpose,
      taskType: r.taskType,
      environment,
      ttlSeconds: r.ttlSeconds,
      tools: r.tools,
      delegable: r.delegable,
      ...(r.request === undefined ? {} : { request: r.request }),
      template: r.template,
    };
  }

  /** Opens a root mandate for `agent` after checking the request against the agent's profile. */
  async open(agent: Agent, request: MandateRequest, onBehalfOf?: string): Promise<Mandate> {
    const mandate = this.prepareOpen(agent, request, onBehalfOf);
    await this.commitOpen(mandate);
    return mandate;
  }

  /**
   * Checks a root mandate request against the agent's profile and builds the mandate, without
   * recording it (the token endpoint signs while `commitOpen` waits for the disk).
   */
  prepareOpen(agent: Agent, request: MandateRequest, onBehalfOf?: string): Mandate {
    const now = this.#o.clock.now();
    const scope = this.#checkProfile(agent, request, 'root');
    const id = newMandateId();
    // A plain literal, optional fields set only when present (token endpoint path: no spreads).
    const mandate: { -readonly [K in keyof Mandate]: Mandate[K] } = {
      id,
      agentId: agent.principal.id,
      rootId: id,
      purpose: request.purpose,
      taskType: request.taskType,
      environment: request.environment,
      scope,
      depth: 0,
      status: 'active',
      expiresAt: now + request.ttlSeconds * 1000,
      createdAt: now,
    };
    if (onBehalfOf !== undefined) mandate.onBehalfOf = onBehalfOf;
    if (request.request !== undefined) mandate.requestText = request.request;
    if (request.template !== undefined) mandate.template = request.template;
    return mandate;
  }

  /** Audits (first: fail closed) and durably records a mandate built by `prepareOpen`. */
  async commitOpen(mandate: Mandate, evidence: Readonly<Record<string, unknown>> = {}, also?: WriteStatement): Promise<void> {
    // The event's own data object (evidence copied, not spread: token endpoint path).
    const data: Record<string, unknown> = {};
    for (const key in evidence) data[key] = evidence[key];
    data.scope = mandate.scope;
    data.ttlSeconds = Math.round((mandate.expiresAt - mandate.createdAt) / 1000);
    if (mandate.template !== undefined) {
      data.template = { name: mandate.template.name, version: mandate.template.version, params: mandate.template.params };
    }
    if (mandate.requestText !== undefined) data.request = mandate.requestText;
    await this.#audit('mandate.opened', mandate, this.#actors(mandate, [mandate.agentId]), data);
    await this.#insert(mandate, `/${mandate.id}/`, also);
  }

  /**
   * Opens a child of `parent` for `receiver` (`prepareDelegation`, then `commitDelegation`).
   */
  async delegate(
    parent: Mandate,
    receiver: Agent,
    request: MandateRequest,
    evidence: Readonly<Record<string, unknown>> = {},
  ): Promise<Mandate> {
    const child = this.prepareDelegation(parent, receiver, request);
    await this.commitDelegation(child, parent, evidence);
    return child;
  }

  /**
   * Checks a delegation and builds the child, without recording it. Refused unless the parent is
   * delegable and live, the receiver may receive delegations, the child keeps the parent's task type
   * and environment, ends no later than the parent, its scope is a subset of the parent's, the depth
   * limit holds, and the request passes every check a root mandate of the receiver would
   * (`checkAgainstProfile`: status, task types, environment, maximum TTL, ceiling).
   */
  prepareDelegation(parent: Mandate, receiver: Agent, request: MandateRequest): Mandate {
    const now = this.#o.clock.now();
    if (!isLive(parent, now)) throw new OAuthError('OAUTH_INVALID_SUBJECT_TOKEN', 'the parent mandate is not active');
    if (!parent.scope.delegable) throw details('the parent mandate is not delegable', 'delegable');
    if (!receiver.mayReceiveDelegation)
      throw new OAuthError('OAUTH_INVALID_TARGET', `agent ${receiver.principal.id} may not receive delegations`);
    if (parent.depth + 1 > this.#o.maxDelegationDepth) {
      throw details(`delegation depth ${parent.depth + 1} exceeds the limit of ${this.#o.maxDelegationDepth}`);
    }
    if (request.taskType !== parent.taskType) throw details('a delegated mandate keeps the task type of its parent', 'taskType');
    if (request.environment !== parent.environment) throw details('a delegated mandate keeps the environment of its parent', 'environment');
    const expiresAt = now + request.ttlSeconds * 1000;
    if (expiresAt > parent.expiresAt) throw details('the delegated mandate would outlive its parent', 'ttlSeconds');
    const scope: Scope = { tools: request.tools, delegable: request.delegable };
    const inParent = isSubset(scope, parent.scope);
    if (!inParent.ok) throw details(`the delegated scope is not a subset of the parent's: ${inParent.reason}`, inParent.path);
    this.#checkProfile(receiver, request, 'receiver');
    const id = newMandateId();
    return {
      id,
      agentId: receiver.principal.id,
      parentId: parent.id,
      rootId: parent.rootId,
      ...(parent.onBehalfOf === undefined ? {} : { onBehalfOf: parent.onBehalfOf }),
      purpose: request.purpose,
      taskType: request.taskType,
      environment: request.environment,
      scope,
      depth: parent.depth + 1,
      status: 'active',
      expiresAt,
      createdAt: now,
      // The human's request and the template stay those of the task: a delegate cannot restate them.
      ...(parent.requestText === undefined ? {} : { requestText: parent.requestText }),
      ...(parent.template === undefined ? {} : { template: parent.template }),
    };
  }

  /** Audits (first: fail closed) and durably records a child built by `prepareDelegation`. */
  async commitDelegation(
    child: Mandate,
    parent: Mandate,
    evidence: Readonly<Record<string, unknown>> = {},
    also?: WriteStatement,
  ): Promise<void> {
    const [parentRow] = await this.#o.store.query<{ path: string }>('SELECT path FROM mandates WHERE id = ?', [parent.id]);
    if (parentRow === undefined) throw new OAuthError('OAUTH_INVALID_SUBJECT_TOKEN', 'the parent mandate does not exist');
    await this.#audit('mandate.delegated', child, this.#actors(child, [parent.agentId, child.agentId]), {
      ...evidence,
      parentMandateId: parent.id,
      depth: child.depth,
      scope: child.scope,
    });
    await this.#insert(child, `${parentRow.path}${child.id}/`, also);
  }

  /** Ends `id` and revokes every active descendant, in one transaction; every replica learns at once. */
  async end(id: string, status: EndStatus, by: EndActor, reason?: string): Promise<Mandate[]> {
    const now = this.#o.clock.now();
    const current = await this.require(id);
    if (current.status !== 'active') {
      if (status === 'revoked') return []; // revocation is idempotent (RFC 7009 spirit)
      throw new MandateError('ERR_MANDATE_NOT_ACTIVE', `mandate ${id} is ${current.status}`);
    }
    const type = status === 'completed' ? 'mandate.completed' : status === 'failed' ? 'mandate.failed' : 'mandate.revoked';
    await this.#audit(type, current, [{ type: by.type, id: by.id }], { reason: reason ?? null, cascade: true });
    const ended = await this.#o.store.transaction(async (tx) => {
      const [self] = await tx.query<MandateRow>(`SELECT ${COLUMNS} FROM mandates WHERE id = ?`, [id]);
      if (self === undefined || self.status !== 'active') return [];
      await tx.run('UPDATE mandates SET status = ?, ended_at = ?, ended_by = ?, end_reason = ? WHERE id = ?', [
        status,
        now,
        by.id,
        reason ?? null,
        id,
      ]);
      const descendants = await tx.query<MandateRow>(
        `SELECT ${COLUMNS} FROM mandates WHERE path LIKE ? ESCAPE '\\' AND id <> ? AND status = 'active'`,
        [`${escapeLike(self.path)}%`, id],
      );
      if (descendants.length > 0) {
        await tx.run(
          `UPDATE mandates SET status = 'revoked', ended_at = ?, ended_by = ?, end_reason = ? WHERE path LIKE ? ESCAPE '\\' AND id <> ? AND status = 'active'`,
          [now, by.id, `ancestor ${id} ${status}`, `${escapeLike(self.path)}%`, id],
        );
      }
      const all = [self, ...descendants].map(fromRow);
      await this.#o.changes.publish(tx, MANDATE_TOPIC, id, { status, ids: all.map((m) => m.id), expires: all.map((m) => m.expiresAt) });
      return all;
    });
    await this.#o.changes.catchUp();
    return ended;
  }

  /** Completes `id` (task done); every descendant is revoked. */
  complete(id: string, by: EndActor, reason?: string): Promise<Mandate[]> {
    return this.end(id, 'completed', by, reason);
  }

  /** Fails `id` (task failed); every descendant is revoked. */
  fail(id: string, by: EndActor, reason?: string): Promise<Mandate[]> {
    return this.end(id, 'failed', by, reason);
  }

  /** Revokes `id` and every descendant (idempotent). */
  revoke(id: string, by: EndActor, reason?: string): Promise<Mandate[]> {
    return this.end(id, 'revoked', by, reason);
  }

  /**
   * Revokes every active mandate held by `agentId` (and their descendants): a quarantined or
   * disabled agent must not get its old authority back when it is re-activated.
   */
  async revokeAllOf(agentId: string, by: EndActor, reason: string): Promise<string[]> {
    const rows = await this.#o.store.query<{ id: string }>("SELECT id FROM mandates WHERE agent_id = ? AND status = 'active'", [agentId]);
    const ended: string[] = [];
    for (const { id } of rows) ended.push(...(await this.end(id, 'revoked', by, reason)).map((m) => m.id));
    return ended;
  }

  /** Marks expired mandates `expired` (they already fail verification by time); returns how many. */
  async sweepExpired(): Promise<number> {
    const now = this.#o.clock.now();
    const rows = await this.#o.store.query<MandateRow>(
      `SELECT ${COLUMNS} FROM mandates WHERE status = 'active' AND expires_at <= ? LIMIT 500`,
      [now],
    );
    for (const row of rows) {
      const m = fromRow(row);
      await this.#audit('mandate.expired', m, [{ type: 'system', id: 'expiry' }], {});
      await this.#o.store.transaction(async (tx) => {
        const { changes } = await tx.run(
          "UPDATE mandates SET status = 'expired', ended_at = ?, ended_by = 'system' WHERE id = ? AND status = 'active'",
          [now, m.id],
        );
        if (changes > 0) await this.#o.changes.publish(tx, MANDATE_TOPIC, m.id, { status: 'expired', ids: [m.id], expires: [m.expiresAt] });
      });
    }
    await this.#o.store.run('DELETE FROM revoked_tokens WHERE expires_at < ?', [Math.floor(now / 1000)]);
    await this.#o.store.run('DELETE FROM dpop_proofs WHERE expires_at < ?', [now]);
    if (rows.length > 0) await this.#o.changes.catchUp();
    for (const [id, exp] of this.#ended) if (exp < now) this.#ended.delete(id);
    for (const [jti, exp] of this.#revokedTokens) if (exp * 1000 < now) this.#revokedTokens.delete(jti);
    return rows.length;
  }

  /** Records an individually revoked access token (RFC 7009) on every replica. */
  async revokeToken(jti: string, mandateId: string, exp: number): Promise<void> {
    await this.#o.store.transaction(async (tx) => {
      const inserted = await tx.run(
        'INSERT INTO revoked_tokens (jti, mandate_id, expires_at) VALUES (?, ?, ?) ON CONFLICT (jti) DO NOTHING',
        [jti, mandateId, exp],
      );
      if (inserted.changes > 0) await this.#o.changes.publish(tx, MANDATE_TOPIC, mandateId, { jti, exp });
    });
    await this.#o.changes.catchUp();
  }

  /** In memory only: has this token been revoked individually? */
  isTokenRevoked(jti: string): boolean {
    return this.#revokedTokens.has(jti);
  }

  /** A mandate from memory (loaded once per replica), undefined if unknown. */
  async get(id: string): Promise<Mandate | undefined> {
    const cached = this.#cache.get(id);
    if (cached !== undefined) return cached;
    const [row] = await this.#o.store.query<MandateRow>(`SELECT ${COLUMNS} FROM mandates WHERE id = ?`, [id]);
    if (row === undefined) return undefined;
    const loaded = fromRow(row);
    // A load racing an end must not cache the mandate as active; ended states are terminal, so
    // they are cached as they are (a replayed revoked token costs no database round trip).
    const m: Mandate = this.#ended.has(id) && loaded.status === 'active' ? { ...loaded, status: 'revoked' } : loaded;
    if (this.#cache.size >= MAX_CACHED) this.#cache.delete(this.#cache.keys().next().value as string);
    this.#cache.set(id, m);
    return m;
  }

  async require(id: string): Promise<Mandate> {
    const m = await this.get(id);
    if (m === undefined) throw new MandateError('ERR_NOT_FOUND', `no mandate "${id}"`);
    return m;
  }

  /** The chain from the root mandate down to `m` (root first, ending with `m`). */
  async chain(m: Mandate): Promise<Mandate[]> {
    const out: Mandate[] = [m];
    let cur = m;
    while (cur.parentId !== undefined) {
      const parent = await this.get(cur.parentId);
      if (parent === undefined) throw new MandateError('ERR_NOT_FOUND', `mandate ${cur.id} has a missing parent`);
      out.unshift(parent);
      cur = parent;
    }
    return out;
  }

  /** True when the mandate has ended according to this replica's memory (no database round trip). */
  hasEnded(id: string): boolean {
    return this.#ended.has(id);
  }

  async list(options: { agentId?: string; status?: MandateStatus; rootId?: string; limit?: number } = {}): Promise<Mandate[]> {
    const where: string[] = [];
    const params: (string | number)[] = [];
    if (options.agentId !== undefined) {
      where.push('agent_id = ?');
      params.push(options.agentId);
    }
    if (options.status !== undefined) {
      where.push('status = ?');
      params.push(options.status);
    }
    if (options.rootId !== undefined) {
      where.push('root_id = ?');
      params.push(options.rootId);
    }
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const limit = Math.min(Math.max(options.limit ?? 100, 1), 1000);
    const rows = await this.#o.store.query<MandateRow>(`SELECT ${COLUMNS} FROM mandates ${clause} ORDER BY created_at DESC, id LIMIT ?`, [
      ...params,
      limit,
    ]);
    return rows.map(fromRow);
  }

  async #insert(m: Mandate, path: string, also?: WriteStatement): Promise<void> {
    await this.#writer.submit({ m, path, ...(also === undefined ? {} : { also }) });
    this.#cache.set(m.id, m);
    for (const fn of this.#opened) {
      try {
        fn(m);
      } catch {
        // A listener's failure is its own; the mandate is recorded.
      }
    }
  }

  #actors(m: Mandate, agents: readonly string[]): AuditActor[] {
    const actors: AuditActor[] = [];
    if (m.onBehalfOf !== undefined) actors.push({ type: 'human', id: m.onBehalfOf });
    for (const id of agents) actors.push({ type: 'agent', id });
    return actors;
  }

  /** `data` is a literal each caller builds for this event alone: the mandate's fields are added to it (no spread). */
  async #audit(type: string, m: Mandate, actors: AuditActor[], data: Record<string, unknown>): Promise<void> {
    data.purpose = m.purpose;
    data.taskType = m.taskType;
    data.agentId = m.agentId;
    data.parentMandateId = m.parentId ?? null;
    data.expiresAt = m.expiresAt;
    await this.#o.audit?.append({ type, actors, mandateId: m.id, environment: m.environment, data });
  }
}

function newMandateId(): string {
  return `mnd_${randomBase64url(12)}`;
}

/** Mandate paths hold ids from `newMandateId` (base64url: `-` and `_`); `_` is a LIKE wildcard. */
function escapeLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** The row of a new mandate. */
function insertRow(m: Mandate, path: string): WriteStatement {
  return {
    sql: `INSERT INTO mandates (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, ?)`,
    params: [
      m.id,
      m.agentId,
      m.parentId ?? null,
      m.rootId,
      path,
      m.depth,
      m.onBehalfOf ?? null,
      m.purpose,
      m.taskType,
      m.environment,
      JSON.stringify(m.scope),
      m.status,
      m.expiresAt,
      m.createdAt,
      m.requestText ?? null,
      m.template === undefined ? null : JSON.stringify(m.template),
    ],
  };
}
