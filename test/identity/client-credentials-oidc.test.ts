// Client credentials with an OIDC workload token as the private_key_jwt assertion (a fake
// Kubernetes-style issuer we control, with discovery and JWKS over HTTP): the identity is the
// iss+sub pair, the audience is the issuer's configured one, the token is single use, and the
// refresh token is bound to that identity.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { startWorkloadIssuer, type WorkloadIssuer } from '../helpers/workload-issuer.js';
import { assertionParams, mandateOf, tokenRequest } from './grant-helpers.js';
import { type Running, startBroker } from './helpers.js';

let issuer: WorkloadIssuer;
let b: Running;
const SUBJECT = 'system:serviceaccount:ops:remediation';

before(async () => {
  issuer = await startWorkloadIssuer();
  b = await startBroker({ config: { identity: { oidcIssuers: [{ issuer: issuer.url, audience: 'mandate', algorithms: ['RS256'] }] } } });
  await b.broker.agents.register({
    id: 'k8s-remediation',
    displayName: 'Remediation (Kubernetes)',
    owner: 'alice',
    environment: 'production',
    identity: { issuer: issuer.url, subject: SUBJECT },
    ceiling: { tools: [{ tool: 'helpdesk.search_tickets' }], delegable: false },
    templates: {
      default: { purpose: 'Read tickets', taskType: 'support.triage', ttlSeconds: 600, tools: [{ tool: 'helpdesk.search_tickets' }] },
    },
  });
});
after(async () => {
  await b?.close();
  await issuer?.close();
});

const workloadToken = (o: { sub?: string; aud?: string; jti?: string } = {}) =>
  issuer.token({ ...o, sub: o.sub ?? SUBJECT, claims: { kubernetes: { namespace: 'ops' } } });

test('the metadata lists the workload issuer algorithm beside the trust domain one', async () => {
  const md = (await (await fetch(`${b.base}/.well-known/oauth-authorization-server`)).json()) as Record<string, string[]>;
  assert.ok(md.token_endpoint_auth_signing_alg_values_supported?.includes('RS256'));
  assert.ok(md.token_endpoint_auth_signing_alg_values_supported?.includes('ES256'));
});

test('a workload token opens the default template mandate; its refresh token needs the same identity', async () => {
  const r = await tokenRequest(b.base, {
    grant_type: 'client_credentials',
    ...assertionParams(await workloadToken()),
    client_id: 'k8s-remediation',
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const id = mandateOf(r.body.access_token);
  assert.equal((await b.broker.mandates.require(id)).agentId, 'k8s-remediation');
  const refreshed = await tokenRequest(b.base, {
    grant_type: 'refresh_token',
    refresh_token: String(r.body.refresh_token),
    ...assertionParams(await workloadToken()),
  });
  assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
  assert.equal(mandateOf(refreshed.body.access_token), id);
  // Another service account of the same issuer is another client.
  const other = await tokenRequest(b.base, {
    grant_type: 'refresh_token',
    refresh_token: String(refreshed.body.refresh_token),
    ...assertionParams(await workloadToken({ sub: 'system:serviceaccount:ops:other' })),
  });
  assert.equal(other.status, 400, JSON.stringify(other.body));
  assert.equal(other.body.error, 'invalid_grant');
  assert.match(String(other.body.error_description), /another client/);
  // And that attempt consumed nothing.
  const again = await tokenRequest(b.base, {
    grant_type: 'refresh_token',
    refresh_token: String(refreshed.body.refresh_token),
    ...assertionParams(await workloadToken()),
  });
  assert.equal(again.status, 200, JSON.stringify(again.body));
});

test('wrong audience, a replayed jti, and an unregistered subject are invalid_client', async () => {
  const form = { grant_type: 'client_credentials' };
  const aud = await tokenRequest(b.base, { ...form, ...assertionParams(await workloadToken({ aud: `${b.base}/oauth/token` })) });
  assert.equal(aud.body.error, 'invalid_client', 'an OIDC workload token names its issuer’s configured audience');
  const jti = randomUUID();
  assert.equal((await tokenRequest(b.base, { ...form, ...assertionParams(await workloadToken({ jti })) })).status, 200);
  const replay = await tokenRequest(b.base, { ...form, ...assertionParams(await workloadToken({ jti })) });
  assert.equal(replay.status, 401);
  assert.match(String(replay.body.error_description), /already been used/);
  const stranger = await tokenRequest(b.base, { ...form, ...assertionParams(await workloadToken({ sub: 'system:serviceaccount:x:y' })) });
  assert.equal(stranger.body.error, 'invalid_client');
});
