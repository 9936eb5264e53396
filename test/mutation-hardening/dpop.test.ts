// DPoP proof verification (src/oauth/dpop.ts), check by check, at the exact boundaries of each
// limit: every RFC 9449 §4.3 rule has an accepted case next to a refused one, so a mutant that
// loosens or tightens any of them fails here. Fake clock; real SQLite store for the replay table.
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { OAuthError } from '../../src/errors/index.js';
import { DPOP_ALGORITHMS, DpopVerifier, normalizeHtu } from '../../src/oauth/dpop.js';
import type { Store } from '../../src/store/types.js';
import { sqliteFactory } from '../helpers/stores.js';
import { movableClock, rejectsWith } from './helpers.js';

const URL_ = 'https://broker.example/oauth/token';
const MAX_AGE = 60;
const LEEWAY = 5;
const fail = (m: string) => new OAuthError('OAUTH_INVALID_DPOP_PROOF', m);
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

const factory = sqliteFactory();
let store: Store;
let keys: CryptoKeyPair;
let jwk: JWK;

before(async () => {
  store = await factory.open();
  keys = (await generateKeyPair('ES256')) as CryptoKeyPair;
  jwk = await exportJWK(keys.publicKey);
});
after(() => factory.cleanup());

function verifier(clock = movableClock(), requireNonce = false, s: Store = store) {
  return new DpopVerifier({
    store: s,
    clock,
    maxAgeSeconds: MAX_AGE,
    leewaySeconds: LEEWAY,
    requireNonce,
    requireResourceNonce: requireNonce,
  });
}

interface ProofInput {
  claims?: Record<string, unknown>;
  header?: Record<string, unknown>;
  iat?: number;
  omit?: string[];
}

/** A proof signed with `keys`, valid at clock `nowMs` unless the input says otherwise. */
async function proof(nowMs: number, input: ProofInput = {}): Promise<string> {
  const claims: Record<string, unknown> = {
    jti: randomUUID(),
    htm: 'POST',
    htu: URL_,
    iat: input.iat ?? Math.floor(nowMs / 1000),
    ...input.claims,
  };
  for (const k of input.omit ?? []) delete claims[k];
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk, ...input.header }).sign(keys.privateKey);
}

const check = (p: string, extra: Record<string, unknown> = {}) => ({ proof: p, method: 'POST', url: URL_, ...extra });
const refused = (v: DpopVerifier, p: string, message: RegExp, extra: Record<string, unknown> = {}) =>
  rejectsWith(v.verify(check(p, extra), fail), 'OAUTH_INVALID_DPOP_PROOF', message);

