// Who is signed in and what the admin API lets them do, as the server says (GET
// /admin/v1/console/me, decided by the same function that guards every admin route). The console
// only hides what would be refused; the server stays the enforcement point.
import { createContext, useContext } from 'react';

export interface Me {
  readonly id: string;
  readonly name: string;
  readonly roles: readonly string[];
  readonly via: 'oidc' | 'bootstrap' | 'mtls';
  readonly permissions: readonly string[];
}

export const MeContext = createContext<Me | undefined>(undefined);

/** The signed-in operator; undefined until the server answered. */
export function useMe(): Me | undefined {
  return useContext(MeContext);
}

/** True when the signed-in operator holds `permission` (false while unknown: hide, never flash). */
export function useCan(permission: string): boolean {
  return useMe()?.permissions.includes(permission) ?? false;
}

/** The approval fields that decide who may approve or deny it. */
export interface Decidable {
  readonly status: string;
  readonly expiresAt: number;
  readonly requiredRoles: readonly string[];
  readonly forbiddenApprovers?: readonly string[];
  readonly onBehalfOf?: string;
}

/**
 * Why `me` may not decide `a` (undefined when they may), with the checks of the approval service
 * (src/approvals/service.ts `decide`): an identified human, not a principal the approval forbids,
 * holding one of its required roles. The server checks again on every decision.
 */
export function whyNotDecide(me: Me | undefined, a: Decidable): string | undefined {
  if (me === undefined) return 'checking your roles…';
  if (me.via !== 'oidc') return 'approvals are decided by an identified human, not the bootstrap token';
  if (a.forbiddenApprovers?.includes(me.id)) {
    return me.id === a.onBehalfOf
      ? 'you are the human this agent acts for, so you may not approve its request'
      : 'you are part of this request’s delegation chain';
  }
  if (!me.roles.some((r) => a.requiredRoles.includes(r)))
    return `it needs one of the roles ${a.requiredRoles.join(', ')}; you have ${me.roles.join(', ') || 'none'}`;
  return undefined;
}
