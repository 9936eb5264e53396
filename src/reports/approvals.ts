// Approvals: volume, how long humans took (p50/p95), approve/deny ratio, and who approves.
import { num, percentiles } from './sql.js';
import { makeReport, type Report, type ReportContext, type ReportParams, windowOf } from './types.js';

export interface ApproverRow {
  readonly approver: string;
  readonly role: string | null;
  readonly approved: number;
  readonly denied: number;
  readonly medianLatencySeconds: number | null;
}

export async function approvalsReport(ctx: ReportContext, params: ReportParams = {}): Promise<Report<ApproverRow>> {
  const { since } = windowOf(ctx, params);
  const db = ctx.db;
  const byStatus = new Map<string, number>();
  for (const r of await db.query<{ status: string; n: number }>(
    'SELECT status, COUNT(*) AS n FROM approvals WHERE created_at >= ? GROUP BY status',
    [since],
  ))
    byStatus.set(r.status, num(r.n));
  // Decided = a human answered: approved (used or not yet) or denied. `consumed` was approved first.
  const decidedWhere = `FROM approvals WHERE created_at >= ? AND decided_at IS NOT NULL AND decided_by IS NOT NULL`;
  const latency = await percentiles(db, '(decided_at - created_at)', decidedWhere, [since], [0.5, 0.95]);
  const people = await db.query<{ who: string; role: string | null; approved: number; denied: number }>(
    `SELECT decided_by AS who, decided_role AS role,
            SUM(CASE WHEN status = 'denied' THEN 0 ELSE 1 END) AS approved,
            SUM(CASE WHEN status = 'denied' THEN 1 ELSE 0 END) AS denied
       ${decidedWhere} GROUP BY decided_by, decided_role ORDER BY decided_by, decided_role`,
    [since],
  );
  const rows: ApproverRow[] = [];
  for (const p of people) {
    const m = await percentiles(
      db,
      '(decided_at - created_at)',
      `${decidedWhere} AND decided_by = ? AND ${p.role === null ? 'decided_role IS NULL' : 'decided_role = ?'}`,
      p.role === null ? [since, p.who] : [since, p.who, p.role],
      [0.5],
    );
    rows.push({
      approver: p.who,
      role: p.role,
      approved: num(p.approved),
      denied: num(p.denied),
      medianLatencySeconds: m.values[0] === null || m.values[0] === undefined ? null : m.values[0] / 1000,
    });
  }
  const approved = rows.reduce((s, r) => s + r.approved, 0);
  const denied = rows.reduce((s, r) => s + r.denied, 0);
  const total = [...byStatus.values()].reduce((s, n) => s + n, 0);
  const secs = (ms: number | null | undefined) => (ms === null || ms === undefined ? null : ms / 1000);
  return makeReport(ctx, params, {
    name: 'approvals',
    title: 'Approvals',
    columns: [
      { key: 'approver', label: 'Approver' },
      { key: 'role', label: 'Role' },
      { key: 'approved', label: 'Approved' },
      { key: 'denied', label: 'Denied' },
      { key: 'medianLatencySeconds', label: 'Median latency (s)' },
    ],
    rows,
    summary: {
      requested: total,
      pending: byStatus.get('pending') ?? 0,
      approved,
      denied,
      consumed: byStatus.get('consumed') ?? 0,
      expiredUnanswered: byStatus.get('expired') ?? 0,
      approveRatio: approved + denied === 0 ? null : Math.round((approved / (approved + denied)) * 1000) / 1000,
      latencyP50Seconds: secs(latency.values[0]),
      latencyP95Seconds: secs(latency.values[1]),
      approvers: new Set(rows.map((r) => r.approver)).size,
    },
    notes: [
      'Approvals requested in the window, by their current status. Latency is decided_at − created_at of the ones a human answered (nearest-rank percentiles).',
      'approveRatio = approved / (approved + denied); expired ones were never answered. Approved counts include approvals already consumed by their call.',
    ],
  });
}
