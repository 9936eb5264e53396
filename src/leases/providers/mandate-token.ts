// Per-mandate upstream tokens: Mandate mints an RFC 9068 access token (`typ: at+jwt`) for the
// upstream's audience, carrying the mandate id, the mandate's grants narrowed to that upstream's
// tools (`authorization_details` and `scope`), and the `act` chain; it never outlives the mandate.
// The upstream verifies it with Mandate's JWKS and asks Mandate's introspection endpoint (RFC 7662)
// whether it is still active: it is not once the mandate (or an ancestor) ended or the lease was revoked.
import { randomBytes } from 'node:crypto';
import { decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import type { Clock } from '../../lib/clock.js';
import { isLive } from '../../mandates/mandate.js';
import type { MandateService } from '../../mandates/service.js';
import { ACCESS_TOKEN_TYP, type ActClaim, actChain } from '../../oauth/access-token.js';
import { SIGNING_ALG, type SigningKeys } from '../../oauth/signing-keys.js';
import type { LeaseProvider, LeaseRequest, ObtainedLease, RevokeRequest } from '../provider.js';
import { injectSecret } from './inject.js';

type Config = Extract<import('../lease.js').LeaseConfig, { type: 'mandate-token' }>;

/** What the token service of the broker offers this provider (src/oauth). */
export interface MandateTokenDeps {
  readonly keys: SigningKeys;
  readonly clock: Clock;
  /** Our issuer URL (`iss`). */
  readonly issuer: string;
  /** Records an individually revoked token on every replica (MandateService.revokeToken). */
  readonly mandates: Pick<MandateService, 'revokeToken' | 'hasEnded'>;
}

/** Claims of an upstream token (RFC 9068 §2.2 plus Mandate's `mandate` and RFC 9396 details). */
export interface UpstreamTokenClaims {
  readonly iss: string;
  readonly aud: string;
  readonly sub: string;
  readonly client_id: string;
  readonly mandate: string;
  readonly scope: string;
  readonly authorization_details: readonly Record<string, unknown>[];
  readonly act?: ActClaim;
  readonly jti: string;
  readonly iat: number;
  readonly exp: number;
}

export class MandateTokenProvider implements LeaseProvider {
  readonly type = 'mandate-token' as const;
  readonly #c: Config;
  readonly #d: MandateTokenDeps;

  constructor(config: Config, deps: MandateTokenDeps) {
    this.#c = config;
    this.#d = deps;
  }

  prepare(): Readonly<Record<string, string>> {
    return { jti: randomBytes(16).toString('base64url') };
  }

  async obtain(request: LeaseRequest): Promise<ObtainedLease> {
    const { mandate, chain } = request;
    const jti = request.handle.jti;
    if (jti === undefined) throw new Error('the lease handle names no token id');
    const now = this.#d.clock.now();
    const exp = Math.floor(Math.min(request.notAfter, now + this.#c.maxTtlSeconds * 1000) / 1000);
    if (exp * 1000 <= now) throw new Error('the mandate expires before a token could be used');
    const root = chain[0] ?? mandate;
    const sub = mandate.onBehalfOf ?? root.agentId;
    const act = actChain(
      chain.map((m) => m.agentId),
      sub,
    );
    const prefix = `${request.upstreamId}.`;
    // The mandate's own grants for this upstream, as the upstream names its tools.
    const grants = mandate.scope.tools
      .filter((g) => g.tool.startsWith(prefix) && request.tools.includes(g.tool.slice(prefix.length)))
      .map((g) => ({ ...g, tool: g.tool.slice(prefix.length) }));
    const claims: UpstreamTokenClaims = {
      iss: this.#d.issuer,
      aud: this.#c.audience,
      sub,
      client_id: mandate.agentId,
      mandate: mandate.id,
      scope: request.tools.join(' '),
      authorization_details: [
        {
          type: 'mandate',
          mandate_id: mandate.id,
          purpose: mandate.purpose,
          taskType: mandate.taskType,
          environment: mandate.environment,
          tools: grants,
        },
      ],
      ...(act === undefined ? {} : { act }),
      jti,
      iat: Math.floor(now / 1000),
      exp,
    };
    const key = this.#d.keys.active();
    const token = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: SIGNING_ALG, kid: key.kid, typ: ACCESS_TOKEN_TYP })
      .sign(key.privateKey);
    return {
      credential: injectSecret(this.#c.inject, token),
      secrets: [token],
      details: { audience: this.#c.audience, tokenId: jti, scope: claims.scope, exp },
      expiresAt: exp * 1000,
    };
  }

  async revoke(request: RevokeRequest): Promise<void> {
    const jti = request.handle.jti;
    if (jti === undefined) return;
    // The mandate ended (every replica knows, from the same change): its tokens are refused by the
    // chain check already; recording each jti too would cost a write and a change per token for nothing.
    if (this.#d.mandates.hasEnded(request.mandateId)) return;
    const exp = typeof request.details.exp === 'number' ? request.details.exp : Math.ceil(request.expiresAt / 1000);
    // Refused everywhere from now on, although the mandate is live (an expired or abandoned lease).
    await this.#d.mandates.revokeToken(jti, request.mandateId, exp);
  }

  async close(): Promise<void> {}
}

/** Options of `UpstreamTokenVerifier`. */
export interface UpstreamTokenVerifierOptions {
  readonly keys: SigningKeys;
  readonly clock: Clock;
  readonly issuer: string;
  readonly mandates: Pick<MandateService, 'get' | 'chain' | 'hasEnded' | 'isTokenRevoked'>;
  /** Audiences of configured `mandate-token` leases; any other audience is refused. */
  readonly audiences: readonly string[];
  readonly leewaySeconds: number;
}

/**
 * Verifies an upstream token the way Mandate's introspection endpoint answers for it: signature
 * (our keys), `typ`, issuer, an audience of a configured upstream, then — from memory — that the
 * token was not revoked and that the mandate and every ancestor are live. Throws with the reason.
 */
export class UpstreamTokenVerifier {
  readonly #o: UpstreamTokenVerifierOptions;

  constructor(options: UpstreamTokenVerifierOptions) {
    this.#o = options;
  }

  /** True when `aud` is the audience of a configured upstream (these tokens are never gateway tokens). */
  get audiences(): readonly string[] {
    return this.#o.audiences;
  }

  async verify(token: string): Promise<UpstreamTokenClaims> {
    if (this.#o.audiences.length === 0) throw new Error('no upstream tokens are configured');
    let kid: unknown;
    try {
      ({ kid } = decodeProtectedHeader(token));
    } catch {
      throw new Error('not a JWT');
    }
    const key = typeof kid === 'string' ? this.#o.keys.publicKey(kid) : undefined;
    if (key === undefined) throw new Error('unknown kid');
    const { payload } = await jwtVerify(token, key, {
      algorithms: [SIGNING_ALG],
      issuer: this.#o.issuer,
      audience: [...this.#o.audiences],
      typ: ACCESS_TOKEN_TYP,
      clockTolerance: this.#o.leewaySeconds,
      currentDate: new Date(this.#o.clock.now()),
      requiredClaims: ['sub', 'exp', 'iat', 'jti', 'mandate', 'client_id', 'scope'],
    });
    const claims = payload as unknown as UpstreamTokenClaims;
    if (typeof claims.mandate !== 'string' || typeof claims.jti !== 'string') throw new Error('malformed claims');
    if (this.#o.mandates.isTokenRevoked(claims.jti)) throw new Error('the token has been revoked');
    const mandate = await this.#o.mandates.get(claims.mandate);
    if (mandate === undefined) throw new Error('unknown mandate');
    const now = this.#o.clock.now();
    for (const m of await this.#o.mandates.chain(mandate)) {
      if (this.#o.mandates.hasEnded(m.id) || !isLive(m, now)) throw new Error(`mandate ${m.id} is not active`);
    }
    return claims;
  }
}
