// Over-privilege per agent: the ceiling (the widest scope it may ever hold) against the tools and
// argument ranges its mandates were actually allowed to use in a window, and a suggested
// least-privilege ceiling: unused grants dropped, numeric bounds tightened to what was used, a
// string argument that only ever had one value pinned with `eq`. The suggestion only narrows (it is
// checked with isSubset) and carries a hash so an admin applies exactly what was reviewed.
import canonicalize from 'canonicalize';
import { sha256Hex } from '../lib/hash.js';
import { type ArgConstraint, isSubset, type Scope, type ToolGrant } from '../scope/scope.js';
import { decisionsTable, jsonMembers, num } from './sql.js';
import { makeReport, type Report, type ReportContext, type ReportParams, windowOf } from './types.js';

export interface ArgUsage {
  readonly calls: number;
  readonly min: number | null;
  readonly max: number | null;
  /** Distinct string values seen, and the one value when there was exactly one. */
  readonly distinctStrings: number;
  readonly onlyString: string | null;
}

export interface ToolUsage {
  readonly calls: number;
  readonly args: Readonly<Record<string, ArgUsage>>;
}

export interface OverPrivilegeRow {
  readonly agentId: string;
  readonly ceilingTools: number;
  readonly usedTools: number;
  readonly unusedTools: readonly string[];
  readonly allowedCalls: number;
  /** Share of ceiling grants unused in the window, 0..1. */
  readonly excess: number;
  readonly tightenedArgs: number;
  /** Only in the report of one agent (`agentId`): the fleet report has no argument ranges. */
  readonly suggestedCeiling: Scope | null;
  /** SHA-256 of the canonical suggested ceiling: what POST …/apply must name. */
  readonly suggestionHash: string | null;
}

/**
 * agent → tool → usage, from allowed decision events in the window. Fleet-wide (no agent): one
 * grouped pass over the decision index (tools only). For one agent: through its mandates, with
 * argument ranges (one JSON walk per call of that agent only).
 */
export async function usageByAgent(ctx: ReportContext, since: number, agentId?: string): Promise<Map<string, Map<string, ToolUsage>>> {
  const d = ctx.db.dialect;
  const out = new Map<string, Map<string, { calls: number; args: Record<string, ArgUsage> }>>();
  const entry = (agent: string, t: string) => {
    let tools = out.get(agent);
    if (tools === undefined) {
      tools = new Map();
      out.set(agent, tools);
    }
    let u = tools.get(t);
    if (u === undefined) {
      u = { calls: 0, args: {} };
      tools.set(t, u);
    }
    return u;
  };
  if (agentId === undefined) {
    // SQLite: per mandate first from the covering decision index, then per agent (fewer lookups in
    // mandates). PostgreSQL: one hash join and one aggregate (measured at 1,000,000 events: the
    // per-mandate pre-aggregate, 200,000 groups, cost more than it saved).
    const sql =
      d === 'sqlite'
        ? `SELECT m.agent_id AS agent, t.tool AS tool, SUM(t.n) AS calls
             FROM (SELECT mandate_id, tool, COUNT(*) AS n FROM ${decisionsTable(d)}
                    WHERE type = 'decision' AND created_at >= ? AND outcome = 'allow' GROUP BY mandate_id, tool) t
             JOIN mandates m ON m.id = t.mandate_id
            GROUP BY m.agent_id, t.tool`
        : `SELECT m.agent_id AS agent, a.tool AS tool, COUNT(*) AS calls
             FROM audit_entries a JOIN mandates m ON m.id = a.mandate_id
            WHERE a.type = 'decision' AND a.created_at >= ? AND a.outcome = 'allow'
            GROUP BY m.agent_id, a.tool`;
    for (const r of await ctx.db.query<{ agent: string; tool: string; calls: number }>(sql, [since])) {
      if (typeof r.tool === 'string') entry(r.agent, r.tool).calls = num(r.calls);
    }
    return out as Map<string, Map<string, ToolUsage>>;
  }
  // Tool and outcome from the columns the log derives at append; argument values from the bodies
  // (this agent's calls only).
  const tool = 'a.tool';
  const outcome = 'a.outcome';
  const base = 'FROM mandates m JOIN audit_entries a ON a.mandate_id = m.id';
  const where = `WHERE m.agent_id = ? AND a.type = 'decision' AND a.created_at >= ? AND ${outcome} = 'allow'`;
  const params = [agentId, since];
  for (const r of await ctx.db.query<{ agent: string; tool: string; calls: number }>(
    `SELECT m.agent_id AS agent, ${tool} AS tool, COUNT(*) AS calls ${base} ${where} GROUP BY m.agent_id, ${tool}`,
    params,
  )) {
    if (typeof r.tool === 'string') entry(r.agent, r.tool).calls = num(r.calls);
  }
  const j = jsonMembers(d, 'a.body', ['event', 'data', 'args'], 'j');
  // Salted-HMAC values of sensitive arguments are correlatable but say nothing about the range.
  for (const r of await ctx.db.query<{
    agent: string;
    tool: string;
    arg: string;
    calls: number;
    lo: number | null;
    hi: number | null;
    ns: number;
    s: string | null;
  }>(
    `SELECT m.agent_id AS agent, ${tool} AS tool, ${j.key} AS arg, COUNT(*) AS calls, MIN(${j.num}) AS lo, MAX(${j.num}) AS hi,
            COUNT(DISTINCT ${j.str}) AS ns, MIN(${j.str}) AS s
       ${base} CROSS JOIN ${j.from} ${where} AND (${j.str} IS NULL OR ${j.str} NOT LIKE 'hmac:%')
      GROUP BY m.agent_id, ${tool}, ${j.key}`,
    params,
  )) {
    if (typeof r.tool !== 'string') continue;
    const ns = num(r.ns);
    entry(r.agent, r.tool).args[r.arg] = {
      calls: num(r.calls),
      min: r.lo === null ? null : Number(r.lo),
      max: r.hi === null ? null : Number(r.hi),
      distinctStrings: ns,
      onlyString: ns === 1 ? r.s : null,
    };
  }
  return out as Map<string, Map<string, ToolUsage>>;
}

