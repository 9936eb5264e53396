// The HTTP boundary: error shapes, limits, request ids, health, metrics, OpenAPI, and operator
// authentication + admin authorization (deny by default).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { generateKeyPair, SignJWT } from 'jose';
import { ADMIN_PREFIX } from '../../src/http/app.js';
import { DEV_OPERATOR_AUDIENCE, DevIssuer } from '../../src/identity/dev-issuer.js';
import { sha256Hex } from '../../src/lib/hash.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';

describe('HTTP boundary', () => {
  let t: TestApp;
  let admin: string;
  before(async () => {
    t = await buildTestApp({ config: { server: { bodyLimitBytes: 2048 } } });
    admin = await t.operatorToken('alice');
  });
  after(() => t.close());

  const auth = (token: string) => ({ authorization: `Bearer ${token}` });

  test('healthz, readyz and metrics answer', async () => {
    assert.equal((await t.app.inject('/healthz')).json().status, 'ok');
    const ready = await t.app.inject('/readyz');
    assert.equal(ready.statusCode, 200);
    assert.equal(ready.json().store, 'sqlite');
    const metrics = await t.app.inject('/metrics');
    assert.match(metrics.body, /mandate_http_requests_total/);
  });

  test('readyz is 503 when the store is gone', async () => {
    const other = await buildTestApp();
    await other.broker.store.close();
    const res = await other.app.inject('/readyz');
    assert.equal(res.statusCode, 503);
    assert.equal(res.json().error, 'ERR_STORE_UNAVAILABLE');
    await other.close();
  });

  test('unknown route: 404 ERR_NOT_FOUND with a request id header and body', async () => {
    const res = await t.app.inject('/nope');
    assert.equal(res.statusCode, 404);
    assert.equal(res.json().error, 'ERR_NOT_FOUND');
    assert.equal(res.json().request_id, res.headers['x-request-id']);
  });

  test('a valid incoming X-Request-ID is echoed; a hostile one is replaced', async () => {
    assert.equal((await t.app.inject({ url: '/healthz', headers: { 'x-request-id': 'abc-123' } })).headers['x-request-id'], 'abc-123');
    const res = await t.app.inject({ url: '/healthz', headers: { 'x-request-id': 'a b\u0000<script>' } });
    assert.notEqual(res.headers['x-request-id'], 'a b\u0000<script>');
  });

  test('malformed JSON is 400 ERR_BAD_REQUEST, oversized is 413, wrong type is 415, schema mismatch is 400 ERR_VALIDATION', async () => {
    const url = `${ADMIN_PREFIX}principals`;
    const headers = { ...auth(admin), 'content-type': 'application/json' };
    const bad = await t.app.inject({ method: 'POST', url, headers, payload: '{"id": ' });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error, 'ERR_BAD_REQUEST');
    const big = await t.app.inject({ method: 'POST', url, headers, payload: JSON.stringify({ id: 'x', pad: 'y'.repeat(4096) }) });
    assert.equal(big.statusCode, 413);
    assert.equal(big.json().error, 'ERR_BODY_TOO_LARGE');
    const media = await t.app.inject({ method: 'POST', url, headers: { ...auth(admin), 'content-type': 'text/xml' }, payload: '<a/>' });
    assert.equal(media.statusCode, 415);
    assert.equal(media.json().error, 'ERR_UNSUPPORTED_MEDIA_TYPE');
    const invalid = await t.app.inject({
      method: 'POST',
      url,
      headers,
      payload: { id: 'a1', actorType: 'agent', displayName: 'No owner' },
    });
    assert.equal(invalid.statusCode, 400);
    assert.equal(invalid.json().error, 'ERR_VALIDATION');
    assert.match(invalid.json().message, /owner/);
    const unknownField = await t.app.inject({
      method: 'POST',
      url,
      headers,
      payload: { id: 'a1', actorType: 'human', displayName: 'A', extra: 1 },
    });
    assert.equal(unknownField.json().error, 'ERR_VALIDATION');
  });

  test('principals CRUD through the admin API; duplicates are 409', async () => {
    const url = `${ADMIN_PREFIX}principals`;
    const body = { id: 'agent-x', actorType: 'agent', displayName: 'X', owner: 'bob', environment: 'sandbox' };
    const created = await t.app.inject({ method: 'POST', url, headers: auth(admin), payload: body });
    assert.equal(created.statusCode, 201);
    assert.equal((await t.app.inject({ method: 'POST', url, headers: auth(admin), payload: body })).statusCode, 409);
    const patched = await t.app.inject({
      method: 'PATCH',
      url: `${url}/agent-x`,
      headers: auth(admin),
      payload: { status: 'quarantined' },
    });
    assert.equal(patched.json().status, 'quarantined');
    assert.equal((await t.app.inject({ method: 'DELETE', url: `${url}/agent-x`, headers: auth(admin) })).statusCode, 204);
    assert.equal((await t.app.inject({ url: `${url}/agent-x`, headers: auth(admin) })).statusCode, 404);
  });

  test('no token: 401 ERR_AUTH_MISSING with WWW-Authenticate: Bearer', async () => {
    const res = await t.app.inject(`${ADMIN_PREFIX}whoami`);
    assert.equal(res.statusCode, 401);
    assert.equal(res.json().error, 'ERR_AUTH_MISSING');
    assert.equal(res.headers['www-authenticate'], 'Bearer');
  });

  test('forged, alg:none, tampered-audience and garbage operator tokens are 401 and never echoed', async () => {
    const { privateKey } = await generateKeyPair('EdDSA');
    const issuer = t.broker.devIssuer?.issuer ?? '';
    const now = Math.floor(Date.now() / 1000);
    const forged = await new SignJWT({ roles: ['admin'] })
      .setProtectedHeader({ alg: 'EdDSA', kid: t.broker.devIssuer?.publicJwk.kid ?? '' })
      .setIssuer(issuer)
      .setSubject('mallory')
      .setAudience(DEV_OPERATOR_AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(privateKey);
    const [header, payload, signature] = admin.split('.');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${payload}.`;
    const claims = JSON.parse(Buffer.from(payload ?? '', 'base64url').toString());
    const tampered = `${header}.${Buffer.from(JSON.stringify({ ...claims, aud: 'other' })).toString('base64url')}.${signature}`;
    for (const token of [forged, none, tampered, 'not-a-jwt']) {
      const res = await t.app.inject({ url: `${ADMIN_PREFIX}whoami`, headers: auth(token) });
      assert.equal(res.statusCode, 401, token.slice(0, 20));
      assert.equal(res.json().error, 'ERR_AUTH_INVALID_TOKEN');
      assert.ok(!res.body.includes(token), 'the token is never echoed');
    }
    const other = await buildTestApp();
    const foreign = await other.operatorToken('alice');
    await other.close();
    assert.equal((await t.app.inject({ url: `${ADMIN_PREFIX}whoami`, headers: auth(foreign) })).statusCode, 401, 'another issuer key');
  });

  test('an expired operator token is 401 ERR_AUTH_TOKEN_EXPIRED', async () => {
    const stale = await DevIssuer.open(t.dataDir, t.broker.devIssuer?.issuer ?? '', { now: () => Date.now() - 3 * 3600_000 });
    const expired = await stale.mint({ sub: 'alice', roles: ['admin'], ttlSeconds: 60 });
    const res = await t.app.inject({ url: `${ADMIN_PREFIX}whoami`, headers: auth(expired) });
    assert.equal(res.statusCode, 401);
    assert.equal(res.json().error, 'ERR_AUTH_TOKEN_EXPIRED');
    assert.match(String(res.headers['www-authenticate']), /error="invalid_token"/);
  });

  test('admin authorization is deny by default: an approver cannot write principals', async () => {
    const bob = await t.operatorToken('bob');
    const res = await t.app.inject({
      method: 'POST',
      url: `${ADMIN_PREFIX}principals`,
      headers: auth(bob),
      payload: { id: 'h', actorType: 'human', displayName: 'H' },
    });
    assert.equal(res.statusCode, 403);
    assert.equal(res.json().error, 'ERR_FORBIDDEN');
    const nobody = await t.operatorToken('bob', []);
    assert.equal((await t.app.inject({ url: `${ADMIN_PREFIX}principals`, headers: auth(nobody) })).statusCode, 403);
    assert.equal((await t.app.inject({ url: `${ADMIN_PREFIX}whoami`, headers: auth(nobody) })).json().id, 'bob');
  });

  test('every admin route declares a permission (OpenAPI lists them)', async () => {
    const doc = (await t.app.inject('/openapi.json')).json();
    const ops = Object.entries(doc.paths as Record<string, Record<string, { 'x-mandate-permission'?: string }>>).flatMap(
      ([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, permission: op['x-mandate-permission'] })),
    );
    const admin = ops.filter((o) => o.path.startsWith(ADMIN_PREFIX));
    assert.ok(admin.length >= 5);
    assert.deepEqual(
      admin.filter((o) => o.permission === undefined),
      [],
    );
    const routes = t.app.printRoutes({ commonPrefix: false });
    assert.match(routes, /admin\/v1\/principals/);
  });

  test('the bootstrap token authenticates as admin; a wrong one does not', async () => {
    const token = 'b'.repeat(48);
    const boot = await buildTestApp({ env: { MANDATE_BOOTSTRAP_TOKEN: token } });
    assert.equal((await boot.app.inject({ url: `${ADMIN_PREFIX}principals`, headers: auth(token) })).statusCode, 200);
    assert.equal((await boot.app.inject({ url: `${ADMIN_PREFIX}principals`, headers: auth('c'.repeat(48)) })).statusCode, 401);
    assert.equal(boot.broker.config.secrets.bootstrapTokenSha256, sha256Hex(token));
    await boot.close();
  });

  test('an internal failure is a generic server_error with a request id, no detail', async () => {
    const other = await buildTestApp();
    const admin2 = await other.operatorToken('alice');
    await other.broker.store.close();
    const res = await other.app.inject({ url: `${ADMIN_PREFIX}principals`, headers: auth(admin2) });
    assert.equal(res.statusCode, 503);
    assert.deepEqual(Object.keys(res.json()).sort(), ['error', 'message', 'request_id']);
    assert.equal(res.json().error, 'server_error');
    await other.close();
  });
});
