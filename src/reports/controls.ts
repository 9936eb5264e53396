// The framework control map (controls/controls.v1.json, validated here at load): for each control,
// the Mandate capability that addresses it, live checks of this deployment (named functions over
// configuration and store: pass, fail or not applicable, with the reason) and evidence queries that
// return the audit events an auditor can be shown.
import { z } from 'zod';
import { MandateError } from '../errors/index.js';
import { riskSettings } from '../risk/settings.js';
import data from './controls/controls.v1.json' with { type: 'json' };
import { coverageReport } from './coverage.js';
import { credentialsReport } from './credentials.js';
import { overPrivilegeReport } from './over-privilege.js';
import { ownershipReport } from './ownership.js';
import { decisionsTable, num } from './sql.js';
import { DAY_MS, makeReport, type Report, type ReportContext, type ReportParams, windowOf } from './types.js';

export type CheckStatus = 'pass' | 'fail' | 'not_applicable';
export interface CheckResult {
  readonly status: CheckStatus;
  readonly reason: string;
}

// Several checks read the same report: compute each once per context and parameters.
// Only within one controlsReport run (its own context object): a check called on its own always reads afresh.
const memoized = new WeakSet<ReportContext>();
const memo = new WeakMap<ReportContext, Map<string, Promise<Report<object>>>>();
function once<R extends Report<object>>(ctx: ReportContext, params: ReportParams, name: string, run: () => Promise<R>): Promise<R> {
  if (!memoized.has(ctx)) return run();
  let m = memo.get(ctx);
  if (m === undefined) {
    m = new Map();
    memo.set(ctx, m);
  }
  const key = `${name} ${params.since ?? ''} ${params.dormantDays ?? ''} ${params.agentId ?? ''}`;
  let r = m.get(key);
  if (r === undefined) {
    r = run();
    m.set(key, r);
  }
  return r as Promise<R>;
}

const pass = (reason: string): CheckResult => ({ status: 'pass', reason });
const fail = (reason: string): CheckResult => ({ status: 'fail', reason });
const na = (reason: string): CheckResult => ({ status: 'not_applicable', reason });

/** Longest access token lifetime a check accepts (seconds). */
export const MAX_TOKEN_TTL_SECONDS = 900;
/** Deepest delegation a check accepts. */
export const MAX_DELEGATION_DEPTH = 3;

/** A live check: a named function over configuration and store (never the network). */
export type CheckFn = (ctx: ReportContext, params: ReportParams) => Promise<CheckResult>;

