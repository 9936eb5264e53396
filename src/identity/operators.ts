// Authenticates human operators of the admin API: OIDC bearer tokens from the configured issuer
// (explicit algorithm allow-list, issuer, audience, bounded clock tolerance), or the bootstrap
// admin token for first setup.
import { decodeJwt, type JWTPayload, errors as joseErrors, jwtVerify } from 'jose';
import { AuthError, MandateError } from '../errors/index.js';
import { type Clock, systemClock } from '../lib/clock.js';
import { hexDigestEqual, sha256Hex } from '../lib/hash.js';
import { OidcIssuer } from './trust.js';

export interface Operator {
  /** `iss`-qualified subject, or `bootstrap`. */
  readonly id: string;
  readonly subject: string;
  readonly name: string;
  readonly roles: readonly string[];
  readonly via: 'oidc' | 'bootstrap' | 'mtls';
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
  // The same lazily resolved key set as workload issuers (local, remote, or discovered JWKS).
  const issuer =
    settings === undefined
      ? undefined
      : new OidcIssuer({
          issuer: settings.issuer,
          audience: settings.audience,
          algorithms: settings.algorithms,
          jwks: settings.jwks instanceof URL ? settings.jwks.href : settings.jwks,
        });

  return async (authorization) => {
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(authorization ?? '');
    if (authorization === undefined || authorization === '') throw new AuthError('ERR_AUTH_MISSING');
    if (match?.[1] === undefined) throw new AuthError('ERR_AUTH_INVALID_TOKEN', 'the Authorization header must be "Bearer <token>"');
    const token = match[1];
    if (options.bootstrapTokenSha256 !== undefined && hexDigestEqual(sha256Hex(token), options.bootstrapTokenSha256)) {
      return BOOTSTRAP;
    }
    if (settings === undefined || issuer === undefined) throw new AuthError('ERR_AUTH_INVALID_TOKEN');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, await issuer.keySet(), {
        issuer: settings.issuer,
        audience: settings.audience,
        algorithms: [...settings.algorithms],
        clockTolerance: settings.clockToleranceSeconds,
        currentDate: new Date(clock.now()),
        requiredClaims: ['sub', 'exp', 'iat'],
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) throw new AuthError('ERR_AUTH_TOKEN_EXPIRED');
      // An unreachable issuer is the broker's problem (ERR_TRUST_UNAVAILABLE), not a bad token.
      if (err instanceof MandateError) throw err;
      throw new AuthError('ERR_AUTH_INVALID_TOKEN', claimProblem(err, token, settings), { cause: (err as { code?: string }).code });
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

/**
 * Why a well-formed token was refused, when that is a claim the operator can act on: a token
 * minted for another issuer (a broker on another address) or audience names both values. The
 * claims are read unverified only to word the refusal; they are public, never a secret.
 */
function claimProblem(err: unknown, token: string, settings: OperatorIssuerSettings): string | undefined {
  if (!(err instanceof joseErrors.JWTClaimValidationFailed)) return undefined;
  let claims: JWTPayload;
  try {
    claims = decodeJwt(token);
  } catch {
    return undefined;
  }
  const shown = (v: unknown) => JSON.stringify(v).slice(0, 200);
  if (err.claim === 'iss') {
    return `the token was issued by ${shown(claims.iss)}, but this broker accepts operator tokens from ${shown(settings.issuer)}`;
  }
  if (err.claim === 'aud') return `the token audience ${shown(claims.aud)} is not ${shown(settings.audience)}`;
  return `token claim ${err.claim} is not acceptable`;
}

function readRoles(claim: unknown): string[] {
  if (Array.isArray(claim)) return claim.filter((r): r is string => typeof r === 'string');
  if (typeof claim === 'string') return claim.split(' ').filter(Boolean);
  return [];
}
