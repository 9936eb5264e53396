// Signing-key retention for per-mandate upstream tokens (#18): a `mandate-token` lease may live
// longer than an access token (maxTtlSeconds > identity.tokenTtlSeconds). After a key rotation the
// retired key must stay in the JWKS until every upstream token it signed has expired, or an
// upstream verifying a still-valid lease token against the JWKS would fail closed. Real keys on SQLite.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { createLocalJWKSet, jwtVerify, SignJWT } from 'jose';
import { buildConfig } from '../../src/config/load.js';
import { ACCESS_TOKEN_TYP } from '../../src/oauth/access-token.js';
import { SIGNING_ALG, SigningKeys } from '../../src/oauth/signing-keys.js';
import { retiredKeyPublishMs } from '../../src/oauth/wiring.js';
import { generateMasterKeySpec, parseMasterKeys, SecretBox } from '../../src/secrets/secret-box.js';
import { sqliteFactory } from '../helpers/stores.js';

const ISS = 'https://broker.example';
const AUD = 'https://tickets.internal/mcp';
const factory = sqliteFactory();
after(() => factory.cleanup());

const config = (leaseTtl: number | undefined, mandateTtl = 86_400) =>
  buildConfig({
    identity: { tokenTtlSeconds: 300, leewaySeconds: 5, maxMandateTtlSeconds: mandateTtl },
    leases: {
      upstreams: {
        db: { type: 'postgres-role', adminUrl: 'postgres://a@127.0.0.1/x', connectionUrl: 'postgresql://{{role}}:{{password}}@h/x' },
        ...(leaseTtl === undefined ? {} : { tickets: { type: 'mandate-token', audience: AUD, maxTtlSeconds: leaseTtl } }),
      },
    },
  });

describe('retired signing keys stay published for the longest lease-token lifetime', () => {
  test('retention follows the longest mandate-token maxTtlSeconds, capped by the longest mandate', () => {
    assert.equal(retiredKeyPublishMs(config(undefined)), (300 + 5) * 4000, 'no lease tokens: the access-token TTL');
    assert.equal(retiredKeyPublishMs(config(60)), (300 + 5) * 4000, 'shorter lease tokens change nothing');
    assert.equal(retiredKeyPublishMs(config(7200)), (7200 + 5) * 4000);
    assert.equal(retiredKeyPublishMs(config(7200, 3600)), (3600 + 5) * 4000, 'a lease token never outlives a mandate');
  });

  test('after a rotation, a still-valid upstream token verifies against the JWKS; the key leaves only once every such token expired', async () => {
    const store = await factory.open();
    let now = Date.UTC(2026, 0, 1);
    const clock = { now: () => now };
    const cfg = config(7200);
    const secrets = new SecretBox(parseMasterKeys(generateMasterKeySpec('t')));
    const keys = new SigningKeys({ store, secrets, clock, rotateAfterMs: 86_400_000, publishRetiredMs: retiredKeyPublishMs(cfg) });
    await keys.ensureCurrent();
    const old = keys.active();
    // Minted just before the rotation, valid for two hours (as MandateTokenProvider signs it).
    const exp = Math.floor(now / 1000) + 7200;
    const token = await new SignJWT({ mandate: 'm_1', client_id: 'agent-1', scope: 'list' })
      .setProtectedHeader({ alg: SIGNING_ALG, kid: old.kid, typ: ACCESS_TOKEN_TYP })
      .setIssuer(ISS)
      .setAudience(AUD)
      .setSubject('alice')
      .setJti('j1')
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(exp)
      .sign(old.privateKey);
    await keys.rotate();
    assert.notEqual(keys.active().kid, old.kid);
    // Well past the old retention ((tokenTtl + leeway) x 4 = 20 min), the token still has minutes left.
    now += 7000 * 1000;
    await keys.reload();
    const verify = () =>
      jwtVerify(token, createLocalJWKSet(keys.jwks()), { issuer: ISS, audience: AUD, typ: ACCESS_TOKEN_TYP, currentDate: new Date(now) });
    const { payload } = await verify();
    assert.equal(payload.mandate, 'm_1');
    assert.ok(
      keys.jwks().keys.some((k) => k.kid === old.kid),
      'the retired key is still published',
    );

    // The previous retention would have dropped it already: the upstream would have failed closed.
    const short = new SigningKeys({ store, secrets, clock, rotateAfterMs: 86_400_000, publishRetiredMs: (300 + 5) * 4000 });
    await short.reload();
    assert.ok(!short.jwks().keys.some((k) => k.kid === old.kid), 'with access-token retention the key would be gone');

    // Bounded: once four lifetimes have passed the retired key leaves the JWKS (and the token has long expired).
    now += retiredKeyPublishMs(cfg);
    await keys.reload();
    assert.ok(!keys.jwks().keys.some((k) => k.kid === old.kid));
    assert.equal(keys.publicKey(old.kid), undefined);
    await assert.rejects(verify());
  });
});
