// Verification of identity proofs: JWT-SVIDs (SPIFFE JWT-SVID spec §3–§4) and OIDC workload
// tokens. Every check is explicit and happens before a key is used: algorithm allow-list, `kid`,
// SPIFFE ID syntax, trust domain, then signature, audience and expiry with a small leeway.
// Verified proofs are cached by their SHA-256 until they expire, since agents reuse an SVID for
// several exchanges and signature checks dominate the cost.
import { createHash, type X509Certificate } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, type JWTPayload, errors as joseErrors, jwtVerify, type ProtectedHeaderParameters } from 'jose';
import { LRUCache } from 'lru-cache';
import { OAuthError } from '../errors/index.js';
import { type Clock, epochSeconds } from '../lib/clock.js';
import { parseSpiffeId } from './spiffe-id.js';
import type { OidcIssuer, TrustStore } from './trust.js';
import { verifyX509Svid } from './x509-svid.js';

/** A verified workload identity. `key` is what agent profiles bind to. */
export type WorkloadIdentity =
  | { readonly kind: 'spiffe'; readonly key: string; readonly spiffeId: string; readonly trustDomain: string }
  | { readonly kind: 'oidc'; readonly key: string; readonly issuer: string; readonly subject: string };

export interface VerifiedProof {
  readonly identity: WorkloadIdentity;
  /** Seconds since the epoch. */
  readonly expiresAt: number;
  /** Short SHA-256 of the proof, for audit correlation (never the proof itself). */
  readonly proofId: string;
}

/** The binding key of a SPIFFE ID or an OIDC iss+sub pair (unique across agents). */
export const identityKey = {
  spiffe: (spiffeId: string) => `spiffe:${spiffeId}`,
  oidc: (issuer: string, subject: string) => `oidc:${issuer} ${subject}`,
};

const fail = (message: string, cause?: unknown): never => {
  throw new OAuthError('OAUTH_INVALID_SUBJECT_TOKEN', message, cause === undefined ? {} : { cause });
};

export interface ProofVerifierOptions {
  readonly trust: TrustStore;
  readonly clock: Clock;
  /** Our audience: proofs must name it. */
  readonly audience: string;
  readonly leewaySeconds: number;
  /** Verified-proof cache size bound. */
  readonly cacheSize?: number;
}

export class ProofVerifier {
  readonly #o: ProofVerifierOptions;
  readonly #cache: LRUCache<string, VerifiedProof>;

  constructor(options: ProofVerifierOptions) {
    this.#o = options;
    // Least recently used proofs go first; expiry is checked on read against the injected clock.
    this.#cache = new LRUCache({ max: options.cacheSize ?? 10_000 });
  }

