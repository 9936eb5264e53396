// Issue 11, items 3–5, end to end through the token endpoint with oauth4webapi on both stores:
// delegation applies the receiver's own profile, a DPoP-bound subject token delegates only with a
// proof of its key, and requested scopes and signed tokens are bounded. One test per attack, next
// to the happy paths.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import type { Agent } from '../../src/agents/agent.js';
import { OAuthError } from '../../src/errors/index.js';
import { systemClock } from '../../src/lib/clock.js';
import { AccessTokenIssuer } from '../../src/oauth/access-token.js';
import { SUBJECT_TOKEN_DPOP, TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { storeFactories } from '../helpers/stores.js';
import {
  ath,
  handDpopProof,
  mandateRequest,
  oauthError,
  REMEDIATION,
  type Running,
  startBroker,
  TRIAGE,
  thumbprint,
} from '../identity/helpers.js';

const spiffe = (name: string) => `spiffe://demo.mandate.local/agent/${name}`;
const search = { tool: 'helpdesk.search_tickets' };

// Both stores. PostgreSQL is skipped only on a machine where it is unreachable (factory.skip says so);
// under CI an unreachable PostgreSQL fails the run instead (test/helpers/stores.ts).
for (const factory of await storeFactories()) {
  describe(`delegation hardening (${factory.name})`, { skip: factory.skip }, () => {
    let b: Running;
    let tokenUrl: string;
    before(async () => {
      b = await startBroker({ store: await factory.open() });
      tokenUrl = `${b.base}/oauth/token`;
      const admin = await b.operatorToken('alice');
      // Receivers whose own profiles are narrower than the parent's (the three cases).
      const receivers = [
        { id: 'reader', taskTypes: ['support.triage'] },
        { id: 'short-lived', maxTtlSeconds: 600 },
        { id: 'sandboxed', environment: 'sandbox' },
      ];
      for (const r of receivers) {
        const res = await fetch(`${b.base}/admin/v1/agents`, {
          method: 'POST',
          headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
          body: JSON.stringify({
            displayName: r.id,
            owner: 'carol',
            environment: 'production',
            identity: { spiffeId: spiffe(r.id) },
            ceiling: { tools: [search, { tool: 'helpdesk.propose_refund' }], delegable: true },
            mayReceiveDelegation: true,
            ...r,
          }),
        });
        assert.equal(res.status, 201, await res.text());
      }
    });
    after(async () => {
      await b?.close();
      await factory.cleanup();
    });

    const child = (over: Record<string, unknown> = {}) => mandateRequest({ ttlSeconds: 300, tools: [search], delegable: false, ...over });
    const mandatesOf = async (agentId: string) => (await b.broker.mandates.list({ agentId, limit: 1000 })).length;

    // ── item 3: the receiver's own profile ──

    test('attack: a receiver limited to other task types gets no child mandate (same refusal as asking directly)', async () => {
      const parent = await b.open(TRIAGE, mandateRequest({ taskType: 'support.refund' }));
      const direct = await oauthError(b.open(spiffe('reader'), child({ taskType: 'support.refund' })));
      const delegated = await oauthError(b.delegate(parent.access_token, spiffe('reader'), child({ taskType: 'support.refund' })));
      assert.equal(delegated.error, 'invalid_authorization_details');
      assert.match(delegated.description, /task type "support.refund" is not allowed for agent reader/);
      assert.equal(delegated.description, direct.description, 'one check for root mandates and receivers');
      assert.equal(await mandatesOf('reader'), 0);
    });

    test('a receiver gets a child of a task type it is allowed', async () => {
      const parent = await b.open(TRIAGE, mandateRequest({ taskType: 'support.triage' }));
      const res = await b.delegate(parent.access_token, spiffe('reader'), child({ taskType: 'support.triage' }));
      assert.equal(decodeJwt(res.access_token).client_id, 'reader');
    });

    test('attack: a receiver limited to 600 s gets no 1,200 s child; 600 s is granted', async () => {
      const parent = await b.open(TRIAGE, mandateRequest({ ttlSeconds: 1800 }));
      const r = await oauthError(b.delegate(parent.access_token, spiffe('short-lived'), child({ ttlSeconds: 1200 })));
      assert.equal(r.error, 'invalid_authorization_details');
      assert.match(r.description, /ttlSeconds 1200 exceeds the maximum of 600 for agent short-lived/);
      const ok = await b.delegate(parent.access_token, spiffe('short-lived'), child({ ttlSeconds: 600 }));
      const m = await b.broker.mandates.get(decodeJwt(ok.access_token).mandate as string);
      assert.equal(Math.round(((m?.expiresAt ?? 0) - (m?.createdAt ?? 0)) / 1000), 600);
    });

    test('attack: a sandbox agent gets no production child mandate (and no token to call with)', async () => {
      const parent = await b.open(TRIAGE);
      const direct = await oauthError(b.open(spiffe('sandboxed'), child()));
      const r = await oauthError(b.delegate(parent.access_token, spiffe('sandboxed'), child()));
      assert.equal(r.error, 'invalid_authorization_details');
      assert.match(r.description, /agent sandboxed runs in "sandbox", not "production"/);
      assert.equal(r.description, direct.description);
      assert.equal(await mandatesOf('sandboxed'), 0);
    });

    test('attack: the mandate service refuses a receiver that is not active, whatever the caller checked before', async () => {
      const parent = await b.open(TRIAGE);
      const m = await b.broker.mandates.get(decodeJwt(parent.access_token).mandate as string);
      const remediation = (await b.broker.agents.get('remediation')) as Agent;
      const quarantined: Agent = { ...remediation, principal: { ...remediation.principal, status: 'quarantined' } };
      const request = b.broker.mandates.parseRequest(child());
      await assert.rejects(
        b.broker.mandates.delegate(m as never, quarantined, request),
        (err: unknown) => err instanceof OAuthError && err.code === 'OAUTH_INVALID_TARGET' && /quarantined/.test(err.message),
      );
      const ok = await b.broker.mandates.delegate(m as never, remediation, request);
      assert.equal(ok.agentId, 'remediation');
    });

    // ── item 4: proof of possession for DPoP-bound subject tokens ──

    const boundParent = async () => {
      const keyPair = await oauth.generateKeyPair('ES256');
      const parent = await b.open(TRIAGE, mandateRequest(), oauth.DPoP(b.client, keyPair));
      assert.equal(parent.token_type, 'dpop');
      return { keyPair, token: parent.access_token };
    };
    const delegation = async (parentToken: string, extra: Record<string, string> = {}) => ({
      subject_token: parentToken,
      subject_token_type: TOKEN_TYPE.accessToken,
      actor_token: await b.svid(REMEDIATION),
      actor_token_type: TOKEN_TYPE.jwt,
      authorization_details: JSON.stringify([child()]),
      ...extra,
    });

    test('attack: a stolen DPoP-bound token used as subject_token without any proof is refused', async () => {
      const { token } = await boundParent();
      const before = await mandatesOf('remediation');
      const r = await oauthError(b.exchange(await delegation(token)));
      assert.equal(r.error, 'invalid_grant');
      assert.match(r.description, /DPoP-bound/);
      assert.equal(await mandatesOf('remediation'), before, 'no child mandate was recorded');
    });

    test('attack: a stolen DPoP-bound token with the thief’s own DPoP key is refused', async () => {
      const { token } = await boundParent();
      const thief = oauth.DPoP(b.client, await oauth.generateKeyPair('ES256'));
      const r = await oauthError(b.exchange(await delegation(token), thief));
      assert.equal(r.error, 'invalid_grant');
      assert.match(r.description, /subject_token_dpop/);
    });

    test('attack: subject_token_dpop signed by another key, for another token, or replayed is refused', async () => {
      const { keyPair, token } = await boundParent();
      const receiver = await oauth.generateKeyPair('ES256');
      const other = await oauth.generateKeyPair('ES256');
      const wrongKey = await handDpopProof(other, { htm: 'POST', htu: tokenUrl, ath: ath(token) });
      let r = await oauthError(b.exchange(await delegation(token, { [SUBJECT_TOKEN_DPOP]: wrongKey }), oauth.DPoP(b.client, receiver)));
      assert.equal(r.error, 'invalid_grant');
      assert.match(r.description, /does not match the token binding/);
      const wrongToken = await handDpopProof(keyPair, { htm: 'POST', htu: tokenUrl, ath: ath(`${token}x`) });
      r = await oauthError(b.exchange(await delegation(token, { [SUBJECT_TOKEN_DPOP]: wrongToken }), oauth.DPoP(b.client, receiver)));
      assert.match(r.description, /ath does not match/);
      const wrongUrl = await handDpopProof(keyPair, { htm: 'POST', htu: `${b.base}/mcp`, ath: ath(token) });
      r = await oauthError(b.exchange(await delegation(token, { [SUBJECT_TOKEN_DPOP]: wrongUrl }), oauth.DPoP(b.client, receiver)));
      assert.match(r.description, /htu does not match/);
      const good = await handDpopProof(keyPair, { htm: 'POST', htu: tokenUrl, ath: ath(token) });
      await b.exchange(await delegation(token, { [SUBJECT_TOKEN_DPOP]: good }), oauth.DPoP(b.client, receiver));
      r = await oauthError(b.exchange(await delegation(token, { [SUBJECT_TOKEN_DPOP]: good }), oauth.DPoP(b.client, receiver)));
      assert.equal(r.error, 'invalid_grant');
      assert.match(r.description, /already been used/);
    });

    test('attack: the holder’s proof without a DPoP-bound child (downgrade to Bearer) is refused', async () => {
      const { keyPair, token } = await boundParent();
      const proof = await handDpopProof(keyPair, { htm: 'POST', htu: tokenUrl, ath: ath(token) });
      const r = await oauthError(b.exchange(await delegation(token, { [SUBJECT_TOKEN_DPOP]: proof })));
      assert.equal(r.error, 'invalid_grant');
      assert.match(r.description, /child token is DPoP-bound too/);
    });

    test('the holder of the parent key delegates with its DPoP header; the child is bound to that key', async () => {
      const { keyPair, token } = await boundParent();
      const res = await b.exchange(await delegation(token), oauth.DPoP(b.client, keyPair));
      assert.equal(res.token_type, 'dpop');
      assert.equal((decodeJwt(res.access_token) as { cnf?: { jkt: string } }).cnf?.jkt, await thumbprint(keyPair));
    });

    test('the receiver delegates with the holder’s subject_token_dpop; the child is bound to the receiver’s key and works', async () => {
      const { keyPair, token } = await boundParent();
      const receiver = await oauth.generateKeyPair('ES256');
      const proof = await handDpopProof(keyPair, { htm: 'POST', htu: tokenUrl, ath: ath(token) });
      const res = await b.exchange(await delegation(token, { [SUBJECT_TOKEN_DPOP]: proof }), oauth.DPoP(b.client, receiver));
      const claims = decodeJwt(res.access_token) as { cnf?: { jkt: string }; client_id: string };
      assert.equal(claims.client_id, 'remediation');
      assert.equal(claims.cnf?.jkt, await thumbprint(receiver));
      const url = `${b.base}/mcp`;
      // Resources demand a nonce of the replica serving them (identity.dpopResourceNonce).
      const nonce = b.broker.identity.dpop.nonce();
      const use = await handDpopProof(receiver, { htm: 'POST', htu: url, ath: ath(res.access_token), nonce });
      const v = await b.broker.verifier.verify({ token: res.access_token, scheme: 'DPoP', dpop: use, method: 'POST', url });
      assert.equal(v.mandate.agentId, 'remediation');
    });

    test('subject_token_dpop is refused where it does not belong (unbound parent, open)', async () => {
      const parent = await b.open(TRIAGE);
      const key = await oauth.generateKeyPair('ES256');
      const proof = await handDpopProof(key, { htm: 'POST', htu: tokenUrl, ath: ath(parent.access_token) });
      let r = await oauthError(b.exchange(await delegation(parent.access_token, { [SUBJECT_TOKEN_DPOP]: proof })));
      assert.equal(r.error, 'invalid_request');
      r = await oauthError(
        b.exchange({
          subject_token: await b.svid(TRIAGE),
          subject_token_type: TOKEN_TYPE.jwt,
          authorization_details: JSON.stringify([mandateRequest()]),
          [SUBJECT_TOKEN_DPOP]: proof,
        }),
      );
      assert.equal(r.error, 'invalid_request');
      // An unbound parent still delegates as before.
      assert.equal((await b.delegate(parent.access_token, REMEDIATION, child())).token_type, 'bearer');
    });

    // ── item 5: limits ──

    test('attack: more tool grants than identity.maxGrantsPerMandate (64) are refused; 64 are granted', async () => {
      const before = await mandatesOf('support-triage');
      const r = await oauthError(b.open(TRIAGE, mandateRequest({ tools: Array.from({ length: 65 }, () => search) })));
      assert.equal(r.error, 'invalid_authorization_details');
      assert.match(r.description, /65 tool grants; the limit is 64/);
      assert.equal(await mandatesOf('support-triage'), before);
      const ok = await b.open(TRIAGE, mandateRequest({ tools: Array.from({ length: 64 }, () => search) }));
      assert.equal(
        (decodeJwt(ok.access_token) as { authorization_details: { tools: unknown[] }[] }).authorization_details[0]?.tools.length,
        64,
      );
    });

    test('attack: the issue’s 500-grant scope is refused', async () => {
      const tools = Array.from({ length: 500 }, (_, i) => ({ tool: 'helpdesk.search_tickets', args: { q: { eq: `q${i}` } } }));
      const r = await oauthError(b.open(TRIAGE, mandateRequest({ tools })));
      assert.equal(r.error, 'invalid_authorization_details');
      assert.match(r.description, /the limit is/);
    });

    test('attack: authorization_details over identity.maxAuthorizationDetailsBytes (8192) is refused before parsing', async () => {
      const padded = `${JSON.stringify([mandateRequest()])}${' '.repeat(8200)}`;
      const r = await oauthError(
        b.exchange({ subject_token: await b.svid(TRIAGE), subject_token_type: TOKEN_TYPE.jwt, authorization_details: padded }),
      );
      assert.equal(r.error, 'invalid_authorization_details');
      assert.match(r.description, /is \d+ bytes; the limit is 8192/);
    });

    // One grant whose `in` list has `n` 100-character values: small details, a large token.
    const bulky = (n: number) =>
      mandateRequest({ tools: [{ ...search, args: { q: { in: Array.from({ length: n }, (_, i) => `${i}`.padStart(100, 'x')) } } }] });

    test('attack: a token over identity.maxAccessTokenBytes (8192) is never signed, and no mandate is left behind', async () => {
      const details = JSON.stringify([bulky(62)]);
      assert.ok(Buffer.byteLength(details) < 8192, 'within the authorization_details limit');
      const before = await mandatesOf('support-triage');
      const r = await oauthError(
        b.exchange({ subject_token: await b.svid(TRIAGE), subject_token_type: TOKEN_TYPE.jwt, authorization_details: details }),
      );
      assert.equal(r.error, 'invalid_authorization_details');
      assert.match(r.description, /the access token for this mandate would be \d+ bytes; the limit is 8192/);
      assert.equal(await mandatesOf('support-triage'), before);
    });

    test('a token near the limit is issued and passes the HTTP header limit of /mcp (no 431)', async () => {
      const res = await b.open(TRIAGE, bulky(52));
      assert.ok(res.access_token.length > 8000 && res.access_token.length <= 8192, String(res.access_token.length));
      const mcp = await fetch(`${b.base}/mcp`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${res.access_token}`,
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
        }),
      });
      assert.equal(mcp.status, 200, await mcp.text());
    });

    test('the token size is measured exactly before signing (act chain, cnf, multi-byte text)', async () => {
      const tokens = new AccessTokenIssuer(b.broker.identity.keys, systemClock, b.base, b.base);
      const input = {
        sub: 'bob',
        clientId: 'remediation',
        mandateId: 'mnd_aaaaaaaaaaaaaaaa',
        details: { type: 'mandate', purpose: 'Rückerstattung – 返金 ✓', tools: [search] },
        act: { sub: 'remediation', act: { sub: 'support-triage' } },
        jkt: 'x'.repeat(43),
        exp: Math.floor(Date.now() / 1000) + 60,
      };
      for (const i of [input, { ...input, act: undefined, jkt: undefined }]) {
        const { token } = await tokens.mint(i);
        assert.equal(tokens.measure(i), token.length);
      }
    });
  });
}

describe('delegation hardening: limits and nonces are configuration', () => {
  let b: Running;
  before(async () => {
    b = await startBroker({ config: { identity: { maxGrantsPerMandate: 2, dpopNonce: true } } });
  });
  after(async () => {
    await b?.close();
  });

  test('identity.maxGrantsPerMandate is applied', async () => {
    const r = await oauthError(b.open(TRIAGE, mandateRequest({ tools: [search, search, search] })));
    assert.match(r.description, /3 tool grants; the limit is 2/);
    assert.equal((await b.open(TRIAGE, mandateRequest({ tools: [search, search] }))).token_type, 'bearer');
  });

  test('subject_token_dpop obeys the server nonce rules', async () => {
    const keyPair = await oauth.generateKeyPair('ES256');
    const parent = await b.open(TRIAGE, mandateRequest({ tools: [search] }), oauth.DPoP(b.client, keyPair));
    const url = `${b.base}/oauth/token`;
    const params = async (proof: string) => ({
      subject_token: parent.access_token,
      subject_token_type: TOKEN_TYPE.accessToken,
      actor_token: await b.svid(REMEDIATION),
      actor_token_type: TOKEN_TYPE.jwt,
      authorization_details: JSON.stringify([mandateRequest({ ttlSeconds: 300, tools: [search], delegable: false })]),
      [SUBJECT_TOKEN_DPOP]: proof,
    });
    const receiver = oauth.DPoP(b.client, await oauth.generateKeyPair('ES256'));
    const stale = await handDpopProof(keyPair, { htm: 'POST', htu: url, ath: ath(parent.access_token) });
    const r = await oauthError(b.exchange(await params(stale), receiver));
    assert.equal(r.error, 'use_dpop_nonce');
    const nonce = b.broker.identity.dpop.nonce();
    const fresh = await handDpopProof(keyPair, { htm: 'POST', htu: url, ath: ath(parent.access_token), nonce });
    const res = await b.exchange(await params(fresh), receiver);
    assert.equal(res.token_type, 'dpop');
  });
});
