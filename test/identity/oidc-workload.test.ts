// An agent authenticated by an OIDC workload token (a fake Kubernetes-style issuer we control,
// served over HTTP with discovery + JWKS) opens a mandate through the token endpoint.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { decodeJwt } from 'jose';
import { TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { startWorkloadIssuer, type WorkloadIssuer } from '../helpers/workload-issuer.js';
import { mandateRequest, oauthError, type Running, startBroker } from './helpers.js';

let issuer: WorkloadIssuer;
let b: Running;
const SUBJECT = 'system:serviceaccount:ops:remediation';

before(async () => {
  issuer = await startWorkloadIssuer();
  b = await startBroker({ config: { identity: { oidcIssuers: [{ issuer: issuer.url, audience: 'mandate', algorithms: ['RS256'] }] } } });
  const admin = await b.operatorToken('alice');
  const res = await fetch(`${b.base}/admin/v1/agents`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      id: 'k8s-remediation',
      displayName: 'Remediation (Kubernetes)',
      owner: 'alice',
      environment: 'production',
      identity: { issuer: issuer.url, subject: SUBJECT },
      ceiling: { tools: [{ tool: 'helpdesk.search_tickets' }], delegable: false },
    }),
  });
  assert.equal(res.status, 201, await res.text());
});
after(async () => {
  await b?.close();
  await issuer?.close();
});

const token = (sub: string, aud = 'mandate') => issuer.token({ sub, aud, claims: { kubernetes: { namespace: 'ops' } } });

const open = async (proof: string) =>
  b.exchange({
    subject_token: proof,
    subject_token_type: TOKEN_TYPE.jwt,
    authorization_details: JSON.stringify([mandateRequest({ tools: [{ tool: 'helpdesk.search_tickets' }], delegable: false })]),
  });

test('a workload token of a configured OIDC issuer maps iss+sub to the registered agent', async () => {
  const res = await open(await token(SUBJECT));
  assert.equal(decodeJwt(res.access_token).client_id, 'k8s-remediation');
});

test('attack: a workload token for another audience is refused', async () => {
  const r = await oauthError(open(await token(SUBJECT, 'someone-else')));
  assert.equal(r.error, 'invalid_request');
  assert.match(r.description, /aud/);
});

test('attack: another subject of the same issuer is not that agent', async () => {
  const r = await oauthError(open(await token('system:serviceaccount:ops:intruder')));
  assert.match(r.description, /not a registered agent/);
});
