// RFC 9449 §8 server nonces, on both stores (the nonce secret is shared through the store):
// oauth4webapi gets `use_dpop_nonce`, retries with the `DPoP-Nonce` it was given, and succeeds.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateKeyPair } from 'jose';
import * as oauth from 'oauth4webapi';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { storeFactories } from '../helpers/stores.js';
import { handDpopProof, insecure, mandateRequest, type Running, startBroker, TRIAGE } from './helpers.js';

for (const factory of await storeFactories()) {
  describe(`DPoP nonces (${factory.name})`, { skip: factory.skip }, () => {
    let b: Running;
    before(async () => {
      b = await startBroker({ store: await factory.open(), config: { identity: { dpopNonce: true } } });
    });
    after(async () => {
      await b?.close();
      await factory.cleanup();
    });

    test('a proof without a nonce gets use_dpop_nonce and a DPoP-Nonce header', async () => {
      const keyPair = (await generateKeyPair('ES256')) as CryptoKeyPair;
      const url = `${b.base}/oauth/token`;
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: await handDpopProof(keyPair, { htm: 'POST', htu: url }) },
        body: new URLSearchParams({
          grant_type: GRANT_TOKEN_EXCHANGE,
          subject_token: await b.svid(TRIAGE),
          subject_token_type: TOKEN_TYPE.jwt,
          authorization_details: JSON.stringify([mandateRequest()]),
        }).toString(),
      });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { error: string }).error, 'use_dpop_nonce');
      assert.match(res.headers.get('dpop-nonce') ?? '', /^[0-9a-z]+\.[A-Za-z0-9_-]{22}$/);
    });

    test('oauth4webapi retries with the server nonce and obtains a bound token', async () => {
      const dpop = oauth.DPoP(b.client, await oauth.generateKeyPair('ES256'));
      const res = await b.open(TRIAGE, mandateRequest(), dpop);
      assert.equal(res.token_type, 'dpop');
    });

    test('attack: a forged nonce is refused', async () => {
      const keyPair = (await generateKeyPair('ES256')) as CryptoKeyPair;
      const url = `${b.base}/oauth/token`;
      const res = await oauth.genericTokenEndpointRequest(
        b.as,
        b.client,
        oauth.None(),
        GRANT_TOKEN_EXCHANGE,
        {
          subject_token: await b.svid(TRIAGE),
          subject_token_type: TOKEN_TYPE.jwt,
          authorization_details: JSON.stringify([mandateRequest()]),
        },
        {
          ...insecure,
          headers: new Headers({ dpop: await handDpopProof(keyPair, { htm: 'POST', htu: url, nonce: 'zzzz.AAAAAAAAAAAAAAAAAAAAAA' }) }),
        },
      );
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { error: string }).error, 'use_dpop_nonce');
    });
  });
}