const checkFns = {
  'policy.loaded': async (ctx) =>
    ctx.policySet === undefined || ctx.policySet.policies.length === 0
      ? fail('no org policy is loaded: every call is denied, and nothing is governed by policy')
      : pass(
          `${ctx.policySet.policies.length} policies loaded (engine ${ctx.policySet.engine}, version ${ctx.policySet.version.slice(0, 12)})`,
        ),
  'audit.checkpoints_signed': async (ctx) =>
    ctx.config.audit.checkpointIntervalMs > 0
      ? pass(`a checkpoint is signed every ${ctx.config.audit.checkpointIntervalMs} ms when the log grew`)
      : fail('audit.checkpointIntervalMs is 0: checkpoints are signed only on demand, so recent events have no signed tree head'),
  'audit.entries_private': async (ctx) =>
    ctx.config.audit.publicEntries
      ? fail('audit.publicEntries serves event bodies without authentication')
      : pass('audit entries need an auditor or admin'),
  'tokens.short_lived': async (ctx) =>
    ctx.config.identity.tokenTtlSeconds <= MAX_TOKEN_TTL_SECONDS
      ? pass(`access tokens live ${ctx.config.identity.tokenTtlSeconds} s (≤ ${MAX_TOKEN_TTL_SECONDS} s)`)
      : fail(`identity.tokenTtlSeconds is ${ctx.config.identity.tokenTtlSeconds} s (> ${MAX_TOKEN_TTL_SECONDS} s)`),
  'tokens.dpop_production': async (ctx) =>
    ctx.config.identity.dpopRequiredEnvironments.includes('production')
      ? pass('tokens of production mandates must be DPoP-bound')
      : fail('identity.dpopRequiredEnvironments does not include production: a stolen bearer token is usable by anyone'),
  'identity.workload_issuers': async (ctx) => {
    const n = ctx.config.identity.trustDomains.length + ctx.config.identity.oidcIssuers.length;
    if (n > 0) return pass(`${n} workload identity issuers (SPIFFE trust domains, OIDC issuers) configured`);
    return ctx.config.mode === 'demo'
      ? na('demo mode: agents use the development issuer')
      : fail('no SPIFFE trust domain or OIDC workload issuer is configured');
  },
  'delegation.bounded': async (ctx) =>
    ctx.config.identity.maxDelegationDepth <= MAX_DELEGATION_DEPTH
      ? pass(`delegation depth is limited to ${ctx.config.identity.maxDelegationDepth}`)
      : fail(`identity.maxDelegationDepth is ${ctx.config.identity.maxDelegationDepth} (> ${MAX_DELEGATION_DEPTH})`),
  'approvals.gated_tools': async (ctx, p) => {
    if (!ctx.catalog.some((t) => t.actionClass === 'execute' || t.actionClass === 'destructive')) {
      return na('no execute or destructive tool in the catalog');
    }
    if (ctx.policySet === undefined) return fail('no org policy is loaded');
    const s = (await once(ctx, p, 'coverage', () => coverageReport(ctx, p))).summary;
    const open = num(s.noApprovalRule);
    return open === 0
      ? pass(`all ${s.executeOrDestructiveTools} execute/destructive tools need an approval (or are denied) in production`)
      : fail(`${open} execute/destructive tools are reachable in production without an approval (see the coverage report)`);
  },
  'approvals.answered': async (ctx, p) => {
    const [r] = await ctx.db.query<{ expired: number; all: number }>(
      `SELECT SUM(CASE WHEN status = 'expired' THEN 1 ELSE 0 END) AS expired, COUNT(*) AS "all" FROM approvals WHERE created_at >= ?`,
      [windowOf(ctx, p).since],
    );
    const all = num(r?.all);
    if (all === 0) return na('no approval was requested in the window');
    const expired = num(r?.expired);
    return expired * 10 <= all
      ? pass(`${all - expired} of ${all} approvals requested in the window were answered`)
      : fail(`${expired} of ${all} approvals expired unanswered (more than 10%)`);
  },
  'agents.owned': async (ctx, p) => {
    const s = (await once(ctx, p, 'ownership', () => ownershipReport(ctx, p))).summary;
    const bad = num(s.ownerMissing) + num(s.ownerDisabled);
    if (num(s.agents) === 0) return na('no agent is registered');
    return bad === 0 ? pass(`all ${s.agents} agents have an enabled owner`) : fail(`${bad} agents have a missing or disabled owner`);
  },
  'agents.no_dormant': async (ctx, p) => {
    const s = (await once(ctx, p, 'ownership', () => ownershipReport(ctx, p))).summary;
    if (num(s.agents) === 0) return na('no agent is registered');
    return num(s.dormant) === 0
      ? pass(`no enabled agent has been idle for ${s.dormantDays} days`)
      : fail(`${s.dormant} enabled agents idle for ${s.dormantDays}+ days`);
  },
  'agents.least_privilege': async (ctx, p) => {
    const s = (await once(ctx, p, 'over-privilege', () => overPrivilegeReport(ctx, p))).summary;
    if (num(s.agents) === 0) return na('no agent is registered');
    const active = num(s.agents) - num(s.agentsIdleInWindow);
    if (active === 0) return na('no agent made an allowed call in the window');
    return num(s.agentsWithUnusedGrants) - num(s.agentsIdleInWindow) <= 0
      ? pass('every agent active in the window used every tool of its ceiling')
      : fail(
          `${num(s.agentsWithUnusedGrants) - num(s.agentsIdleInWindow)} active agents hold ceiling grants they did not use in the window`,
        );
  },
  'credentials.rotated': async (ctx, p) => {
    const s = (await once(ctx, p, 'credentials', () => credentialsReport(ctx, p))).summary;
    if (num(s.staticCredentials) === 0) return na('no upstream has a static credential');
    return num(s.stale) === 0
      ? pass(`no static credential is older than 90 days`)
      : fail(`${s.stale} static upstream credentials unchanged for 90+ days`);
  },
  'credentials.not_shared': async (ctx, p) => {
    const s = (await once(ctx, p, 'credentials', () => credentialsReport(ctx, p))).summary;
    if (num(s.staticCredentials) === 0) return na('no upstream has a static credential');
    return num(s.shared) === 0
      ? pass('no credential value is shared between upstreams')
      : fail(`${s.shared} upstreams share a credential value with another upstream`);
  },
  'credentials.leases': async (ctx, p) => {
    const s = (await once(ctx, p, 'credentials', () => credentialsReport(ctx, p))).summary;
    if (num(s.staticCredentials) === 0 && num(s.leaseUpstreams) === 0) return na('no upstream has a credential');
    return num(s.staticWithoutLease) === 0
      ? pass('every upstream with a credential also has a per-mandate lease provider')
      : fail(`${s.staticWithoutLease} upstreams are reached with a static credential only (no lease provider)`);
  },
  'intent.provenance_policy': async (ctx) => {
    const set = ctx.policySet;
    if (set === undefined || set.policies.length === 0) return fail('no org policy is loaded');
    const reads = set.contextReads;
    if (reads === undefined) return na(`the ${set.engine} engine cannot tell which context its policies read`);
    return reads === 'all' || reads.has('intent')
      ? pass('a loaded policy reads context.intent: arguments that came from tool output are told apart from what the human named')
      : fail(
          'no loaded policy reads context.intent: an argument taken from a poisoned tool result is decided like one the human named (see policies/injection)',
        );
  },
  'risk.read_then_send': async (ctx) => {
    if (!ctx.config.risk.enabled) return fail('risk.enabled is false: no risk signal is measured');
    const s = riskSettings(ctx.config.risk).signals.read_then_send;
    if (s.enabled === false || s.points <= 0) {
      return fail('the read_then_send risk signal is off: sending data out after a sensitive read raises no score');
    }
    return pass(`a call that can send data out after a confidential or restricted read adds up to ${s.points} risk points`);
  },
} as const satisfies Record<string, CheckFn>;

