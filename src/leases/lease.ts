// The lease model (DESIGN §2): a credential obtained or minted for one upstream on behalf of one
// mandate, with an expiry, revoked with the mandate. What the API and console see of it: never the secret.
import type { Config } from '../config/load.js';

export const leaseStatuses = ['obtaining', 'active', 'revoking', 'revoked', 'failed'] as const;
/**
 * obtaining: reserved, the provider is creating it (a crash here is reaped: the handle is known);
 * active: injected into calls; revoking: claimed by a replica that is revoking it (retried when
 * stale or failed); revoked: gone at the provider; failed: never obtained (nothing to revoke).
 */
export type LeaseStatus = (typeof leaseStatuses)[number];

/** The configuration of one upstream's lease provider (`leases.upstreams.<id>`). */
export type LeaseConfig = Config['leases']['upstreams'][string];
export type LeaseProviderType = LeaseConfig['type'];

/** A lease as the API, console and `explain` show it. */
export interface Lease {
  readonly id: string;
  readonly mandateId: string;
  readonly upstream: string;
  readonly provider: LeaseProviderType;
  readonly status: LeaseStatus;
  /** Non-secret identification at the provider (role name, token id, scopes, audience). */
  readonly details: Readonly<Record<string, unknown>>;
  /** Salted HMACs of the secret values (correlatable with audit events, not readable). */
  readonly secretHmacs: readonly string[];
  readonly expiresAt: number;
  readonly createdAt: number;
  readonly obtainedAt?: number;
  readonly revokedAt?: number;
  readonly revokeReason?: string;
  /** Failed revocation attempts so far (the reaper retries). */
  readonly attempts: number;
  /** The last provider failure, secret-free. */
  readonly lastError?: string;
}
