// The token endpoint end to end, with oauth4webapi (unmodified) as the client against the broker
// listening on 127.0.0.1, on both stores: opening, refreshing, delegating and ending mandates,
// introspection, revocation, DPoP, and every attack case of the issue as its own test.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import { TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { storeFactories } from '../helpers/stores.js';
import {
  ath,
  handDpopProof,
  insecure,
  mandateRequest,
  oauthError,
  REMEDIATION,
  type Running,
  startBroker,
  TRIAGE,
  thumbprint,
} from './helpers.js';

for (const factory of await storeFactories()) {
  describe(`token exchange (${factory.name})`, { skip: factory.skip }, () => {
    let b: Running;
    let admin: string;
    before(async () => {
      b = await startBroker({ store: await factory.open(), config: { identity: { maxDelegationDepth: 2 } } });
      admin = await b.operatorToken('alice');
      // A third agent that may receive delegations, registered through the admin API.
      const res = await fetch(`${b.base}/admin/v1/agents`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          id: 'billing-helper',
          displayName: 'Billing helper',
          owner: 'carol',
          environment: 'production',
          identity: { spiffeId: 'spiffe://demo.mandate.local/agent/billing-helper' },
          ceiling: { tools: [{ tool: 'helpdesk.search_tickets' }, { tool: 'helpdesk.propose_refund' }], delegable: true },
          mayReceiveDelegation: true,
        }),
      });
      assert.equal(res.status, 201, await res.text());
    });
    after(async () => {
      await b?.close();
      await factory.cleanup();
    });

    const svidParams = async (token: string, details: unknown = [mandateRequest()]) => ({
      subject_token: token,
      subject_token_type: TOKEN_TYPE.jwt,
      authorization_details: JSON.stringify(details),
    });
    const refusedProof = async (token: string) => oauthError(b.exchange(await svidParams(token)));
    const adminFetch = (path: string, init: RequestInit = {}) =>
      fetch(`${b.base}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json', ...init.headers },
      });

    test('metadata advertises the endpoints and JWKS publishes the signing key', async () => {
      assert.equal(b.as.issuer, b.base);
      assert.equal(b.as.token_endpoint, `${b.base}/oauth/token`);
      assert.deepEqual(b.as.grant_types_supported, [
        'urn:ietf:params:oauth:grant-type:token-exchange',
        'client_credentials',
        'refresh_token',
        'authorization_code',
      ]);
      const jwks = (await (await fetch(b.as.jwks_uri as string)).json()) as { keys: { kid: string; alg: string; d?: string }[] };
      assert.equal(jwks.keys.length, 1);
      assert.equal(jwks.keys[0]?.alg, 'EdDSA');
      assert.equal(jwks.keys[0]?.d, undefined);
    });

    test('opens a mandate: EdDSA token with kid, jti, mandate, authorization_details, 5 minute expiry', async () => {
      const res = await b.open(TRIAGE);
      assert.equal(res.token_type, 'bearer');
      assert.equal(res.expires_in, 300);
      const header = decodeProtectedHeader(res.access_token);
      assert.equal(header.alg, 'EdDSA');
      assert.equal(header.typ, 'at+jwt');
      const jwks = b.broker.identity.keys.jwks();
      assert.equal(header.kid, jwks.keys[0]?.kid);
      const claims = decodeJwt(res.access_token) as Record<string, unknown> & { authorization_details: { mandate_id: string }[] };
      assert.equal(claims.sub, 'support-triage');
      assert.equal(claims.client_id, 'support-triage');
      assert.equal(typeof claims.jti, 'string');
      assert.equal((claims.exp as number) - (claims.iat as number), 300);
      assert.equal(claims.act, undefined);
      const mandateId = claims.mandate as string;
      assert.equal(claims.authorization_details[0]?.mandate_id, mandateId);
      const stored = await b.broker.mandates.get(mandateId);
      assert.equal(stored?.status, 'active');
      assert.equal(stored?.agentId, 'support-triage');
      assert.deepEqual(res.authorization_details?.[0], claims.authorization_details[0]);
    });

    test('token expiry never goes beyond the mandate', async () => {
      const res = await b.open(TRIAGE, mandateRequest({ ttlSeconds: 60 }));
      assert.equal(res.expires_in, 60);
    });

    test('re-exchange of a mandate token refreshes it for the same mandate', async () => {
      const first = await b.open(TRIAGE);
      const again = await b.exchange({ subject_token: first.access_token, subject_token_type: TOKEN_TYPE.accessToken });
      const c1 = decodeJwt(first.access_token);
      const c2 = decodeJwt(again.access_token);
      assert.equal(c2.mandate, c1.mandate);
      assert.notEqual(c2.jti, c1.jti);
    });

    test('on behalf of a human: sub is the human, act names the agent', async () => {
      const human = await b.broker.devIssuer?.mint({ sub: 'bob', roles: ['support-lead'] });
      const res = await b.exchange({
        subject_token: human as string,
        subject_token_type: TOKEN_TYPE.jwt,
        actor_token: await b.svid(TRIAGE),
        actor_token_type: TOKEN_TYPE.jwt,
        authorization_details: JSON.stringify([mandateRequest()]),
      });
      const claims = decodeJwt(res.access_token);
      assert.equal(claims.sub, 'bob');
      assert.deepEqual(claims.act, { sub: 'support-triage' });
      assert.equal((await b.broker.mandates.get(claims.mandate as string))?.onBehalfOf, 'bob');
    });

    test('introspection (RFC 7662) reports an active token with its mandate chain', async () => {
      const res = await b.open(TRIAGE);
      const auth: oauth.ClientAuth = (_as, _client, _body, headers) => headers.set('authorization', `Bearer ${admin}`);
      const out = await oauth.processIntrospectionResponse(
        b.as,
        b.client,
        await oauth.introspectionRequest(b.as, b.client, auth, res.access_token, insecure),
      );
      assert.equal(out.active, true);
      assert.equal(out.sub, 'support-triage');
      assert.equal(out.mandate, decodeJwt(res.access_token).mandate);
      const garbage = await oauth.processIntrospectionResponse(
        b.as,
        b.client,
        await oauth.introspectionRequest(b.as, b.client, auth, 'x.y.z', insecure),
      );
      assert.equal(garbage.active, false);
    });

    test('introspection requires an authorized caller', async () => {
      const res = await fetch(`${b.base}/oauth/introspect`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'token=abc',
      });
      assert.equal(res.status, 401);
    });

    test('revocation (RFC 7009) kills one token, not its mandate', async () => {
      const res = await b.open(TRIAGE);
      const sibling = await b.exchange({ subject_token: res.access_token, subject_token_type: TOKEN_TYPE.accessToken });
      await oauth.processRevocationResponse(await oauth.revocationRequest(b.as, b.client, oauth.None(), res.access_token, insecure));
      await assert.rejects(
        b.broker.verifier.verify({ token: res.access_token, scheme: 'Bearer', method: 'GET', url: `${b.base}/x` }),
        /revoked/,
      );
      const ok = await b.broker.verifier.verify({ token: sibling.access_token, scheme: 'Bearer', method: 'GET', url: `${b.base}/x` });
      assert.equal(ok.mandate.status, 'active');
    });

    test('audience/resource naming another service is refused with invalid_target; our own is accepted', async () => {
      const params = await svidParams(await b.svid(TRIAGE));
      const r = await oauthError(b.exchange({ ...params, resource: 'https://other.example/mcp' }));
      assert.equal(r.error, 'invalid_target');
      const ok = await b.exchange({ ...(await svidParams(await b.svid(TRIAGE))), resource: `${b.base}/mcp` });
      assert.equal(ok.token_type, 'bearer');
    });

    // ── attack cases on the identity proof ──

    test('attack: alg none is refused', async () => {
      const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url');
      const now = Math.floor(Date.now() / 1000);
      const body = Buffer.from(JSON.stringify({ sub: TRIAGE, aud: b.base, exp: now + 60 })).toString('base64url');
      const r = await refusedProof(`${header}.${body}.`);
      assert.equal(r.error, 'invalid_request');
      assert.match(r.description, /alg "none" is not allowed/);
    });

    test('attack: HS256 signed with the bundle public key is refused', async () => {
      const bundle = b.broker.identity.devSpiffe?.bundle();
      const pub = JSON.stringify(bundle?.keys[0]);
      const now = Math.floor(Date.now() / 1000);
      const forged = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256', kid: bundle?.keys[0]?.kid as string })
        .setSubject(TRIAGE)
        .setAudience(b.base)
        .setExpirationTime(now + 60)
        .sign(new TextEncoder().encode(pub));
      assert.match((await refusedProof(forged)).description, /alg "HS256" is not allowed/);
    });

    test('attack: unknown kid is refused', async () => {
      const now = Math.floor(Date.now() / 1000);
      const t = await b.signWithDevKey({ kid: 'not-in-bundle' }, { sub: TRIAGE, aud: b.base, exp: now + 60 });
      assert.match((await refusedProof(t)).description, /kid is not in the bundle/);
    });

    test('attack: missing kid is refused', async () => {
      const now = Math.floor(Date.now() / 1000);
      const t = await b.signWithDevKey({ kid: undefined }, { sub: TRIAGE, aud: b.base, exp: now + 60 });
      assert.match((await refusedProof(t)).description, /kid is required/);
    });

    test('attack: expired SVID is refused', async () => {
      const now = Math.floor(Date.now() / 1000);
      const t = await b.signWithDevKey({}, { sub: TRIAGE, aud: b.base, exp: now - 120 });
      assert.match((await refusedProof(t)).description, /expired/);
    });

    test('attack: SVID without exp is refused', async () => {
      const t = await b.signWithDevKey({}, { sub: TRIAGE, aud: b.base });
      assert.match((await refusedProof(t)).description, /exp is required/);
    });

    test('attack: not-yet-valid SVID is refused', async () => {
      const now = Math.floor(Date.now() / 1000);
      const t = await b.signWithDevKey({}, { sub: TRIAGE, aud: b.base, nbf: now + 600, exp: now + 900 });
      assert.match((await refusedProof(t)).description, /not yet valid/);
    });

    test('attack: wrong audience is refused', async () => {
      const t = await b.svid(TRIAGE, { audience: 'https://someone-else.example' });
      assert.match((await refusedProof(t)).description, /aud is not acceptable/);
    });

    test('attack: multi-audience SVID is refused where single audience is required', async () => {
      const t = await b.svid(TRIAGE, { audience: [b.base, 'https://other.example'] });
      assert.match((await refusedProof(t)).description, /exactly one audience/);
    });

    test('attack: SPIFFE ID from an untrusted trust domain is refused', async () => {
      const now = Math.floor(Date.now() / 1000);
      const t = await b.signWithDevKey({}, { sub: 'spiffe://evil.example/agent/support-triage', aud: b.base, exp: now + 60 });
      assert.match((await refusedProof(t)).description, /trust domain "evil.example" is not trusted/);
    });

    test('attack: malformed SPIFFE IDs are refused', async () => {
      const now = Math.floor(Date.now() / 1000);
      for (const sub of [
        'SPIFFE://demo.mandate.local/agent/support-triage',
        'spiffe://Demo.mandate.local/agent/support-triage',
        'spiffe://demo.mandate.local/agent/../agent/support-triage',
        'spiffe://demo.mandate.local/agent/support-triage/',
        'spiffe://demo.mandate.local:443/agent/support-triage',
      ]) {
        const t = await b.signWithDevKey({}, { sub, aud: b.base, exp: now + 60 });
        assert.match((await refusedProof(t)).description, /not a valid SPIFFE ID/, sub);
      }
    });

    test('attack: a valid proof of an unregistered agent is refused', async () => {
      const t = await b.svid('spiffe://demo.mandate.local/agent/unknown');
      assert.match((await refusedProof(t)).description, /not a registered agent/);
    });

    test('attack: a quarantined agent is refused even with a valid proof, and its tokens stop working', async () => {
      const before = await b.open(REMEDIATION);
      const q = await adminFetch('/admin/v1/agents/remediation/quarantine', { method: 'POST', body: '{}' });
      assert.equal(q.status, 200);
      try {
        const r = await oauthError(b.open(REMEDIATION));
        assert.match(r.description, /remediation is quarantined/);
        await assert.rejects(
          b.broker.verifier.verify({ token: before.access_token, scheme: 'Bearer', method: 'GET', url: `${b.base}/x` }),
          /the mandate is revoked/,
        );
      } finally {
        await adminFetch('/admin/v1/agents/remediation/activate', { method: 'POST', body: '{}' });
      }
      // Re-activation does not bring back the authority it held before the quarantine.
      await assert.rejects(
        b.broker.verifier.verify({ token: before.access_token, scheme: 'Bearer', method: 'GET', url: `${b.base}/x` }),
        /mandate is revoked/,
      );
      assert.equal((await b.open(REMEDIATION)).token_type, 'bearer');
    });

    test('the verifier refuses tokens of an agent that is no longer active, on every call', async () => {
      const res = await b.open(TRIAGE);
      const req = { token: res.access_token, scheme: 'Bearer' as const, method: 'GET', url: `${b.base}/x` };
      await b.broker.verifier.verify(req);
      await b.broker.agents.setStatus('support-triage', 'disabled');
      try {
        await assert.rejects(b.broker.verifier.verify(req), /the agent is disabled/);
      } finally {
        await b.broker.agents.setStatus('support-triage', 'active');
      }
      await b.broker.verifier.verify(req);
    });

    test('attack: scope beyond the agent ceiling is refused', async () => {
      const r = await oauthError(b.open(TRIAGE, mandateRequest({ tools: [{ tool: 'helpdesk.delete_customer' }] })));
      assert.equal(r.error, 'invalid_authorization_details');
      assert.match(r.description, /ceiling/);
      const wider = await oauthError(
        b.open(TRIAGE, mandateRequest({ tools: [{ tool: 'helpdesk.propose_refund', args: { amountCents: { max: 99_999 } } }] })),
      );
      assert.equal(wider.error, 'invalid_authorization_details');
    });

    test('malformed authorization_details are refused with invalid_authorization_details', async () => {
      for (const details of ['not json', JSON.stringify({ type: 'mandate' }), JSON.stringify([{ type: 'other' }]), JSON.stringify([])]) {
        const r = await oauthError(
          b.exchange({ subject_token: await b.svid(TRIAGE), subject_token_type: TOKEN_TYPE.jwt, authorization_details: details }),
        );
        assert.equal(r.error, 'invalid_authorization_details', details);
      }
    });

    // ── delegation ──

    test('delegation: child scope within the parent, act chain, receiver holds the token', async () => {
      const parent = await b.open(TRIAGE);
      const child = await b.delegate(
        parent.access_token,
        REMEDIATION,
        mandateRequest({ ttlSeconds: 300, tools: [{ tool: 'helpdesk.search_tickets' }], delegable: false }),
      );
      const claims = decodeJwt(child.access_token);
      assert.equal(claims.client_id, 'remediation');
      assert.equal(claims.sub, 'support-triage');
      assert.deepEqual(claims.act, { sub: 'remediation' });
      const m = await b.broker.mandates.get(claims.mandate as string);
      assert.equal(m?.parentId, decodeJwt(parent.access_token).mandate);
      assert.equal(m?.depth, 1);
      const v = await b.broker.verifier.verify({ token: child.access_token, scheme: 'Bearer', method: 'GET', url: `${b.base}/x` });
      assert.deepEqual(
        v.chain.map((c) => c.agentId),
        ['support-triage', 'remediation'],
      );
    });

    test('attack: delegation widening a constraint is refused', async () => {
      const parent = await b.open(TRIAGE);
      const r = await oauthError(
        b.delegate(
          parent.access_token,
          REMEDIATION,
          mandateRequest({
            ttlSeconds: 300,
            tools: [{ tool: 'helpdesk.propose_refund', args: { customerId: { eq: 'C-1009' }, amountCents: { max: 30_000 } }, maxCalls: 3 }],
          }),
        ),
      );
      assert.equal(r.error, 'invalid_authorization_details');
      assert.match(r.description, /not a subset of the parent/);
    });

    test('attack: delegation beyond the depth limit is refused', async () => {
      const root = await b.open(TRIAGE);
      const d1 = await b.delegate(
        root.access_token,
        REMEDIATION,
        mandateRequest({ ttlSeconds: 600, tools: [{ tool: 'helpdesk.search_tickets' }] }),
      );
      const d2 = await b.delegate(
        d1.access_token,
        'spiffe://demo.mandate.local/agent/billing-helper',
        mandateRequest({ ttlSeconds: 500, tools: [{ tool: 'helpdesk.search_tickets' }] }),
      );
      assert.deepEqual(decodeJwt(d2.access_token).act, { sub: 'billing-helper', act: { sub: 'remediation' } });
      const r = await oauthError(
        b.delegate(d2.access_token, REMEDIATION, mandateRequest({ ttlSeconds: 400, tools: [{ tool: 'helpdesk.search_tickets' }] })),
      );
      assert.equal(r.error, 'invalid_authorization_details');
      assert.match(r.description, /depth 3 exceeds the limit of 2/);
    });

    test('attack: child TTL beyond the parent is refused', async () => {
      const parent = await b.open(TRIAGE, mandateRequest({ ttlSeconds: 120 }));
      const r = await oauthError(b.delegate(parent.access_token, REMEDIATION, mandateRequest({ ttlSeconds: 600 })));
      assert.equal(r.error, 'invalid_authorization_details');
      assert.match(r.description, /outlive its parent/);
    });

    test('attack: delegation to an agent not allowed to receive delegations is refused with invalid_target', async () => {
      const parent = await b.open(TRIAGE);
      const r = await oauthError(b.delegate(parent.access_token, TRIAGE, mandateRequest({ ttlSeconds: 300 })));
      assert.equal(r.error, 'invalid_target');
      const unknown = await oauthError(
        b.delegate(parent.access_token, 'spiffe://demo.mandate.local/agent/nobody', mandateRequest({ ttlSeconds: 300 })),
      );
      assert.equal(unknown.error, 'invalid_target');
    });

    // ── lifecycle ──

    test('attack: a token after its mandate was completed is refused', async () => {
      const res = await b.open(TRIAGE);
      const mandateId = decodeJwt(res.access_token).mandate as string;
      const done = await fetch(`${b.base}/mandate/v1/mandates/${mandateId}/complete`, {
        method: 'POST',
        headers: { authorization: `Bearer ${res.access_token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ reason: 'ticket resolved' }),
      });
      assert.equal(done.status, 200, await done.clone().text());
      assert.equal(((await done.json()) as { status: string }).status, 'completed');
      await assert.rejects(
        b.broker.verifier.verify({ token: res.access_token, scheme: 'Bearer', method: 'GET', url: `${b.base}/x` }),
        /the mandate is completed/,
      );
      const refresh = await oauthError(b.exchange({ subject_token: res.access_token, subject_token_type: TOKEN_TYPE.accessToken }));
      assert.equal(refresh.error, 'invalid_request');
    });

    test('attack: a child token after its parent was revoked is refused (cascade to every descendant)', async () => {
      const root = await b.open(TRIAGE);
      const d1 = await b.delegate(root.access_token, REMEDIATION, mandateRequest({ ttlSeconds: 600 }));
      const d2 = await b.delegate(
        d1.access_token,
        'spiffe://demo.mandate.local/agent/billing-helper',
        mandateRequest({ ttlSeconds: 500, tools: [{ tool: 'helpdesk.search_tickets' }] }),
      );
      const rootId = decodeJwt(root.access_token).mandate as string;
      // bob owns support-triage, so he may revoke its mandates; carol may not.
      const carol = await b.operatorToken('carol');
      const denied = await fetch(`${b.base}/admin/v1/mandates/${rootId}/revoke`, {
        method: 'POST',
        headers: { authorization: `Bearer ${carol}`, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(denied.status, 403);
      const bob = await b.operatorToken('bob');
      const res = await fetch(`${b.base}/admin/v1/mandates/${rootId}/revoke`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bob}`, 'content-type': 'application/json' },
        body: JSON.stringify({ reason: 'suspicious' }),
      });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { ended: string[] }).ended.length, 3);
      for (const t of [d1, d2]) {
        await assert.rejects(
          b.broker.verifier.verify({ token: t.access_token, scheme: 'Bearer', method: 'GET', url: `${b.base}/x` }),
          /is revoked/,
        );
      }
      const stored = await b.broker.mandates.get(decodeJwt(d2.access_token).mandate as string);
      assert.equal(stored?.status, 'revoked');
    });

    test('an agent may revoke a mandate it delegated, but not an unrelated one', async () => {
      const root = await b.open(TRIAGE);
      const child = await b.delegate(root.access_token, REMEDIATION, mandateRequest({ ttlSeconds: 300 }));
      const other = await b.open(TRIAGE);
      const childId = decodeJwt(child.access_token).mandate as string;
      const otherId = decodeJwt(other.access_token).mandate as string;
      const call = (id: string, token: string, verb: string) =>
        fetch(`${b.base}/mandate/v1/mandates/${id}/${verb}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      assert.equal((await call(otherId, child.access_token, 'revoke')).status, 403);
      assert.equal((await call(childId, root.access_token, 'complete')).status, 403);
      assert.equal((await call(childId, root.access_token, 'revoke')).status, 200);
      assert.equal((await b.broker.mandates.get(childId))?.status, 'revoked');
      assert.equal((await b.broker.mandates.get(decodeJwt(root.access_token).mandate as string))?.status, 'active');
    });

    // ── DPoP ──

    test('DPoP: oauth4webapi obtains a bound token (cnf.jkt, token_type DPoP) and uses it at a resource', async () => {
      const keyPair = await oauth.generateKeyPair('ES256');
      const dpop = oauth.DPoP(b.client, keyPair);
      const res = await b.open(TRIAGE, mandateRequest(), dpop);
      assert.equal(res.token_type, 'dpop');
      const claims = decodeJwt(res.access_token) as { cnf?: { jkt: string }; mandate: string };
      assert.equal(claims.cnf?.jkt, await thumbprint(keyPair));
      // Bearer use of a bound token is refused.
      await assert.rejects(
        b.broker.verifier.verify({ token: res.access_token, scheme: 'Bearer', method: 'GET', url: `${b.base}/x` }),
        /DPoP-bound/,
      );
      const complete = () =>
        oauth.protectedResourceRequest(
          res.access_token,
          'POST',
          new URL(`${b.base}/mandate/v1/mandates/${claims.mandate}/complete`),
          new Headers(),
          null,
          { DPoP: dpop, ...insecure },
        );
      // RFC 9449 §9: resources demand a nonce of the replica serving them; the first request learns it.
      const first = await complete().catch((err: unknown) => err);
      assert.ok(oauth.isDPoPNonceError(first), String(first));
      const done = await complete();
      assert.equal(done.status, 200, await done.clone().text());
    });

    test('attack: DPoP proof replay is refused', async () => {
      const keyPair = await generateKeyPair('ES256');
      const res = await b.open(TRIAGE, mandateRequest(), oauth.DPoP(b.client, await oauth.generateKeyPair('ES256')));
      const bound = await b.open(TRIAGE, mandateRequest(), oauth.DPoP(b.client, keyPair as CryptoKeyPair));
      assert.equal(res.token_type, 'dpop');
      const url = `${b.base}/mcp`;
      const nonce = b.broker.identity.dpop.nonce();
      const proof = await handDpopProof(keyPair as CryptoKeyPair, { htm: 'POST', htu: url, ath: ath(bound.access_token), nonce });
      const req = { token: bound.access_token, scheme: 'DPoP' as const, dpop: proof, method: 'POST', url };
      await b.broker.verifier.verify(req);
      await assert.rejects(b.broker.verifier.verify(req), /already been used/);
    });

    test('attack: DPoP proof for another URL is refused', async () => {
      const keyPair = (await generateKeyPair('ES256')) as CryptoKeyPair;
      const bound = await b.open(TRIAGE, mandateRequest(), oauth.DPoP(b.client, keyPair));
      const proof = await handDpopProof(keyPair, { htm: 'POST', htu: `${b.base}/other`, ath: ath(bound.access_token) });
      await assert.rejects(
        b.broker.verifier.verify({ token: bound.access_token, scheme: 'DPoP', dpop: proof, method: 'POST', url: `${b.base}/mcp` }),
        /htu does not match/,
      );
    });

    test('attack: DPoP proof for another method is refused', async () => {
      const keyPair = (await generateKeyPair('ES256')) as CryptoKeyPair;
      const bound = await b.open(TRIAGE, mandateRequest(), oauth.DPoP(b.client, keyPair));
      const proof = await handDpopProof(keyPair, { htm: 'GET', htu: `${b.base}/mcp`, ath: ath(bound.access_token) });
      await assert.rejects(
        b.broker.verifier.verify({ token: bound.access_token, scheme: 'DPoP', dpop: proof, method: 'POST', url: `${b.base}/mcp` }),
        /htm does not match/,
      );
    });

    test('attack: DPoP proof with a wrong ath, another key, or a stale iat is refused', async () => {
      const keyPair = (await generateKeyPair('ES256')) as CryptoKeyPair;
      const bound = await b.open(TRIAGE, mandateRequest(), oauth.DPoP(b.client, keyPair));
      const url = `${b.base}/mcp`;
      const verify = (dpop: string) => b.broker.verifier.verify({ token: bound.access_token, scheme: 'DPoP', dpop, method: 'POST', url });
      const nonce = b.broker.identity.dpop.nonce();
      await assert.rejects(verify(await handDpopProof(keyPair, { htm: 'POST', htu: url, ath: ath('other'), nonce })), /ath does not match/);
      await assert.rejects(verify(await handDpopProof(keyPair, { htm: 'POST', htu: url, nonce })), /ath does not match/);
      const other = (await generateKeyPair('ES256')) as CryptoKeyPair;
      await assert.rejects(verify(await handDpopProof(other, { htm: 'POST', htu: url, ath: ath(bound.access_token), nonce })), /cnf\.jkt/);
      const stale = Math.floor(Date.now() / 1000) - 3600;
      await assert.rejects(
        verify(await handDpopProof(keyPair, { htm: 'POST', htu: url, ath: ath(bound.access_token), iat: stale })),
        /too old/,
      );
    });

    test('attack: DPoP proofs with a symmetric alg, a private key or the wrong typ are refused at the token endpoint', async () => {
      const keyPair = (await generateKeyPair('ES256', { extractable: true })) as CryptoKeyPair;
      const url = `${b.base}/oauth/token`;
      const post = async (proof: string) => {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: proof },
          body: new URLSearchParams({
            grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
            ...(await svidParams(await b.svid(TRIAGE))),
          }).toString(),
        });
        return (await res.json()) as { error: string; error_description: string };
      };
      const now = Math.floor(Date.now() / 1000);
      const claims = { jti: crypto.randomUUID(), htm: 'POST', htu: url, iat: now };
      const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt' }).sign(new Uint8Array(32));
      assert.equal((await post(hs)).error, 'invalid_dpop_proof');
      const priv = await exportJWK(keyPair.privateKey);
      const leaked = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: priv }).sign(keyPair.privateKey);
      assert.match((await post(leaked)).error_description, /public key/);
      const jwt = await new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', typ: 'JWT', jwk: await exportJWK(keyPair.publicKey) })
        .sign(keyPair.privateKey);
      assert.match((await post(jwt)).error_description, /typ must be dpop\+jwt/);
    });

    test('an agent that requires DPoP cannot obtain a Bearer token', async () => {
      const patch = await adminFetch('/admin/v1/agents/remediation', { method: 'PATCH', body: JSON.stringify({ dpopRequired: true }) });
      assert.equal(patch.status, 200);
      try {
        const r = await oauthError(b.open(REMEDIATION));
        assert.equal(r.error, 'invalid_dpop_proof');
        const ok = await b.open(REMEDIATION, mandateRequest(), oauth.DPoP(b.client, await oauth.generateKeyPair('ES256')));
        assert.equal(ok.token_type, 'dpop');
      } finally {
        await adminFetch('/admin/v1/agents/remediation', { method: 'PATCH', body: JSON.stringify({ dpopRequired: false }) });
      }
    });

    test('refreshing a DPoP-bound token needs a proof of the same key', async () => {
      const keyPair = await oauth.generateKeyPair('ES256');
      const bound = await b.open(TRIAGE, mandateRequest(), oauth.DPoP(b.client, keyPair));
      const params = { subject_token: bound.access_token, subject_token_type: TOKEN_TYPE.accessToken };
      assert.equal((await oauthError(b.exchange(params))).error, 'invalid_dpop_proof');
      assert.equal(
        (await oauthError(b.exchange(params, oauth.DPoP(b.client, await oauth.generateKeyPair('ES256'))))).error,
        'invalid_dpop_proof',
      );
      const again = await b.exchange(params, oauth.DPoP(b.client, keyPair));
      assert.equal((decodeJwt(again.access_token) as { cnf?: { jkt: string } }).cnf?.jkt, await thumbprint(keyPair));
    });

    test('every step lands in the audit log with its mandate id and the parent link', async () => {
      const root = await b.open(TRIAGE);
      const child = await b.delegate(root.access_token, REMEDIATION, mandateRequest({ ttlSeconds: 300 }));
      const rootId = decodeJwt(root.access_token).mandate as string;
      const childId = decodeJwt(child.access_token).mandate as string;
      await b.broker.mandates.end(rootId, 'failed', { type: 'agent', id: 'support-triage' }, 'upstream down');
      const types = async (id: string) => (await b.broker.audit.entriesBy('mandate_id', id)).map((e) => e.event.type);
      assert.deepEqual((await types(rootId)).sort(), ['identity.verified', 'mandate.failed', 'mandate.opened', 'token.issued']);
      assert.deepEqual((await types(childId)).sort(), ['identity.verified', 'mandate.delegated', 'token.issued']);
      const [opened] = await b.broker.audit.entriesBy('mandate_id', rootId, { types: ['mandate.opened'] });
      const [verified] = await b.broker.audit.entriesBy('mandate_id', rootId, { types: ['identity.verified'] });
      assert.equal(opened?.event.data.identity, TRIAGE);
      assert.equal(verified?.event.data.proofId, opened?.event.data.proofId);
      const [delegated] = await b.broker.audit.entriesBy('mandate_id', childId, { types: ['mandate.delegated'] });
      assert.equal(delegated?.event.data.parentMandateId, rootId);
      const [issued] = await b.broker.audit.entriesBy('mandate_id', childId, { types: ['token.issued'] });
      assert.equal(issued?.event.data.tokenId, decodeJwt(child.access_token).jti);
      assert.doesNotMatch(JSON.stringify(issued), /eyJ/, 'no token in the audit log');
    });

    test('refusals are audited without the presented token', async () => {
      const before = (await b.broker.audit.head()).size;
      const forged = await b.svid('spiffe://demo.mandate.local/agent/ghost');
      await oauthError(b.exchange(await svidParams(forged)));
      const size = (await b.broker.audit.head()).size;
      const events = await b.broker.audit.entries(before, size);
      const rejected = events.find((e) => e.event.type === 'identity.rejected');
      assert.equal(rejected?.event.data.identity, 'spiffe://demo.mandate.local/agent/ghost');
      assert.equal(rejected?.event.data.reason, 'not registered');
      assert.ok(events.some((e) => e.event.type === 'mandate.refused' && e.event.data.code === 'OAUTH_INVALID_SUBJECT_TOKEN'));
      assert.ok(!JSON.stringify(events).includes(forged.split('.')[2] as string), 'the proof never reaches the log');
    });

    test('tokens signed before a key rotation keep verifying; new tokens use the new kid', async () => {
      const old = await b.open(TRIAGE);
      const oldKid = decodeProtectedHeader(old.access_token).kid;
      const newKid = await b.broker.identity.keys.rotate();
      const jwks = (await (await fetch(`${b.base}/oauth/jwks`)).json()) as { keys: { kid: string }[] };
      assert.deepEqual(jwks.keys.map((k) => k.kid).sort(), [oldKid, newKid].sort());
      await b.broker.verifier.verify({ token: old.access_token, scheme: 'Bearer', method: 'GET', url: `${b.base}/x` });
      const fresh = await b.open(TRIAGE);
      assert.equal(decodeProtectedHeader(fresh.access_token).kid, newKid);
    });

    test('admin agent registry: owner required, identity unique, list and get', async () => {
      const noOwner = await adminFetch('/admin/v1/agents', {
        method: 'POST',
        body: JSON.stringify({
          id: 'orphan',
          displayName: 'Orphan',
          environment: 'production',
          identity: { spiffeId: 'spiffe://demo.mandate.local/agent/orphan' },
          ceiling: { tools: [] },
        }),
      });
      assert.equal(noOwner.status, 400);
      const dup = await adminFetch('/admin/v1/agents', {
        method: 'POST',
        body: JSON.stringify({
          id: 'copycat',
          displayName: 'Copy',
          owner: 'bob',
          environment: 'production',
          identity: { spiffeId: TRIAGE },
          ceiling: { tools: [] },
        }),
      });
      assert.equal(dup.status, 409);
      const list = (await (await adminFetch('/admin/v1/agents')).json()) as { items: { principal: { id: string; owner: string } }[] };
      assert.deepEqual(
        list.items.map((a) => a.principal.id),
        ['billing-helper', 'remediation', 'support-triage'],
      );
      const bobToken = await b.operatorToken('bob');
      const forbidden = await fetch(`${b.base}/admin/v1/agents`, { headers: { authorization: `Bearer ${bobToken}` } });
      assert.equal(forbidden.status, 403);
    });
  });
}