describe('DPoP header checks', () => {
  test('a valid proof verifies and returns the RFC 7638 thumbprint of its key and its jti', async () => {
    const clock = movableClock();
    const p = await proof(clock.now(), { claims: { jti: 'jti-valid-1' } });
    const r = await verifier(clock).verify(check(p), fail);
    assert.equal(r.jkt, await calculateJwkThumbprint(jwk));
    assert.equal(r.jti, 'jti-valid-1');
  });

  test('attack: not a JWT', async () => {
    await refused(verifier(), 'garbage', /^the DPoP proof is not a JWT$/);
  });

  test('attack: typ other than dpop+jwt (plain JWT, missing)', async () => {
    const clock = movableClock();
    await refused(verifier(clock), await proof(clock.now(), { header: { typ: 'JWT' } }), /^DPoP proof typ must be dpop\+jwt$/);
    await refused(verifier(clock), `${b64({ alg: 'ES256', jwk })}.${b64({})}.x`, /^DPoP proof typ must be dpop\+jwt$/);
  });

  test('attack: alg none, a MAC alg or a missing alg', async () => {
    for (const alg of ['none', 'HS256', undefined]) {
      const token = `${b64({ alg, typ: 'dpop+jwt', jwk })}.${b64({ jti: 'abcdefghij', htm: 'POST', htu: URL_, iat: 1 })}.`;
      await refused(verifier(), token, new RegExp(`^DPoP proof alg "${String(alg)}" is not an allowed asymmetric algorithm$`));
    }
  });

  test('every listed algorithm is asymmetric and none is missing', () => {
    assert.deepEqual(
      [...DPOP_ALGORITHMS],
      ['EdDSA', 'Ed25519', 'ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
    );
  });

  test('an EdDSA proof verifies (not only ES256)', async () => {
    const clock = movableClock();
    const ed = (await generateKeyPair('EdDSA')) as CryptoKeyPair;
    const edJwk = await exportJWK(ed.publicKey);
    const p = await new SignJWT({ jti: randomUUID(), htm: 'POST', htu: URL_, iat: clock.now() / 1000 })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'dpop+jwt', jwk: edJwk })
      .sign(ed.privateKey);
    assert.equal((await verifier(clock).verify(check(p), fail)).jkt, await calculateJwkThumbprint(edJwk));
  });

  test('attack: no jwk, or a jwk that is not an object', async () => {
    const clock = movableClock();
    const noJwk = `${b64({ alg: 'ES256', typ: 'dpop+jwt' })}.${b64({})}.x`;
    await refused(verifier(clock), noJwk, /^DPoP proof header must carry the public key as jwk$/);
    const strJwk = `${b64({ alg: 'ES256', typ: 'dpop+jwt', jwk: 'key' })}.${b64({})}.x`;
    await refused(verifier(clock), strJwk, /^DPoP proof header must carry the public key as jwk$/);
  });

  test('attack: a private key (d, p or k member) in the header', async () => {
    for (const member of ['d', 'p', 'k']) {
      const token = `${b64({ alg: 'ES256', typ: 'dpop+jwt', jwk: { ...jwk, [member]: 'AAAA' } })}.${b64({})}.x`;
      await refused(verifier(), token, /^DPoP proof jwk must be a public key$/);
    }
  });

  test('attack: a signature by another key than the embedded one', async () => {
    const clock = movableClock();
    const other = (await generateKeyPair('ES256')) as CryptoKeyPair;
    const p = await new SignJWT({ jti: randomUUID(), htm: 'POST', htu: URL_, iat: clock.now() / 1000 })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
      .sign(other.privateKey);
    await refused(verifier(clock), p, /^DPoP proof signature is invalid$/);
  });

  test('jose checks run on the injected clock with the leeway: exp just past is accepted, beyond the leeway refused', async () => {
    const clock = movableClock();
    const nowS = clock.now() / 1000;
    const v = verifier(clock);
    // The fake clock is years away from real time: verifying against Date.now() would refuse this.
    await v.verify(check(await proof(clock.now(), { claims: { exp: nowS + 30 } })), fail);
    await v.verify(check(await proof(clock.now(), { claims: { exp: nowS - LEEWAY + 1 } })), fail);
    await refused(v, await proof(clock.now(), { claims: { exp: nowS - LEEWAY - 1 } }), /^DPoP proof is invalid$/);
  });
});

