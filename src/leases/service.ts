// Leases (`broker.leases`): per-mandate credentials for upstreams. Obtained on a mandate's first call
// to an upstream (or when it opens, if configured eager), recorded sealed, injected through the one
// seam (`credentialFor`), revoked when the mandate ends on any replica (the `mandate` change topic,
// descendants included), and reaped at start and periodically (ended or expired mandates, crashed
// obtains, failed revocations). Every step is audited; secret values only as salted HMACs.

import { randomBytes } from 'node:crypto';
import type { AuditLog } from '../audit/types.js';
import { MandateError } from '../errors/index.js';
import { countTrue } from '../lib/bounded-pool.js';
import type { Clock } from '../lib/clock.js';
import { isLive, type Mandate } from '../mandates/mandate.js';
import type { MandateService } from '../mandates/service.js';
import type { SecretBox } from '../secrets/secret-box.js';
import type { UpstreamCredential } from '../secrets/upstream-credentials.js';
import type { ChangeFeed } from '../store/changes.js';
import type { Store } from '../store/types.js';
import type { UpstreamRegistry } from '../upstreams/registry.js';
import { type CredentialInjector, type CredentialRequest, type InjectedCredential, mergeCredentials } from './injection.js';
import type { Lease, LeaseConfig, LeaseStatus } from './lease.js';
import type { LeaseProvider, ObtainedLease, RevokeRequest } from './provider.js';

/** A lease this close to its expiry is not handed out any more (a call needs time to use it). */
const EXPIRY_SKEW_MS = 2000;
/** How often a caller waiting for another replica's obtain looks again. */
const WAIT_STEP_MS = 50;

interface LeaseRow {
  [key: string]: unknown;
  id: string;
  mandate_id: string;
  upstream: string;
  provider: string;
  status: LeaseStatus;
  handle: string;
  details: string;
  sealed: string | null;
  secret_hmacs: string | null;
  expires_at: number;
  created_at: number;
  obtained_at: number | null;
  revoked_at: number | null;
  revoke_reason: string | null;
  claimed_at: number | null;
  attempts: number;
  last_error: string | null;
}

const COLUMNS =
  'id, mandate_id, upstream, provider, status, handle, details, sealed, secret_hmacs, expires_at, created_at, obtained_at, revoked_at, revoke_reason, claimed_at, attempts, last_error';

function fromRow(r: LeaseRow): Lease {
  return {
    id: r.id,
    mandateId: r.mandate_id,
    upstream: r.upstream,
    provider: r.provider as Lease['provider'],
    status: r.status,
    details: JSON.parse(r.details) as Record<string, unknown>,
    secretHmacs: r.secret_hmacs === null ? [] : (JSON.parse(r.secret_hmacs) as string[]),
    expiresAt: Number(r.expires_at),
    createdAt: Number(r.created_at),
    ...(r.obtained_at === null ? {} : { obtainedAt: Number(r.obtained_at) }),
    ...(r.revoked_at === null ? {} : { revokedAt: Number(r.revoked_at) }),
    ...(r.revoke_reason === null ? {} : { revokeReason: r.revoke_reason }),
    attempts: Number(r.attempts),
    ...(r.last_error === null ? {} : { lastError: r.last_error }),
  };
}

/** One configured upstream: its provider configuration and implementation. */
export interface LeaseBinding {
  readonly config: LeaseConfig;
  readonly provider: LeaseProvider;
}

export interface LeaseServiceOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly secrets: SecretBox;
  readonly changes: ChangeFeed;
  readonly audit: AuditLog;
  readonly mandates: Pick<MandateService, 'get' | 'chain' | 'hasEnded'>;
  /** The static sealed credentials (merged under the lease). */
  readonly registry: Pick<UpstreamRegistry, 'connection'>;
  /** Providers by upstream id. */
  readonly bindings: ReadonlyMap<string, LeaseBinding>;
  readonly obtainTimeoutMs: number;
  readonly reapIntervalMs: number;
}

