// The audit log's public contract. Every domain writes its steps through `AuditLog.append`, which
// resolves only once the event is durable; a rejected append means the privileged action must not
// happen (fail closed).

/** Who acted, outermost first: the human on whose behalf (if any), then agents down the delegation chain. */
export interface AuditActor {
  readonly type: 'human' | 'service' | 'agent' | 'operator' | 'system';
  readonly id: string;
}

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

export interface AuditLog {
  /** Appends durably (group commit). Rejects with ERR_AUDIT_UNAVAILABLE when the event cannot be made durable. */
  append(event: AuditEventInput): Promise<AuditReceipt>;
  /** Salted HMAC of a secret value, so equal secrets stay correlatable without being stored. */
  redact(secret: string): string;
}