export type CheckName = keyof typeof checkFns;

/** Live checks by name. */
export const checks: Readonly<Record<CheckName, CheckFn>> = checkFns;

/** Evidence queries by name: audit event types (and an optional outcome of decision events). */
export const evidenceQueries = {
  'decisions.all': { types: ['decision'] },
  'decisions.denied': { types: ['decision'], outcome: 'deny' },
  'decisions.approval_required': { types: ['decision'], outcome: 'approval_required' },
  'tools.forwarded': { types: ['tool.forwarded'] },
  'approvals.decided': { types: ['approval.decided'] },
  'mandates.opened': { types: ['mandate.opened'] },
  'mandates.delegated': { types: ['mandate.delegated'] },
  'mandates.revoked': { types: ['mandate.revoked'] },
  'identity.verified': { types: ['identity.verified'] },
  'identity.rejected': { types: ['identity.rejected'] },
  'leases.issued': { types: ['lease.issued'] },
  'leases.revoked': { types: ['lease.revoked', 'lease.revoke_failed'] },
  'risk.signals': { types: ['risk.signal'] },
  'admin.changes': { prefix: 'admin.' },
} as const satisfies Record<string, { types?: readonly string[]; outcome?: string; prefix?: string }>;

export type EvidenceQueryName = keyof typeof evidenceQueries;

const controlSchema = z.strictObject({
  framework: z.string(),
  id: z.string().min(1),
  title: z.string().min(1),
  capability: z.string().min(1),
  /** Why Mandate does not address this control at all: it is then not applicable, with this reason, and has no checks. */
  outOfScope: z.string().min(1).optional(),
  checks: z.array(z.enum(Object.keys(checks) as [CheckName, ...CheckName[]])),
  evidence: z.array(z.enum(Object.keys(evidenceQueries) as [EvidenceQueryName, ...EvidenceQueryName[]])),
});

