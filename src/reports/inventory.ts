// Inventory of principals (humans, services, agents): owner, environment, status, last activity.
import { lastActivity } from './activity.js';
import { iso } from './sql.js';
import { makeReport, type Report, type ReportContext, type ReportParams } from './types.js';

export interface InventoryRow {
  readonly id: string;
  readonly actorType: 'human' | 'service' | 'agent';
  readonly displayName: string;
  readonly owner: string | null;
  readonly environment: string | null;
  readonly status: string;
  readonly createdAt: string;
  readonly lastActivity: string | null;
}

export async function inventoryReport(ctx: ReportContext, params: ReportParams = {}): Promise<Report<InventoryRow>> {
  const rows = await ctx.db.query<{
    id: string;
    actor_type: InventoryRow['actorType'];
    display_name: string;
    owner: string | null;
    environment: string | null;
    status: string;
    created_at: number;
  }>('SELECT id, actor_type, display_name, owner, environment, status, created_at FROM principals ORDER BY actor_type, id');
  const last = await lastActivity(ctx.db);
  const out: InventoryRow[] = rows.map((r) => ({
    id: r.id,
    actorType: r.actor_type,
    displayName: r.display_name,
    owner: r.owner,
    environment: r.environment,
    status: r.status,
    createdAt: iso(Number(r.created_at)) as string,
    lastActivity: iso(last.get(r.id) ?? null),
  }));
  const count = (f: (r: InventoryRow) => boolean) => out.filter(f).length;
  return makeReport(ctx, params, {
    name: 'inventory',
    title: 'Inventory of principals',
    columns: [
      { key: 'id', label: 'Principal' },
      { key: 'actorType', label: 'Actor type' },
      { key: 'displayName', label: 'Name' },
      { key: 'owner', label: 'Owner' },
      { key: 'environment', label: 'Environment' },
      { key: 'status', label: 'Status' },
      { key: 'createdAt', label: 'Created' },
      { key: 'lastActivity', label: 'Last activity' },
    ],
    rows: out,
    summary: {
      principals: out.length,
      humans: count((r) => r.actorType === 'human'),
      services: count((r) => r.actorType === 'service'),
      agents: count((r) => r.actorType === 'agent'),
      agentsActive: count((r) => r.actorType === 'agent' && r.status === 'active'),
      agentsQuarantined: count((r) => r.actorType === 'agent' && r.status === 'quarantined'),
      agentsDisabled: count((r) => r.actorType === 'agent' && r.status === 'disabled'),
      agentsNeverActive: count((r) => r.actorType === 'agent' && r.lastActivity === null),
    },
    notes: [
      'Last activity of an agent is the newest audit event of any of its mandates; of a human, the newest approval they decided or mandate opened on their behalf.',
    ],
  });
}
