// Interop fixes found by unmodified clients, each tested with the client that found it: the MCP
// SDKs' authorization-server discovery (1.x and 2.x), RFC 9728 path-suffixed resource metadata
// (oauth4webapi), introspection client authentication (oauth4webapi, openid-client), and RFC 7009
// `token_type_hint` (oauth4webapi).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  discoverOAuthServerInfo,
  discoverAuthorizationServerMetadata as sdk2DiscoverAuthorizationServerMetadata,
} from '@modelcontextprotocol/client';
import {
  discoverOAuthProtectedResourceMetadata,
  discoverAuthorizationServerMetadata as sdk1DiscoverAuthorizationServerMetadata,
  startAuthorization,
} from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { decodeJwt } from 'jose';
import * as oauth from 'oauth4webapi';
import * as openid from 'openid-client';
import { TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { insecure, mandateRequest, oauthError, type Running, startBroker, TRIAGE } from './helpers.js';

/** IANA "OAuth Token Endpoint Authentication Methods" and "OAuth Access Token Types" (RFC 8414 §2 allows both for introspection). */
const TOKEN_ENDPOINT_AUTH_METHODS = [
  'none',
  'client_secret_post',
  'client_secret_basic',
  'client_secret_jwt',
  'private_key_jwt',
  'tls_client_auth',
  'self_signed_tls_client_auth',
];
const ACCESS_TOKEN_TYPES = ['Bearer', 'N_A', 'PoP', 'DPoP'];

describe('interop with unmodified OAuth and MCP clients', () => {
  let b: Running;
  let admin: string;
  before(async () => {
    b = await startBroker();
    admin = await b.operatorToken('alice');
  });
  after(() => b.close());

  /** oauth4webapi client authentication with an operator's bearer token (RFC 7662 §2.1). */
  const bearer =
    (token: string): oauth.ClientAuth =>
    (_as, _client, _body, headers) =>
      headers.set('authorization', `Bearer ${token}`);

  const verifies = (token: string) => b.broker.verifier.verify({ token, scheme: 'Bearer', method: 'GET', url: `${b.base}/x` });

  describe('authorization-server metadata (MCP SDK discovery)', () => {
    test('MCP SDK 1.x discoverAuthorizationServerMetadata parses it', async () => {
      const md = await sdk1DiscoverAuthorizationServerMetadata(b.base);
      assert.ok(md !== undefined);
      assert.equal(md.issuer, b.base);
      assert.equal(md.authorization_endpoint, `${b.base}/oauth/authorize`);
      assert.equal(md.token_endpoint, `${b.base}/oauth/token`);
      // Interactive clients (test/clients/interactive-sdk.test.ts): code + PKCE S256 only.
      assert.deepEqual(md.response_types_supported, ['code']);
      assert.deepEqual(md.code_challenge_methods_supported, ['S256']);
      // The SDK's path-aware RFC 9728 probe of the MCP endpoint finds /mcp's own document.
      const prm = await discoverOAuthProtectedResourceMetadata(`${b.base}/mcp`);
      assert.equal(prm.resource, `${b.base}/mcp`);
      assert.deepEqual(prm.authorization_servers, [b.base]);
    });

    test('MCP SDK 2.x discoverAuthorizationServerMetadata and discoverOAuthServerInfo parse it', async () => {
      const md = await sdk2DiscoverAuthorizationServerMetadata(b.base);
      assert.equal(md?.issuer, b.base);
      assert.equal(md?.authorization_endpoint, `${b.base}/oauth/authorize`);
      assert.deepEqual(md?.grant_types_supported, [
        'urn:ietf:params:oauth:grant-type:token-exchange',
        'client_credentials',
        'refresh_token',
        'authorization_code',
      ]);
      // From the MCP endpoint, as a client that was just refused does it: RFC 9728 first, then RFC 8414.
      const info = await discoverOAuthServerInfo(new URL(`${b.base}/mcp`));
      assert.equal(String(info.authorizationServerUrl).replace(/\/$/, ''), b.base);
      assert.equal(info.authorizationServerMetadata?.token_endpoint, `${b.base}/oauth/token`);
      assert.equal(info.resourceMetadata?.resource, `${b.base}/mcp`, 'the path-suffixed document names /mcp');
    });

    test("MCP Inspector's own client build (2.3.x, bundled with the Inspector) discovers it from /mcp", async () => {
      const bundled = new URL(
        '../../node_modules/@modelcontextprotocol/inspector/node_modules/@modelcontextprotocol/client/dist/index.mjs',
        import.meta.url,
      );
      const inspector = (await import(bundled.href)) as typeof import('@modelcontextprotocol/client');
      const info = await inspector.discoverOAuthServerInfo(new URL(`${b.base}/mcp`));
      assert.equal(info.authorizationServerMetadata?.authorization_endpoint, `${b.base}/oauth/authorize`);
      assert.equal(info.resourceMetadata?.resource, `${b.base}/mcp`);
    });

    test('the SDK builds an S256 authorization URL from the metadata', async () => {
      const metadata = await sdk1DiscoverAuthorizationServerMetadata(b.base);
      const { authorizationUrl } = await startAuthorization(b.base, {
        metadata,
        clientInformation: { client_id: 'inspector' },
        redirectUrl: 'http://127.0.0.1:6274/oauth/callback',
      });
      assert.equal(authorizationUrl.searchParams.get('code_challenge_method'), 'S256');
    });

    test('the authorization endpoint never redirects for an unknown client', async () => {
      for (const query of [
        '?response_type=code&client_id=x&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&state=s',
        '?response_type=token&client_id=x&redirect_uri=https%3A%2F%2Fevil.example%2Fcb',
        '',
      ]) {
        const res = await fetch(`${b.base}/oauth/authorize${query}`, { redirect: 'manual' });
        assert.equal(res.status, 400, query);
        assert.equal(res.headers.get('location'), null, 'no redirect to an unvalidated URI');
        assert.equal(res.headers.get('cache-control'), 'no-store');
        assert.match(res.headers.get('content-type') ?? '', /text\/html/);
      }
    });

    test('every advertised client authentication method is registered', async () => {
      const md = b.as as unknown as Record<string, unknown>;
      assert.deepEqual(md.introspection_endpoint_auth_methods_supported, ['Bearer']);
      for (const key of ['token_endpoint_auth_methods_supported', 'revocation_endpoint_auth_methods_supported']) {
        for (const m of md[key] as string[]) assert.ok(TOKEN_ENDPOINT_AUTH_METHODS.includes(m), `${key}: ${m}`);
      }
      for (const m of md.introspection_endpoint_auth_methods_supported as string[]) {
        assert.ok([...TOKEN_ENDPOINT_AUTH_METHODS, ...ACCESS_TOKEN_TYPES].includes(m), m);
      }
    });
  });

  describe('RFC 9728 protected resource metadata (oauth4webapi)', () => {
    test('the path-suffixed document names <publicUrl>/mcp, the root one the broker', async () => {
      const mcp = new URL(`${b.base}/mcp`);
      const md = await oauth.processResourceDiscoveryResponse(mcp, await oauth.resourceDiscoveryRequest(mcp, insecure));
      assert.equal(md.resource, `${b.base}/mcp`);
      assert.deepEqual(md.authorization_servers, [b.base]);
      const root = new URL(b.base);
      const rootMd = await oauth.processResourceDiscoveryResponse(root, await oauth.resourceDiscoveryRequest(root, insecure));
      assert.equal(rootMd.resource, b.base);
    });

    test('oauth4webapi refuses a document naming another resource (the check that found the bug)', async () => {
      const res = await fetch(`${b.base}/.well-known/oauth-protected-resource`);
      await assert.rejects(oauth.processResourceDiscoveryResponse(new URL(`${b.base}/mcp`), res), (err: unknown) => {
        assert.ok(err instanceof oauth.OperationProcessingError);
        assert.equal(err.code, oauth.JSON_ATTRIBUTE_COMPARISON);
        return true;
      });
    });

    test('a token requested for the discovered resource (RFC 8707) is accepted at /mcp by the MCP SDK 1.x client', async () => {
      const mcp = new URL(`${b.base}/mcp`);
      const md = await oauth.processResourceDiscoveryResponse(mcp, await oauth.resourceDiscoveryRequest(mcp, insecure));
      const res = await b.exchange({
        subject_token: await b.svid(TRIAGE),
        subject_token_type: TOKEN_TYPE.jwt,
        authorization_details: JSON.stringify([mandateRequest()]),
        resource: md.resource,
      });
      const connect = async (token: string) => {
        const client = new Client({ name: 'interop-test', version: '1' });
        await client.connect(new StreamableHTTPClientTransport(mcp, { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
        return client;
      };
      const client = await connect(res.access_token);
      try {
        assert.ok(Array.isArray((await client.listTools()).tools));
      } finally {
        await client.close();
      }
      // The same token with its signature broken is refused: the connection above proved the token.
      const [h, p, s] = res.access_token.split('.');
      const broken = `${h}.${p}.${(s ?? '').startsWith('A') ? 'B' : 'A'}${(s ?? '').slice(1)}`;
      await assert.rejects(connect(broken));
    });

    test('a resource naming another service is still invalid_target', async () => {
      const r = await oauthError(
        b.exchange({
          subject_token: await b.svid(TRIAGE),
          subject_token_type: TOKEN_TYPE.jwt,
          authorization_details: JSON.stringify([mandateRequest()]),
          resource: `${b.base}/mcp/../../other`,
        }),
      );
      assert.equal(r.error, 'invalid_target');
    });
  });

  describe('RFC 7662 introspection: caller authentication', () => {
    test('oauth4webapi: no credentials → 401 invalid_client with a WWW-Authenticate challenge', async () => {
      const token = (await b.open(TRIAGE)).access_token;
      const res = await oauth.introspectionRequest(b.as, b.client, oauth.None(), token, insecure);
      const err = await oauth.processIntrospectionResponse(b.as, b.client, res).then(
        () => assert.fail('introspection without credentials succeeded'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof oauth.WWWAuthenticateChallengeError, String(err));
      assert.equal(err.status, 401);
      assert.equal(err.cause[0]?.scheme, 'bearer');
      assert.equal(err.cause[0]?.parameters.error, 'invalid_client');
      const body = (await err.response.json()) as Record<string, unknown>;
      assert.equal(body.error, 'invalid_client');
      assert.equal(typeof body.error_description, 'string');
      assert.equal(body.active, undefined, 'nothing about the token leaks');
    });

    test('oauth4webapi: a forged or a non-operator bearer credential → 401 invalid_client', async () => {
      const agentToken = (await b.open(TRIAGE)).access_token;
      for (const credential of ['not-a-jwt', agentToken]) {
        const res = await oauth.introspectionRequest(b.as, b.client, bearer(credential), agentToken, insecure);
        assert.equal(res.status, 401);
        assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer error="invalid_client"/);
        assert.equal(((await res.json()) as { error: string }).error, 'invalid_client');
      }
    });

    test('an operator without the permission → 403 insufficient_scope', async () => {
      const bob = await b.operatorToken('bob');
      const token = (await b.open(TRIAGE)).access_token;
      const res = await oauth.introspectionRequest(b.as, b.client, bearer(bob), token, insecure);
      assert.equal(res.status, 403);
      assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer error="insufficient_scope"/);
      assert.equal(((await res.json()) as { error: string }).error, 'insufficient_scope');
    });

    test('openid-client: an authorized caller introspects; an unauthenticated one gets the OAuth error', async () => {
      const token = (await b.open(TRIAGE)).access_token;
      const discover = (auth: openid.ClientAuth) =>
        openid.discovery(new URL(b.base), 'resource-server', undefined, auth, {
          execute: [openid.allowInsecureRequests],
          algorithm: 'oauth2',
        });
      const ok = await openid.tokenIntrospection(await discover(bearer(admin)), token);
      assert.equal(ok.active, true);
      assert.equal(ok.sub, 'support-triage');
      const err = await openid.tokenIntrospection(await discover(openid.None()), token).then(
        () => assert.fail('introspection without credentials succeeded'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof openid.WWWAuthenticateChallengeError, String(err));
      assert.equal(err.status, 401);
      assert.equal(err.cause[0]?.parameters.error, 'invalid_client');
    });
  });

  describe('RFC 7009 revocation: token_type_hint (oauth4webapi)', () => {
    for (const hint of ['urn:example:unknown-type', 'refresh_token', 'access_token', '']) {
      test(`token_type_hint "${hint}" is ignored and the token is revoked`, async () => {
        const token = (await b.open(TRIAGE)).access_token;
        await verifies(token);
        const res = await oauth.revocationRequest(b.as, b.client, oauth.None(), token, {
          ...insecure,
          additionalParameters: { token_type_hint: hint },
        });
        assert.equal(res.status, 200);
        await oauth.processRevocationResponse(res);
        await assert.rejects(verifies(token), /revoked/);
      });
    }

    test('a refresh token is revoked too, whatever the hint; its mandate and access token live on', async () => {
      const DPoP = oauth.DPoP(b.client, await oauth.generateKeyPair('ES256'));
      const opened = await b.open(TRIAGE, mandateRequest(), DPoP);
      assert.match(opened.refresh_token ?? '', /^mrt_/);
      const refresh = async (token: string) => {
        const call = () => oauth.refreshTokenGrantRequest(b.as, b.client, oauth.None(), token, { DPoP, ...insecure });
        try {
          return await oauth.processRefreshTokenResponse(b.as, b.client, await call());
        } catch (err) {
          if (oauth.isDPoPNonceError(err)) return oauth.processRefreshTokenResponse(b.as, b.client, await call());
          throw err;
        }
      };
      // Control: the refresh token works (and rotates) before it is revoked.
      const rotated = await refresh(opened.refresh_token ?? '');
      const current = rotated.refresh_token ?? '';
      assert.match(current, /^mrt_/);
      const res = await oauth.revocationRequest(b.as, b.client, oauth.None(), current, {
        ...insecure,
        additionalParameters: { token_type_hint: 'access_token' },
      });
      await oauth.processRevocationResponse(res);
      const r = await oauthError(refresh(current));
      assert.equal(r.error, 'invalid_grant');
      // Revocation is not reuse: the mandate was not ended.
      const mandate = decodeJwt(rotated.access_token).mandate as string;
      assert.equal((await b.broker.mandates.get(mandate))?.status, 'active');
      const rows = await b.broker.store.query<{ body: string }>(
        "SELECT body FROM audit_entries WHERE mandate_id = ? AND type = 'token.revoked'",
        [mandate],
      );
      assert.equal(rows.length, 1);
      assert.deepEqual(JSON.parse(rows[0]?.body ?? '{}').event?.data, { refreshToken: true });
      // Revoking it again, or the already-rotated first token, changes nothing and is still a 200.
      for (const t of [current, opened.refresh_token ?? '']) {
        await oauth.processRevocationResponse(await oauth.revocationRequest(b.as, b.client, oauth.None(), t, insecure));
      }
      assert.equal((await b.broker.mandates.get(mandate))?.status, 'active');
    });

    test('an unknown hint with an invalid token is still a 200, and no token is still invalid_request', async () => {
      const res = await oauth.revocationRequest(b.as, b.client, oauth.None(), 'x.y.z', {
        ...insecure,
        additionalParameters: { token_type_hint: 'urn:example:unknown-type' },
      });
      await oauth.processRevocationResponse(res);
      const none = await fetch(`${b.base}/oauth/revoke`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'token_type_hint=urn%3Aexample%3Aunknown-type',
      });
      assert.equal(none.status, 400);
      assert.equal(((await none.json()) as { error: string }).error, 'invalid_request');
    });
  });
});
