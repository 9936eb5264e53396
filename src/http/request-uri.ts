// The URI a request was received at, as a DPoP proof's `htu` must name it (RFC 9449 §4.3 check 9):
// scheme and host of the public URL (what clients address, behind any proxy) and the path the
// router matched, normalised, without query or fragment. Never the raw request target: an
// absolute-form target (`POST http://elsewhere/mcp`) or an encoded or dotted path would otherwise
// decide which `htu` is accepted for a route that serves something else.
import type { FastifyRequest } from 'fastify';
import { OAuthError } from '../errors/index.js';
import { normalizePath } from '../oauth/dpop.js';

/** The request's URI for `htu`; throws OAUTH_INVALID_TOKEN when its path is not in normal form. */
export function requestUri(publicUrl: string, req: FastifyRequest): string {
  const route = req.routeOptions.url;
  // A static route is the path the router matched, exactly (find-my-way decodes `%6D` to `m`).
  if (route !== undefined && !/[:*]/.test(route)) return `${publicUrl}${route}`;
  // A parametric route: the request's own path (an absolute-form target contributes only its path).
  let target = req.url;
  if (!target.startsWith('/')) {
    const rest = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*(.*)$/.exec(target)?.[1];
    target = rest === undefined || rest === '' ? '/' : rest;
  }
  const path = normalizePath(target.replace(/[?#].*$/s, ''));
  if (path === undefined)
    throw new OAuthError('OAUTH_INVALID_TOKEN', 'the request path is not in normal form (dot segments or encoded separators)');
  return `${publicUrl}${path}`;
}
