// Authorization of the broker's own admin API, in one place, deny by default: every admin route
// names a permission, and this table says which operator roles hold it. A route that names none
// is refused (see the onRequest hook in app.ts).
import { AuthError } from '../errors/index.js';
import type { Operator } from '../identity/operators.js';

export const permissions = {
  /** Any authenticated operator may read who they are. */
  'self:read': ['*'],
  'principals:read': ['admin', 'auditor'],
  'principals:write': ['admin'],
  'upstreams:read': ['admin', 'auditor'],
  // Registering a stdio upstream runs a command on the broker host: admins only.
  'upstreams:write': ['admin'],
  'approvals:read': ['admin', 'approver', 'auditor'],
  // Any authenticated human may try; the approval itself demands one of its required roles
  // (src/approvals/service.ts), so a `finance` approver needs no blanket approver role.
  'approvals:decide': ['*'],
  // The webhook delivery log: receivers, event types, attempts, errors.
  'webhooks:read': ['admin', 'auditor'],
  // Console live stream and overview charts: ids, statuses and counts only, for any console user.
  'console:read': ['admin', 'auditor', 'approver'],
  'agents:read': ['admin', 'auditor'],
  'agents:write': ['admin'],
  'mandates:read': ['admin', 'auditor'],
  // Opening a mandate for an agent from a task template (the agent takes it with its own proof).
  'mandates:open': ['admin', 'orchestrator'],
  // Admins end any mandate; an agent's owner may end its mandates (checked in routes/oauth.ts).
  'mandates:end': ['*'],
  // RFC 7662 introspection callers: resource servers and admins.
  'tokens:introspect': ['admin', 'resource-server'],
  'policy:read': ['admin', 'auditor'],
  // Reloading org policy changes every decision on every replica: admins only.
  'policy:write': ['admin'],
  // AuthZEN PDP callers (PEPs) when policy.authzen.auth is bearer: registered services with `pdp`.
  'authzen:evaluate': ['admin', 'pdp'],
  // The audit log: entries, proofs, explain, entry bundles (full event bodies).
  'audit:read': ['admin', 'auditor'],
  // Signing a checkpoint on demand.
  'audit:write': ['admin'],
} as const satisfies Record<string, readonly string[]>;

export type Permission = keyof typeof permissions;

export function isPermission(value: unknown): value is Permission {
  return typeof value === 'string' && Object.hasOwn(permissions, value);
}

export function authorizeOperator(operator: Operator, permission: Permission): void {
  const allowed: readonly string[] = permissions[permission];
  if (allowed.includes('*') || operator.roles.some((role) => allowed.includes(role))) return;
  throw new AuthError('ERR_FORBIDDEN', `operator lacks permission ${permission}`);
}
