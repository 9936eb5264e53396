// What an agent's registration (or a change of owner or ceiling) names must exist: an owner the
// broker knows, that is active and is not itself an agent, and tools that are in the catalog. A
// typo would otherwise own nothing (an orphan from the first day) or grant nothing, silently.
// Checked at the boundary that takes operators' input (the admin API, and so the CLI), before the
// change is audited; the demo seed and tests that register agents programmatically are trusted.
import { MandateError } from '../errors/index.js';
import type { Principal } from '../principals/principal.js';

/** Where the names are looked up: the principal store and this replica's tool catalog. */
export interface AgentReferenceDirectory {
  principal(id: string): Promise<Principal | undefined>;
  /** The names of the tools in the catalog (upstreams not yet discovered are discovered first). */
  toolNames(): Promise<ReadonlySet<string>>;
}

/** Names listed in one refusal, at most (the rest are counted). */
const LISTED = 10;

/** Throws ERR_VALIDATION naming what is unknown; `owner` and `ceiling` are checked when present. */
export async function checkAgentReferences(
  change: { readonly owner?: string; readonly ceiling?: { readonly tools: readonly { readonly tool: string }[] } },
  directory: AgentReferenceDirectory,
): Promise<void> {
  if (change.owner !== undefined) {
    const owner = await directory.principal(change.owner);
    if (owner === undefined) {
      throw new MandateError(
        'ERR_VALIDATION',
        `owner "${change.owner}" is not a known principal; create the human or team first (POST /admin/v1/principals)`,
        { details: { field: 'owner' } },
      );
    }
    if (owner.actorType === 'agent') {
      throw new MandateError('ERR_VALIDATION', `owner "${change.owner}" is an agent; an agent is owned by a human or a team`, {
        details: { field: 'owner' },
      });
    }
    if (owner.status !== 'active') {
      throw new MandateError(
        'ERR_VALIDATION',
        `owner "${change.owner}" is ${owner.status}; an agent needs an active owner to answer for it`,
        { details: { field: 'owner' } },
      );
    }
  }
  if (change.ceiling !== undefined) {
    const known = await directory.toolNames();
    const missing = [...new Set(change.ceiling.tools.map((g) => g.tool))].filter((t) => !known.has(t));
    if (missing.length > 0) {
      const listed = missing.slice(0, LISTED).map((t) => JSON.stringify(t));
      const more = missing.length > LISTED ? ` and ${missing.length - LISTED} more` : '';
      throw new MandateError(
        'ERR_VALIDATION',
        `not in the tool catalog: ${listed.join(', ')}${more} (see \`mandate catalog list\`; register the upstream that serves ${missing.length === 1 ? 'it' : 'them'} first)`,
        { details: { field: 'ceiling.tools', unknownTools: missing.length } },
      );
    }
  }
}
