// The audit log's public contract. Every domain writes its steps through `AuditLog.append`, which
// resolves only once the event is durable (or, asked for a record of what already happened,
// committed); a rejected append means the privileged action must not happen (fail closed).

import type { Wait } from '../store/group-commit.js';

/** Who acted, outermost first: the human on whose behalf (if any), then agents down the delegation chain. */
export interface AuditActor {
  readonly type: 'human' | 'service' | 'agent' | 'operator' | 'system';
  readonly id: string;
}

/**
 * The event types Mandate writes, with what each means; `admin.<thing>.<verb>` covers admin changes
 * (e.g. `admin.principal.created`). `AuditEventInput.type` stays a string so new steps need no
 * contract change, but these are the names to use.
 */
export const auditEventTypes = {
  'identity.verified': 'an agent identity proof was verified (data: identity, proofId)',
  'identity.rejected': 'an identity proof was refused (data: reason, identity?)',
  'mandate.opened': 'a mandate was opened (data: purpose, taskType, scope, agentId, onBehalfOf?, proofId?)',
  'mandate.refused': 'a mandate request was refused (data: reason)',
  'mandate.delegated': 'a child mandate was delegated (data: parentMandateId, scope, depth)',
  'mandate.completed': 'the mandate ended: completed',
  'mandate.failed': 'the mandate ended: failed',
  'mandate.revoked': 'the mandate was revoked, with its descendants (data: reason)',
  'mandate.expired': 'the mandate reached its TTL',
  'token.issued': 'an access token was minted for a mandate (data: tokenId, never the token)',
  'token.revoked': 'an access token (data: tokenId) or a refresh token (data: refreshToken: true) was revoked',
  'token.refresh_reused':
    'a refresh token was presented a second time by its bound holder; the mandate is revoked next (data: generation, agentId)',
  'token.code_reused':
    'an authorization code was presented again; the mandate opened from it (if any) is revoked next (data: client, consent)',
  'consent.granted': 'a human granted an interactive client a mandate request on the consent page (data: client, consent, request)',
  'consent.denied': 'a human denied an interactive client on the consent page (data: client, consent)',
  'oauth.client_registered': 'a public client registered dynamically, RFC 7591 (data: client, name, redirectUris)',
  decision: 'a per-call decision (data: decisionId, outcome, policies, reasons, grant?, approvalId?)',
  'approval.requested': 'a human approval was requested for one exact call (data: approvalId, callHash)',
  'approval.decided':
    'a human approved or denied (actor: the approver; data: approvalId, decisionId, outcome, role, tool, callHash, note?)',
  'approval.consumed': 'an approval was used by the matching call (data: approvalId, decisionId)',
  'approval.expired': 'an approval expired unused (data: approvalId)',
  'approval.withdrawn':
    'the agent withdrew its pending (or approved, unused) approval request, e.g. by tasks/cancel (data: approvalId, taskId?)',
  'task.ended':
    'an MCP task was ended by the broker, not by its call: expired, outcome unknown after a crashed forward, or mandate ended (data: taskId, reason)',
  'tool.forwarded': 'an allowed call was forwarded upstream (data: decisionId, tool, args)',
  'tool.result': 'the upstream answered (data: decisionId, status, size, resultHash)',
  'lease.issued':
    'a per-mandate upstream credential (lease) was obtained, before first use (data: leaseId, upstream, provider, details, secretHmacs, expiresAt; never the credential)',
  'lease.revoked': 'a lease was revoked at its provider (data: leaseId, upstream, provider, reason, details, secretHmacs)',
  'lease.revoke_failed': 'revoking a lease failed; the reaper retries it (data: leaseId, upstream, provider, reason, error, attempts)',
  'lease.failed': 'a lease could not be obtained; the call was not forwarded (data: leaseId, upstream, provider, error, cleanedUp)',
  'risk.signal': 'a risk signal or automatic response (data: signal, score, action?)',
  'risk.response':
    'an automatic risk response fired, before it is carried out (data: action, subject, id, score, signals [{signal, value, points}])',
  'risk.cleared':
    'a risk response was lifted: the score fell below its clear level after its hold time (data: action, subject, id, score, signals)',
  'refusal.aggregated':
    'unauthenticated requests refused from one source in one window, counted instead of one event each (data: source, count, windowStart, windowEnd, endpoints, codes)',
} as const;

export type KnownAuditEventType = keyof typeof auditEventTypes | `admin.${string}.${string}`;

export interface AuditEventInput {
  /** Dotted event type, e.g. `mandate.opened`, `decision`, `tool.forwarded`, `admin.principal.created`. */
  readonly type: string;
  readonly actors: readonly AuditActor[];
  readonly mandateId?: string;
  readonly environment?: string;
  /** Event body. Secrets must be passed through `AuditLog.redact` (salted HMAC) before they get here. */
  readonly data: Readonly<Record<string, unknown>>;
}

export interface AuditReceipt {
  /** Zero-based leaf index in the Merkle log; gap-free. */
  readonly seq: number;
  /** Stable event id (for explain / console links). */
  readonly id: string;
  /** Hex SHA-256 leaf hash (RFC 9162: SHA-256(0x00 || canonical event bytes)). */
  readonly leafHash: string;
}

export interface AppendOptions {
  /**
   * `durable` (default): resolves once the event survives a power loss. `committed`: resolves once
   * it is committed to the store — in the log, safe from a crash of the broker — while the fsync
   * that makes it survive a power loss may still run (the embedded store; a PostgreSQL commit is
   * durable already). Only for a record of what already happened, never for the event a privileged
   * action waits on: the gateway's `tool.result`, never a `decision`.
   */
  readonly wait?: Wait;
}

export interface AuditLog {
  /** Appends (group commit). Rejects with ERR_AUDIT_UNAVAILABLE when the event cannot be written. */
  append(event: AuditEventInput, options?: AppendOptions): Promise<AuditReceipt>;
  /** Salted HMAC of a secret value, so equal secrets stay correlatable without being stored. */
  redact(secret: string): string;
}