/** Narrows one grant to observed usage. Returns the grant and how many argument constraints it tightened. */
function tighten(grant: ToolGrant, usage: ToolUsage, known: ReadonlySet<string> | undefined): { grant: ToolGrant; tightened: number } {
  const args: Record<string, ArgConstraint> = { ...(grant.args ?? {}) };
  let tightened = 0;
  for (const [name, u] of Object.entries(usage.args)) {
    // An argument the tool does not declare (e.g. `sha256`/`bytes` of an audited-as-hash argument
    // object) is never constrained: it would refuse every later call.
    if (args[name] === undefined && known?.has(name) !== true) continue;
    const c: Record<string, unknown> = { ...(args[name] ?? {}) };
    const before = JSON.stringify(c);
    // Only when every call passed a number (a mixed argument keeps its constraints as they are).
    if (u.max !== null && u.min !== null && u.distinctStrings === 0) {
      if (c.max === undefined || (c.max as number) > u.max) c.max = u.max;
      if (c.min === undefined || (c.min as number) < u.min) c.min = u.min;
    }
    if (
      u.onlyString !== null &&
      u.min === null &&
      c.eq === undefined &&
      c.in === undefined &&
      c.within === undefined &&
      c.prefix === undefined
    ) {
      c.eq = u.onlyString;
    }
    if (JSON.stringify(c) !== before) {
      tightened++;
      args[name] = c as ArgConstraint;
    }
  }
  return { grant: { ...grant, ...(Object.keys(args).length > 0 ? { args } : {}) }, tightened };
}

/** The least-privilege ceiling for one agent: grants of used tools only, tightened to observed usage. */
export function suggestCeiling(
  ceiling: Scope,
  usage: ReadonlyMap<string, ToolUsage> | undefined,
  knownArgs: (tool: string) => ReadonlySet<string> | undefined = () => undefined,
): { scope: Scope; tightened: number } {
  let tightened = 0;
  const tools: ToolGrant[] = [];
  for (const g of ceiling.tools) {
    const u = usage?.get(g.tool);
    if (u === undefined || u.calls === 0) continue;
    const t = tighten(g, u, knownArgs(g.tool));
    tightened += t.tightened;
    tools.push(t.grant);
  }
  const scope: Scope = { tools, delegable: ceiling.delegable };
  // Never suggest anything wider than what the agent holds (a bug here must not widen a ceiling).
  return isSubset(scope, ceiling).ok ? { scope, tightened } : { scope: { tools: [], delegable: false }, tightened: 0 };
}

