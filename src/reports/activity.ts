// Last activity per principal, from the audit log (agents: the newest event of any of their
// mandates) and the records humans leave (approvals decided, mandates opened on their behalf).
import type { SqlExecutor } from '../store/types.js';

/** principal id → epoch ms of its newest recorded activity. One grouped pass over indexed columns. */
export async function lastActivity(db: SqlExecutor, agentId?: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const bump = (id: string, at: unknown) => {
    if (at === null || at === undefined) return;
    const v = Number(at);
    if (v > (out.get(id) ?? Number.NEGATIVE_INFINITY)) out.set(id, v);
  };
  const filter = agentId === undefined ? '' : ' WHERE m.agent_id = ?';
  const params = agentId === undefined ? [] : [agentId];
  // Per mandate first (a covering index walk on audit_entries (mandate_id, created_at)), then per agent.
  const agents = await db.query<{ id: string; last: number }>(
    `SELECT m.agent_id AS id, MAX(e.last) AS last
       FROM (SELECT mandate_id, MAX(created_at) AS last FROM audit_entries WHERE mandate_id IS NOT NULL GROUP BY mandate_id) e
       JOIN mandates m ON m.id = e.mandate_id${filter}
      GROUP BY m.agent_id`,
    params,
  );
  for (const r of agents) bump(r.id, r.last);
  if (agentId !== undefined) return out;
  for (const r of await db.query<{ id: string; last: number }>(
    'SELECT decided_by AS id, MAX(decided_at) AS last FROM approvals WHERE decided_by IS NOT NULL GROUP BY decided_by',
  ))
    bump(r.id, r.last);
  for (const r of await db.query<{ id: string; last: number }>(
    'SELECT on_behalf_of AS id, MAX(created_at) AS last FROM mandates WHERE on_behalf_of IS NOT NULL GROUP BY on_behalf_of',
  ))
    bump(r.id, r.last);
  return out;
}