/** What is held in memory per (mandate, upstream) on this replica. */
export interface Held {
  readonly leaseId: string;
  readonly credential: UpstreamCredential;
  readonly expiresAt: number;
}

const unavailable = (message: string, cause?: unknown) =>
  new MandateError('ERR_LEASE_UNAVAILABLE', message, cause === undefined ? {} : { cause });

/** A short, secret-free description of a provider failure (providers never put secrets in messages). */
function describe(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; name?: unknown };
  const msg = typeof e.message === 'string' ? e.message.split('\n')[0]?.slice(0, 300) : String(err).slice(0, 300);
  const code = typeof e.code === 'string' ? ` [${e.code}]` : '';
  return `${msg}${code}`;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Leases revoked at once by one replica (store round trips and provider calls in flight). */
const REVOKE_CONCURRENCY = 16;
/** Mandate ids per lease lookup (well under SQLite's and PostgreSQL's parameter limits). */
const MANDATE_CHUNK = 500;

export class LeaseService implements CredentialInjector {
  readonly #o: LeaseServiceOptions;
  readonly #held = new Map<string, Held>();
  readonly #pending = new Map<string, Promise<Held>>();
  readonly #background = new Set<Promise<unknown>>();
  #timer: NodeJS.Timeout | undefined;
  #off: (() => void) | undefined;
  #closed = false;

  constructor(options: LeaseServiceOptions) {
    this.#o = options;
  }

