// The development issuer's authorization code + PKCE flow, driven by oauth4webapi exactly as the
// console drives it in the browser, against a listening demo broker.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as oauth from 'oauth4webapi';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { freePort } from '../identity/helpers.js';

const insecure = { [oauth.allowInsecureRequests]: true } as const;

describe('development issuer: authorization code + PKCE', () => {
  let t: TestApp;
  let base: string;
  let as: oauth.AuthorizationServer;
  const client: oauth.Client = { client_id: 'mandate-console' };
  let redirectUri: string;

  before(async () => {
    const port = await freePort();
    t = await buildTestApp({ config: { server: { port } } });
    await t.app.listen({ host: '127.0.0.1', port });
    base = `http://127.0.0.1:${port}`;
    redirectUri = `${base}/console/callback`;
    const issuer = new URL(`${base}/dev/oidc`);
    as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }));
  });
  after(() => t.close());

  /** Starts an authorization as the console does; returns the URL and the PKCE secret. */
  async function authorizeUrl(over: Record<string, string> = {}) {
    const verifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const nonce = oauth.generateRandomNonce();
    const url = new URL(as.authorization_endpoint ?? '');
    const params: Record<string, string> = {
      response_type: 'code',
      client_id: client.client_id,
      redirect_uri: redirectUri,
      scope: 'openid profile',
      state,
      nonce,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      ...over,
    };
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    return { url, verifier, state, nonce };
  }

  /** Picks a human on the sign-in page; returns the callback URL the issuer redirects to. */
  async function pick(url: URL, user: string): Promise<URL> {
    url.searchParams.set('user', user);
    const res = await fetch(url, { redirect: 'manual' });
    assert.equal(res.status, 303, await res.text());
    return new URL(res.headers.get('location') ?? '');
  }

  test('discovery advertises the code flow with S256 only', () => {
    assert.deepEqual(as.response_types_supported, ['code']);
    assert.deepEqual(as.code_challenge_methods_supported, ['S256']);
    assert.equal(as.token_endpoint, `${base}/dev/oidc/token`);
  });

  test('the sign-in page lists the seeded humans as buttons, with the request carried along', async () => {
    const { url } = await authorizeUrl();
    const res = await fetch(url);
    assert.equal(res.status, 200);
    const html = await res.text();
    for (const id of ['alice', 'bob', 'carol']) assert.match(html, new RegExp(`name="user" value="${id}"`));
    assert.match(html, /name="code_challenge_method" value="S256"/);
    assert.match(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  });

  test('a full sign-in yields an operator token the admin API accepts, and an ID token for the console', async () => {
    const { url, verifier, state, nonce } = await authorizeUrl();
    const callback = await pick(url, 'carol');
    assert.equal(callback.origin + callback.pathname, redirectUri);
    assert.equal(callback.searchParams.get('iss'), as.issuer);
    const params = oauth.validateAuthResponse(as, client, callback, state);
    const res = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, verifier, insecure);
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, res, { expectedNonce: nonce, requireIdToken: true });
    assert.equal(oauth.getValidatedIdTokenClaims(tokens)?.sub, 'carol');
    const who = await fetch(`${base}/admin/v1/whoami`, { headers: { authorization: `Bearer ${tokens.access_token}` } });
    assert.equal(who.status, 200);
    const operator = (await who.json()) as { id: string; roles: string[] };
    assert.equal(operator.id, 'carol');
    assert.deepEqual(operator.roles, ['approver', 'finance']);
    // The ID token is for the console, not the admin API.
    const asAdmin = await fetch(`${base}/admin/v1/whoami`, { headers: { authorization: `Bearer ${tokens.id_token}` } });
    assert.equal(asAdmin.status, 401);
  });

  test('a code is single use, and a wrong verifier burns it', async () => {
    const first = await authorizeUrl();
    const params = oauth.validateAuthResponse(as, client, await pick(first.url, 'alice'), first.state);
    const wrong = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      oauth.None(),
      params,
      redirectUri,
      oauth.generateRandomCodeVerifier(),
      insecure,
    );
    await assert.rejects(
      oauth.processAuthorizationCodeResponse(as, client, wrong),
      (err: oauth.ResponseBodyError) => err.error === 'invalid_grant',
    );
    const right = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, first.verifier, insecure);
    await assert.rejects(
      oauth.processAuthorizationCodeResponse(as, client, right),
      (err: oauth.ResponseBodyError) => err.error === 'invalid_grant',
    );

    const second = await authorizeUrl();
    const p2 = oauth.validateAuthResponse(as, client, await pick(second.url, 'alice'), second.state);
    const ok = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), p2, redirectUri, second.verifier, insecure);
    await oauth.processAuthorizationCodeResponse(as, client, ok, { expectedNonce: second.nonce });
    const again = await oauth.authorizationCodeGrantRequest(as, client, oauth.None(), p2, redirectUri, second.verifier, insecure);
    await assert.rejects(
      oauth.processAuthorizationCodeResponse(as, client, again),
      (err: oauth.ResponseBodyError) => err.error === 'invalid_grant',
    );
  });

  test('the code is bound to its redirect URI and client', async () => {
    const a = await authorizeUrl();
    const params = oauth.validateAuthResponse(as, client, await pick(a.url, 'bob'), a.state);
    const otherRedirect = await fetch(as.token_endpoint ?? '', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: params.get('code') ?? '',
        redirect_uri: `${base}/console/elsewhere`,
        client_id: 'mandate-console',
        code_verifier: a.verifier,
      }),
    });
    assert.equal(otherRedirect.status, 400);
    assert.equal(((await otherRedirect.json()) as { error: string }).error, 'invalid_grant');
    const otherClient = await fetch(as.token_endpoint ?? '', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: 'x',
        redirect_uri: redirectUri,
        client_id: 'someone-else',
        code_verifier: a.verifier,
      }),
    });
    assert.equal(((await otherClient.json()) as { error: string }).error, 'invalid_client');
  });

  test('never redirects to an unregistered URI, and refuses plain PKCE or unknown humans', async () => {
    const evil = await authorizeUrl({ redirect_uri: 'https://evil.example/callback' });
    evil.url.searchParams.set('user', 'alice');
    const res = await fetch(evil.url, { redirect: 'manual' });
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('location'), null);
    const plain = await authorizeUrl({ code_challenge_method: 'plain' });
    assert.equal((await fetch(plain.url, { redirect: 'manual' })).status, 400);
    const nobody = await authorizeUrl();
    nobody.url.searchParams.set('user', 'mallory');
    const r = await fetch(nobody.url, { redirect: 'manual' });
    assert.equal(r.status, 400);
    assert.match(await r.text(), /No active seeded human/);
  });
});
