// DPoP as the two OAuth client libraries send it, for each key type an agent is likely to hold
// (Ed25519, ES256, RS256): each library binds a mandate token to its own key at the token endpoint
// (the proof carries the alg the library chose, the token's cnf.jkt is that key's thumbprint) and
// uses it on /mcp, answering the resource's nonce challenge (RFC 9449 §9) as the library does. A
// token bound to one key type is refused with a proof by a key of another type.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { calculateJwkThumbprint, decodeJwt, exportJWK } from 'jose';
import * as oauth from 'oauth4webapi';
import * as openid from 'openid-client';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { insecure, mandateRequest, type Running, startBroker, TRIAGE } from './helpers.js';

const ALGS = ['Ed25519', 'ES256', 'RS256'] as const;
const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'dpop-key-matrix', version: '1' } },
});
const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/** The `alg` of each DPoP proof a library sends, read off the wire. */
function recordingFetch(seen: string[]) {
  // Both libraries call it as fetch(url, options) with options a RequestInit of their own types.
  return (url: string, init: { readonly headers: Record<string, string> }) => {
    const proof = new Headers(init.headers).get('dpop');
    if (proof !== null) seen.push(JSON.parse(Buffer.from(proof.split('.')[0] ?? '', 'base64url').toString()).alg);
    return fetch(url, init as RequestInit);
  };
}

describe('DPoP key types through oauth4webapi and openid-client', () => {
  let b: Running;
  before(async () => {
    b = await startBroker();
  });
  after(() => b.close());

  const exchangeParams = async () => ({
    subject_token: await b.svid(TRIAGE),
    subject_token_type: TOKEN_TYPE.jwt,
    authorization_details: JSON.stringify([mandateRequest()]),
  });

  for (const alg of ALGS) {
    test(`oauth4webapi, ${alg} key: a bound mandate token, used on /mcp`, async () => {
      const keyPair = await oauth.generateKeyPair(alg);
      const seen: string[] = [];
      const options = { ...insecure, [oauth.customFetch]: recordingFetch(seen) };
      const DPoP = oauth.DPoP(b.client, keyPair);
      // The first proof carries no nonce: the token endpoint answers use_dpop_nonce, the library retries.
      const request = async () =>
        oauth.processGenericTokenEndpointResponse(
          b.as,
          b.client,
          await oauth.genericTokenEndpointRequest(b.as, b.client, oauth.None(), GRANT_TOKEN_EXCHANGE, await exchangeParams(), {
            DPoP,
            ...options,
          }),
        );
      const tokens = await request().catch((err: unknown) => {
        if (oauth.isDPoPNonceError(err)) return request();
        throw err;
      });
      assert.equal(tokens.token_type, 'dpop');
      assert.equal(
        (decodeJwt(tokens.access_token).cnf as { jkt: string }).jkt,
        await calculateJwkThumbprint(await exportJWK(keyPair.publicKey)),
      );
      const call = () =>
        oauth.protectedResourceRequest(tokens.access_token, 'POST', new URL(`${b.base}/mcp`), new Headers(MCP_HEADERS), INITIALIZE, {
          DPoP,
          ...options,
        });
      const reply = await call().catch((err: unknown) => {
        if (oauth.isDPoPNonceError(err)) return call();
        throw err;
      });
      assert.equal(reply.status, 200, await reply.clone().text());
      assert.match(await reply.text(), /"serverInfo"/);
      assert.ok(seen.length >= 2);
      assert.deepEqual(new Set(seen), new Set([alg]), 'every proof was signed with the key type under test');
    });

    test(`openid-client, ${alg} key: a bound mandate token, used on /mcp`, async () => {
      const seen: string[] = [];
      const config = await openid.discovery(new URL(b.base), b.client.client_id, undefined, openid.None(), {
        execute: [openid.allowInsecureRequests],
        algorithm: 'oauth2',
      });
      config[openid.customFetch] = recordingFetch(seen);
      const keyPair = await openid.randomDPoPKeyPair(alg);
      const DPoP = openid.getDPoPHandle(config, keyPair);
      // openid-client retries a use_dpop_nonce answer of the token endpoint by itself.
      const tokens = await openid.genericGrantRequest(config, GRANT_TOKEN_EXCHANGE, await exchangeParams(), { DPoP });
      assert.equal(tokens.token_type, 'dpop');
      assert.equal(
        (decodeJwt(tokens.access_token).cnf as { jkt: string }).jkt,
        await calculateJwkThumbprint(await exportJWK(keyPair.publicKey)),
      );
      const call = () =>
        openid.fetchProtectedResource(config, tokens.access_token, new URL(`${b.base}/mcp`), 'POST', INITIALIZE, new Headers(MCP_HEADERS), {
          DPoP,
        });
      const reply = await call().catch((err: unknown) => {
        if (err instanceof openid.WWWAuthenticateChallengeError && err.cause[0]?.parameters.error === 'use_dpop_nonce') return call();
        throw err;
      });
      assert.equal(reply.status, 200, await reply.clone().text());
      assert.deepEqual(new Set(seen), new Set([alg]), 'every proof was signed with the key type under test');
    });
  }

  test('attack: a token bound to an RS256 key is refused with proofs by an ES256 or Ed25519 key', async () => {
    const bound = oauth.DPoP(b.client, await oauth.generateKeyPair('RS256'));
    const open = () => b.open(TRIAGE, mandateRequest(), bound);
    const tokens = await open();
    for (const alg of ['ES256', 'Ed25519'] as const) {
      const other = oauth.DPoP(b.client, await oauth.generateKeyPair(alg));
      const call = () =>
        oauth.protectedResourceRequest(tokens.access_token, 'POST', new URL(`${b.base}/mcp`), new Headers(MCP_HEADERS), INITIALIZE, {
          DPoP: other,
          ...insecure,
        });
      await assert.rejects(
        call().catch((err: unknown) => {
          if (oauth.isDPoPNonceError(err)) return call();
          throw err;
        }),
        (err: unknown) => {
          assert.ok(err instanceof oauth.WWWAuthenticateChallengeError, String(err));
          assert.equal(err.cause[0]?.parameters.error, 'invalid_token', alg);
          return true;
        },
      );
    }
  });
});
