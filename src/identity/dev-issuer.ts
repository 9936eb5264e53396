// DEVELOPMENT ONLY. A local OIDC issuer that signs operator tokens for seeded humans in demo mode,
// so the console and CLI work without a real identity provider. Its Ed25519 key lives in the data
// folder. Never enable it for real operators: anyone with the data folder can mint admin tokens.

import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from 'jose';
import { OAuthError } from '../errors/index.js';
import { type Clock, epochSeconds, systemClock } from '../lib/clock.js';

export const DEV_ISSUER_PATH = '/dev/oidc';
export const DEV_OPERATOR_AUDIENCE = 'mandate-admin';

export interface DevOperatorClaims {
  readonly sub: string;
  readonly roles: readonly string[];
  readonly name?: string;
  readonly ttlSeconds?: number;
}

/** An authorization request the development sign-in page accepted (OAuth 2.0 code flow + PKCE, RFC 7636). */
export interface DevAuthorization {
  readonly clientId: string;
  readonly redirectUri: string;
  /** BASE64URL(SHA-256(code_verifier)); only S256 is accepted. */
  readonly codeChallenge: string;
  readonly nonce?: string;
  readonly scope?: string;
  readonly human: DevOperatorClaims;
}

export interface DevTokenRequest {
  readonly code: string;
  readonly clientId: string;
  readonly redirectUri: string;
  readonly codeVerifier: string;
}

export interface DevTokenResponse {
  readonly access_token: string;
  readonly token_type: 'Bearer';
  readonly expires_in: number;
  readonly id_token: string;
  readonly scope: string;
}

/** Codes live one minute and are single use (RFC 6749 §4.1.2 recommends at most ten minutes). */
const CODE_TTL_MS = 60_000;
const MAX_PENDING_CODES = 1000;
/** RFC 7636 §4.1: 43..128 characters of the unreserved set. */
const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;
const CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

export class DevIssuer {
  readonly #codes = new Map<string, DevAuthorization & { readonly expiresAt: number }>();

  private constructor(
    readonly issuer: string,
    private readonly privateJwk: JWK,
    readonly publicJwk: JWK,
    private readonly clock: Clock,
  ) {}

  /** Loads the issuer key from `dataDir`, generating it on first use. */
  static async open(dataDir: string, issuer: string, clock: Clock = systemClock): Promise<DevIssuer> {
    const file = join(dataDir, 'dev-issuer.jwk.json');
    let priv: JWK;
    if (existsSync(file)) {
      priv = JSON.parse(readFileSync(file, 'utf8')) as JWK;
    } else {
      const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
      priv = await exportJWK(privateKey);
      priv.kid = await calculateJwkThumbprint(priv);
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(file, JSON.stringify(priv), { mode: 0o600 });
    }
    const { d: _d, ...pub } = priv;
    return new DevIssuer(issuer, priv, { ...pub, alg: 'EdDSA', use: 'sig' }, clock);
  }

  get jwks(): { keys: JWK[] } {
    return { keys: [this.publicJwk] };
  }

  /**
   * Records an authorization the human granted on the sign-in page and returns its one-time code.
   * The caller (the route) has already checked the client and its redirect URI.
   */
  issueCode(request: DevAuthorization): string {
    if (!CHALLENGE.test(request.codeChallenge)) throw new OAuthError('OAUTH_INVALID_REQUEST', 'code_challenge must be an S256 challenge');
    const now = this.clock.now();
    for (const [code, pending] of this.#codes) if (pending.expiresAt <= now) this.#codes.delete(code);
    if (this.#codes.size >= MAX_PENDING_CODES)
      throw new OAuthError('OAUTH_INVALID_REQUEST', 'too many pending sign-ins; try again in a minute');
    const code = randomBytes(32).toString('base64url');
    this.#codes.set(code, { ...request, expiresAt: now + CODE_TTL_MS });
    return code;
  }

  /** Redeems a code once: client, redirect URI and PKCE verifier must match the authorization. */
  async redeemCode(request: DevTokenRequest): Promise<DevTokenResponse> {
    const pending = this.#codes.get(request.code);
    // Single use even when the redemption fails, so a stolen code cannot be retried with guesses.
    this.#codes.delete(request.code);
    if (pending === undefined || pending.expiresAt <= this.clock.now()) {
      throw new OAuthError('OAUTH_INVALID_GRANT', 'the authorization code is unknown, used or expired');
    }
    if (pending.clientId !== request.clientId) throw new OAuthError('OAUTH_INVALID_GRANT', 'the code was issued to another client');
    if (pending.redirectUri !== request.redirectUri)
      throw new OAuthError('OAUTH_INVALID_GRANT', 'redirect_uri does not match the authorization');
    if (!VERIFIER.test(request.codeVerifier)) throw new OAuthError('OAUTH_INVALID_GRANT', 'code_verifier is malformed');
    const challenge = createHash('sha256').update(request.codeVerifier).digest('base64url');
    if (challenge !== pending.codeChallenge) throw new OAuthError('OAUTH_INVALID_GRANT', 'code_verifier does not match the code_challenge');
    const ttlSeconds = pending.human.ttlSeconds ?? 3600;
    const accessToken = await this.mint({ ...pending.human, ttlSeconds });
    const idToken = await this.#sign(
      {
        roles: [...pending.human.roles],
        name: pending.human.name ?? pending.human.sub,
        ...(pending.nonce ? { nonce: pending.nonce } : {}),
      },
      pending.human.sub,
      pending.clientId,
      ttlSeconds,
    );
    return { access_token: accessToken, token_type: 'Bearer', expires_in: ttlSeconds, id_token: idToken, scope: pending.scope ?? 'openid' };
  }

  async mint(claims: DevOperatorClaims): Promise<string> {
    return this.#sign(
      { roles: [...claims.roles], name: claims.name ?? claims.sub },
      claims.sub,
      DEV_OPERATOR_AUDIENCE,
      claims.ttlSeconds ?? 3600,
    );
  }

  async #sign(payload: Record<string, unknown>, sub: string, audience: string, ttlSeconds: number): Promise<string> {
    const key = await importJWK(this.privateJwk, 'EdDSA');
    const now = epochSeconds(this.clock);
    return new SignJWT(payload)
      .setProtectedHeader({ alg: 'EdDSA', kid: this.publicJwk.kid ?? '', typ: 'JWT' })
      .setIssuer(this.issuer)
      .setAudience(audience)
      .setSubject(sub)
      .setIssuedAt(now)
      .setExpirationTime(now + ttlSeconds)
      .setJti(randomUUID())
      .sign(key);
  }
}
