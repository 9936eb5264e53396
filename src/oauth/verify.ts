// The verification API for resource servers (the gateway calls it on every request): token
// signature and claims (cached per token), sender constraint (DPoP with `ath`, or Bearer for
// unbound tokens only), then — from memory, on every call — individual token revocation, the
// status and expiry of the mandate and every ancestor, and the agent's status.
import { createHash } from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import { LRUCache } from 'lru-cache';
import type { AgentRegistry } from '../agents/registry.js';
import { OAuthError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { isLive, type Mandate } from '../mandates/mandate.js';
import type { MandateService } from '../mandates/service.js';
import type { Principal } from '../principals/principal.js';
import { ACCESS_TOKEN_TYP, type AccessTokenClaims } from './access-token.js';
import type { VerifiedCaller, VerifyRequest } from './caller.js';
import type { DpopVerifier } from './dpop.js';
import { SIGNING_ALG, type SigningKeys } from './signing-keys.js';

export interface TokenVerifierOptions {
  readonly keys: SigningKeys;
  readonly mandates: MandateService;
  readonly agents: AgentRegistry;
  readonly dpop: DpopVerifier;
  readonly clock: Clock;
  readonly issuer: string;
  readonly audience: string;
  readonly leewaySeconds: number;
  /**
   * Throws (ERR_REPLICA_STALE) when this replica cannot confirm its in-memory revocations are
   * current; checked before every resolution so a cut-off replica fails closed.
   */
  readonly assertCurrent?: () => void;
}

const invalid = (message: string) => new OAuthError('OAUTH_INVALID_TOKEN', message);
/** How often an unknown `kid` may trigger a key reload (another replica may have rotated). */
const KEY_RELOAD_MS = 10_000;

export class TokenVerifier {
  readonly #o: TokenVerifierOptions;
  /** Signature-verified claims by token hash; bounded, entries dropped at expiry. */
  readonly #verified = new LRUCache<string, AccessTokenClaims>({ max: 50_000 });
  #lastReload = 0;

  constructor(options: TokenVerifierOptions) {
    this.#o = options;
  }

  /** Verifies a presented token for one request; throws OAUTH_INVALID_TOKEN with the precise reason. */
  async verify(req: VerifyRequest): Promise<VerifiedCaller<Mandate, Principal>> {
    const claims = await this.verifyToken(req.token);
    if (claims.cnf?.jkt !== undefined) {
      // RFC 9449 §7.1: a DPoP-bound token is only accepted with the DPoP scheme and a matching proof.
      if (req.scheme !== 'DPoP') throw invalid('this token is DPoP-bound and must be sent with the DPoP scheme');
      if (req.dpop === undefined) throw invalid('a DPoP proof is required');
      const { nextNonce } = await this.#o.dpop.verify(
        { proof: req.dpop, method: req.method, url: req.url, accessToken: req.token, expectedJkt: claims.cnf.jkt },
        invalid,
      );
      if (nextNonce !== undefined) return { ...(await this.resolve(claims)), dpopNonce: nextNonce };
    } else if (req.scheme !== 'Bearer') {
      throw invalid('this token is not DPoP-bound; use the Bearer scheme');
    }
    return this.resolve(claims);
  }

  /** Checks the token's revocation, mandate chain and agent from memory; returns the verified caller. */
  async resolve(claims: AccessTokenClaims): Promise<VerifiedCaller<Mandate, Principal>> {
    this.#o.assertCurrent?.();
    const now = this.#o.clock.now();
    if (claims.exp * 1000 <= now - this.#o.leewaySeconds * 1000) throw invalid('the token has expired');
    if (this.#o.mandates.isTokenRevoked(claims.jti)) throw invalid('the token has been revoked');
    const mandate = await this.#o.mandates.get(claims.mandate);
    if (mandate === undefined) throw invalid('the token names an unknown mandate');
    const chain = await this.#o.mandates.chain(mandate);
    for (const m of chain) {
      if (this.#o.mandates.hasEnded(m.id) || !isLive(m, now)) {
        const which = m.id === mandate.id ? 'the mandate' : `ancestor mandate ${m.id}`;
        throw invalid(`${which} is ${m.status === 'active' ? (m.expiresAt <= now ? 'expired' : 'revoked') : m.status}`);
      }
    }
    const agent = await this.#o.agents.get(mandate.agentId);
    if (agent === undefined) throw invalid('the agent of this mandate is no longer registered');
    if (agent.principal.status !== 'active') throw invalid(`the agent is ${agent.principal.status}`);
    return {
      tokenId: claims.jti,
      mandate,
      chain,
      agent: agent.principal,
      ...(mandate.onBehalfOf === undefined ? {} : { onBehalfOf: mandate.onBehalfOf }),
      claims,
    };
  }

  /** Signature and claims of one of our access tokens (cached per token until it expires). */
  async verifyToken(token: string): Promise<AccessTokenClaims> {
    const hash = createHash('sha256').update(token).digest('base64url');
    const nowS = this.#o.clock.now() / 1000;
    const cached = this.#verified.get(hash);
    if (cached !== undefined) {
      if (cached.exp + this.#o.leewaySeconds > nowS) return cached;
      this.#verified.delete(hash);
      throw invalid('the token has expired');
    }
    let kid: unknown;
    let alg: unknown;
    let typ: unknown;
    try {
      ({ kid, alg, typ } = decodeProtectedHeader(token));
    } catch {
      throw invalid('the token is not a JWT');
    }
    if (alg !== SIGNING_ALG) throw invalid(`token alg "${String(alg)}" is not allowed`);
    if (typ !== ACCESS_TOKEN_TYP) throw invalid('token typ must be at+jwt');
    if (typeof kid !== 'string') throw invalid('token kid is required');
    let key = this.#o.keys.publicKey(kid);
    if (key === undefined && this.#o.clock.now() - this.#lastReload > KEY_RELOAD_MS) {
      this.#lastReload = this.#o.clock.now();
      await this.#o.keys.reload();
      key = this.#o.keys.publicKey(kid);
    }
    if (key === undefined) throw invalid('token kid is unknown');
    let claims: AccessTokenClaims;
    try {
      const { payload } = await jwtVerify(token, key, {
        algorithms: [SIGNING_ALG],
        issuer: this.#o.issuer,
        audience: this.#o.audience,
        typ: ACCESS_TOKEN_TYP,
        clockTolerance: this.#o.leewaySeconds,
        currentDate: new Date(this.#o.clock.now()),
        requiredClaims: ['sub', 'exp', 'iat', 'jti', 'mandate', 'client_id'],
      });
      claims = payload as unknown as AccessTokenClaims;
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw invalid('the token has expired');
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw invalid('the token signature is invalid');
      if (err instanceof joseErrors.JWTClaimValidationFailed && err.claim === 'iss') {
        // The signature was valid, so the payload is ours: a token minted when this broker had another address.
        throw invalid(`the token was issued by ${JSON.stringify(err.payload.iss)}, but this broker is ${JSON.stringify(this.#o.issuer)}`);
      }
      if (err instanceof joseErrors.JWTClaimValidationFailed) throw invalid(`token claim ${err.claim} is not acceptable`);
      throw invalid('the token is invalid');
    }
    if (typeof claims.mandate !== 'string') throw invalid('token mandate claim is malformed');
    this.#verified.set(hash, claims);
    return claims;
  }
}
