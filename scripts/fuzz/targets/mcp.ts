// Inputs for the MCP gateway (/mcp): JSON-RPC messages (initialize, lists, tools/call with hostile
// names and arguments, batches, notifications, garbage) with no, mutated, Bearer or DPoP
// credentials (valid, mutated or mismatched proofs) and real or forged session ids.
import { hostileValue, mutatedJsonText, mutateJwt } from '../mutate.js';
import { pathVariant } from '../paths.js';
import type { Rng } from '../rng.js';
import type { FuzzRequest } from '../types.js';
import { authorization, dpopProof, type GenContext, type Headers, METHODS, mutateHeaders, request } from './common.js';

function message(rng: Rng, ctx: GenContext): unknown {
  const id = rng.pick<unknown>([1, 'a', 0, -1, null, 1.5, {}, [], 'x'.repeat(300)]);
  switch (rng.int(8)) {
    case 0:
      return {
        jsonrpc: '2.0',
        id,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'fuzz', version: '1' } },
      };
    case 1:
      return {
        jsonrpc: '2.0',
        id,
        method: rng.pick(['tools/list', 'resources/list', 'prompts/list', 'ping', 'logging/setLevel', 'completion/complete']),
        params: {},
      };
    case 2:
      return {
        jsonrpc: '2.0',
        method: rng.pick(['notifications/initialized', 'notifications/cancelled', 'notifications/progress']),
        params: { requestId: id },
      };
    case 3:
      return [message(rng, ctx), message(rng, ctx)];
    default:
      return {
        jsonrpc: '2.0',
        id,
        method: 'tools/call',
        params: {
          name: rng.weighted([
            [6, 'fz.lookup'],
            [1, 'fz.missing'],
            [1, rng.pick(ctx.pools.nasty)],
            [1, rng.pick(ctx.pools.strings)],
          ] as const),
          arguments: rng.chance(0.5) ? { id: rng.chance(0.5) ? 'T-1' : hostileValue(rng, ctx.pools) } : hostileValue(rng, ctx.pools),
        },
      };
  }
}

export async function mcpInput(rng: Rng, ctx: GenContext): Promise<FuzzRequest> {
  const how: string[] = [];
  const url = `${ctx.info.base}/mcp`;
  const method = rng.chance(0.9) ? 'POST' : rng.pick([...METHODS, 'GET', 'DELETE']);
  let headers: Headers = [
    ['content-type', 'application/json'],
    ['accept', 'application/json, text/event-stream'],
  ];
  let validProof: string | undefined;
  let kept: string | undefined;
  if (rng.chance(0.35)) {
    // DPoP-bound token with a proof: valid, mutated, or for another request.
    const token = rng.chance(0.7) ? ctx.info.creds.dpopToken : mutateJwt(rng, ctx.info.creds.dpopToken, ctx.pools);
    const scheme = rng.weighted([
      [8, 'DPoP'],
      [2, 'Bearer'],
    ] as const);
    headers.push(['authorization', `${scheme} ${token}`]);
    const proof = await dpopProof(ctx, method, url, ctx.info.creds.dpopToken);
    const r = rng.int(5);
    // The classifier compares what is sent with this (a mutation may leave the proof equivalent).
    validProof = proof;
    if (r <= 1) headers.push(['dpop', proof]);
    else if (r === 2) headers.push(['dpop', mutateJwt(rng, proof, ctx.pools)]);
    else if (r === 3)
      headers.push([
        'dpop',
        await dpopProof(
          ctx,
          method,
          rng.pick([`${url}/`, `${ctx.info.base}/oauth/token`, 'http://evil.example/mcp']),
          ctx.info.creds.dpopToken,
        ),
      ]);
    if (token === ctx.info.creds.dpopToken && scheme === 'DPoP' && r <= 1) kept = 'dpop';
    how.push(
      `${token === ctx.info.creds.dpopToken ? 'dpop token' : 'mutated dpop token'} (${scheme}), ${['valid proof', 'valid proof', 'mutated proof', 'proof for another request', 'no proof'][r]}`,
    );
  } else {
    const auth = authorization(rng, ctx, ['none', 'bearer', 'bearer', 'bearer', 'operator', 'garbage']);
    if (auth.header !== undefined) headers.push(['authorization', auth.header]);
    kept = auth.kept;
    how.push(auth.kept === undefined ? (auth.header === undefined ? 'no credentials' : 'bad credentials') : `valid ${auth.kept}`);
  }
  if (rng.chance(0.7) && ctx.mcpSessions.length > 0) {
    headers.push(['mcp-session-id', rng.chance(0.8) ? rng.pick(ctx.mcpSessions) : rng.pick(ctx.pools.strings)]);
    headers.push(['mcp-protocol-version', rng.chance(0.9) ? '2025-06-18' : rng.pick(ctx.pools.strings)]);
  }
  const msg = message(rng, ctx);
  const body = rng.chance(0.6) ? mutatedJsonText(rng, msg, ctx.pools) : JSON.stringify(msg);
  how.push(Array.isArray(msg) ? 'batch' : String((msg as { method?: string }).method));
  if (rng.chance(0.1)) {
    headers = mutateHeaders(rng, ctx, headers);
    how.push('mutated headers');
  }
  let path = '/mcp';
  if (rng.chance(0.05)) {
    path = pathVariant(rng, path, ctx.host, ctx.pools);
    how.push('path variant');
  }
  return request('mcp', method, path, headers, method === 'GET' || method === 'HEAD' ? undefined : body, how.join(', '), {
    ...(validProof === undefined ? {} : { validProof }),
    ...(kept === undefined ? {} : { kept }),
  });
}