describe('DPoP claim checks', () => {
  test('jti: 8 and 256 characters are accepted; 7, 257 and a number are refused', async () => {
    const clock = movableClock();
    const v = verifier(clock);
    await v.verify(check(await proof(clock.now(), { claims: { jti: randomUUID().slice(0, 8) } })), fail);
    await v.verify(check(await proof(clock.now(), { claims: { jti: 'j'.repeat(255) + randomUUID().slice(0, 1) } })), fail);
    for (const jti of ['1234567', 'j'.repeat(257), 12345678]) {
      await refused(v, await proof(clock.now(), { claims: { jti } }), /^DPoP proof jti is missing or malformed$/);
    }
    await refused(v, await proof(clock.now(), { omit: ['jti'] }), /^DPoP proof jti is missing or malformed$/);
  });

  test('htm, htu and iat must be present with their types', async () => {
    const clock = movableClock();
    const v = verifier(clock);
    for (const omit of ['htm', 'htu', 'iat']) {
      await refused(v, await proof(clock.now(), { omit: [omit] }), /^DPoP proof must carry htm, htu and iat$/);
    }
    await refused(v, await proof(clock.now(), { claims: { htm: 1 } }), /^DPoP proof must carry htm, htu and iat$/);
    await refused(v, await proof(clock.now(), { claims: { htu: 1 } }), /^DPoP proof must carry htm, htu and iat$/);
  });

  test('htm must equal the request method (compared in upper case); attack: GET proof on a POST', async () => {
    const clock = movableClock();
    const v = verifier(clock);
    await v.verify({ ...check(await proof(clock.now())), method: 'post' }, fail);
    await refused(v, await proof(clock.now(), { claims: { htm: 'GET' } }), /^DPoP proof htm does not match the request method$/);
    await refused(v, await proof(clock.now(), { claims: { htm: 'post' } }), /^DPoP proof htm does not match the request method$/);
  });

  test('htu: query and fragment are ignored; another host, port, scheme or path is refused', async () => {
    const clock = movableClock();
    const v = verifier(clock);
    await v.verify(check(await proof(clock.now(), { claims: { htu: `${URL_}?a=1#f` } })), fail);
    await v.verify(check(await proof(clock.now(), { claims: { htu: 'HTTPS://BROKER.example:443/oauth/token' } })), fail);
    for (const htu of [
      'https://evil.example/oauth/token',
      'https://broker.example:8443/oauth/token',
      'http://broker.example/oauth/token',
      'https://broker.example/oauth/token2',
      'not a url',
    ]) {
      await refused(v, await proof(clock.now(), { claims: { htu } }), /^DPoP proof htu does not match the request URL$/);
    }
  });

  test('normalizeHtu keeps scheme, host and path only; invalid URLs never equal each other', () => {
    assert.equal(normalizeHtu('https://a.example:8443/p/q?x=1#y'), 'https://a.example:8443/p/q');
    assert.equal(normalizeHtu('nope'), 'invalid:nope');
    assert.notEqual(normalizeHtu('nope'), normalizeHtu('other'));
  });

  test('iat: up to the leeway in the future is accepted, one second more is refused', async () => {
    const clock = movableClock();
    const v = verifier(clock);
    const nowS = clock.now() / 1000;
    await v.verify(check(await proof(clock.now(), { iat: nowS + LEEWAY })), fail);
    await refused(v, await proof(clock.now(), { iat: nowS + LEEWAY + 1 }), /^DPoP proof iat is in the future$/);
    await refused(v, await proof(clock.now(), { iat: nowS + 3600 }), /^DPoP proof iat is in the future$/);
  });

  test('iat: max age plus leeway in the past is accepted, one second older is refused', async () => {
    const clock = movableClock();
    const v = verifier(clock);
    const nowS = clock.now() / 1000;
    await v.verify(check(await proof(clock.now(), { iat: nowS - MAX_AGE - LEEWAY })), fail);
    await refused(v, await proof(clock.now(), { iat: nowS - MAX_AGE - LEEWAY - 1 }), /^DPoP proof is too old$/);
  });

  test('ath: at a resource server the proof must carry the hash of exactly this token', async () => {
    const clock = movableClock();
    const v = verifier(clock);
    const token = 'the-access-token';
    const ath = createHash('sha256').update(token).digest('base64url');
    await v.verify(check(await proof(clock.now(), { claims: { ath } }), { accessToken: token }), fail);
    await refused(v, await proof(clock.now()), /^DPoP proof ath does not match the access token$/, { accessToken: token });
    const wrong = createHash('sha256').update('another token').digest('base64url');
    await refused(v, await proof(clock.now(), { claims: { ath: wrong } }), /^DPoP proof ath does not match the access token$/, {
      accessToken: token,
    });
  });

  test('a refused proof is not consumed: the same proof still verifies once the request matches', async () => {
    const clock = movableClock();
    const v = verifier(clock);
    const token = 'tok-A';
    const p = await proof(clock.now(), { claims: { ath: createHash('sha256').update(token).digest('base64url') } });
    await refused(v, p, /ath does not match/, { accessToken: 'tok-B' });
    await v.verify(check(p, { accessToken: token }), fail);
  });

  test('cnf.jkt binding: the proof key must have the expected thumbprint', async () => {
    const clock = movableClock();
    const v = verifier(clock);
    const jkt = await calculateJwkThumbprint(jwk);
    assert.equal((await v.verify(check(await proof(clock.now()), { expectedJkt: jkt }), fail)).jkt, jkt);
    await refused(v, await proof(clock.now()), /^DPoP proof key does not match the token binding \(cnf\.jkt\)$/, {
      expectedJkt: `${jkt.slice(1)}A`,
    });
  });
});

