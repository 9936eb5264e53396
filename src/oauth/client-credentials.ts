// Client authentication for the MCP OAuth client-credentials extension
// (io.modelcontextprotocol/oauth-client-credentials): `private_key_jwt` (RFC 7523 §2.2) where the
// client assertion is the agent's own workload identity proof — a JWT-SVID or an OIDC workload
// token, verified with the same trust as every identity proof (src/identity/proofs.ts). There is
// no client secret and no client key registry: the trust domain's bundle (or the issuer's JWKS)
// is the client's key set, and the SPIFFE ID (or iss+sub) is the client.
//
// Also the agent's standing client-credentials grant: a repeated client_credentials request of the
// same agent for the same mandate request, with the same key, continues the mandate it opened while
// that mandate is live (RFC 6749 §4.4: the grant is the client's own; an MCP SDK re-authenticates
// this way when its token expires, and cannot name a mandate).
import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import { decodeJwt } from 'jose';
import { OAuthError } from '../errors/index.js';
import type { ProofVerifier, VerifiedProof } from '../identity/proofs.js';
import { type Clock, epochSeconds } from '../lib/clock.js';
import type { MandateRequest } from '../mandates/mandate.js';
import type { Store } from '../store/index.js';
import type { RefreshBinding } from './refresh-tokens.js';

export const GRANT_CLIENT_CREDENTIALS = 'client_credentials';
export const GRANT_REFRESH_TOKEN = 'refresh_token';
/** RFC 7523 §2.2. */
export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/**
 * The longest a client assertion may live (`exp` − `iat`, or `exp` − now without `iat`). JWT-SVIDs
 * are minted for minutes (SPIRE's default is 5); Kubernetes projected service-account tokens live
 * an hour by default, which is the bound.
 */
export const MAX_CLIENT_ASSERTION_LIFETIME_SECONDS = 3600;
/** Replay keys share the table of single-use DPoP proof ids (same expiry sweep, across replicas). */
const REPLAY_PREFIX = 'client-assertion:';

const invalidClient = (message: string) => new OAuthError('OAUTH_INVALID_CLIENT', message);

export interface ClientAssertionOptions {
  readonly proofs: ProofVerifier;
  readonly store: Store;
  readonly clock: Clock;
  readonly leewaySeconds: number;
  /** Audiences a JWT-SVID assertion may name (RFC 7523 §3: the issuer or the token endpoint). */
  readonly audiences: readonly string[];
}

/** Verifies RFC 7523 client authentication where the assertion is a workload identity proof. */
export class ClientAssertions {
  constructor(private readonly o: ClientAssertionOptions) {}

  /** True when the request carries client authentication of any kind (so it must be verified, not ignored). */
  static present(p: Readonly<Record<string, string | undefined>>): boolean {
    return p.client_assertion !== undefined || p.client_assertion_type !== undefined || p.client_secret !== undefined;
  }

  /**
   * The identity the request authenticated as. Refused (`invalid_client`): a client secret (never
   * accepted), another assertion type, a missing assertion, a proof that does not verify for these
   * audiences, one that lives longer than MAX_CLIENT_ASSERTION_LIFETIME_SECONDS, or one already used.
   */
  async verify(p: Readonly<Record<string, string | undefined>>): Promise<VerifiedProof> {
    if (p.client_secret !== undefined) {
      throw invalidClient(
        'client secrets are not accepted: authenticate with private_key_jwt, the workload identity proof as client_assertion',
      );
    }
    if (p.client_assertion_type !== CLIENT_ASSERTION_TYPE) {
      throw invalidClient(`client_assertion_type must be ${CLIENT_ASSERTION_TYPE}`);
    }
    const assertion = p.client_assertion;
    if (assertion === undefined || assertion === '') throw invalidClient('client_assertion is required');
    let proof: VerifiedProof;
    try {
      proof = await this.o.proofs.verify(assertion, { audiences: this.o.audiences });
    } catch (err) {
      if (err instanceof OAuthError) throw invalidClient(`client_assertion: ${err.message}`);
      throw err;
    }
    // Verified above, so these claims are the signed ones.
    const claims = decodeJwt(assertion);
    const now = epochSeconds(this.o.clock);
    const exp = Number(claims.exp);
    const from = typeof claims.iat === 'number' ? Math.min(claims.iat, now) : now;
    if (exp - from > MAX_CLIENT_ASSERTION_LIFETIME_SECONDS) {
      throw invalidClient(`client_assertion lives ${exp - from} s; at most ${MAX_CLIENT_ASSERTION_LIFETIME_SECONDS} s is accepted`);
    }
    // RFC 7523 §3 (7): single use. By `jti` when there is one (per issuer and subject), else by the
    // signed header and payload — not the whole JWT: an ECDSA signature can be re-encoded into
    // another valid one, which would make a replay look new.
    const id =
      typeof claims.jti === 'string' && claims.jti !== ''
        ? `jti ${String(claims.iss ?? '')} ${String(claims.sub ?? '')} ${claims.jti}`
        : `jwt ${assertion.slice(0, assertion.lastIndexOf('.'))}`;
    const key = `${REPLAY_PREFIX}${createHash('sha256').update(id).digest('base64url')}`;
    const { changes } = await this.o.store.run(
      'INSERT INTO dpop_proofs (proof_key, expires_at) VALUES (?, ?) ON CONFLICT (proof_key) DO NOTHING',
      [key, (exp + this.o.leewaySeconds) * 1000],
    );
    if (changes === 0) throw invalidClient('client_assertion has already been used; present a fresh one');
    return proof;
  }
}

/** Which live mandate an agent's repeated client-credentials request continues. */
export class ClientGrants {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** The grant key of a request: the exact mandate request and the key its tokens are bound to. */
  static key(request: MandateRequest, binding: RefreshBinding): string {
    return createHash('sha256')
      .update(canonicalize({ request, binding }) ?? '')
      .digest('base64url');
  }

  /** The mandate of the standing grant, if it has not expired (the caller checks that it is still live). */
  async find(agentId: string, key: string): Promise<string | undefined> {
    const [row] = await this.store.query<{ mandate_id: string }>(
      'SELECT mandate_id FROM client_grants WHERE agent_id = ? AND request_key = ? AND expires_at > ?',
      [agentId, key, this.clock.now()],
    );
    return row?.mandate_id;
  }

  /** Makes `mandateId` the standing grant for this agent and request (the last one opened wins). */
  async record(agentId: string, key: string, mandateId: string, expiresAt: number): Promise<void> {
    await this.store.run(
      `INSERT INTO client_grants (agent_id, request_key, mandate_id, expires_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (agent_id, request_key) DO UPDATE SET mandate_id = excluded.mandate_id, expires_at = excluded.expires_at`,
      [agentId, key, mandateId, expiresAt],
    );
  }
}
