// Refresh tokens at the token endpoint, on both stores: issued with every new mandate, bound to
// the DPoP key of its first token or to the agent's workload identity, rotated on every use,
// stored only as a hash, never outliving the mandate; a reused one ends the mandate and its
// descendants (audited), while a presenter without the bound key changes nothing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { decodeJwt, generateKeyPair } from 'jose';
import type { Clock } from '../../src/lib/clock.js';
import { storeFactories } from '../helpers/stores.js';
import { assertionParams, mandateOf, sha256b64u, type TokenReply, tokenRequest } from './grant-helpers.js';
import { mandateRequest, REMEDIATION, type Running, startBroker, TRIAGE } from './helpers.js';

for (const factory of await storeFactories()) {
  describe(`refresh tokens (${factory.name})`, { skip: factory.skip }, () => {
    let b: Running;
    let offsetMs = 0;
    const clock: Clock = { now: () => Date.now() + offsetMs };
    before(async () => {
      b = await startBroker({ store: await factory.open(), clock, config: { identity: { tokenTtlSeconds: 60 } } });
    });
    after(async () => {
      await b?.close();
      await factory.cleanup();
    });

    const refused = (r: TokenReply, status: number, error: string, mentions?: RegExp) => {
      assert.equal(r.status, status, JSON.stringify(r.body));
      assert.equal(r.body.error, error, JSON.stringify(r.body));
      if (mentions) assert.match(String(r.body.error_description), mentions);
    };
    /** A root mandate through the token exchange (optionally DPoP-bound). */
    const open = async (over: Record<string, unknown> = {}, key?: CryptoKeyPair) => {
      const r = await tokenRequest(
        b.base,
        {
          grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
          subject_token: await b.svid(TRIAGE),
          subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
          authorization_details: JSON.stringify([mandateRequest(over)]),
        },
        key,
      );
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.match(String(r.body.refresh_token), /^mrt_/);
      return { access: String(r.body.access_token), refresh: String(r.body.refresh_token), id: mandateOf(r.body.access_token) };
    };
    /** A refresh authenticated with a fresh SVID of `spiffeId` (identity-bound tokens). */
    const refreshAs = async (refresh: string, spiffeId = TRIAGE, extra: Record<string, string> = {}) =>
      tokenRequest(b.base, { grant_type: 'refresh_token', refresh_token: refresh, ...assertionParams(await b.svid(spiffeId)), ...extra });
    const refreshDpop = (refresh: string, key?: CryptoKeyPair) =>
      tokenRequest(b.base, { grant_type: 'refresh_token', refresh_token: refresh }, key);
    const live = async (access: string) =>
      b.broker.verifier.verify({ token: access, scheme: 'Bearer', method: 'GET', url: `${b.base}/mcp` }).then(
        () => true,
        () => false,
      );

    test('a refresh gives a new access token of the same mandate and a new refresh token (rotation)', async () => {
      const m = await open();
      const r = await refreshAs(m.refresh);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(mandateOf(r.body.access_token), m.id);
      assert.notEqual(r.body.access_token, m.access);
      assert.notEqual(r.body.refresh_token, m.refresh);
      assert.equal(r.body.issued_token_type, undefined);
      assert.equal(r.body.token_type, 'Bearer');
      assert.equal(r.headers.get('cache-control'), 'no-store');
      assert.ok(await live(String(r.body.access_token)));
      // And the successor refreshes again.
      const again = await refreshAs(String(r.body.refresh_token));
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.equal(mandateOf(again.body.access_token), m.id);
      const [issued] = (await b.broker.audit.entriesBy('mandate_id', m.id, { types: ['token.issued'] })).slice(-1);
      assert.equal((issued?.event.data as Record<string, unknown> | undefined)?.refreshGeneration, 2);
    });

    test('only the SHA-256 of a refresh token is stored', async () => {
      const m = await open({ purpose: 'hash only' });
      const rows = await b.broker.store.query<Record<string, unknown>>('SELECT * FROM refresh_tokens WHERE mandate_id = ?', [m.id]);
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.token_hash, sha256b64u(m.refresh));
      assert.ok(!JSON.stringify(rows).includes(m.refresh.slice(4)), 'no part of the token itself');
    });

    test('reuse: a refresh token used twice ends the mandate and its descendants, audited', async () => {
      const m = await open({ purpose: 'reuse detection', delegable: true });
      const child = await b.delegate(m.access, REMEDIATION, mandateRequest({ purpose: 'child', ttlSeconds: 300, delegable: false }));
      const childId = mandateOf(child.access_token);
      const first = await refreshAs(m.refresh);
      assert.equal(first.status, 200);
      const successor = String(first.body.access_token);
      const second = await refreshAs(m.refresh);
      refused(second, 400, 'invalid_grant', /already been used.*revoked/);
      assert.equal((await b.broker.mandates.require(m.id)).status, 'revoked');
      assert.equal((await b.broker.mandates.require(childId)).status, 'revoked');
      assert.equal(await live(successor), false, 'the token from the legitimate refresh dies with the mandate');
      assert.equal(await live(child.access_token), false);
      // The successor refresh token is dead too.
      refused(await refreshAs(String(first.body.refresh_token)), 400, 'invalid_grant', /ended/);
      const types = (await b.broker.audit.entriesBy('mandate_id', m.id)).map((e) => e.event.type);
      assert.ok(types.includes('token.refresh_reused'), types.join());
      assert.ok(types.includes('mandate.revoked'), types.join());
      assert.ok(types.indexOf('token.refresh_reused') < types.indexOf('mandate.revoked'), 'the reason comes first');
    });

    test('two concurrent uses of one refresh token: one wins, the mandate ends', async () => {
      const m = await open({ purpose: 'race' });
      const [x, y] = await Promise.all([refreshAs(m.refresh), refreshAs(m.refresh)]);
      const statuses = [x.status, y.status].sort();
      assert.deepEqual(statuses, [200, 400], JSON.stringify([x.body, y.body]));
      assert.equal((await b.broker.mandates.require(m.id)).status, 'revoked');
    });

    test('identity-bound: refresh needs a client assertion of the same agent; others change nothing', async () => {
      const m = await open({ purpose: 'identity bound' });
      refused(await refreshDpop(m.refresh), 401, 'invalid_client', /client_assertion/);
      refused(await refreshAs(m.refresh, REMEDIATION), 400, 'invalid_grant', /another client/);
      // A replayed assertion is not client authentication.
      const svid = await b.svid(TRIAGE);
      assert.equal(
        (
          await tokenRequest(b.base, {
            grant_type: 'client_credentials',
            ...assertionParams(svid),
            authorization_details: JSON.stringify([mandateRequest()]),
          })
        ).status,
        200,
      );
      const replayed = await tokenRequest(b.base, { grant_type: 'refresh_token', refresh_token: m.refresh, ...assertionParams(svid) });
      refused(replayed, 401, 'invalid_client', /already been used/);
      // None of that consumed the token or ended the mandate.
      assert.equal((await refreshAs(m.refresh)).status, 200);
      assert.equal((await b.broker.mandates.require(m.id)).status, 'active');
    });

    test('DPoP-bound: refresh needs a proof of the same key; a thief without it ends nothing', async () => {
      const key = await generateKeyPair('ES256');
      const m = await open({ purpose: 'dpop bound' }, key);
      refused(await refreshDpop(m.refresh), 400, 'invalid_grant', /DPoP key/);
      refused(await refreshDpop(m.refresh, await generateKeyPair('ES256')), 400, 'invalid_grant', /DPoP key/);
      // An identity assertion does not replace the key.
      refused(await refreshAs(m.refresh), 400, 'invalid_grant', /DPoP key/);
      const ok = await refreshDpop(m.refresh, key);
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body.token_type, 'DPoP');
      assert.equal(mandateOf(ok.body.access_token), m.id);
      const jkt = (decodeJwt(String(ok.body.access_token)).cnf as { jkt: string }).jkt;
      assert.equal(jkt, (decodeJwt(m.access).cnf as { jkt: string }).jkt, 'stays bound to the same key');
      // A thief replaying the consumed token without the key: refused, and the mandate lives on.
      refused(await refreshDpop(m.refresh, await generateKeyPair('ES256')), 400, 'invalid_grant', /DPoP key/);
      assert.equal((await b.broker.mandates.require(m.id)).status, 'active');
      // The holder replaying it with the key is reuse.
      refused(await refreshDpop(m.refresh, key), 400, 'invalid_grant', /revoked/);
      assert.equal((await b.broker.mandates.require(m.id)).status, 'revoked');
    });

    test('malformed and unknown refresh tokens, and requests that try to change the mandate', async () => {
      refused(await tokenRequest(b.base, { grant_type: 'refresh_token' }), 400, 'invalid_request');
      refused(await refreshAs('not-a-token'), 400, 'invalid_grant');
      refused(await refreshAs(`mrt_${'A'.repeat(43)}`), 400, 'invalid_grant', /unknown/);
      const m = await open({ purpose: 'no changes on refresh' });
      refused(
        await refreshAs(m.refresh, TRIAGE, { authorization_details: JSON.stringify([mandateRequest({ ttlSeconds: 3600 })]) }),
        400,
        'invalid_authorization_details',
      );
      refused(await refreshAs(m.refresh, TRIAGE, { resource: 'https://other.example/mcp' }), 400, 'invalid_target');
      assert.equal((await refreshAs(m.refresh)).status, 200, 'the refused attempts consumed nothing');
    });

    test('a refresh never outlives the mandate: ended or expired mandates refuse it, tokens end with them', async () => {
      const ended = await open({ purpose: 'ended', ttlSeconds: 120 });
      await b.broker.mandates.complete(ended.id, { type: 'agent', id: 'support-triage' }, 'done');
      refused(await refreshAs(ended.refresh), 400, 'invalid_grant', /ended/);
      const short = await open({ purpose: 'short', ttlSeconds: 90 });
      const row = (
        await b.broker.store.query<{ expires_at: number }>('SELECT expires_at FROM refresh_tokens WHERE mandate_id = ?', [short.id])
      )[0];
      assert.equal(
        Number(row?.expires_at),
        (await b.broker.mandates.require(short.id)).expiresAt,
        'the refresh token expires with its mandate',
      );
      offsetMs = 80_000;
      try {
        const late = await refreshAs(short.refresh);
        assert.equal(late.status, 200, JSON.stringify(late.body));
        // 60 s token TTL, but only ~10 s of mandate left: the token stops with the mandate.
        assert.ok(Number(late.body.expires_in) <= 10, String(late.body.expires_in));
        offsetMs = 100_000;
        refused(await refreshAs(String(late.body.refresh_token)), 400, 'invalid_grant', /expired/);
      } finally {
        offsetMs = 0;
      }
    });
  });
}