  /** Follows mandate ends (every replica), reaps once, then periodically. */
  start(): void {
    this.#off = this.#o.changes.subscribe('mandate', (change) => {
      const { status, ids } = change.data;
      if (typeof status !== 'string' || status === 'active') return;
      const ended = Array.isArray(ids) ? ids.filter((x): x is string => typeof x === 'string') : [change.key];
      // Forgotten at once: nothing held for an ended mandate is injected again on this replica.
      for (const id of ended) this.#forget(id);
      this.#track(this.revokeForMandates(ended, `mandate ${status}`));
    });
    this.#track(this.reap());
    this.#timer = setInterval(() => this.#track(this.reap()), this.#o.reapIntervalMs);
    this.#timer.unref();
  }

  /** Upstream ids that have a lease provider. */
  get upstreams(): readonly string[] {
    return [...this.#o.bindings.keys()];
  }

  perMandate(upstreamId: string): boolean {
    return this.#o.bindings.has(upstreamId);
  }

  async credentialFor({ upstreamId, mandateId }: CredentialRequest): Promise<InjectedCredential | undefined> {
    const { credential: base } = await this.#o.registry.connection(upstreamId, { check: false });
    if (!this.#o.bindings.has(upstreamId)) return base;
    const held = await this.obtain(mandateId, upstreamId);
    const merged = mergeCredentials(base, held.credential) ?? {};
    return { ...merged, expiresAt: held.expiresAt, leaseId: held.leaseId };
  }

  /**
   * The mandate's live lease for `upstreamId`, obtained if it has none (one obtain per mandate and
   * upstream across replicas: the store's unique index decides). Throws ERR_LEASE_UNAVAILABLE.
   */
  async obtain(mandateId: string, upstreamId: string): Promise<Held> {
    const key = `${mandateId}\0${upstreamId}`;
    const held = this.#held.get(key);
    if (held !== undefined && held.expiresAt - EXPIRY_SKEW_MS > this.#o.clock.now() && !this.#o.mandates.hasEnded(mandateId)) return held;
    let pending = this.#pending.get(key);
    if (pending === undefined) {
      pending = this.#acquire(mandateId, upstreamId).finally(() => this.#pending.delete(key));
      this.#pending.set(key, pending);
    }
    const got = await pending;
    // Ended while we were obtaining: its revocation may have run before we held it.
    if (this.#o.mandates.hasEnded(mandateId)) {
      this.#forget(mandateId);
      throw unavailable(`mandate ${mandateId} has ended`);
    }
    this.#held.set(key, got);
    return got;
  }

  /** Obtains leases of every eager upstream the mandate's chain grants a tool of (failures are audited, not thrown). */
  async obtainEager(mandate: Mandate): Promise<void> {
    for (const [upstreamId, b] of this.#o.bindings) {
      if (b.config.obtain !== 'eager') continue;
      if (!mandate.scope.tools.some((g) => g.tool.startsWith(`${upstreamId}.`))) continue;
      await this.obtain(mandate.id, upstreamId).catch(() => {});
    }
  }

  async #acquire(mandateId: string, upstreamId: string): Promise<Held> {
    const binding = this.#o.bindings.get(upstreamId);
    if (binding === undefined) throw unavailable(`upstream ${upstreamId} has no lease provider`);
    const deadline = this.#o.clock.now() + this.#o.obtainTimeoutMs;
    for (;;) {
      const mandate = await this.#o.mandates.get(mandateId);
      if (mandate === undefined) throw unavailable(`no mandate ${mandateId}`);
      const chain = await this.#o.mandates.chain(mandate);
      const now = this.#o.clock.now();
      if (chain.some((m) => this.#o.mandates.hasEnded(m.id) || !isLive(m, now))) {
        throw unavailable(`mandate ${mandateId} is not active; no credential is issued for it`);
      }
      const [row] = await this.#o.store.query<LeaseRow>(
        `SELECT ${COLUMNS} FROM leases WHERE mandate_id = ? AND upstream = ? AND status IN ('obtaining', 'active')`,
        [mandateId, upstreamId],
      );
      if (row?.status === 'active') {
        if (Number(row.expires_at) - EXPIRY_SKEW_MS > now) return this.#open(row);
        // Expired before the mandate (a short-lived token): revoked, then a fresh one is obtained.
        await this.#revoke(row.id, 'lease expired');
        continue;
      }
      if (row?.status === 'obtaining') {
        // Another replica (or an earlier call here) is obtaining it: wait for its outcome.
        if (this.#o.clock.now() > deadline) throw unavailable(`the lease for ${upstreamId} is still being obtained; retry`);
        await new Promise((r) => setTimeout(r, WAIT_STEP_MS));
        continue;
      }
      return this.#create(binding, mandate, chain, upstreamId);
    }
  }

  async #create(binding: LeaseBinding, mandate: Mandate, chain: readonly Mandate[], upstreamId: string): Promise<Held> {
    const { provider } = binding;
    const id = `lse_${randomBytes(12).toString('base64url')}`;
    const prefix = `${upstreamId}.`;
    // The upstream's tools every mandate of the chain grants (names as the upstream knows them).
    const tools = [...new Set(mandate.scope.tools.filter((g) => g.tool.startsWith(prefix)).map((g) => g.tool.slice(prefix.length)))].filter(
      (t) => chain.every((m) => m.scope.tools.some((g) => g.tool === `${prefix}${t}`)),
    );
    const base = { leaseId: id, upstreamId, mandate, chain, tools, notAfter: Math.min(...chain.map((m) => m.expiresAt)) };
    const handle = provider.prepare(base);
    const now = this.#o.clock.now();
    // Reserved first (with the handle): a crash during the provider call leaves a row the reaper cleans up.
    const { changes } = await this.#o.store.run(
      `INSERT INTO leases (${COLUMNS}) VALUES (?, ?, ?, ?, 'obtaining', ?, '{}', NULL, NULL, ?, ?, NULL, NULL, NULL, NULL, 0, NULL) ON CONFLICT DO NOTHING`,
      [id, mandate.id, upstreamId, provider.type, JSON.stringify(handle), base.notAfter, now],
    );
    if (changes === 0) return this.#acquire(mandate.id, upstreamId); // another replica reserved first
    let obtained: ObtainedLease;
    try {
      obtained = await withTimeout(provider.obtain({ ...base, handle }), this.#o.obtainTimeoutMs, `obtaining a ${provider.type} lease`);
    } catch (err) {
      await this.#failed(id, mandate, upstreamId, binding, handle, describe(err));
      throw unavailable(`the ${provider.type} credential for upstream ${upstreamId} could not be obtained`, err);
    }
    const hmacs = obtained.secrets.map((s) => this.#o.audit.redact(s));
    const sealed = this.#o.secrets.seal(
      JSON.stringify({ credential: obtained.credential, state: obtained.state ?? null }),
      sealContext(id),
    );
    try {
      // Audited before it is used or recorded as active (fail closed: no unaudited credential is ever injected).
      await this.#o.audit.append({
        type: 'lease.issued',
        actors: [{ type: 'system', id: 'leases' }],
        mandateId: mandate.id,
        environment: mandate.environment,
        data: {
          leaseId: id,
          upstream: upstreamId,
          provider: provider.type,
          details: obtained.details,
          secretHmacs: hmacs,
          expiresAt: obtained.expiresAt,
        },
      });
    } catch (err) {
      await this.#failed(id, mandate, upstreamId, binding, handle, 'the audit log refused the lease', obtained);
      throw unavailable(`the ${provider.type} credential for upstream ${upstreamId} could not be audited, so it is not used`, err);
    }
    const activated = await this.#o.store.run(
      `UPDATE leases SET status = 'active', sealed = ?, secret_hmacs = ?, details = ?, expires_at = ?, obtained_at = ? WHERE id = ? AND status = 'obtaining'`,
      [sealed, JSON.stringify(hmacs), JSON.stringify(obtained.details), obtained.expiresAt, this.#o.clock.now(), id],
    );
    if (activated.changes === 0) {
      // The mandate ended meanwhile and its revocation claimed the reservation, possibly before the
      // provider committed: revoke again with what we now hold (unclaimed, so the reaper retries a failure).
      await this.#o.store.run(
        `UPDATE leases SET status = 'revoking', claimed_at = NULL, sealed = ?, secret_hmacs = ?, details = ? WHERE id = ?`,
        [sealed, JSON.stringify(hmacs), JSON.stringify(obtained.details), id],
      );
      await this.#revoke(id, 'mandate ended while the lease was obtained');
      throw unavailable(`mandate ${mandate.id} ended while its credential was obtained`);
    }
    return { leaseId: id, credential: obtained.credential, expiresAt: obtained.expiresAt };
  }

  /** An obtain failed (or its audit did): undo whatever the provider may have created, record and audit it. */
  async #failed(
    id: string,
    mandate: Mandate,
    upstreamId: string,
    binding: LeaseBinding,
    handle: Readonly<Record<string, string>>,
    error: string,
    obtained?: ObtainedLease,
  ): Promise<void> {
    const request: RevokeRequest = {
      leaseId: id,
      mandateId: mandate.id,
      handle,
      state: obtained?.state,
      details: obtained?.details ?? {},
      expiresAt: obtained?.expiresAt ?? mandate.expiresAt,
    };
    let cleaned = true;
    try {
      await withTimeout(binding.provider.revoke(request), this.#o.obtainTimeoutMs, 'cleaning up a failed lease');
    } catch {
      cleaned = false;
    }
    // Cleaned: `failed` (nothing left). Not cleaned: `revoking`, unclaimed, so the reaper retries.
    await this.#o.store
      .run(
        `UPDATE leases SET status = ?, last_error = ?, revoke_reason = 'obtain failed', claimed_at = NULL, revoked_at = ? WHERE id = ? AND status IN ('obtaining', 'revoking')`,
        [cleaned ? 'failed' : 'revoking', error, cleaned ? this.#o.clock.now() : null, id],
      )
      .catch(() => {});
    await this.#o.audit
      .append({
        type: 'lease.failed',
        actors: [{ type: 'system', id: 'leases' }],
        mandateId: mandate.id,
        environment: mandate.environment,
        data: { leaseId: id, upstream: upstreamId, provider: binding.provider.type, error, cleanedUp: cleaned },
      })
      .catch(() => {});
  }

  #open(row: LeaseRow): Held {
    if (row.sealed === null) throw unavailable(`lease ${row.id} has no credential`);
    const { credential } = JSON.parse(this.#o.secrets.open(row.sealed, sealContext(row.id)).toString('utf8')) as {
      credential: UpstreamCredential;
    };
    return { leaseId: row.id, credential, expiresAt: Number(row.expires_at) };
  }

  /** Revokes every lease of these mandates (ended, with their descendants); returns how many this replica revoked. */
  async revokeForMandates(mandateIds: readonly string[], reason: string): Promise<number> {
    // One query per chunk of mandates (a cascade ends a whole tree in one change), then the leases
    // revoked by a bounded pool: a slow provider does not hold up the others, and a PostgreSQL
    // provider sees the roles together (it drops a batch in one transaction).
    const ids: string[] = [];
    for (let i = 0; i < mandateIds.length; i += MANDATE_CHUNK) {
      const chunk = mandateIds.slice(i, i + MANDATE_CHUNK);
      const rows = await this.#o.store.query<{ id: string }>(
        `SELECT id FROM leases WHERE mandate_id IN (${chunk.map(() => '?').join(', ')}) AND status IN ('obtaining', 'active', 'revoking')`,
        chunk,
      );
      for (const { id } of rows) ids.push(id);
    }
    return countTrue(ids, REVOKE_CONCURRENCY, (id) => this.#revoke(id, reason));
  }

  /**
   * Reaps what a crash or an outage left behind: leases of ended, expired or vanished mandates,
   * leases past their expiry, obtains that never finished, and revocations that failed or whose
   * replica died. Returns how many it revoked.
   */
  async reap(): Promise<number> {
    if (this.#closed) return 0;
    const now = this.#o.clock.now();
    const stale = now - this.#o.obtainTimeoutMs * 2;
    const rows = await this.#o.store.query<{ id: string; why: string }>(
      `SELECT l.id AS id, CASE
          WHEN l.status = 'revoking' THEN 'revocation retried'
          WHEN m.id IS NULL THEN 'mandate unknown'
          WHEN m.status <> 'active' THEN 'mandate ' || m.status
          WHEN m.expires_at <= ? THEN 'mandate expired'
          WHEN l.status = 'obtaining' THEN 'obtain interrupted'
          ELSE 'lease expired' END AS why
         FROM leases l LEFT JOIN mandates m ON m.id = l.mandate_id
        WHERE (l.status IN ('obtaining', 'active') AND (m.id IS NULL OR m.status <> 'active' OR m.expires_at <= ?))
           OR (l.status = 'active' AND l.expires_at <= ?)
           OR (l.status = 'obtaining' AND l.created_at < ?)
           OR (l.status = 'revoking' AND (l.claimed_at IS NULL OR l.claimed_at < ?))
        ORDER BY l.created_at LIMIT 500`,
      [now, now, now, stale, stale],
    );
    return countTrue(rows, REVOKE_CONCURRENCY, ({ id, why }) => this.#revoke(id, why).catch(() => false));
  }

  /**
   * Claims the lease (one replica wins), revokes it at the provider, records and audits the outcome.
   * A failure leaves it `revoking` with the error, for the reaper to retry.
   */
  async #revoke(id: string, reason: string): Promise<boolean> {
    const now = this.#o.clock.now();
    const stale = now - this.#o.obtainTimeoutMs * 2;
    // Claimed and read in one statement (RETURNING: SQLite ≥ 3.35 and PostgreSQL).
    const [row] = await this.#o.store.query<LeaseRow>(
      `UPDATE leases SET status = 'revoking', claimed_at = ?, revoke_reason = COALESCE(revoke_reason, ?)
        WHERE id = ? AND (status IN ('obtaining', 'active') OR (status = 'revoking' AND (claimed_at IS NULL OR claimed_at < ?)))
        RETURNING ${COLUMNS}`,
      [now, reason, id, stale],
    );
    if (row === undefined) return false;
    const binding = this.#o.bindings.get(row.upstream);
    const mandate = await this.#o.mandates.get(row.mandate_id).catch(() => undefined);
    const lease = fromRow(row);
    const audit = (type: string, data: Record<string, unknown>) =>
      this.#o.audit.append({
        type,
        actors: [{ type: 'system', id: 'leases' }],
        mandateId: row.mandate_id,
        ...(mandate === undefined ? {} : { environment: mandate.environment }),
        data: { leaseId: id, upstream: row.upstream, provider: row.provider, ...data },
      });
    try {
      if (binding === undefined) throw new Error(`upstream ${row.upstream} has no lease provider configured any more`);
      let state: string | undefined;
      if (row.sealed !== null) {
        state =
          (JSON.parse(this.#o.secrets.open(row.sealed, sealContext(id)).toString('utf8')) as { state: string | null }).state ?? undefined;
      }
      await withTimeout(
        binding.provider.revoke({
          leaseId: id,
          mandateId: row.mandate_id,
          handle: JSON.parse(row.handle) as Record<string, string>,
          state,
          details: lease.details,
          expiresAt: lease.expiresAt,
        }),
        this.#o.obtainTimeoutMs,
        `revoking a ${row.provider} lease`,
      );
    } catch (err) {
      const error = describe(err);
      await this.#o.store.run('UPDATE leases SET attempts = attempts + 1, last_error = ?, claimed_at = ? WHERE id = ?', [
        error,
        this.#o.clock.now(),
        id,
      ]);
      await audit('lease.revoke_failed', { reason: lease.revokeReason ?? reason, error, attempts: lease.attempts + 1 }).catch(() => {});
      return false;
    }
    const revokedAt = this.#o.clock.now();
    await this.#o.store.run(
      `UPDATE leases SET status = 'revoked', revoked_at = ?, last_error = NULL WHERE id = ? AND status = 'revoking'`,
      [revokedAt, id],
    );
    await audit('lease.revoked', {
      reason: lease.revokeReason ?? reason,
      details: lease.details,
      secretHmacs: lease.secretHmacs,
      wasObtained: row.sealed !== null,
    }).catch(() => {});
    return true;
  }

  /** Leases of one mandate, newest first (API, console, explain): never the secret. */
  async list(mandateId: string): Promise<Lease[]> {
    const rows = await this.#o.store.query<LeaseRow>(`SELECT ${COLUMNS} FROM leases WHERE mandate_id = ? ORDER BY created_at DESC, id`, [
      mandateId,
    ]);
    return rows.map(fromRow);
  }

  async get(id: string): Promise<Lease | undefined> {
    const [row] = await this.#o.store.query<LeaseRow>(`SELECT ${COLUMNS} FROM leases WHERE id = ?`, [id]);
    return row === undefined ? undefined : fromRow(row);
  }

  /** Waits for the revocations and reaps this replica started (tests, benchmarks, shutdown). */
  async settled(): Promise<void> {
    while (this.#background.size > 0) await Promise.allSettled([...this.#background]);
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#off?.();
    await this.settled();
    for (const b of new Set([...this.#o.bindings.values()].map((x) => x.provider))) await b.close().catch(() => {});
  }

  #forget(mandateId: string): void {
    for (const key of this.#held.keys()) if (key.startsWith(`${mandateId}\0`)) this.#held.delete(key);
  }

  #track(p: Promise<unknown>): void {
    const tracked = p.catch(() => {}).finally(() => this.#background.delete(tracked));
    this.#background.add(tracked);
  }
}

/** Sealed lease credentials are bound to their lease id (a sealed value cannot be moved to another row). */
const sealContext = (id: string) => `lease:${id}`;
