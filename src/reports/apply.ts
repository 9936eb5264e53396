// The one reviewed step that applies a suggested least-privilege ceiling: the suggestion is
// recomputed, applied only when its hash equals the one the admin reviewed, only if it narrows the
// current ceiling, and audited before the registry changes (fail closed).
import type { AgentRegistry } from '../agents/registry.js';
import type { AuditActor, AuditLog } from '../audit/types.js';
import { MandateError } from '../errors/index.js';
import { isSubset, type Scope } from '../scope/scope.js';
import { overPrivilegeReport } from './over-privilege.js';
import type { ReportContext } from './types.js';

export interface AppliedCeiling {
  readonly agentId: string;
  readonly suggestionHash: string;
  readonly removedTools: readonly string[];
  readonly ceiling: Scope;
}

export async function applySuggestedCeiling(
  ctx: ReportContext,
  deps: { readonly agents: Pick<AgentRegistry, 'require' | 'update'>; readonly audit: AuditLog },
  input: { readonly agentId: string; readonly suggestionHash: string; readonly since?: number; readonly actor: AuditActor },
): Promise<AppliedCeiling> {
  const agent = await deps.agents.require(input.agentId);
  const report = await overPrivilegeReport(ctx, { agentId: input.agentId, ...(input.since === undefined ? {} : { since: input.since }) });
  const row = report.rows[0];
  if (row === undefined || row.suggestedCeiling === null) throw new MandateError('ERR_NOT_FOUND', `agent ${input.agentId} has no profile`);
  const ceiling = row.suggestedCeiling;
  if (row.suggestionHash !== input.suggestionHash) {
    throw new MandateError(
      'ERR_STORE_CONFLICT',
      'the suggested ceiling changed since it was reviewed; review the current suggestion and apply its hash',
    );
  }
  const current = agent.ceiling as Scope;
  if (!isSubset(ceiling, current).ok) {
    throw new MandateError('ERR_STORE_CONFLICT', 'the suggested ceiling is not narrower than the current one');
  }
  await deps.audit.append({
    type: 'admin.agent.ceiling_reduced',
    actors: [input.actor],
    data: {
      agentId: input.agentId,
      suggestionHash: row.suggestionHash,
      removedTools: row.unusedTools,
      ceiling: row.suggestedCeiling,
      window: report.window,
    },
  });
  await deps.agents.update(input.agentId, { ceiling });
  return { agentId: input.agentId, suggestionHash: input.suggestionHash, removedTools: row.unusedTools, ceiling };
}
