// The broker's hand-written compact JWS signing (src/oauth/jws.ts) against jose's verifier: what
// node:crypto signs synchronously must be a JWS jose accepts, and any change to header, payload or
// signature must be refused. Real keys from SigningKeys on SQLite, as the token endpoint uses them.
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { importJWK, type JWK, jwtVerify } from 'jose';
import { AccessTokenIssuer } from '../../src/oauth/access-token.js';
import { signCompactEdDSA } from '../../src/oauth/jws.js';
import { SIGNING_ALG, SigningKeys } from '../../src/oauth/signing-keys.js';
import { generateMasterKeySpec, parseMasterKeys, SecretBox } from '../../src/secrets/secret-box.js';
import type { Store } from '../../src/store/types.js';
import { sqliteFactory } from '../helpers/stores.js';

const ISS = 'https://broker.example';
const AUD = 'https://broker.example/mcp';
const factory = sqliteFactory();
const clock = { now: () => Date.now() };
let store: Store;
let keys: SigningKeys;

before(async () => {
  store = await factory.open();
  keys = new SigningKeys({
    store,
    secrets: new SecretBox(parseMasterKeys(generateMasterKeySpec('t'))),
    clock,
    rotateAfterMs: 86_400_000,
    publishRetiredMs: 3_600_000,
  });
  await keys.ensureCurrent();
});
after(async () => {
  await factory.cleanup();
});

const publicKey = async () => importJWK(keys.jwks().keys.find((k) => k.kid === keys.active().kid) as JWK, SIGNING_ALG);
const flip = (segment: string) => {
  const bytes = Buffer.from(segment, 'base64url');
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 1;
  return bytes.toString('base64url');
};

describe('compact JWS signed with node:crypto (src/oauth/jws.ts)', () => {
  test('jose verifies an access token minted synchronously, with the claims and header as built', async () => {
    const issuer = new AccessTokenIssuer(keys, clock, ISS, AUD);
    const exp = Math.floor(Date.now() / 1000) + 300;
    const minted = issuer.mint({
      sub: 'alice',
      clientId: 'agent-1',
      mandateId: 'm_1',
      details: { type: 'mandate', mandate_id: 'm_1', tools: [{ tool: 'a.b', note: 'ünïcödé ✓' }] },
      act: { sub: 'agent-1' },
      jkt: 'thumb',
      exp,
    });
    assert.equal(typeof minted.token, 'string', 'mint is synchronous');
    const { payload, protectedHeader } = await jwtVerify(minted.token, await publicKey(), {
      issuer: ISS,
      audience: AUD,
      algorithms: [SIGNING_ALG],
      typ: 'at+jwt',
    });
    assert.deepEqual(payload, JSON.parse(JSON.stringify(minted.claims)));
    assert.deepEqual(protectedHeader, { alg: 'EdDSA', kid: keys.active().kid, typ: 'at+jwt' });
    assert.equal((payload.authorization_details as { tools: { note: string }[] }[])[0]?.tools[0]?.note, 'ünïcödé ✓');
    assert.equal(issuer.measure({ sub: 'alice', clientId: 'agent-1', mandateId: 'm_1', details: {}, exp }) > 0, true);
  });

  test('optional claims are absent (not null) when not given', async () => {
    const issuer = new AccessTokenIssuer(keys, clock, ISS, AUD);
    const input = {
      sub: 'agent-1',
      clientId: 'agent-1',
      mandateId: 'm_2',
      details: { type: 'mandate' },
      exp: Math.floor(Date.now() / 1000) + 60,
    };
    const { token, claims } = issuer.mint(input);
    assert.equal('act' in claims || 'cnf' in claims, false);
    const { payload } = await jwtVerify(token, await publicKey(), { algorithms: [SIGNING_ALG] });
    assert.equal('act' in payload || 'cnf' in payload, false);
    assert.equal(token.length, issuer.measure(input));
  });

  test('a prepared token is exactly as long as announced and is signed with the key it was prepared for, across a rotation', async () => {
    const issuer = new AccessTokenIssuer(keys, clock, ISS, AUD);
    const prepared = issuer.prepare({
      sub: 'a',
      clientId: 'a',
      mandateId: 'm_3',
      details: { type: 'mandate' },
      exp: Math.floor(Date.now() / 1000) + 60,
    });
    const before = keys.active().kid;
    await keys.rotate();
    assert.notEqual(keys.active().kid, before);
    const { token } = issuer.sign(prepared);
    assert.equal(token.length, prepared.length);
    const old = keys.jwks().keys.find((k) => k.kid === before) as JWK;
    const { protectedHeader } = await jwtVerify(token, await importJWK(old, SIGNING_ALG), { algorithms: [SIGNING_ALG] });
    assert.equal(protectedHeader.kid, before);
    const current = keys.jwks().keys.find((k) => k.kid === keys.active().kid) as JWK;
    await assert.rejects(jwtVerify(token, await importJWK(current, SIGNING_ALG), { algorithms: [SIGNING_ALG] }), {
      code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    });
  });

  test('a changed header, payload or signature is refused by jose', async () => {
    const token = signCompactEdDSA(
      { alg: 'EdDSA', kid: keys.active().kid, typ: 'at+jwt' },
      { sub: 'alice', exp: 9_999_999_999 },
      keys.active().signingKey,
    );
    const [h, p, s] = token.split('.') as [string, string, string];
    const key = await publicKey();
    await jwtVerify(token, key, { algorithms: [SIGNING_ALG] });
    const forgedPayload = Buffer.from(JSON.stringify({ sub: 'mallory', exp: 9_999_999_999 })).toString('base64url');
    const forgedHeader = Buffer.from(JSON.stringify({ alg: 'EdDSA', kid: 'other', typ: 'at+jwt' })).toString('base64url');
    for (const tampered of [
      `${h}.${forgedPayload}.${s}`,
      `${forgedHeader}.${p}.${s}`,
      `${h}.${p}.${flip(s)}`,
      `${h}.${p}.`,
      `${h}.${flip(p)}.${s}`,
    ]) {
      await assert.rejects(jwtVerify(tampered, key, { algorithms: [SIGNING_ALG] }), /signature|JWS|Invalid|JSON/i, tampered);
    }
  });

  test('a token signed by another Ed25519 key is refused', async () => {
    const other = generateKeyPairSync('ed25519').privateKey;
    const token = signCompactEdDSA({ alg: 'EdDSA', kid: keys.active().kid, typ: 'at+jwt' }, { sub: 'alice' }, other);
    await assert.rejects(jwtVerify(token, await publicKey(), { algorithms: [SIGNING_ALG] }), {
      code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    });
  });

  test('refuses a key that is not an Ed25519 private key', () => {
    const pair = generateKeyPairSync('ed25519');
    assert.throws(() => signCompactEdDSA({ alg: 'EdDSA', kid: 'k', typ: 'at+jwt' }, {}, pair.publicKey), TypeError);
    assert.throws(
      () => signCompactEdDSA({ alg: 'EdDSA', kid: 'k', typ: 'at+jwt' }, {}, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey),
      TypeError,
    );
  });
});
