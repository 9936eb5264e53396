// Actor entries for audit events, so every domain names operators, agents and humans the same way.
import type { AuditActor } from './types.js';

/** A human (or the bootstrap admin) using the admin API or console. */
export function operatorActor(operator: { readonly id: string } | undefined): AuditActor {
  return { type: 'operator', id: operator?.id ?? 'unknown' };
}
