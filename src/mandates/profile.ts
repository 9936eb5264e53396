// The one check of a requested mandate against the registered profile of the agent that will hold
// it: used for root mandates and, unchanged, for the receiver of every delegation.
import type { Agent } from '../agents/agent.js';
import { OAuthError } from '../errors/index.js';
import { isSubset, type Scope } from '../scope/scope.js';
import type { MandateRequest } from './mandate.js';

/** Refusals because the scope exceeds an agent's ceiling (scope probing, for the risk engine). */
export const ceilingRefusals = new WeakSet<Error>();

/** `root`: the agent asks for itself; `receiver`: it is the target of a delegation (RFC 8693 `invalid_target`). */
export type HolderRole = 'root' | 'receiver';

const details = (message: string, path?: string) =>
  new OAuthError('OAUTH_INVALID_AUTHORIZATION_DETAILS', message, path === undefined ? {} : { details: { path } });

/**
 * Throws unless `agent` may hold a mandate for `request`: it is active, the task type is one of its
 * task types (none listed allows any), the environment is its own, the TTL is within its maximum
 * and the broker's, and the scope is a subset of its ceiling. Returns the scope to record.
 */
export function checkAgainstProfile(agent: Agent, request: MandateRequest, brokerMaxTtlSeconds: number, role: HolderRole): Scope {
  const id = agent.principal.id;
  if (agent.principal.status !== 'active') {
    // A delegation to a stopped agent names an unacceptable target; a root request an unacceptable subject.
    throw new OAuthError(
      role === 'receiver' ? 'OAUTH_INVALID_TARGET' : 'OAUTH_INVALID_SUBJECT_TOKEN',
      `agent ${id} is ${agent.principal.status}`,
    );
  }
  if (agent.taskTypes.length > 0 && !agent.taskTypes.includes(request.taskType)) {
    throw details(`task type "${request.taskType}" is not allowed for agent ${id}`, 'taskType');
  }
  if (agent.principal.environment !== undefined && request.environment !== agent.principal.environment) {
    throw details(`agent ${id} runs in "${agent.principal.environment}", not "${request.environment}"`, 'environment');
  }
  const maxTtl = Math.min(agent.maxTtlSeconds, brokerMaxTtlSeconds);
  if (request.ttlSeconds > maxTtl)
    throw details(`ttlSeconds ${request.ttlSeconds} exceeds the maximum of ${maxTtl} for agent ${id}`, 'ttlSeconds');
  const scope: Scope = { tools: request.tools, delegable: request.delegable };
  const within = isSubset(scope, agent.ceiling);
  if (!within.ok) {
    const whose = role === 'receiver' ? "the receiver's" : "the agent's";
    const err = details(`the requested scope exceeds ${whose} ceiling: ${within.reason}`, within.path);
    ceilingRefusals.add(err);
    throw err;
  }
  return scope;
}
