// Live or closed: an approval can be decided only while it is pending and not expired; every other
// state is said in words on its card. Pure, so it is tested outside the browser.

/** The approval fields that decide its state on screen. */
export interface ApprovalState {
  readonly status: string;
  readonly expiresAt: number;
  readonly decidedBy?: string;
  readonly decidedRole?: string;
}

/** Why an approval can no longer be decided, in words; undefined while it is live. */
export function staleReason(a: ApprovalState, now: number): string | undefined {
  const who = a.decidedBy ? ` by ${a.decidedBy}${a.decidedRole ? ` as ${a.decidedRole}` : ''}` : '';
  switch (a.status) {
    case 'pending':
      return a.expiresAt <= now ? 'Expired while waiting: nobody decided in time. The agent must ask again.' : undefined;
    case 'approved':
      return a.expiresAt <= now ? `Approved${who}, then expired unused.` : `Approved${who}; waiting for the agent's retry to use it.`;
    case 'consumed':
      return `Approved${who} and used: the call ran.`;
    case 'denied':
      return `Denied${who}.`;
    case 'expired':
      return 'Expired: nobody decided in time (or the approval went unused). The agent must ask again.';
    case 'withdrawn':
      return 'Withdrawn: the agent cancelled the call or its mandate ended.';
    default:
      return `No longer pending (${a.status}).`;
  }
}
