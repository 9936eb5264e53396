// The one seam through which credentials reach an upstream: every forward (MCP session pool, HTTP
// API forwarder) asks `CredentialInjector.credentialFor` what to inject for this upstream on behalf
// of this mandate, and injects exactly that. Static sealed credentials and leases meet here.
import type { UpstreamCredential } from '../secrets/upstream-credentials.js';

/** Which upstream, on behalf of which mandate. */
export interface CredentialRequest {
  readonly upstreamId: string;
  /** The mandate the call runs under (a lease is obtained for it, or for nothing). */
  readonly mandateId: string;
}

/**
 * What to inject into one forward: HTTP headers (streamable HTTP MCP upstreams, HTTP API upstreams)
 * and environment variables (stdio upstreams, which are then started per mandate). The values are
 * secrets: never log, audit (except through `AuditLog.redact`) or return them to an agent.
 */
export interface InjectedCredential extends UpstreamCredential {
  /**
   * When the leased part stops being valid (ms since the epoch); a holder that caches the credential
   * (a pooled session whose headers or environment were fixed at start) must ask again after it.
   * Undefined for static credentials.
   */
  readonly expiresAt?: number;
  /** The lease that supplied the per-mandate part, if any (for audit correlation; not a secret). */
  readonly leaseId?: string;
}

/**
 * Credential injection for upstreams, one instance per broker (`broker.leases.injector`).
 *
 * @example
 * ```ts
 * // In an HTTP forwarder, per call, after the allow decision is durable:
 * const cred = await injector.credentialFor({ upstreamId: 'billing', mandateId: caller.mandate.id });
 * const res = await fetch(url, { method, headers: { ...ownHeaders, ...(cred?.headers ?? {}) }, body });
 * ```
 */
export interface CredentialInjector {
  /**
   * True when `upstreamId`'s credentials are per mandate (a lease is configured for it), so any
   * session or process that carries them must be per mandate too, whatever the upstream's `isolation`.
   */
  perMandate(upstreamId: string): boolean;
  /**
   * The credential for one forward: the upstream's static sealed credential (if any) merged with the
   * mandate's lease (lease entries win on a name clash). The lease is obtained on the first call of
   * the mandate to the upstream, then reused until it expires or the mandate ends.
   *
   * Resolves `undefined` when the upstream has neither. Rejects with a `MandateError`, fail closed:
   * `ERR_LEASE_UNAVAILABLE` when the provider cannot supply a lease (down, misconfigured, timed out)
   * or the mandate is no longer live, `ERR_NOT_FOUND` for an unknown upstream. The caller must then
   * not forward the call; an agent-facing forwarder answers `RPC_LEASE_UNAVAILABLE` (see
   * `leaseFailureCode`).
   */
  credentialFor(request: CredentialRequest): Promise<InjectedCredential | undefined>;
}

/** Merges a static credential and a lease credential (lease entries win); undefined when both are empty. */
export function mergeCredentials(
  base: UpstreamCredential | undefined,
  lease: UpstreamCredential | undefined,
): UpstreamCredential | undefined {
  if (base === undefined) return lease;
  if (lease === undefined) return base;
  const headers = { ...(base.headers ?? {}), ...(lease.headers ?? {}) };
  const env = { ...(base.env ?? {}), ...(lease.env ?? {}) };
  return {
    ...(Object.keys(headers).length === 0 ? {} : { headers }),
    ...(Object.keys(env).length === 0 ? {} : { env }),
  };
}

/** The agent-facing code of a failed injection: lease failures are `RPC_LEASE_UNAVAILABLE`, anything else undefined. */
export function leaseFailureCode(err: unknown): 'RPC_LEASE_UNAVAILABLE' | undefined {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ERR_LEASE_UNAVAILABLE'
    ? 'RPC_LEASE_UNAVAILABLE'
    : undefined;
}
