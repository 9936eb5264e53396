// The interface every lease provider implements (PostgreSQL roles, Mandate-minted upstream tokens,
// OAuth client credentials). test/leases/provider-conformance.test.ts runs one suite against each.
import type { Mandate } from '../mandates/mandate.js';
import type { UpstreamCredential } from '../secrets/upstream-credentials.js';
import type { LeaseProviderType } from './lease.js';

/** What a provider is asked for: one credential for one upstream, for one mandate. */
export interface LeaseRequest {
  readonly leaseId: string;
  readonly upstreamId: string;
  /** The mandate, and its chain (root first, ending with it). */
  readonly mandate: Mandate;
  readonly chain: readonly Mandate[];
  /** Tools of this upstream (names without the upstream prefix) that every mandate of the chain grants. */
  readonly tools: readonly string[];
  /** The lease must not outlive this (ms since the epoch): the mandate's expiry. */
  readonly notAfter: number;
  /** What `prepare` reserved (stored before `obtain` runs, so a crash in between can be cleaned up). */
  readonly handle: Readonly<Record<string, string>>;
}

/** What a provider hands back. Everything but `handle` and `details` is secret. */
export interface ObtainedLease {
  /** Injected into the upstream connection (headers / env). */
  readonly credential: UpstreamCredential;
  /** Every secret value in `credential` or `state` (audited only as salted HMACs). */
  readonly secrets: readonly string[];
  /** Secret state the provider needs to revoke (e.g. the OAuth access token for RFC 7009); sealed at rest. */
  readonly state?: string;
  /** Non-secret description for the API, console and audit (role, scopes, audience, token id). */
  readonly details: Readonly<Record<string, unknown>>;
  readonly expiresAt: number;
}

/** What a provider is asked to revoke. */
export interface RevokeRequest {
  readonly leaseId: string;
  readonly mandateId: string;
  readonly handle: Readonly<Record<string, string>>;
  /** Undefined when the lease was never fully obtained (a crash between `prepare` and the record). */
  readonly state: string | undefined;
  readonly details: Readonly<Record<string, unknown>>;
  readonly expiresAt: number;
}

export interface LeaseProvider {
  readonly type: LeaseProviderType;
  /** Non-secret, unique identification reserved before obtaining (e.g. a generated role name). */
  prepare(request: Omit<LeaseRequest, 'handle'>): Readonly<Record<string, string>>;
  /** Obtains the credential; all or nothing where the provider allows it. Throws on failure. */
  obtain(request: LeaseRequest): Promise<ObtainedLease>;
  /**
   * Revokes it so it is refused from now on. Idempotent: revoking something already gone (or never
   * created, after a crash) succeeds. Throws when the provider cannot be reached (the reaper retries).
   */
  revoke(request: RevokeRequest): Promise<void>;
  close(): Promise<void>;
}
