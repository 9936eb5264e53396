// Policy coverage: `execute` and `destructive` tools reachable in production without an approval
// (probed against the loaded Cedar set, and observed in the audit log), catalog tools no mandate
// used in the window, and policies that never determined a decision in the window.
import type { CallerAgent, CallerMandate } from '../oauth/caller.js';
import { cedarRequest } from '../policy/decisions.js';
import type { LoadedPolicySet } from '../policy/engine.js';
import type { CatalogEntry } from '../upstreams/catalog.js';
import { decisionRows, num } from './sql.js';
import { makeReport, type Report, type ReportContext, type ReportParams, windowOf } from './types.js';

export type CoverageFinding = 'no_approval_rule' | 'allowed_without_approval' | 'tool_unused' | 'policy_never_matched';

export interface CoverageRow {
  readonly kind: 'tool' | 'policy';
  readonly subject: string;
  readonly finding: CoverageFinding;
  readonly actionClass: string | null;
  readonly count: number | null;
  readonly detail: string;
}

const GATED = new Set(['execute', 'destructive']);

/**
 * Would an active production agent whose mandate grants `tool` be allowed to call it, with no
 * arguments and no approval, by the loaded set? `true`: yes (no approval rule covers it); `false`:
 * denied or approval-gated; `undefined`: the request cannot be built or errored (inconclusive).
 */
export function reachableWithoutApproval(set: LoadedPolicySet, tool: CatalogEntry, environment = 'production'): boolean | undefined {
  const agent: CallerAgent = { id: 'coverage-probe', actorType: 'agent', owner: 'coverage-probe-owner', environment, status: 'active' };
  const mandate: CallerMandate = {
    id: 'coverage-probe',
    agentId: agent.id,
    purpose: 'policy coverage probe',
    taskType: 'coverage.probe',
    environment,
    scope: { tools: [{ tool: tool.name }], delegable: false },
    depth: 0,
    status: 'active',
  };
  try {
    const answer = set.authorize(cedarRequest(set, { agent, mandate, chain: [mandate], tool, args: {} }, undefined));
    if (answer.errors.length > 0) return undefined;
    return answer.decision === 'allow';
  } catch {
    return undefined;
  }
}

export async function coverageReport(ctx: ReportContext, params: ReportParams = {}): Promise<Report<CoverageRow>> {
  const { since } = windowOf(ctx, params);
  const d = ctx.db.dialect;
  const rows: CoverageRow[] = [];
  const gated = ctx.catalog.filter((t) => GATED.has(t.actionClass));
  let inconclusive = 0;
  if (ctx.policySet !== undefined) {
    for (const t of gated) {
      const r = reachableWithoutApproval(ctx.policySet, t);
      if (r === undefined) inconclusive++;
      if (r === true) {
        rows.push({
          kind: 'tool',
          subject: t.name,
          finding: 'no_approval_rule',
          actionClass: t.actionClass,
          count: null,
          detail: 'an active production agent granted this tool is allowed without an approval',
        });
      }
    }
  }
  // One pass over the window's decisions, grouped on the few values that matter; split up here.
  const groups = await ctx.db.query<{
    tool: string | null;
    cls: string | null;
    outcome: string | null;
    env: string | null;
    unapproved: unknown;
    policies: string | null;
    n: number;
  }>(
    `SELECT tool, cls, outcome, env, CASE WHEN approval IS NULL THEN 1 ELSE 0 END AS unapproved, policies, COUNT(*) AS n
       FROM ${decisionRows(d)} x
      GROUP BY tool, cls, outcome, env, CASE WHEN approval IS NULL THEN 1 ELSE 0 END, policies`,
    [since],
  );
  const observed = new Map<string, { cls: string; n: number }>();
  const used = new Set<string>();
  const matched = new Set<string>();
  for (const g of groups) {
    if (g.outcome === 'allow' && g.tool !== null) {
      used.add(g.tool);
      if ((g.cls === 'execute' || g.cls === 'destructive') && g.env === 'production' && Number(g.unapproved) === 1) {
        const o = observed.get(g.tool) ?? { cls: g.cls, n: 0 };
        o.n += num(g.n);
        observed.set(g.tool, o);
      }
    }
    try {
      const list = g.policies === null ? [] : (JSON.parse(g.policies) as unknown);
      if (Array.isArray(list)) for (const id of list) if (typeof id === 'string') matched.add(id);
    } catch {
      // Not a list: it names no policy.
    }
  }
  for (const [t, o] of [...observed].sort(([a], [b]) => a.localeCompare(b))) {
    rows.push({
      kind: 'tool',
      subject: t,
      finding: 'allowed_without_approval',
      actionClass: o.cls,
      count: o.n,
      detail: 'allowed in production without an approval in the window',
    });
  }
  for (const t of ctx.catalog) {
    if (!used.has(t.name))
      rows.push({
        kind: 'tool',
        subject: t.name,
        finding: 'tool_unused',
        actionClass: t.actionClass,
        count: 0,
        detail: 'no mandate was allowed to call it in the window',
      });
  }
  const policies = ctx.policySet?.policies ?? [];
  for (const pol of policies) {
    if (!matched.has(pol.id))
      rows.push({
        kind: 'policy',
        subject: pol.id,
        finding: 'policy_never_matched',
        actionClass: null,
        count: 0,
        detail: `${pol.effect} at ${pol.file}:${pol.line} determined no decision in the window`,
      });
  }
  const count = (f: CoverageFinding) => rows.filter((r) => r.finding === f).length;
  return makeReport(ctx, params, {
    name: 'coverage',
    title: 'Policy coverage',
    columns: [
      { key: 'kind', label: 'Kind' },
      { key: 'subject', label: 'Tool / policy' },
      { key: 'finding', label: 'Finding' },
      { key: 'actionClass', label: 'Action class' },
      { key: 'count', label: 'Count' },
      { key: 'detail', label: 'Detail' },
    ],
    rows,
    summary: {
      catalogTools: ctx.catalog.length,
      executeOrDestructiveTools: gated.length,
      noApprovalRule: count('no_approval_rule'),
      probeInconclusive: inconclusive,
      allowedWithoutApproval: count('allowed_without_approval'),
      unusedTools: count('tool_unused'),
      policies: policies.length,
      policiesNeverMatched: count('policy_never_matched'),
      policySetLoaded: ctx.policySet !== undefined,
    },
    notes: [
      'no_approval_rule: the loaded policy set allows an active production agent whose mandate grants the tool to call it with no arguments and no approval. Rules that only gate some arguments (amount above a limit) still show here: small calls pass without a human.',
      'allowed_without_approval: decision events in the window that allowed an execute/destructive tool in production with no approval attached.',
      'policy_never_matched: the policy was never among the determining policies of a decision in the window (a forbid that never fired, or a permit nothing used).',
    ],
  });
}