describe('DPoP replay', () => {
  test('attack: the same proof twice on one replica is refused', async () => {
    const clock = movableClock();
    const v = verifier(clock);
    const p = await proof(clock.now());
    await v.verify(check(p), fail);
    await refused(v, p, /^DPoP proof has already been used$/);
    clock.advance(2_000);
    await refused(v, p, /^DPoP proof has already been used$/);
  });

  test('attack: a proof used on one replica is refused on another (store row), with its expiry recorded', async () => {
    const clock = movableClock();
    const iat = clock.now() / 1000;
    const p = await proof(clock.now(), { iat });
    const { jkt } = await verifier(clock).verify(check(p), fail);
    await refused(verifier(clock), p, /^DPoP proof has already been used$/);
    const key = createHash('sha256')
      .update(`${jkt}\n${JSON.parse(Buffer.from(p.split('.')[1] ?? '', 'base64url').toString()).jti}`)
      .digest('base64url');
    const rows = await store.query<{ expires_at: number }>('SELECT expires_at FROM dpop_proofs WHERE proof_key = ?', [key]);
    assert.equal(Number(rows[0]?.expires_at), (iat + MAX_AGE + 2 * LEEWAY) * 1000);
  });

  test('the in-memory entry alone refuses a replay for as long as the proof is acceptable', async () => {
    const clock = movableClock();
    const other = await factory.open();
    const v = verifier(clock, false, other);
    const p = await proof(clock.now());
    await v.verify(check(p), fail);
    // Remove the store row: only the in-memory set still remembers the proof.
    await other.run('DELETE FROM dpop_proofs');
    await refused(v, p, /^DPoP proof has already been used$/);
    await other.run('DELETE FROM dpop_proofs');
    clock.advance((MAX_AGE + LEEWAY) * 1000);
    await refused(v, p, /^DPoP proof has already been used$/);
  });

  test('the same jti under another key is a different proof', async () => {
    const clock = movableClock();
    const v = verifier(clock);
    await v.verify(check(await proof(clock.now(), { claims: { jti: 'shared-jti-1' } })), fail);
    const k2 = (await generateKeyPair('ES256')) as CryptoKeyPair;
    const p2 = await new SignJWT({ jti: 'shared-jti-1', htm: 'POST', htu: URL_, iat: clock.now() / 1000 })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(k2.publicKey) })
      .sign(k2.privateKey);
    await v.verify(check(p2), fail);
  });
});