export const controlMapSchema = z
  .strictObject({
    version: z.literal(1),
    frameworks: z.array(z.strictObject({ id: z.string().regex(/^[a-z0-9-]+$/), title: z.string(), url: z.url() })).min(1),
    controls: z.array(controlSchema),
  })
  .superRefine((m, ctx) => {
    const ids = new Set(m.frameworks.map((f) => f.id));
    const seen = new Set<string>();
    for (const c of m.controls) {
      if (!ids.has(c.framework)) ctx.addIssue({ code: 'custom', message: `control ${c.id}: unknown framework ${c.framework}` });
      const key = `${c.framework}/${c.id}`;
      if (seen.has(key)) ctx.addIssue({ code: 'custom', message: `duplicate control ${key}` });
      if (c.outOfScope !== undefined && (c.checks.length > 0 || c.evidence.length > 0)) {
        ctx.addIssue({ code: 'custom', message: `control ${key} is out of scope: it can have no checks or evidence` });
      }
      if (c.outOfScope === undefined && c.checks.length === 0) {
        ctx.addIssue({ code: 'custom', message: `control ${key} has no live check: name one, or say why it is out of scope` });
      }
      seen.add(key);
    }
  });

export type ControlMap = z.infer<typeof controlMapSchema>;
export type Control = ControlMap['controls'][number];

/** The shipped control map, validated once (a malformed file fails at import, in every test). */
export const controlMap: ControlMap = controlMapSchema.parse(data);

export function frameworkIds(map: ControlMap = controlMap): string[] {
  return map.frameworks.map((f) => f.id);
}

/** Newest audit events answering an evidence query in the window (seq, type, time), at most `limit`. */
export async function evidenceEvents(
  ctx: ReportContext,
  name: EvidenceQueryName,
  since: number,
  limit = 20,
): Promise<{ seq: number; type: string; createdAt: string }[]> {
  const q = evidenceQueries[name] as { types?: readonly string[]; outcome?: string; prefix?: string };
  const params: (string | number)[] = [since];
  let where = 'created_at >= ?';
  if (q.types !== undefined && q.outcome === undefined) {
    where += ` AND type IN (${q.types.map(() => '?').join(', ')})`;
    params.push(...q.types);
  }
  // A prefix range on the (type, created_at) index instead of LIKE (which neither store indexes here).
  if (q.prefix !== undefined) {
    where += ' AND type >= ? AND type < ?';
    params.push(q.prefix, `${q.prefix.slice(0, -1)}${String.fromCharCode(q.prefix.charCodeAt(q.prefix.length - 1) + 1)}`);
  }
  let from = 'audit_entries';
  if (q.outcome !== undefined) {
    // A literal type, so SQLite can prove the partial decision index applies.
    where = `type = 'decision' AND ${where}`;
    // Decisions by outcome: the outcome column (from the decision index on SQLite), no body parsed.
    where += ' AND outcome = ?';
    params.push(q.outcome);
    from = decisionsTable(ctx.db.dialect);
  }
  const rows = await ctx.db.query<{ seq: number; type: string; created_at: number }>(
    // Decisions by outcome name their type as a constant: every selected column is then in the decision
    // index (PostgreSQL answers from it alone, not with a table scan, even when nothing matches).
    `SELECT seq, ${q.outcome === undefined ? 'type' : "'decision' AS type"}, created_at FROM ${from} WHERE ${where} ORDER BY seq DESC LIMIT ?`,
    [...params, limit],
  );
  return rows.map((r) => ({ seq: Number(r.seq), type: r.type, createdAt: new Date(Number(r.created_at)).toISOString() }));
}

export interface ControlRow {
  readonly framework: string;
  readonly control: string;
  readonly title: string;
  readonly capability: string;
  readonly status: CheckStatus;
  readonly checks: readonly { name: string; status: CheckStatus; reason: string }[];
  readonly evidence: readonly { query: string; events: readonly number[] }[];
}

