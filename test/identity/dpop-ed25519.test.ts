// DPoP with Ed25519 keys as oauth4webapi and openid-client send them: `alg: "Ed25519"` (the
// fully-specified RFC 9864 name), through the token exchange and on /mcp. The binding is the key's
// thumbprint, so the polymorphic `EdDSA` name for the same key is the same binding.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { calculateJwkThumbprint, decodeJwt, exportJWK, SignJWT } from 'jose';
import * as oauth from 'oauth4webapi';
import * as openid from 'openid-client';
import { TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { ath, insecure, mandateRequest, oauthError, type Running, startBroker, TRIAGE } from './helpers.js';

const INITIALIZE = JSON.stringify({
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'dpop-ed25519-test', version: '1' } },
});
const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

describe('DPoP proofs signed alg Ed25519', () => {
  let b: Running;
  before(async () => {
    b = await startBroker();
  });
  after(() => b.close());

  /** One /mcp request through oauth4webapi, retried once on the resource's nonce challenge (RFC 9449 §9). */
  const mcp = async (token: string, DPoP: oauth.DPoPHandle) => {
    const call = () =>
      oauth.protectedResourceRequest(token, 'POST', new URL(`${b.base}/mcp`), new Headers(MCP_HEADERS), INITIALIZE, { DPoP, ...insecure });
    try {
      return await call();
    } catch (err) {
      if (oauth.isDPoPNonceError(err)) return call();
      throw err;
    }
  };

  const open = (DPoP: oauth.DPoPHandle) => b.open(TRIAGE, mandateRequest(), DPoP);

  test('every metadata document and challenge advertises Ed25519 beside EdDSA', async () => {
    const as = b.as as unknown as { dpop_signing_alg_values_supported: string[] };
    assert.ok(as.dpop_signing_alg_values_supported.includes('Ed25519'));
    assert.ok(as.dpop_signing_alg_values_supported.includes('EdDSA'));
    const prm = (await (await fetch(`${b.base}/.well-known/oauth-protected-resource/mcp`)).json()) as Record<string, string[]>;
    assert.ok(prm.dpop_signing_alg_values_supported?.includes('Ed25519'));
    const challenge = await fetch(`${b.base}/mcp`, { method: 'POST', headers: MCP_HEADERS, body: INITIALIZE });
    assert.equal(challenge.status, 401);
    assert.match(challenge.headers.get('www-authenticate') ?? '', /DPoP [\s\S]*algs="[^"]*\bEd25519\b/);
  });

  test('oauth4webapi: an Ed25519 key pair binds a mandate token at the token endpoint and uses it on /mcp', async () => {
    const keyPair = await oauth.generateKeyPair('Ed25519');
    const DPoP = oauth.DPoP(b.client, keyPair);
    const res = await open(DPoP);
    assert.equal(res.token_type, 'dpop');
    const jkt = await calculateJwkThumbprint(await exportJWK(keyPair.publicKey));
    assert.equal((decodeJwt(res.access_token).cnf as { jkt: string }).jkt, jkt);
    const reply = await mcp(res.access_token, DPoP);
    assert.equal(reply.status, 200, await reply.clone().text());
    assert.match(await reply.text(), /"serverInfo"/);
  });

  test('the proofs oauth4webapi sent were alg Ed25519 (the case the issue reports)', async () => {
    const keyPair = await oauth.generateKeyPair('Ed25519');
    const seen: string[] = [];
    const DPoP = oauth.DPoP(b.client, keyPair);
    const res = await oauth.genericTokenEndpointRequest(
      b.as,
      b.client,
      oauth.None(),
      'urn:ietf:params:oauth:grant-type:token-exchange',
      {
        subject_token: await b.svid(TRIAGE),
        subject_token_type: TOKEN_TYPE.jwt,
        authorization_details: JSON.stringify([mandateRequest()]),
      },
      {
        DPoP,
        ...insecure,
        [oauth.customFetch]: (url: string, init: RequestInit) => {
          const proof = new Headers(init.headers).get('dpop') ?? '';
          seen.push(JSON.parse(Buffer.from(proof.split('.')[0] ?? '', 'base64url').toString()).alg);
          return fetch(url, init);
        },
      },
    );
    const tokens = await oauth.processGenericTokenEndpointResponse(b.as, b.client, res);
    assert.deepEqual(seen, ['Ed25519']);
    assert.equal(tokens.token_type, 'dpop');
  });

  test('openid-client: an Ed25519 DPoP handle opens a mandate and calls /mcp', async () => {
    const config = await openid.discovery(new URL(b.base), b.client.client_id, undefined, openid.None(), {
      execute: [openid.allowInsecureRequests],
      algorithm: 'oauth2',
    });
    const keyPair = await openid.randomDPoPKeyPair('Ed25519');
    const DPoP = openid.getDPoPHandle(config, keyPair);
    const tokens = await openid.genericGrantRequest(
      config,
      'urn:ietf:params:oauth:grant-type:token-exchange',
      {
        subject_token: await b.svid(TRIAGE),
        subject_token_type: TOKEN_TYPE.jwt,
        authorization_details: JSON.stringify([mandateRequest()]),
      },
      { DPoP },
    );
    assert.equal(tokens.token_type, 'dpop');
    const call = () =>
      openid.fetchProtectedResource(config, tokens.access_token, new URL(`${b.base}/mcp`), 'POST', INITIALIZE, new Headers(MCP_HEADERS), {
        DPoP,
      });
    let reply: Response;
    try {
      reply = await call();
    } catch (err) {
      if (!(err instanceof openid.WWWAuthenticateChallengeError) || err.cause[0]?.parameters.error !== 'use_dpop_nonce') throw err;
      reply = await call();
    }
    assert.equal(reply.status, 200);
  });

  test('the same key signing as EdDSA fits the binding; another Ed25519 key or the Bearer scheme does not', async () => {
    const keyPair = await oauth.generateKeyPair('Ed25519');
    const DPoP = oauth.DPoP(b.client, keyPair);
    const res = await open(DPoP);
    // Hand-made proofs naming the key's polymorphic alg; the first one learns the resource's nonce.
    const jwk = await exportJWK(keyPair.publicKey);
    const edDsa = (nonce?: string) =>
      new SignJWT({
        jti: randomUUID(),
        htm: 'POST',
        htu: `${b.base}/mcp`,
        ath: ath(res.access_token),
        ...(nonce === undefined ? {} : { nonce }),
      })
        .setProtectedHeader({ alg: 'EdDSA', typ: 'dpop+jwt', jwk })
        .setIssuedAt()
        .sign(keyPair.privateKey);
    const send = async (proof: string) =>
      fetch(`${b.base}/mcp`, {
        method: 'POST',
        headers: { ...MCP_HEADERS, authorization: `DPoP ${res.access_token}`, dpop: proof },
        body: INITIALIZE,
      });
    const first = await send(await edDsa());
    const nonce = first.headers.get('dpop-nonce') ?? undefined;
    const ok = first.status === 200 ? first : await send(await edDsa(nonce));
    assert.equal(ok.status, 200, await ok.clone().text());

    const other = oauth.DPoP(b.client, await oauth.generateKeyPair('Ed25519'));
    await assert.rejects(mcp(res.access_token, other), (err: unknown) => {
      assert.ok(err instanceof oauth.WWWAuthenticateChallengeError);
      assert.equal(err.cause[0]?.parameters.error, 'invalid_token');
      return true;
    });
    const bearer = await fetch(`${b.base}/mcp`, {
      method: 'POST',
      headers: { ...MCP_HEADERS, authorization: `Bearer ${res.access_token}` },
      body: INITIALIZE,
    });
    assert.equal(bearer.status, 401);
  });

  test('attack: alg Ed25519 over a key of another type is refused at the token endpoint', async () => {
    const es = await oauth.generateKeyPair('ES256');
    const jwk = await exportJWK(es.publicKey);
    const forged = `${Buffer.from(JSON.stringify({ alg: 'Ed25519', typ: 'dpop+jwt', jwk })).toString('base64url')}.${Buffer.from(
      JSON.stringify({ jti: randomUUID(), htm: 'POST', htu: `${b.base}/oauth/token`, iat: Math.floor(Date.now() / 1000) }),
    ).toString('base64url')}.${Buffer.alloc(64).toString('base64url')}`;
    const r = await oauthError(
      (async () => {
        const res = await fetch(`${b.base}/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: forged },
          body: new URLSearchParams({
            grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
            subject_token: await b.svid(TRIAGE),
            subject_token_type: TOKEN_TYPE.jwt,
            authorization_details: JSON.stringify([mandateRequest()]),
          }),
        });
        return oauth.processGenericTokenEndpointResponse(b.as, b.client, res);
      })(),
    );
    assert.equal(r.error, 'invalid_dpop_proof');
  });
});