describe('DPoP server nonces (bound to the replica that issued them)', () => {
  const nonceFail = async (p: Promise<unknown>, code: string, message = /^a fresh DPoP nonce is required$/) => {
    await assert.rejects(p, (err: unknown) => {
      assert.ok(err instanceof OAuthError);
      assert.equal(err.code, code);
      assert.match(err.message, message);
      assert.match(String(err.details?.dpopNonce), /^[0-9a-z]+\.[A-Za-z0-9_-]{22}$/);
      return true;
    });
  };

  test('without requireNonce no nonce is demanded and nothing is stored for nonces', async () => {
    const s = await factory.open();
    const clock = movableClock();
    const v = verifier(clock, false, s);
    assert.equal(v.requireNonce, false);
    assert.equal(v.requireResourceNonce, false);
    await v.verify(check(await proof(clock.now())), fail);
    assert.equal((await s.query("SELECT kid FROM signing_keys WHERE kid = 'dpop-nonce'")).length, 0);
    assert.match(v.nonce(), /^[0-9a-z]+\.[A-Za-z0-9_-]{22}$/);
  });

  test('resources demand a nonce unless configured otherwise', () => {
    const v = new DpopVerifier({ store, clock: movableClock(), maxAgeSeconds: MAX_AGE, leewaySeconds: LEEWAY, requireNonce: false });
    assert.equal(v.requireResourceNonce, true);
  });

  test('a fresh nonce and the previous window are accepted; older, future, forged or malformed ones are refused', async () => {
    const s = await factory.open();
    const clock = movableClock();
    const v = verifier(clock, true, s);
    assert.equal(v.requireNonce, true);
    const window = 5 * 60_000;
    const now = clock.now();
    // Nonces this same replica issued at other times.
    const at = (ms: number) => {
      clock.set(ms);
      const n = v.nonce();
      clock.set(now);
      return n;
    };
    const fresh = await v.verify(check(await proof(now, { claims: { nonce: v.nonce() } })), fail);
    assert.equal(fresh.nextNonce, undefined, 'a nonce of the current window needs no replacement');
    const previous = await v.verify(check(await proof(now, { claims: { nonce: at(now - window) } })), fail);
    assert.equal(previous.nextNonce, v.nonce(), 'a nonce of the previous window comes with its successor');
    const nonce = v.nonce();
    assert.match(nonce, new RegExp(`^${Math.floor(now / window).toString(36)}\\.[A-Za-z0-9_-]{22}$`));
    for (const bad of [
      at(now - 2 * window),
      at(now + window),
      `${nonce.split('.')[0]}.${'A'.repeat(22)}`,
      `${nonce.split('.')[0]}.${nonce.split('.')[1]?.slice(0, 21)}`,
      `${nonce}.x`,
      nonce.split('.')[0],
      `zzzzzzzzzzzzzzzzzz.${nonce.split('.')[1]}`,
      12,
    ]) {
      await nonceFail(v.verify(check(await proof(now, { claims: { nonce: bad } })), fail), 'OAUTH_USE_DPOP_NONCE', /unknown or expired/);
    }
    await nonceFail(v.verify(check(await proof(now)), fail), 'OAUTH_USE_DPOP_NONCE');
  });

  test('a resource answers a missing nonce with use_dpop_nonce as a 401 challenge', async () => {
    const clock = movableClock();
    const v = verifier(clock, true);
    await nonceFail(v.verify(check(await proof(clock.now()), { accessToken: 't' }), fail), 'OAUTH_RESOURCE_USE_DPOP_NONCE');
  });

  test('attack: a nonce of another replica (same store, same clock) is refused with a nonce of this one', async () => {
    const s = await factory.open();
    const clock = movableClock();
    const a = verifier(clock, true, s);
    const b = verifier(clock, true, s);
    await nonceFail(
      b.verify(check(await proof(clock.now(), { claims: { nonce: a.nonce() } })), fail),
      'OAUTH_USE_DPOP_NONCE',
      /unknown or expired/,
    );
    const withB = await b.verify(check(await proof(clock.now(), { claims: { nonce: b.nonce() } })), fail);
    assert.ok(withB.jkt);
    // Nothing about nonces is shared through the store.
    assert.equal((await s.query("SELECT kid FROM signing_keys WHERE kid = 'dpop-nonce'")).length, 0);
  });

  test('attack: where nonces are optional, a nonce that is not ours is still refused (its proof was never recorded)', async () => {
    const clock = movableClock();
    const a = verifier(clock, false);
    const b = verifier(clock, false);
    const p = await proof(clock.now(), { claims: { nonce: a.nonce() } });
    await a.verify(check(p), fail);
    await nonceFail(b.verify(check(p), fail), 'OAUTH_USE_DPOP_NONCE', /unknown or expired/);
  });

  test('a proof with our nonce is remembered in memory only: no store row, replay refused here', async () => {
    const s = await factory.open();
    const clock = movableClock();
    const v = verifier(clock, true, s);
    const p = await proof(clock.now(), { claims: { nonce: v.nonce() } });
    await v.verify(check(p), fail);
    assert.equal((await s.query('SELECT proof_key FROM dpop_proofs')).length, 0);
    await refused(v, p, /^DPoP proof has already been used$/);
    // Remembered as long as the proof is acceptable (iat + max age + leeway), forgotten only after.
    clock.advance((MAX_AGE + LEEWAY) * 1000);
    await refused(v, p, /^DPoP proof has already been used$/);
    clock.advance(1000);
    await refused(v, p, /^DPoP proof is too old$/);
  });

  test('a restarted replica (new key, empty cache) refuses the nonces it issued before', async () => {
    const clock = movableClock();
    const before = verifier(clock, true);
    const p = await proof(clock.now(), { claims: { nonce: before.nonce() } });
    await before.verify(check(p), fail);
    const restarted = verifier(clock, true);
    await nonceFail(restarted.verify(check(p), fail), 'OAUTH_USE_DPOP_NONCE', /unknown or expired/);
  });
});
