// What every target generator shares: the run's context (broker, credentials, pools, admin routes),
// DPoP proofs, header mutations and the assembly of a request.
import { createHash, randomUUID } from 'node:crypto';
import { importJWK, SignJWT } from 'jose';
import { mutateJwt, mutateString } from '../mutate.js';
import type { Pools } from '../pools.js';
import type { Rng } from '../rng.js';
import type { BrokerInfo, FuzzRequest, Target } from '../types.js';

export interface GenContext {
  readonly info: BrokerInfo;
  readonly pools: Pools;
  /** host:port of the broker (the Host header /mcp accepts). */
  readonly host: string;
  /** Admin routes from the broker's OpenAPI document: method and path template. */
  readonly adminRoutes: readonly { readonly method: string; readonly path: string }[];
  /** MCP session ids opened with the Bearer token (valid ones and ones to reuse wrongly). */
  readonly mcpSessions: readonly string[];
  readonly dpopKey: CryptoKey;
}

export type Headers = [string, string][];

/** A fresh, valid DPoP proof for `method url` (with `ath` when a token is bound). */
export async function dpopProof(ctx: GenContext, method: string, url: string, token?: string): Promise<string> {
  const { d: _d, ...pub } = ctx.info.creds.dpopPrivateJwk;
  return new SignJWT({
    jti: randomUUID(),
    htm: method,
    htu: url,
    ...(token === undefined ? {} : { ath: createHash('sha256').update(token).digest('base64url') }),
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: pub })
    .setIssuedAt()
    .sign(ctx.dpopKey);
}

export async function importDpopKey(info: BrokerInfo): Promise<CryptoKey> {
  return (await importJWK(info.creds.dpopPrivateJwk, 'ES256')) as CryptoKey;
}

/** Authorization header choices for a route that wants `kind` credentials; `valid` is what was kept intact. */
export function authorization(
  rng: Rng,
  ctx: GenContext,
  offer: readonly ('none' | 'bearer' | 'operator' | 'bootstrap' | 'garbage')[],
): { header: string | undefined; kept: 'bearer' | 'operator' | 'bootstrap' | undefined } {
  const c = ctx.info.creds;
  const choice = rng.pick(offer);
  const mutate = rng.chance(0.6);
  const scheme = () =>
    rng.weighted([
      [8, 'Bearer'],
      [1, 'bearer'],
      [1, 'DPoP'],
      [1, 'Basic'],
      [1, 'Bearer  '],
      [1, ''],
    ] as const);
  switch (choice) {
    case 'none':
      return { header: undefined, kept: undefined };
    case 'bearer':
      return mutate
        ? { header: `${scheme()} ${mutateJwt(rng, c.bearerToken, ctx.pools)}`, kept: undefined }
        : { header: `Bearer ${c.bearerToken}`, kept: 'bearer' };
    case 'operator':
      return mutate
        ? { header: `${scheme()} ${mutateJwt(rng, c.operatorToken, ctx.pools)}`, kept: undefined }
        : { header: `Bearer ${c.operatorToken}`, kept: 'operator' };
    case 'bootstrap':
      return mutate
        ? { header: `${scheme()} ${mutateString(rng, c.bootstrapToken, ctx.pools)}`, kept: undefined }
        : { header: `Bearer ${c.bootstrapToken}`, kept: 'bootstrap' };
    default:
      return {
        header: rng.pick([
          'Bearer',
          'Bearer ',
          `Bearer ${rng.pick(ctx.pools.strings)}`,
          `Basic ${Buffer.from('admin:admin').toString('base64')}`,
          `Bearer ${'a'.repeat(20_000)}`,
          `Bearer ${c.bearerToken}, Bearer ${c.operatorToken}`,
          rng.pick(ctx.pools.nasty),
        ]),
        kept: undefined,
      };
  }
}

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'APPLICATION/JSON',
  'application/x-www-form-urlencoded',
  'text/plain',
  'multipart/form-data; boundary=x',
  'application/xml',
  'application/jsonx',
  '',
  '*/*',
  'application/json, application/json',
];

/** Adds, drops or bends a few headers. */
export function mutateHeaders(rng: Rng, ctx: GenContext, headers: Headers): Headers {
  const out = [...headers];
  for (let n = rng.int(3); n > 0; n--) {
    switch (rng.int(8)) {
      case 0:
        out.push(['content-type', rng.pick(CONTENT_TYPES)]);
        break;
      case 1:
        if (out.length > 0) out.splice(rng.int(out.length), 1);
        break;
      case 2:
        out.push([
          rng.pick([
            'x-request-id',
            'x-forwarded-for',
            'x-forwarded-host',
            'x-forwarded-proto',
            'origin',
            'accept',
            'mcp-protocol-version',
            'cookie',
          ]),
          rng.pick(ctx.pools.strings),
        ]);
        break;
      case 3:
        out.push(['host', rng.pick(['evil.example', 'localhost', '127.0.0.1', `${ctx.host}.evil.example`, ctx.host.toUpperCase(), ''])]);
        break;
      case 4:
        if (out.length > 0) out.push(out[rng.int(out.length)] as [string, string]);
        break;
      case 5:
        out.push(['x-fuzz', 'v'.repeat(rng.pick([10, 9000, 40_000]))]);
        break;
      case 6:
        out.push(['dpop', rng.pick(ctx.pools.strings)]);
        break;
      default:
        out.push([mutateString(rng, 'x-custom', ctx.pools), mutateString(rng, 'value', ctx.pools)]);
    }
  }
  return out;
}

export function request(
  target: Target,
  method: string,
  path: string,
  headers: Headers,
  body: string | Buffer | undefined,
  how: string,
  extra: Partial<Pick<FuzzRequest, 'validProof' | 'kept'>> = {},
): FuzzRequest {
  return {
    target,
    method,
    path,
    headers,
    body: body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body),
    how,
    ...extra,
  };
}

export const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'CONNECT', 'PROPFIND', 'get', 'FOO'];
