// Agents whose owner is missing (no such principal) or disabled, and dormant agents (no activity
// in N days). Each is a finding an owner review or offboarding should close.
import { lastActivity } from './activity.js';
import { iso } from './sql.js';
import { DAY_MS, makeReport, type Report, type ReportContext, type ReportParams } from './types.js';

export type OwnershipFinding = 'owner_missing' | 'owner_disabled' | 'dormant';

export interface OwnershipRow {
  readonly agentId: string;
  readonly finding: OwnershipFinding;
  readonly owner: string | null;
  readonly ownerStatus: string | null;
  readonly agentStatus: string;
  readonly environment: string | null;
  readonly lastActivity: string | null;
  readonly detail: string;
}

export async function ownershipReport(ctx: ReportContext, params: ReportParams = {}): Promise<Report<OwnershipRow>> {
  const dormantDays = params.dormantDays ?? 30;
  const cutoff = ctx.now - dormantDays * DAY_MS;
  const agents = await ctx.db.query<{
    id: string;
    owner: string | null;
    status: string;
    environment: string | null;
    created_at: number;
    owner_status: string | null;
    owner_found: string | null;
  }>(
    `SELECT a.id, a.owner, a.status, a.environment, a.created_at, o.status AS owner_status, o.id AS owner_found
       FROM principals a LEFT JOIN principals o ON o.id = a.owner
      WHERE a.actor_type = 'agent' ORDER BY a.id`,
  );
  const last = await lastActivity(ctx.db);
  const rows: OwnershipRow[] = [];
  for (const a of agents) {
    const seen = last.get(a.id) ?? null;
    const base = {
      agentId: a.id,
      owner: a.owner,
      ownerStatus: a.owner_status,
      agentStatus: a.status,
      environment: a.environment,
      lastActivity: iso(seen),
    };
    if (a.owner === null || a.owner_found === null) {
      rows.push({
        ...base,
        finding: 'owner_missing',
        detail: a.owner === null ? 'no owner recorded' : `owner ${a.owner} is not a principal`,
      });
    } else if (a.owner_status === 'disabled') {
      rows.push({ ...base, finding: 'owner_disabled', detail: `owner ${a.owner} is disabled` });
    }
    // Dormant: an agent that can still act (not disabled), registered before the cutoff, and idle since.
    if (a.status !== 'disabled' && Number(a.created_at) < cutoff && (seen === null || seen < cutoff)) {
      rows.push({
        ...base,
        finding: 'dormant',
        detail:
          seen === null
            ? `never active, registered ${dormantDays}+ days ago`
            : `no activity for ${Math.floor((ctx.now - seen) / DAY_MS)} days`,
      });
    }
  }
  const count = (f: OwnershipFinding) => rows.filter((r) => r.finding === f).length;
  return makeReport(ctx, params, {
    name: 'ownership',
    title: 'Ownerless, orphaned and dormant agents',
    columns: [
      { key: 'agentId', label: 'Agent' },
      { key: 'finding', label: 'Finding' },
      { key: 'owner', label: 'Owner' },
      { key: 'ownerStatus', label: 'Owner status' },
      { key: 'agentStatus', label: 'Agent status' },
      { key: 'environment', label: 'Environment' },
      { key: 'lastActivity', label: 'Last activity' },
      { key: 'detail', label: 'Detail' },
    ],
    rows,
    summary: {
      agents: agents.length,
      ownerMissing: count('owner_missing'),
      ownerDisabled: count('owner_disabled'),
      dormant: count('dormant'),
      dormantDays,
    },
    notes: [
      'owner_missing: the owner named on the agent is not a registered principal. owner_disabled: the owner principal is disabled (orphaned agent).',
      `dormant: not disabled, registered more than ${dormantDays} days ago and no audit activity in the last ${dormantDays} days. Disable or re-own these.`,
    ],
  });
}
