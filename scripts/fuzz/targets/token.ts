// Inputs for the token endpoint (POST /oauth/token, RFC 8693 form): valid and mutated subject
// tokens (SVID, Bearer, DPoP-bound without or with a mutated proof), mutated authorization_details
// (type confusion, huge scopes, nesting), repeated or missing parameters, other content types.
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } from '../../../src/oauth/token-exchange.js';
import { asText, hostileValue, mutatedJsonText, mutateJwt, mutateString } from '../mutate.js';
import { pathVariant } from '../paths.js';
import type { Rng } from '../rng.js';
import type { FuzzRequest } from '../types.js';
import { dpopProof, type GenContext, type Headers, METHODS, mutateHeaders, request } from './common.js';

export async function tokenInput(rng: Rng, ctx: GenContext): Promise<FuzzRequest> {
  const c = ctx.info.creds;
  const url = `${ctx.info.base}/oauth/token`;
  const how: string[] = [];
  const subject = rng.weighted([
    [3, 'svid'],
    [2, 'bearer'],
    [2, 'dpop'],
    [1, 'operator'],
    [1, 'garbage'],
  ] as const);
  let token = { svid: c.svid, bearer: c.bearerToken, dpop: c.dpopToken, operator: c.operatorToken, garbage: rng.pick(ctx.pools.strings) }[
    subject
  ];
  // Most valid subject tokens are mutated: a fully valid exchange is expensive and rarely interesting.
  const keepSubject = subject !== 'garbage' && rng.chance(0.04);
  if (!keepSubject && subject !== 'garbage') {
    token = mutateJwt(rng, token, ctx.pools);
    how.push(`mutated ${subject} subject_token`);
  } else how.push(`${subject} subject_token`);

  let details: unknown = JSON.parse(c.authorizationDetails);
  let detailsText = c.authorizationDetails;
  if (!keepSubject || rng.chance(0.5)) {
    if (rng.chance(0.1)) {
      const grants = Array.from({ length: rng.pick([50, 500, 3000]) }, (_, i) => ({ tool: `fz.t${i}` }));
      details = [{ ...(details as object[])[0], tools: grants }];
      detailsText = JSON.stringify(details);
      how.push('huge scope');
    } else {
      detailsText = mutatedJsonText(rng, details, ctx.pools);
      how.push('mutated authorization_details');
    }
  }
  const params: [string, string][] = [
    ['grant_type', GRANT_TOKEN_EXCHANGE],
    ['subject_token', token],
    [
      'subject_token_type',
      subject === 'svid' || subject === 'garbage' ? TOKEN_TYPE.jwt : rng.pick([TOKEN_TYPE.jwt, TOKEN_TYPE.accessToken]),
    ],
    ['authorization_details', detailsText],
  ];
  if (rng.chance(0.3)) {
    how.push('mutated params');
    for (let n = 1 + rng.int(3); n > 0; n--) {
      const i = rng.int(params.length);
      switch (rng.int(6)) {
        case 0:
          params.splice(i, 1);
          break;
        case 1:
          params.push(params[i] as [string, string]);
          break;
        case 2:
          (params[i] as [string, string])[1] = asText(hostileValue(rng, ctx.pools));
          break;
        case 3:
          params.push([
            rng.pick([
              'actor_token',
              'actor_token_type',
              'requested_token_type',
              'resource',
              'audience',
              'scope',
              'client_id',
              '__proto__',
              rng.pick(ctx.pools.strings),
            ]),
            rng.pick(ctx.pools.strings),
          ]);
          break;
        case 4:
          (params[i] as [string, string])[0] = mutateString(rng, (params[i] as [string, string])[0], ctx.pools);
          break;
        default:
          (params[i] as [string, string])[1] = rng.pick(ctx.pools.nasty);
      }
    }
  }
  let body: string | Buffer = new URLSearchParams(params).toString();
  let headers: Headers = [['content-type', 'application/x-www-form-urlencoded']];
  let validProof: string | undefined;
  if (subject === 'dpop' || rng.chance(0.2)) {
    const proof = await dpopProof(ctx, 'POST', url);
    const kind = rng.int(6);
    validProof = proof;
    if (kind < 3) {
      headers.push(['dpop', proof]);
      how.push('valid DPoP proof');
    } else if (kind < 5) {
      headers.push(['dpop', mutateJwt(rng, proof, ctx.pools)]);
      how.push('mutated DPoP proof');
    } else {
      const method = rng.pick(['GET', 'post', 'PUT']);
      const htu = rng.pick([`${ctx.info.base}/mcp`, url.toUpperCase(), `${url}/`, 'http://evil.example/oauth/token']);
      headers.push(['dpop', await dpopProof(ctx, method, htu)]);
      how.push('DPoP proof for another request');
    }
  }
  if (rng.chance(0.1)) {
    body = rng.chance(0.5) ? JSON.stringify(Object.fromEntries(params)) : mutateString(rng, body, ctx.pools);
    how.push('mangled body');
  }
  if (rng.chance(0.1)) {
    headers = mutateHeaders(rng, ctx, headers);
    how.push('mutated headers');
  }
  let method = 'POST';
  let path = '/oauth/token';
  if (rng.chance(0.05)) {
    method = rng.pick(METHODS);
    how.push(`method ${method}`);
  }
  if (rng.chance(0.08)) {
    path = pathVariant(rng, path, ctx.host, ctx.pools);
    how.push('path variant');
  }
  return request('token', method, path, headers, body, how.join(', '), {
    ...(validProof === undefined ? {} : { validProof }),
    ...(keepSubject ? { kept: subject } : {}),
  });
}