/** Argument names each catalog tool declares (its input schema's properties). */
export function knownArgsOf(ctx: ReportContext): (tool: string) => ReadonlySet<string> | undefined {
  const byTool = new Map<string, Set<string>>();
  for (const t of ctx.catalog) {
    const props = (t.inputSchema as { properties?: unknown }).properties;
    byTool.set(t.name, new Set(props !== null && typeof props === 'object' ? Object.keys(props) : []));
  }
  return (tool) => byTool.get(tool);
}

export function suggestionHash(scope: Scope): string {
  return sha256Hex(canonicalize(scope) ?? '');
}

export async function overPrivilegeReport(ctx: ReportContext, params: ReportParams = {}): Promise<Report<OverPrivilegeRow>> {
  const { since } = windowOf(ctx, params);
  const usage = await usageByAgent(ctx, since, params.agentId);
  const profiles = await ctx.db.query<{ agent_id: string; ceiling: string }>(
    params.agentId === undefined
      ? 'SELECT agent_id, ceiling FROM agent_profiles ORDER BY agent_id'
      : 'SELECT agent_id, ceiling FROM agent_profiles WHERE agent_id = ?',
    params.agentId === undefined ? [] : [params.agentId],
  );
  const known = knownArgsOf(ctx);
  const perAgent = params.agentId !== undefined;
  const rows: OverPrivilegeRow[] = [];
  for (const p of profiles) {
    const ceiling = JSON.parse(p.ceiling) as Scope;
    const used = usage.get(p.agent_id);
    const names = [...new Set(ceiling.tools.map((g) => g.tool))];
    const unused = names.filter((t) => (used?.get(t)?.calls ?? 0) === 0);
    // Fleet-wide there are no argument ranges, so nothing to tighten: the suggestion is for one agent.
    const suggestion = perAgent ? suggestCeiling(ceiling, used, known) : { scope: null, tightened: 0 };
    let calls = 0;
    for (const u of used?.values() ?? []) calls += u.calls;
    rows.push({
      agentId: p.agent_id,
      ceilingTools: names.length,
      usedTools: names.length - unused.length,
      unusedTools: unused,
      allowedCalls: calls,
      excess: names.length === 0 ? 0 : Math.round((unused.length / names.length) * 1000) / 1000,
      tightenedArgs: suggestion.tightened,
      suggestedCeiling: suggestion.scope,
      suggestionHash: suggestion.scope === null ? null : suggestionHash(suggestion.scope),
    });
  }
  rows.sort((a, b) => b.excess - a.excess || a.agentId.localeCompare(b.agentId));
  return makeReport(ctx, params, {
    name: 'over-privilege',
    title: 'Over-privilege: ceiling versus use',
    columns: [
      { key: 'agentId', label: 'Agent' },
      { key: 'ceilingTools', label: 'Ceiling tools' },
      { key: 'usedTools', label: 'Used tools' },
      { key: 'unusedTools', label: 'Unused tools' },
      { key: 'allowedCalls', label: 'Allowed calls' },
      { key: 'excess', label: 'Unused share' },
      { key: 'tightenedArgs', label: 'Args tightened' },
      { key: 'suggestedCeiling', label: 'Suggested ceiling' },
      { key: 'suggestionHash', label: 'Suggestion hash' },
    ],
    rows,
    summary: {
      agents: rows.length,
      agentsWithUnusedGrants: rows.filter((r) => r.unusedTools.length > 0).length,
      unusedGrants: rows.reduce((s, r) => s + r.unusedTools.length, 0),
      agentsIdleInWindow: rows.filter((r) => r.allowedCalls === 0).length,
    },
    notes: [
      'Use is what decision events with outcome allow recorded in the window; a tool used only outside the window counts as unused.',
      'Fleet-wide, the report compares ceilings with the tools used; for one agent (agentId) it also reads the argument values used and suggests a ceiling. The suggested ceiling keeps only used grants, tightens numeric min/max to the observed range and pins a string argument with a single observed value (eq). Sensitive arguments (audited as salted HMACs) are never pinned.',
      'Apply one with POST /admin/v1/reports/over-privilege/{agentId}/apply and {"suggestionHash": …}; the broker recomputes the suggestion and applies it only if the hash still matches (audited as admin.agent.ceiling_reduced).',
    ],
  });
}
