// The MCP OAuth client-credentials extension at the token endpoint, on both stores: private_key_jwt
// (RFC 7523 §2.2) whose assertion is the agent's JWT-SVID, the mandate from authorization_details
// or a task template named in scope, the agent's standing grant (a repeated request continues its
// live mandate), a re-exchange naming an existing mandate, and every refusal as its own case.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, generateKeyPair } from 'jose';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { storeFactories } from '../helpers/stores.js';
import { assertionParams, mandateOf, sha256b64u, tokenRequest } from './grant-helpers.js';
import { mandateRequest, REMEDIATION, type Running, startBroker, TRIAGE, thumbprint } from './helpers.js';

const CC_AGENT = { id: 'cc-agent', spiffeId: 'spiffe://demo.mandate.local/agent/cc-agent' };
const TEMPLATES = {
  default: {
    purpose: 'Answer support questions',
    taskType: 'support.triage',
    ttlSeconds: 900,
    tools: [{ tool: 'helpdesk.search_tickets' }],
  },
  'refund-c1009': {
    purpose: 'Refund customer C-1009',
    taskType: 'support.refund',
    ttlSeconds: 600,
    tools: [
      { tool: 'helpdesk.search_tickets' },
      { tool: 'helpdesk.propose_refund', args: { customerId: { eq: 'C-1009' }, amountCents: { max: 25_000 } }, maxCalls: 2 },
    ],
  },
  // Registered (templates are reviewed shapes), but beyond this agent's ceiling: refused when used.
  'too-wide': {
    purpose: 'Delete things',
    taskType: 'support.triage',
    ttlSeconds: 600,
    tools: [{ tool: 'helpdesk.delete_customer' }],
  },
};

