// /readyz reflects trust bundles, issuers, store, policy and audit log (each a named check, 503
// when one fails, no paths or secrets in the body), and every refusal is logged with its code and reason.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import type { ConfigInput } from '../../src/config/load.js';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { PolicyStore } from '../../src/policy/store.js';
import { createReadiness } from '../../src/readiness.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { mandateRequest } from '../identity/helpers.js';

const PARTNER = 'partner.example';
const BUNDLE = 'bundles/partner-bundle.json';

async function partnerKey() {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'partner-1', use: 'jwt-svid' };
  return { privateKey, bundle: JSON.stringify({ keys: [jwk], spiffe_sequence: 1 }) };
}

describe('readiness with a trust bundle file missing', () => {
  let t: TestApp;
  let key: Awaited<ReturnType<typeof partnerKey>>;
  before(async () => {
    key = await partnerKey();
    t = await buildTestApp({ config: { identity: { trustDomains: [{ name: PARTNER, bundleFile: BUNDLE }] } } as ConfigInput });
  });
  after(async () => {
    await t.close();
  });

  const exchange = async () => {
    const svid = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'partner-1', typ: 'JWT' })
      .setSubject(`spiffe://${PARTNER}/agent/billing`)
      .setAudience(t.broker.identity.proofAudience)
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(key.privateKey);
    return t.app.inject({
      method: 'POST',
      url: '/oauth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({
        grant_type: GRANT_TOKEN_EXCHANGE,
        subject_token: svid,
        subject_token_type: TOKEN_TYPE.jwt,
        authorization_details: JSON.stringify([mandateRequest()]),
      }).toString(),
    });
  };

  test('/readyz is 503 and names the trust check; the other checks are ready; no path leaks', async () => {
    const res = await t.app.inject('/readyz');
    assert.equal(res.statusCode, 503);
    const body = res.json();
    assert.equal(body.status, 'not_ready');
    assert.equal(body.error, 'ERR_TRUST_UNAVAILABLE');
    assert.equal(body.checks.trust.ready, false);
    assert.match(body.checks.trust.detail, /partner\.example/);
    for (const name of ['store', 'issuers', 'policy', 'audit']) assert.equal(body.checks[name].ready, true, name);
    assert.doesNotMatch(res.body, /bundles|partner-bundle|ENOENT|\/tmp\//, 'no file path or OS error in the probe body');
    assert.ok(!res.body.includes(t.dataDir));
    // What every exchange against that domain meets meanwhile:
    const refused = await exchange();
    assert.equal(refused.statusCode, 503);
    assert.equal(refused.json().error, 'ERR_TRUST_UNAVAILABLE');
  });

  test('the file restored: /readyz turns ready by itself and the exchange gets past trust', async () => {
    mkdirSync(join(t.dataDir, 'bundles'), { recursive: true });
    writeFileSync(join(t.dataDir, BUNDLE), key.bundle);
    const res = await t.app.inject('/readyz');
    assert.equal(res.statusCode, 200);
    assert.equal(res.json().status, 'ready');
    assert.deepEqual(Object.keys(res.json().checks).sort(), ['audit', 'issuers', 'policy', 'store', 'trust']);
    assert.equal(res.json().checks.trust.ready, true);
    // The proof now verifies; the workload is simply not a registered agent.
    const after = await exchange();
    assert.equal(after.statusCode, 400);
    assert.match(after.json().error_description, /not a registered agent/);
  });

  test('a bundle that loaded once keeps serving when its file goes away: ready, and the body says so', async () => {
    rmSync(join(t.dataDir, BUNDLE));
    const domain = t.broker.identity.trust.domains.get(PARTNER);
    assert.ok(domain);
    await domain.refresh();
    const res = await t.app.inject('/readyz');
    assert.equal(res.statusCode, 200);
    assert.match(res.json().checks.trust.detail, /last good bundle of partner\.example/);
  });
});