  /** Verifies an X.509-SVID chain presented over mTLS (leaf first); throws OAUTH_INVALID_SUBJECT_TOKEN. */
  verifyX509(chain: readonly X509Certificate[]): VerifiedProof {
    return verifyX509Svid(chain, this.#o.trust, new Date(this.#o.clock.now()));
  }

  /**
   * Verifies a JWT-SVID or OIDC workload token; throws OAUTH_INVALID_SUBJECT_TOKEN with the precise reason.
   * `audiences` replaces our audience for JWT-SVIDs (a client assertion may name the token endpoint,
   * RFC 7523 §3); the cache keeps proofs verified for other audiences apart.
   */
  async verify(token: string, options: { readonly audiences?: readonly string[] } = {}): Promise<VerifiedProof> {
    const digest = createHash('sha256').update(token).digest('base64url');
    const hash = options.audiences === undefined ? digest : `${digest} ${options.audiences.join(' ')}`;
    const cached = this.#cache.get(hash);
    const now = epochSeconds(this.#o.clock);
    if (cached !== undefined) {
      if (cached.expiresAt + this.#o.leewaySeconds > now) return cached;
      this.#cache.delete(hash);
    }
    const proof = await this.#verifyUncached(token, digest.slice(0, 22), options.audiences ?? [this.#o.audience]);
    this.#cache.set(hash, proof);
    return proof;
  }

  async #verifyUncached(token: string, proofId: string, audiences: readonly string[]): Promise<VerifiedProof> {
    let header: ProtectedHeaderParameters;
    let claims: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      claims = decodeJwt(token);
    } catch {
      return fail('the proof is not a JWT');
    }
    if (typeof claims.sub === 'string' && claims.sub.startsWith('spiffe:'))
      return this.#verifySvid(token, header, claims, proofId, audiences);
    const issuer = typeof claims.iss === 'string' ? this.#o.trust.workloadIssuers.get(claims.iss) : undefined;
    if (issuer !== undefined) return this.#verifyOidc(token, issuer, proofId);
    if (typeof claims.sub === 'string' && claims.sub.toLowerCase().startsWith('spiffe:')) {
      return this.#verifySvid(token, header, claims, proofId, audiences);
    }
    return fail('the proof is neither a JWT-SVID nor a token of a trusted workload issuer');
  }

  async #verifySvid(
    token: string,
    header: ProtectedHeaderParameters,
    claims: JWTPayload,
    proofId: string,
    audiences: readonly string[],
  ): Promise<VerifiedProof> {
    // Checks in the order the spec and our security habits want: nothing unverified picks a key.
    const parsed = parseSpiffeId(claims.sub);
    if (!parsed.ok) return fail(`JWT-SVID sub is not a valid SPIFFE ID: ${parsed.reason}`);
    const domain = this.#o.trust.domains.get(parsed.id.trustDomain);
    if (domain === undefined) return fail(`trust domain "${parsed.id.trustDomain}" is not trusted`);
    const alg = header.alg;
    if (typeof alg !== 'string' || !domain.settings.algorithms.includes(alg)) {
      return fail(`JWT-SVID alg "${String(alg)}" is not allowed`);
    }
    if (header.typ !== undefined && header.typ !== 'JWT' && header.typ !== 'JOSE') return fail('JWT-SVID typ must be JWT or JOSE');
    if (typeof header.kid !== 'string' || header.kid === '') return fail('JWT-SVID kid is required');
    if (header.crit !== undefined) return fail('JWT-SVID must not carry critical header parameters');
    if (domain.key(header.kid) === undefined) return fail(`JWT-SVID kid is not in the bundle of "${domain.name}"`);
    // Imported for the token's own alg: an RSA bundle key verifies RS256…PS512 alike.
    const key = await domain.keyFor(header.kid, alg);
    if (key === undefined) return fail(`JWT-SVID alg "${alg}" cannot be used with the key its kid names`);
    const aud = claims.aud;
    if (aud === undefined) return fail('JWT-SVID aud is required');
    if (domain.settings.singleAudience && Array.isArray(aud) && aud.length !== 1) return fail('JWT-SVID must name exactly one audience');
    if (claims.exp === undefined) return fail('JWT-SVID exp is required');
    try {
      await jwtVerify(token, key, {
        algorithms: [alg],
        audience: [...audiences],
        clockTolerance: this.#o.leewaySeconds,
        currentDate: new Date(this.#o.clock.now()),
        requiredClaims: ['sub', 'aud', 'exp'],
      });
    } catch (err) {
      return fail(joseReason('JWT-SVID', err), (err as { code?: string }).code);
    }
    const spiffeId = parsed.id.uri;
    return {
      identity: { kind: 'spiffe', key: identityKey.spiffe(spiffeId), spiffeId, trustDomain: parsed.id.trustDomain },
      expiresAt: claims.exp,
      proofId,
    };
  }

  async #verifyOidc(token: string, issuer: OidcIssuer, proofId: string): Promise<VerifiedProof> {
    const { payload } = await verifyIssuerToken(token, issuer, this.#o.clock, this.#o.leewaySeconds, 'workload token');
    const subject = payload.sub as string;
    return {
      identity: { kind: 'oidc', key: identityKey.oidc(issuer.settings.issuer, subject), issuer: issuer.settings.issuer, subject },
      expiresAt: payload.exp as number,
      proofId,
    };
  }
}

/** Verifies a token of an OIDC issuer: alg allow-list, exact issuer, audience, sub and exp required. */
export async function verifyIssuerToken(
  token: string,
  issuer: OidcIssuer,
  clock: Clock,
  leewaySeconds: number,
  what: string,
): Promise<{ payload: JWTPayload }> {
  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    return fail(`the ${what} is not a JWT`);
  }
  if (typeof header.alg !== 'string' || !issuer.settings.algorithms.includes(header.alg)) {
    return fail(`${what} alg "${String(header.alg)}" is not allowed`);
  }
  try {
    const { payload } = await jwtVerify(token, await issuer.keySet(), {
      issuer: issuer.settings.issuer,
      audience: issuer.settings.audience,
      algorithms: [...issuer.settings.algorithms],
      clockTolerance: leewaySeconds,
      currentDate: new Date(clock.now()),
      requiredClaims: ['sub', 'exp'],
    });
    return { payload };
  } catch (err) {
    if (err instanceof OAuthError) throw err;
    return fail(joseReason(what, err), (err as { code?: string }).code);
  }
}

function joseReason(what: string, err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return `${what} has expired`;
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return `${what} is not yet valid`;
    if (err.claim === 'iat') return `${what} iat is in the future`;
    return `${what} ${err.claim} is not acceptable`;
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return `${what} signature is invalid`;
  if (err instanceof joseErrors.JWKSNoMatchingKey) return `${what} kid is unknown`;
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return `${what} alg is not allowed`;
  return `${what} is invalid`;
}
