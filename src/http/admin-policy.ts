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
  // Console live stream and overview charts: ids, statuses and counts only, for any console user.
  'console:read': ['admin', 'auditor', 'approver'],
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
