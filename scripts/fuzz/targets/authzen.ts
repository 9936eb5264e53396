// Inputs for the AuthZEN PDP (/access/v1/*): evaluation requests that policy denies (so any
// `decision: true` for a mutated one is suspect), batches, searches; with no, mutated, agent or
// valid operator credentials; bodies mutated by type confusion, nesting and raw JSON oddities.
import { mutatedJsonText } from '../mutate.js';
import { pathVariant } from '../paths.js';
import type { Rng } from '../rng.js';
import type { FuzzRequest } from '../types.js';
import { authorization, type GenContext, type Headers, METHODS, mutateHeaders, request } from './common.js';

const ENDPOINTS = ['evaluation', 'evaluations', 'search/subject', 'search/resource', 'search/action'] as const;

/** Denied by the demo policy: the agent is quarantined (and has no environment). */
const EVALUATION = {
  subject: { type: 'agent', id: 'fuzz-agent', properties: { status: 'quarantined', actorType: 'agent' } },
  action: { name: 'call' },
  resource: { type: 'tool', id: 'fz.lookup' },
  context: { risk: 90 },
};

function base(endpoint: (typeof ENDPOINTS)[number]): unknown {
  switch (endpoint) {
    case 'evaluation':
      return EVALUATION;
    case 'evaluations':
      return { ...EVALUATION, evaluations: [{ action: { name: 'call' } }, { resource: { type: 'tool', id: 'x' } }] };
    case 'search/subject':
      return { subject: { type: 'agent' }, action: { name: 'call' }, resource: { type: 'tool', id: 'fz.lookup' } };
    case 'search/resource':
      return { subject: EVALUATION.subject, action: { name: 'call' }, resource: { type: 'tool' } };
    default:
      return { subject: EVALUATION.subject, resource: EVALUATION.resource, page: { limit: 5 } };
  }
}

export async function authzenInput(rng: Rng, ctx: GenContext): Promise<FuzzRequest> {
  const endpoint = rng.pick(ENDPOINTS);
  const how: string[] = [endpoint];
  const auth = authorization(rng, ctx, ['none', 'operator', 'operator', 'operator', 'bootstrap', 'bearer', 'garbage']);
  let headers: Headers = [['content-type', 'application/json']];
  if (auth.header !== undefined) headers.push(['authorization', auth.header]);
  how.push(auth.kept === undefined ? (auth.header === undefined ? 'no credentials' : 'bad credentials') : `valid ${auth.kept}`);
  const body = rng.chance(0.9) ? mutatedJsonText(rng, base(endpoint), ctx.pools) : JSON.stringify(base(endpoint));
  if (rng.chance(0.1)) {
    headers = mutateHeaders(rng, ctx, headers);
    how.push('mutated headers');
  }
  let method = 'POST';
  let path = `/access/v1/${endpoint}`;
  if (rng.chance(0.05)) {
    method = rng.pick(METHODS);
    how.push(`method ${method}`);
  }
  if (rng.chance(0.1)) {
    path = pathVariant(rng, path, ctx.host, ctx.pools);
    how.push('path variant');
  }
  return request('authzen', method, path, headers, body, how.join(', '), auth.kept === undefined ? {} : { kept: auth.kept });
}