/** Overall status of a control: fail if any check fails, pass if any passes, else not applicable. */
function overall(results: readonly CheckResult[]): CheckStatus {
  if (results.some((r) => r.status === 'fail')) return 'fail';
  if (results.some((r) => r.status === 'pass')) return 'pass';
  return 'not_applicable';
}

/** The control map of one framework (or all) evaluated against this deployment, with evidence event ids. */
export async function controlsReport(
  ctx: ReportContext,
  params: ReportParams & { framework?: string; evidenceLimit?: number } = {},
  map: ControlMap = controlMap,
): Promise<Report<ControlRow>> {
  if (params.framework !== undefined && !map.frameworks.some((f) => f.id === params.framework)) {
    throw new MandateError('ERR_NOT_FOUND', `unknown framework ${params.framework}; known: ${frameworkIds(map).join(', ')}`);
  }
  const { since } = windowOf(ctx, params);
  // A context of this run only: the reports several checks share are computed once in it.
  ctx = { ...ctx };
  memoized.add(ctx);
  const checkCache = new Map<string, Promise<CheckResult>>();
  const runCheck = (name: CheckName) => {
    let r = checkCache.get(name);
    if (r === undefined) {
      r = checks[name](ctx, params).catch((err: unknown) => fail(`the check could not run: ${(err as Error).message}`));
      checkCache.set(name, r);
    }
    return r;
  };
  const evidenceCache = new Map<string, Promise<number[]>>();
  const runEvidence = (name: EvidenceQueryName) => {
    let r = evidenceCache.get(name);
    if (r === undefined) {
      r = evidenceEvents(ctx, name, since, params.evidenceLimit ?? 20).then((es) => es.map((e) => e.seq));
      evidenceCache.set(name, r);
    }
    return r;
  };
  const rows: ControlRow[] = [];
  const selected = map.controls.filter((c) => params.framework === undefined || c.framework === params.framework);
  // Start every distinct check and evidence query at once: a PostgreSQL pool answers them in parallel.
  for (const c of selected) {
    for (const name of c.checks) void runCheck(name);
    for (const query of c.evidence) runEvidence(query).catch(() => {});
  }
  for (const c of selected) {
    const results =
      c.outOfScope === undefined
        ? await Promise.all(c.checks.map(async (name) => ({ name: name as string, ...(await runCheck(name)) })))
        : [{ name: 'out_of_scope', status: 'not_applicable' as const, reason: c.outOfScope }];
    const evidence = await Promise.all(c.evidence.map(async (query) => ({ query, events: await runEvidence(query) })));
    rows.push({
      framework: c.framework,
      control: c.id,
      title: c.title,
      capability: c.capability,
      status: overall(results),
      checks: results,
      evidence,
    });
  }
  const count = (s: CheckStatus) => rows.filter((r) => r.status === s).length;
  return makeReport(ctx, params, {
    name: 'controls',
    title:
      params.framework === undefined
        ? 'Framework control map'
        : `Control map: ${map.frameworks.find((f) => f.id === params.framework)?.title}`,
    columns: [
      { key: 'framework', label: 'Framework' },
      { key: 'control', label: 'Control' },
      { key: 'title', label: 'Title' },
      { key: 'capability', label: 'Mandate capability' },
      { key: 'status', label: 'Status' },
      { key: 'checks', label: 'Live checks' },
      { key: 'evidence', label: 'Evidence (audit event ids)' },
    ],
    rows,
    summary: {
      controlMapVersion: map.version,
      framework: params.framework ?? 'all',
      controls: rows.length,
      pass: count('pass'),
      fail: count('fail'),
      notApplicable: count('not_applicable'),
    },
    notes: [
      'A control fails when any of its live checks fails, passes when at least one passes, and is not applicable otherwise. A control Mandate does not address at all is not applicable with the reason (check out_of_scope).',
      "Evidence lists the newest audit event ids (sequence numbers) answering each evidence query in the window; `mandate audit explain <id>` tells each one's story and an evidence pack proves each is in the signed log.",
      `Window starts ${new Date(since).toISOString()}; dormant after ${params.dormantDays ?? 30} days (${DAY_MS} ms per day).`,
    ],
  });
}