for (const factory of await storeFactories()) {
  describe(`client credentials with a JWT-SVID assertion (${factory.name})`, { skip: factory.skip }, () => {
    let b: Running;
    let admin: string;
    before(async () => {
      b = await startBroker({ store: await factory.open() });
      admin = await b.operatorToken('alice');
      const res = await fetch(`${b.base}/admin/v1/agents`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          id: CC_AGENT.id,
          displayName: 'Client-credentials agent',
          owner: 'bob',
          environment: 'production',
          identity: { spiffeId: CC_AGENT.spiffeId },
          ceiling: {
            tools: [{ tool: 'helpdesk.search_tickets' }, { tool: 'helpdesk.propose_refund', args: { amountCents: { max: 50_000 } } }],
            delegable: false,
          },
          templates: TEMPLATES,
        }),
      });
      assert.equal(res.status, 201, await res.text());
    });
    after(async () => {
      await b?.close();
      await factory.cleanup();
    });

    const cc = async (spiffeId: string, extra: Record<string, string> = {}, dpopKey?: CryptoKeyPair, audience?: string) =>
      tokenRequest(
        b.base,
        {
          grant_type: 'client_credentials',
          ...assertionParams(await b.svid(spiffeId, audience === undefined ? {} : { audience })),
          ...extra,
        },
        dpopKey,
      );
    const details = (over: Record<string, unknown> = {}) => ({ authorization_details: JSON.stringify([mandateRequest(over)]) });
    const refused = (r: { status: number; body: { error?: string } }, status: number, error: string) => {
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.error, error, JSON.stringify(r.body));
    };

    test('metadata advertises the grant, private_key_jwt and the assertion algorithms', async () => {
      const md = (await (await fetch(`${b.base}/.well-known/oauth-authorization-server`)).json()) as Record<string, string[]>;
      assert.ok(md.grant_types_supported?.includes('client_credentials'));
      assert.ok(md.grant_types_supported?.includes('refresh_token'));
      assert.equal(md.token_endpoint_auth_methods_supported?.[0], 'private_key_jwt');
      assert.ok(!md.token_endpoint_auth_methods_supported?.some((m) => m.startsWith('client_secret')), 'no client secrets');
      // The demo trust domain signs ES256; nothing symmetric is ever listed.
      assert.ok(md.token_endpoint_auth_signing_alg_values_supported?.includes('ES256'));
      assert.ok(!md.token_endpoint_auth_signing_alg_values_supported?.some((a) => a.startsWith('HS') || a === 'none'));
    });

    test('opens a mandate from authorization_details: the same token the exchange issues, plus a refresh token', async () => {
      const r = await cc(TRIAGE, details());
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.token_type, 'Bearer');
      assert.equal(r.body.issued_token_type, undefined, 'issued_token_type belongs to token exchange responses');
      assert.match(String(r.body.refresh_token), /^mrt_[A-Za-z0-9_-]{43}$/);
      assert.equal(r.headers.get('cache-control'), 'no-store');
      const claims = decodeJwt(String(r.body.access_token));
      assert.equal(claims.client_id, 'support-triage');
      assert.equal(claims.sub, 'support-triage');
      const verified = await b.broker.verifier.verify({
        token: String(r.body.access_token),
        scheme: 'Bearer',
        method: 'GET',
        url: `${b.base}/mcp`,
      });
      assert.equal(verified.mandate.agentId, 'support-triage');
      assert.equal(verified.mandate.purpose, mandateRequest().purpose);
      const [issued] = await b.broker.audit.entriesBy('mandate_id', verified.mandate.id, { types: ['token.issued'] });
      assert.equal((issued?.event.data as Record<string, unknown> | undefined)?.grant, 'client_credentials');
      const types = (await b.broker.audit.entriesBy('mandate_id', verified.mandate.id)).map((e) => e.event.type);
      assert.ok(types.includes('identity.verified') && types.includes('mandate.opened'), types.join());
    });

    test('the assertion may name the token endpoint as its audience (RFC 7523 §3), not another service', async () => {
      const ok = await cc(TRIAGE, details({ purpose: 'aud = token endpoint' }), undefined, `${b.base}/oauth/token`);
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      const other = await cc(TRIAGE, details(), undefined, 'https://other.example/oauth/token');
      refused(other, 401, 'invalid_client');
      assert.match(String(other.body.error_description), /aud/);
      // An SVID verified for the token endpoint's audience is not thereby good as a token-exchange subject.
      const svid = await b.svid(TRIAGE, { audience: `${b.base}/oauth/token` });
      const asAssertion = await tokenRequest(b.base, { grant_type: 'client_credentials', ...assertionParams(svid), ...details() });
      assert.equal(asAssertion.status, 200);
      const asSubject = await tokenRequest(b.base, {
        grant_type: GRANT_TOKEN_EXCHANGE,
        subject_token: svid,
        subject_token_type: TOKEN_TYPE.jwt,
        ...details(),
      });
      refused(asSubject, 400, 'invalid_request');
    });

    test('each assertion is accepted once: the same SVID again, or another one with the same jti, is refused', async () => {
      const svid = await b.svid(TRIAGE);
      const form = { grant_type: 'client_credentials', ...assertionParams(svid), ...details() };
      assert.equal((await tokenRequest(b.base, form)).status, 200);
      const replay = await tokenRequest(b.base, form);
      refused(replay, 401, 'invalid_client');
      assert.match(String(replay.body.error_description), /already been used/);
      const now = Math.floor(Date.now() / 1000);
      const claims = { sub: TRIAGE, aud: b.base, iat: now, exp: now + 120, jti: 'fixed-jti-1' };
      const first = await b.signWithDevKey({ typ: 'JWT' }, claims);
      const second = await b.signWithDevKey({ typ: 'JWT' }, { ...claims, exp: now + 100 });
      assert.equal((await tokenRequest(b.base, { ...form, ...assertionParams(first) })).status, 200);
      refused(await tokenRequest(b.base, { ...form, ...assertionParams(second) }), 401, 'invalid_client');
      // Without jti, the signed content is what is single-use: the same claims signed again are a replay too.
      const noJti = { sub: TRIAGE, aud: b.base, iat: now, exp: now + 90 };
      assert.equal(
        (await tokenRequest(b.base, { ...form, ...assertionParams(await b.signWithDevKey({ typ: 'JWT' }, noJti)) })).status,
        200,
      );
      refused(
        await tokenRequest(b.base, { ...form, ...assertionParams(await b.signWithDevKey({ typ: 'JWT' }, noJti)) }),
        401,
        'invalid_client',
      );
    });

    test('a long-lived assertion is refused (at most an hour)', async () => {
      const now = Math.floor(Date.now() / 1000);
      const long = await b.signWithDevKey({ typ: 'JWT' }, { sub: TRIAGE, aud: b.base, iat: now, exp: now + 7200, jti: 'long-1' });
      const r = await tokenRequest(b.base, { grant_type: 'client_credentials', ...assertionParams(long), ...details() });
      refused(r, 401, 'invalid_client');
      assert.match(String(r.body.error_description), /at most 3600/);
      const hour = await b.signWithDevKey({ typ: 'JWT' }, { sub: TRIAGE, aud: b.base, iat: now, exp: now + 3600, jti: 'hour-1' });
      assert.equal((await tokenRequest(b.base, { grant_type: 'client_credentials', ...assertionParams(hour), ...details() })).status, 200);
    });

    test('client authentication refusals are invalid_client: secrets, other assertion types, none, forged, unregistered, stopped', async () => {
      const svid = await b.svid(TRIAGE);
      const base = { grant_type: 'client_credentials', ...details() };
      refused(await tokenRequest(b.base, { ...base, client_id: 'support-triage', client_secret: 'hunter2' }), 401, 'invalid_client');
      refused(await tokenRequest(b.base, { ...base, client_assertion_type: 'urn:other', client_assertion: svid }), 401, 'invalid_client');
      refused(await tokenRequest(b.base, base), 401, 'invalid_client');
      const [h, p] = svid.split('.');
      refused(await tokenRequest(b.base, { ...base, ...assertionParams(`${h}.${p}.AAAA`) }), 401, 'invalid_client');
      refused(await tokenRequest(b.base, { ...base, ...assertionParams(`${h}.${p}.`) }), 401, 'invalid_client');
      const stranger = await cc('spiffe://demo.mandate.local/agent/nobody', details());
      refused(stranger, 401, 'invalid_client');
      assert.match(String(stranger.body.error_description), /not a registered agent/);
      await b.broker.agents.setStatus('remediation', 'quarantined');
      try {
        const q = await cc(REMEDIATION, details());
        refused(q, 401, 'invalid_client');
        assert.match(String(q.body.error_description), /quarantined/);
      } finally {
        await b.broker.agents.setStatus('remediation', 'active');
      }
    });

    test('a client_id must name the client the assertion authenticates', async () => {
      assert.equal((await cc(TRIAGE, { ...details({ purpose: 'with client_id' }), client_id: 'support-triage' })).status, 200);
      assert.equal((await cc(TRIAGE, { ...details({ purpose: 'with SPIFFE client_id' }), client_id: TRIAGE })).status, 200);
      refused(await cc(TRIAGE, { ...details(), client_id: 'remediation' }), 401, 'invalid_client');
    });

    test('token-exchange parameters do not belong here; scope and authorization_details are exclusive', async () => {
      refused(await cc(TRIAGE, { ...details(), subject_token: 'x', subject_token_type: TOKEN_TYPE.jwt }), 400, 'invalid_request');
      refused(await cc(CC_AGENT.spiffeId, { ...details(), scope: 'default' }), 400, 'invalid_request');
      refused(await cc(TRIAGE, { ...details(), resource: 'https://other.example/mcp' }), 400, 'invalid_target');
      assert.equal((await cc(TRIAGE, { ...details({ purpose: 'for /mcp' }), resource: `${b.base}/mcp` })).status, 200);
    });

    test('a task template named in scope opens its mandate; no scope uses the default template', async () => {
      const r = await cc(CC_AGENT.spiffeId, { scope: 'refund-c1009' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const m = await b.broker.mandates.require(mandateOf(r.body.access_token));
      assert.equal(m.purpose, 'Refund customer C-1009');
      assert.equal(m.taskType, 'support.refund');
      assert.equal(m.environment, 'production', "the agent's environment");
      assert.deepEqual(
        m.scope.tools.map((t) => t.tool),
        ['helpdesk.search_tickets', 'helpdesk.propose_refund'],
      );
      const d = await cc(CC_AGENT.spiffeId);
      assert.equal(d.status, 200, JSON.stringify(d.body));
      assert.equal((await b.broker.mandates.require(mandateOf(d.body.access_token))).purpose, 'Answer support questions');
    });

    test('unknown templates, several names, no default, and a template beyond the ceiling are refused', async () => {
      const unknown = await cc(CC_AGENT.spiffeId, { scope: 'nope' });
      refused(unknown, 400, 'invalid_scope');
      assert.match(String(unknown.body.error_description), /no task template "nope"/);
      refused(await cc(CC_AGENT.spiffeId, { scope: 'default refund-c1009' }), 400, 'invalid_scope');
      // Inherited object keys are not templates.
      refused(await cc(CC_AGENT.spiffeId, { scope: 'constructor' }), 400, 'invalid_scope');
      const none = await cc(TRIAGE);
      refused(none, 400, 'invalid_scope');
      assert.match(String(none.body.error_description), /no "default" template/);
      const wide = await cc(CC_AGENT.spiffeId, { scope: 'too-wide' });
      refused(wide, 400, 'invalid_authorization_details');
      assert.match(String(wide.body.error_description), /ceiling/);
    });

    test('the standing grant: the same request again continues the live mandate, until it ends', async () => {
      const first = await cc(CC_AGENT.spiffeId, { scope: 'refund-c1009' });
      const second = await cc(CC_AGENT.spiffeId, { scope: 'refund-c1009' });
      assert.equal(second.status, 200, JSON.stringify(second.body));
      const id = mandateOf(first.body.access_token);
      assert.equal(mandateOf(second.body.access_token), id, 'the same mandate');
      assert.notEqual(second.body.access_token, first.body.access_token);
      assert.notEqual(second.body.refresh_token, first.body.refresh_token);
      // The continuation superseded the first refresh token (refused, not treated as reuse).
      const stale = await tokenRequest(b.base, {
        grant_type: 'refresh_token',
        refresh_token: String(first.body.refresh_token),
        ...assertionParams(await b.svid(CC_AGENT.spiffeId)),
      });
      refused(stale, 400, 'invalid_grant');
      assert.equal((await b.broker.mandates.require(id)).status, 'active', 'a superseded refresh token does not end the mandate');
      const [issued] = (await b.broker.audit.entriesBy('mandate_id', id, { types: ['token.issued'] })).slice(-1);
      assert.equal((issued?.event.data as Record<string, unknown> | undefined)?.continued, 'client_credentials');
      // Another template is another mandate.
      const other = await cc(CC_AGENT.spiffeId, { scope: 'default' });
      assert.notEqual(mandateOf(other.body.access_token), id);
      // Once the mandate ends, the next request opens a new one.
      await b.broker.mandates.complete(id, { type: 'agent', id: CC_AGENT.id }, 'done');
      const third = await cc(CC_AGENT.spiffeId, { scope: 'refund-c1009' });
      assert.equal(third.status, 200, JSON.stringify(third.body));
      assert.notEqual(mandateOf(third.body.access_token), id);
    });

    test('DPoP: the token is bound; the standing grant belongs to the key (another key, another mandate)', async () => {
      const keyA = await generateKeyPair('ES256');
      const keyB = await generateKeyPair('ES256');
      const a1 = await cc(TRIAGE, details({ purpose: 'dpop standing grant' }), keyA);
      assert.equal(a1.status, 200, JSON.stringify(a1.body));
      assert.equal(a1.body.token_type, 'DPoP');
      assert.equal((decodeJwt(String(a1.body.access_token)).cnf as { jkt: string }).jkt, await thumbprint(keyA));
      const a2 = await cc(TRIAGE, details({ purpose: 'dpop standing grant' }), keyA);
      assert.equal(mandateOf(a2.body.access_token), mandateOf(a1.body.access_token));
      const b1 = await cc(TRIAGE, details({ purpose: 'dpop standing grant' }), keyB);
      assert.notEqual(mandateOf(b1.body.access_token), mandateOf(a1.body.access_token));
      const bearer = await cc(TRIAGE, details({ purpose: 'dpop standing grant' }));
      assert.equal(bearer.body.token_type, 'Bearer');
      assert.notEqual(mandateOf(bearer.body.access_token), mandateOf(a1.body.access_token));
    });

    test('naming an existing mandate (authorization_details with mandate_id) gets a token for it with a fresh SVID', async () => {
      const opened = await b.open(TRIAGE);
      const id = mandateOf(opened.access_token);
      const named = JSON.stringify([{ type: 'mandate', mandate_id: id }]);
      const viaExchange = await tokenRequest(b.base, {
        grant_type: GRANT_TOKEN_EXCHANGE,
        subject_token: await b.svid(TRIAGE),
        subject_token_type: TOKEN_TYPE.jwt,
        authorization_details: named,
      });
      assert.equal(viaExchange.status, 200, JSON.stringify(viaExchange.body));
      assert.equal(mandateOf(viaExchange.body.access_token), id);
      assert.equal(viaExchange.body.issued_token_type, TOKEN_TYPE.accessToken);
      const viaCc = await cc(TRIAGE, { authorization_details: named });
      assert.equal(mandateOf(viaCc.body.access_token), id);
      // Only the holder: another agent's proof naming it is refused like an unknown id.
      const stolen = await cc(REMEDIATION, { authorization_details: named });
      refused(stolen, 400, 'invalid_grant');
      const unknown = await cc(TRIAGE, { authorization_details: JSON.stringify([{ type: 'mandate', mandate_id: 'mnd_nope' }]) });
      refused(unknown, 400, 'invalid_grant');
      assert.equal(
        stolen.body.error_description?.replace(id, 'X'),
        unknown.body.error_description?.replace('mnd_nope', 'X').replace('support-triage', 'remediation'),
      );
      // Nothing else may ride along with mandate_id.
      refused(
        await cc(TRIAGE, { authorization_details: JSON.stringify([{ type: 'mandate', mandate_id: id, ttlSeconds: 99999 }]) }),
        400,
        'invalid_authorization_details',
      );
      // An ended mandate cannot be continued.
      await b.broker.mandates.revoke(id, { type: 'system', id: 'test' }, 'test');
      refused(await cc(TRIAGE, { authorization_details: named }), 400, 'invalid_grant');
    });

    test('a DPoP-bound mandate is only continued with a proof of the same key', async () => {
      const key = await generateKeyPair('ES256');
      const opened = await cc(TRIAGE, details({ purpose: 'bound continuation' }), key);
      const id = mandateOf(opened.body.access_token);
      const named = { authorization_details: JSON.stringify([{ type: 'mandate', mandate_id: id }]) };
      const noProof = await cc(TRIAGE, named);
      refused(noProof, 400, 'invalid_grant');
      assert.match(String(noProof.body.error_description), /DPoP-bound/);
      refused(await cc(TRIAGE, named, await generateKeyPair('ES256')), 400, 'invalid_grant');
      const same = await cc(TRIAGE, named, key);
      assert.equal(same.status, 200, JSON.stringify(same.body));
      assert.equal(mandateOf(same.body.access_token), id);
    });

    test('no assertion or token reaches the audit log; refusals are audited by code', async () => {
      const svid = await b.svid(TRIAGE);
      const r = await tokenRequest(b.base, {
        grant_type: 'client_credentials',
        ...assertionParams(svid),
        ...details({ purpose: 'audit' }),
      });
      const id = mandateOf(r.body.access_token);
      const all = JSON.stringify(await b.broker.audit.entriesBy('mandate_id', id));
      assert.doesNotMatch(all, /eyJ/);
      assert.ok(!all.includes(String(r.body.refresh_token)));
      assert.ok(!all.includes(sha256b64u(String(r.body.refresh_token))), 'not even the stored hash');
    });
  });
}
