// Identity sources: where the agent's workload identity proof comes from. The broker accepts each
// proof once (RFC 7523 §3), so a source is asked for a proof every time one is needed (opening a
// mandate, delegating to this agent, refreshing a token that is not DPoP-bound) and must hand out
// a fresh one by then: SPIRE's agent rewrites its JWT-SVID file well before expiry, a Kubernetes
// projected service-account token file is rotated by the kubelet, and a callback can fetch one
// from the SPIFFE Workload API (no Node library for that API is a dependency here).
import { readFile } from 'node:fs/promises';

/**
 * A source of workload identity proofs (JWT-SVIDs or OIDC workload tokens) for the broker.
 *
 * @example
 * ```ts
 * const identity: IdentitySource = { kind: 'jwt-svid', token: async () => fetchSvidSomehow() };
 * ```
 */
export interface IdentitySource {
  /** What the proof is; both are sent as a JWT (`urn:ietf:params:oauth:token-type:jwt`). */
  readonly kind: 'jwt-svid' | 'oidc';
  /** A proof for the broker's audience. Called each time one is needed; each proof is accepted once. */
  token(): Promise<string>;
}

async function readToken(path: string, what: string): Promise<string> {
  const text = (await readFile(path, 'utf8')).trim();
  if (text === '') throw new Error(`${what} file ${path} is empty`);
  return text;
}

/**
 * A JWT-SVID read from a file each time one is needed (SPIRE agent's `jwt_svids` file, the
 * spiffe-helper output). The file must hold a fresh SVID for the broker's audience by the time the
 * next one is needed: the broker refuses an SVID it has seen. With DPoP (the default) the SDK
 * needs one per mandate opened or delegated to; without, also one per token refresh.
 *
 * @example
 * ```ts
 * const m = await Mandate.open({ broker, identity: svidFile('/run/spiffe/svid.jwt'), template: 'refund-triage' });
 * ```
 */
export function svidFile(path: string): IdentitySource {
  return { kind: 'jwt-svid', token: () => readToken(path, 'JWT-SVID') };
}

/**
 * JWT-SVIDs from a function: the SPIFFE Workload API through any client, a sidecar, a test
 * authority. Called each time a proof is needed.
 *
 * @example
 * ```ts
 * const identity = svidCallback(async () => (await workloadApi.fetchJwtSvid({ audience: broker })).token);
 * ```
 */
export function svidCallback(fetchSvid: () => string | Promise<string>): IdentitySource {
  return {
    kind: 'jwt-svid',
    async token() {
      const t = await fetchSvid();
      if (typeof t !== 'string' || t === '') throw new Error('the SVID callback returned no token');
      return t;
    },
  };
}

/**
 * An OIDC workload token read from a file each time (Kubernetes projected service-account token,
 * a CI job's OIDC token), for an issuer the broker trusts (`identity.oidcIssuers`).
 *
 * @example
 * ```ts
 * const identity = oidcTokenFile('/var/run/secrets/tokens/mandate');
 * ```
 */
export function oidcTokenFile(path: string): IdentitySource {
  return { kind: 'oidc', token: () => readToken(path, 'OIDC token') };
}
