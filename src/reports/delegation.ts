// Delegation: how deep chains go and how many children a mandate delegates to (fan-out).
import { num } from './sql.js';
import { makeReport, type Report, type ReportContext, type ReportParams, windowOf } from './types.js';

export interface DelegationRow {
  /** `depth` (mandates at that depth) or `fanout` (parents with that many children). */
  readonly measure: 'depth' | 'fanout';
  readonly value: number;
  readonly mandates: number;
}

export async function delegationReport(ctx: ReportContext, params: ReportParams = {}): Promise<Report<DelegationRow>> {
  const { since } = windowOf(ctx, params);
  const depth = await ctx.db.query<{ v: number; n: number }>(
    'SELECT depth AS v, COUNT(*) AS n FROM mandates WHERE created_at >= ? GROUP BY depth ORDER BY depth',
    [since],
  );
  const fanout = await ctx.db.query<{ v: number; n: number }>(
    `SELECT c.children AS v, COUNT(*) AS n
       FROM (SELECT parent_id, COUNT(*) AS children FROM mandates WHERE parent_id IS NOT NULL AND created_at >= ? GROUP BY parent_id) c
      GROUP BY c.children ORDER BY c.children`,
    [since],
  );
  const rows: DelegationRow[] = [
    ...depth.map((r) => ({ measure: 'depth' as const, value: num(r.v), mandates: num(r.n) })),
    ...fanout.map((r) => ({ measure: 'fanout' as const, value: num(r.v), mandates: num(r.n) })),
  ];
  const all = depth.reduce((s, r) => s + num(r.n), 0);
  const delegated = depth.filter((r) => num(r.v) > 0).reduce((s, r) => s + num(r.n), 0);
  const maxDepth = depth.reduce((m, r) => Math.max(m, num(r.v)), 0);
  const maxFanout = fanout.reduce((m, r) => Math.max(m, num(r.v)), 0);
  const parents = fanout.reduce((s, r) => s + num(r.n), 0);
  return makeReport(ctx, params, {
    name: 'delegation',
    title: 'Delegation depth and fan-out',
    columns: [
      { key: 'measure', label: 'Measure' },
      { key: 'value', label: 'Value' },
      { key: 'mandates', label: 'Mandates' },
    ],
    rows,
    summary: {
      mandates: all,
      delegated,
      rootMandates: all - delegated,
      maxDepth,
      configuredMaxDepth: ctx.config.identity.maxDelegationDepth,
      delegatingParents: parents,
      maxFanout,
      meanFanout: parents === 0 ? null : Math.round((fanout.reduce((s, r) => s + num(r.v) * num(r.n), 0) / parents) * 100) / 100,
    },
    notes: [
      'depth rows: how many mandates opened in the window sit at each delegation depth (0 = opened directly by an agent).',
      'fanout rows: how many parent mandates delegated to exactly that many children in the window.',
    ],
  });
}
