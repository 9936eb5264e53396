// Authenticates human operators of the admin API: OIDC bearer tokens from the configured issuer
// (explicit algorithm allow-list, issuer, audience, bounded clock tolerance), or the bootstrap
// admin token for first setup.
import { createLocalJWKSet, createRemoteJWKSet, type JWTPayload, errors as joseErrors, jwtVerify } from 'jose';
import { AuthError } from '../errors/index.js';
import { type Clock, systemClock } from '../lib/clock.js';
import { hexDigestEqual, sha256Hex } from '../lib/hash.js';

export interface Operator {
  /** `iss`-qualified subject, or `bootstrap`. */
  readonly id: string;
  readonly subject: string;
  readonly name: string;
  readonly roles: readonly string[];
  readonly via: 'oidc' | 'bootstrap';
}

export interface OperatorIssuerSettings {
  readonly issuer: string;
  readonly audience: string;
  readonly algorithms: readonly string[];
  readonly rolesClaim: string;
  readonly clockToleranceSeconds: number;
  /** Remote JWKS URL, a local key set (the development issuer), or 'discover' (OIDC discovery). */
  readonly jwks: URL | { keys: object[] } | 'discover';
}

export interface OperatorAuthenticatorOptions {
  readonly issuer?: OperatorIssuerSettings;
  readonly bootstrapTokenSha256?: string;
  readonly clock?: Clock;
}

export type OperatorAuthenticator = (authorization: string | undefined) => Promise<Operator>;

const BOOTSTRAP: Operator = { id: 'bootstrap', subject: 'bootstrap', name: 'bootstrap admin', roles: ['admin'], via: 'bootstrap' };

export function createOperatorAuthenticator(options: OperatorAuthenticatorOptions): OperatorAuthenticator {
  const clock = options.clock ?? systemClock;
  const settings = options.issuer;
  let keys: KeySet | undefined;
  const keySet = async (): Promise<KeySet> => {
    if (keys !== undefined) return keys;
    if (settings === undefined) throw new AuthError('ERR_AUTH_INVALID_TOKEN');
    const { jwks } = settings;
    if (jwks instanceof URL) keys = createRemoteJWKSet(jwks);
    else if (jwks === 'discover') keys = createRemoteJWKSet(await discoverJwksUri(settings.issuer));
    else keys = createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0]);
    return keys;
  };

  return async (authorization) => {
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(authorization ?? '');
    if (authorization === undefined || authorization === '') throw new AuthError('ERR_AUTH_MISSING');
    if (match?.[1] === undefined) throw new AuthError('ERR_AUTH_INVALID_TOKEN', 'the Authorization header must be "Bearer <token>"');
    const token = match[1];
    if (options.bootstrapTokenSha256 !== undefined && hexDigestEqual(sha256Hex(token), options.bootstrapTokenSha256)) {
      return BOOTSTRAP;
    }
    if (settings === undefined) throw new AuthError('ERR_AUTH_INVALID_TOKEN');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, await keySet(), {
        issuer: settings.issuer,
        audience: settings.audience,
        algorithms: [...settings.algorithms],
        clockTolerance: settings.clockToleranceSeconds,
        currentDate: new Date(clock.now()),
        requiredClaims: ['sub', 'exp', 'iat'],
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new AuthError('ERR_AUTH_TOKEN_EXPIRED');
      if (err instanceof AuthError) throw err;
      throw new AuthError('ERR_AUTH_INVALID_TOKEN', undefined, { cause: (err as { code?: string }).code });
    }
    const subject = payload.sub ?? '';
    return {
      id: subject,
      subject,
      name: typeof payload.name === 'string' ? payload.name : subject,
      roles: readRoles(payload[settings.rolesClaim]),
      via: 'oidc',
    };
  };
}

type KeySet = ReturnType<typeof createRemoteJWKSet> | ReturnType<typeof createLocalJWKSet>;

/** OpenID Connect Discovery 1.0: the issuer's metadata must name the same issuer. */
async function discoverJwksUri(issuer: string): Promise<URL> {
  try {
    const res = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) });
    const meta = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
    if (!res.ok || meta.issuer !== issuer || typeof meta.jwks_uri !== 'string') throw new Error('bad discovery document');
    return new URL(meta.jwks_uri);
  } catch (err) {
    throw new AuthError('ERR_AUTH_INVALID_TOKEN', 'the operator issuer cannot be discovered', { cause: err });
  }
}

function readRoles(claim: unknown): string[] {
  if (Array.isArray(claim)) return claim.filter((r): r is string => typeof r === 'string');
  if (typeof claim === 'string') return claim.split(' ').filter(Boolean);
  return [];
}