describe('readiness checks one by one', () => {
  let t: TestApp;
  before(async () => {
    t = await buildTestApp();
  });
  after(async () => {
    await t.close();
  });

  test('no policy set loaded: the policy check fails with ERR_POLICY_UNAVAILABLE', async () => {
    // A policy store before its first successful load (what a replica whose policy never parsed holds).
    const empty = new PolicyStore({ dir: undefined, schemaPath: 'unused.cedarschema', now: () => t.broker.clock.now() });
    const readiness = createReadiness({
      store: t.broker.store,
      changes: t.broker.changes,
      maxStalenessMs: t.broker.config.changes.maxStalenessMs,
      trust: t.broker.identity.trust,
      policies: empty,
      audit: t.broker.audit,
    });
    const r = await readiness();
    assert.equal(r.ready, false);
    assert.deepEqual(
      r.checks.filter((c) => !c.ready).map((c) => [c.name, c.code]),
      [['policy', 'ERR_POLICY_UNAVAILABLE']],
    );
    assert.equal((await t.broker.readiness()).ready, true, 'the broker itself has its policy');
  });

  test('an issuer that cannot be discovered fails the issuers check, naming the issuer only', async () => {
    const other = await buildTestApp({
      config: { identity: { oidcIssuers: [{ issuer: 'http://127.0.0.1:9/unreachable-issuer' }] } } as ConfigInput,
    });
    try {
      const res = await other.app.inject('/readyz');
      assert.equal(res.statusCode, 503);
      assert.equal(res.json().checks.issuers.ready, false);
      assert.match(res.json().checks.issuers.detail, /127\.0\.0\.1:9\/unreachable-issuer/);
      assert.equal(res.json().error, 'ERR_TRUST_UNAVAILABLE');
    } finally {
      await other.close();
    }
  });

  test('the store gone: store and audit checks fail', async () => {
    const other = await buildTestApp();
    await other.broker.store.close();
    const r = await other.broker.readiness();
    assert.deepEqual(
      r.checks.filter((c) => !c.ready).map((c) => c.name),
      ['store', 'audit'],
    );
    const res = await other.app.inject('/readyz');
    assert.equal(res.statusCode, 503);
    assert.equal(res.json().error, 'ERR_STORE_UNAVAILABLE');
    await other.close().catch(() => {});
  });
});

describe('refusal logs', () => {
  test('refusals on the token endpoint, /mcp, the admin API and a 503 are logged with code and reason', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-log-'));
    try {
      const src = (p: string) => pathToFileURL(resolve(p)).href;
      const script = join(dir, 'run.mts');
      writeFileSync(
        script,
        `import { buildTestApp } from ${JSON.stringify(src('test/helpers/app.ts'))};
const t = await buildTestApp({ config: { log: { level: 'info' }, identity: { trustDomains: [{ name: 'partner.example', bundleFile: 'missing.json' }] } } });
const host = new URL(t.broker.gateway.resource).host;
const form = { 'content-type': 'application/x-www-form-urlencoded' };
await t.app.inject({ method: 'POST', url: '/oauth/token', headers: form, payload: 'grant_type=password' });
await t.app.inject({ method: 'POST', url: '/mcp', headers: { host }, payload: {} });
await t.app.inject({ method: 'GET', url: '/admin/v1/agents' });
await t.app.inject('/readyz');
// An authenticated agent's malformed JSON-RPC: refused by the gateway, logged the same way.
const svid = await t.broker.identity.devSpiffe.mint({ spiffeId: 'spiffe://demo.mandate.local/agent/support-triage', audience: t.broker.identity.proofAudience });
const details = JSON.stringify([${JSON.stringify(mandateRequest())}]);
const issued = await t.app.inject({ method: 'POST', url: '/oauth/token', headers: form, payload: new URLSearchParams({ grant_type: '${GRANT_TOKEN_EXCHANGE}', subject_token: svid, subject_token_type: '${TOKEN_TYPE.jwt}', authorization_details: details }).toString() });
await t.app.inject({ method: 'POST', url: '/mcp', headers: { host, authorization: 'Bearer ' + issued.json().access_token, 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, payload: '[]' });
await t.close();
`,
      );
      const run = spawnSync(process.execPath, ['--import', 'tsx', script], { cwd: resolve('.'), encoding: 'utf8', timeout: 60_000 });
      assert.equal(run.status, 0, run.stderr);
      const lines = run.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      const refused = lines.filter((l) => l.msg === 'request refused');
      const byCode = new Map(refused.map((l) => [l.code, l]));
      assert.match(String(byCode.get('OAUTH_UNSUPPORTED_GRANT_TYPE')?.reason), /token-exchange/);
      assert.equal(byCode.get('OAUTH_INVALID_TOKEN')?.reason, 'an access token is required');
      assert.equal(byCode.get('ERR_AUTH_MISSING')?.reason, 'a bearer token is required');
      assert.equal(typeof byCode.get('RPC_INVALID_REQUEST')?.reason, 'string', 'JSON-RPC refusals of /mcp are logged too');
      const notReady = lines.find((l) => l.msg === 'not ready') as { level: number; checks: { check: string; code: string }[] } | undefined;
      assert.ok(notReady, 'a replica turning not ready is logged');
      assert.equal(notReady.level, 40, 'at warn');
      assert.deepEqual(
        notReady.checks.map((c) => [c.check, c.code]),
        [['trust', 'ERR_TRUST_UNAVAILABLE']],
      );
      assert.doesNotMatch(run.stdout, /missing\.json/, 'no path in the log line either');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
