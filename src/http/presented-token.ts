// What a request presents to a resource server: the access token with its scheme (RFC 6750
// Bearer or RFC 9449 DPoP) and at most one DPoP proof. Shared by the agent API and the gateway.
import type { FastifyRequest } from 'fastify';
import { OAuthError } from '../errors/index.js';

export interface PresentedToken {
  readonly token: string;
  readonly scheme: 'Bearer' | 'DPoP';
  readonly dpop?: string;
}

const AUTHORIZATION = /^(Bearer|DPoP) ([A-Za-z0-9._~+/-]+=*)$/i;

/** One DPoP header at most (RFC 9449 §4.3 check 1); Node joins repeats with ", ". */
export function dpopHeader(req: FastifyRequest, code: 'OAUTH_INVALID_DPOP_PROOF' | 'OAUTH_INVALID_TOKEN'): string | undefined {
  const value = req.headers.dpop;
  if (value === undefined) return undefined;
  if (Array.isArray(value) || value.includes(',')) throw new OAuthError(code, 'exactly one DPoP header is allowed');
  return value;
}

/** The presented token, or undefined when the Authorization header carries none. */
export function presentedToken(req: FastifyRequest): PresentedToken | undefined {
  const match = AUTHORIZATION.exec(req.headers.authorization ?? '');
  if (match === null) return undefined;
  const dpop = dpopHeader(req, 'OAUTH_INVALID_TOKEN');
  return {
    token: match[2] as string,
    scheme: (match[1] as string).toLowerCase() === 'dpop' ? 'DPoP' : 'Bearer',
    ...(dpop === undefined ? {} : { dpop }),
  };
}
