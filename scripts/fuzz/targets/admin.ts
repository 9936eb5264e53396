// Inputs for the admin API: every route the broker documents, spelled every way a router and a
// gate might disagree on (see paths.ts), with every method, and never with valid credentials:
// no token, mutated operator or bootstrap tokens, or an agent's token. Any 2xx is an allow.
import { sameJwt } from '../classify.js';
import { mutatedJsonText } from '../mutate.js';
import { pathVariant } from '../paths.js';
import type { Rng } from '../rng.js';
import type { FuzzRequest } from '../types.js';
import { authorization, type GenContext, type Headers, METHODS, mutateHeaders, request } from './common.js';

const BODIES: unknown[] = [
  {},
  { id: 'x', transport: { type: 'stdio', command: 'touch', args: ['/tmp/mandate-fuzz-pwned'] } },
  { id: 'fz', actionClass: 'read' },
  { status: 'active' },
  { decision: 'approve' },
  { reason: 'x' },
  { id: 'a', displayName: 'a', owner: 'alice', environment: 'production', identity: { spiffeId: 'spiffe://demo.mandate.local/agent/a' } },
];

const IDS = ['fuzz-agent', 'alice', 'fz', 'x', '..', '%2e%2e', '1', '__proto__'];

/** Whether a mutated Authorization header still carries a valid operator credential. */
function stillValid(ctx: GenContext, header: string | undefined): boolean {
  const token = /^(Bearer|DPoP) +(.+)$/i.exec((header ?? '').trim())?.[2];
  return token !== undefined && (sameJwt(token, ctx.info.creds.operatorToken) || token.trim() === ctx.info.creds.bootstrapToken);
}

export async function adminInput(rng: Rng, ctx: GenContext): Promise<FuzzRequest> {
  const route = rng.pick(ctx.adminRoutes);
  const how = [`${route.method} ${route.path}`];
  let path = route.path.replace(/:[A-Za-z]+|\*/g, () => rng.pick(IDS));
  if (rng.chance(0.85)) {
    path = pathVariant(rng, path, ctx.host, ctx.pools);
    how.push('path variant');
  }
  const method = rng.chance(0.7) ? route.method : rng.pick(METHODS);
  const auth = authorization(rng, ctx, ['none', 'none', 'operator', 'bootstrap', 'bearer', 'garbage']);
  // A mutated admin credential that happens to stay valid would make this a privileged request.
  const header = auth.kept === undefined && !stillValid(ctx, auth.header) ? auth.header : undefined;
  how.push(header === undefined ? 'no credentials' : 'bad credentials');
  let headers: Headers = header === undefined ? [] : [['authorization', header]];
  let body: string | undefined;
  if (method !== 'GET' && method !== 'HEAD' && rng.chance(0.8)) {
    headers.push(['content-type', 'application/json']);
    body = rng.chance(0.5) ? JSON.stringify(rng.pick(BODIES)) : mutatedJsonText(rng, rng.pick(BODIES), ctx.pools);
  }
  if (rng.chance(0.15)) {
    headers = mutateHeaders(rng, ctx, headers);
    how.push('mutated headers');
  }
  return request('admin', method, path, headers, body, how.join(', '));
}
