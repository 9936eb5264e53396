// Identity proofs (src/identity/proofs.ts): JWT-SVID and OIDC workload token checks one by one,
// each refusal with its exact reason, and the verified-proof cache on a fake clock — an entry is
// served only until its proof expires (plus leeway), and the cache is bounded. Static bundles and
// a static JWKS (issuers we control); no network.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { identityKey, ProofVerifier, verifyIssuerToken } from '../../src/identity/proofs.js';
import { OidcIssuer, TrustDomain, TrustStore } from '../../src/identity/trust.js';
import { movableClock, rejectsWith } from './helpers.js';

const AUD = 'https://broker.example';
const TD = 'prod.example.org';
const ISSUER = 'https://issuer.example';
const LEEWAY = 30;

let svidKey: CryptoKey;
let svidJwk: JWK;
let oidcKey: CryptoKey;
let oidcJwk: JWK;

async function trustStore(over: { singleAudience?: boolean } = {}): Promise<TrustStore> {
  const trust = new TrustStore();
  trust.addDomain(
    new TrustDomain({
      name: TD,
      source: { kind: 'static', bundle: { keys: [{ ...svidJwk, use: 'jwt-svid' }] } },
      algorithms: ['ES256'],
      singleAudience: over.singleAudience ?? true,
      refreshSeconds: 300,
    }),
  );
  trust.addWorkloadIssuer(new OidcIssuer({ issuer: ISSUER, audience: AUD, algorithms: ['RS256'], jwks: { keys: [oidcJwk] } }));
  await trust.start();
  trust.stop();
  return trust;
}

/** An unsigned token with any header (checks before the signature must refuse it). */
const hand = async (header: object, claims: object) =>
  `${Buffer.from(JSON.stringify(header)).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.x`;
const nowS = (clock: { now(): number }) => Math.floor(clock.now() / 1000);
const bad = (p: Promise<unknown>, message: RegExp) => rejectsWith(p, 'OAUTH_INVALID_SUBJECT_TOKEN', message);

interface SvidInput {
  sub?: string;
  aud?: string | string[] | undefined;
  exp?: number | undefined;
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
  key?: CryptoKey;
}

function svid(clock: { now(): number }, input: SvidInput = {}): Promise<string> {
  const claims: Record<string, unknown> = {
    sub: input.sub ?? `spiffe://${TD}/agent/a`,
    aud: 'aud' in input ? input.aud : AUD,
    exp: 'exp' in input ? input.exp : nowS(clock) + 300,
    ...input.claims,
  };
  for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k];
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'svid-1', ...input.header }).sign(input.key ?? svidKey);
}

function oidcToken(clock: { now(): number }, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): Promise<string> {
  const all: Record<string, unknown> = { iss: ISSUER, aud: AUD, sub: 'system:serviceaccount:ns:agent', exp: nowS(clock) + 300, ...claims };
  for (const k of Object.keys(all)) if (all[k] === undefined) delete all[k];
  return new SignJWT(all).setProtectedHeader({ alg: 'RS256', kid: 'oidc-1', ...header }).sign(oidcKey);
}

before(async () => {
  const es = await generateKeyPair('ES256', { extractable: true });
  svidKey = es.privateKey;
  svidJwk = { ...(await exportJWK(es.publicKey)), kid: 'svid-1' };
  const rsa = await generateKeyPair('RS256', { extractable: true });
  oidcKey = rsa.privateKey;
  oidcJwk = { ...(await exportJWK(rsa.publicKey)), kid: 'oidc-1', alg: 'RS256' };
});

describe('JWT-SVID', () => {
  test('a valid SVID gives the SPIFFE identity, its expiry and a short proof id', async () => {
    const clock = movableClock();
    const v = new ProofVerifier({ trust: await trustStore(), clock, audience: AUD, leewaySeconds: LEEWAY });
    const token = await svid(clock);
    const p = await v.verify(token);
    const id = `spiffe://${TD}/agent/a`;
    assert.deepEqual(p, {
      identity: { kind: 'spiffe', key: `spiffe:${id}`, spiffeId: id, trustDomain: TD },
      expiresAt: nowS(clock) + 300,
      proofId: createHash('sha256').update(token).digest('base64url').slice(0, 22),
    });
    assert.equal(identityKey.spiffe(id), `spiffe:${id}`);
    assert.equal(identityKey.oidc('i', 's'), 'oidc:i s');
  });

  test('typ JWT, JOSE or absent is accepted; an audience list of one is accepted', async () => {
    const clock = movableClock();
    const v = new ProofVerifier({ trust: await trustStore(), clock, audience: AUD, leewaySeconds: LEEWAY });
    await v.verify(await svid(clock, { header: { typ: 'JWT' } }));
    await v.verify(await svid(clock, { header: { typ: 'JOSE' } }));
    await v.verify(await svid(clock, { aud: [AUD] }));
  });

  test('attack: each header and claim rule refuses with its reason', async () => {
    const clock = movableClock();
    const v = new ProofVerifier({ trust: await trustStore(), clock, audience: AUD, leewaySeconds: LEEWAY });
    const other = (await generateKeyPair('ES256')).privateKey;
    const cases: [Promise<string>, RegExp][] = [
      [
        svid(clock, { sub: 'spiffe://prod.example.org/a/../b' }),
        /^JWT-SVID sub is not a valid SPIFFE ID: path must not contain "\." or "\.\." segments$/,
      ],
      [
        svid(clock, { sub: 'SPIFFE://prod.example.org/a' }),
        /^JWT-SVID sub is not a valid SPIFFE ID: SPIFFE ID must start with "spiffe:\/\/"$/,
      ],
      [svid(clock, { sub: 'spiffe://other.example.org/a' }), /^trust domain "other\.example\.org" is not trusted$/],
      [svid(clock, { header: { typ: 'at+jwt' } }), /^JWT-SVID typ must be JWT or JOSE$/],
      [svid(clock, { header: { kid: '' } }), /^JWT-SVID kid is required$/],
      [svid(clock, { header: { kid: undefined } }), /^JWT-SVID kid is required$/],
      [
        hand({ alg: 'ES256', kid: 'svid-1', crit: ['exp'] }, { sub: `spiffe://${TD}/a`, aud: AUD }),
        /^JWT-SVID must not carry critical header parameters$/,
      ],
      [svid(clock, { header: { kid: 'nope' } }), new RegExp(`^JWT-SVID kid is not in the bundle of "${TD}"$`)],
      [svid(clock, { aud: undefined }), /^JWT-SVID aud is required$/],
      [svid(clock, { aud: [AUD, 'https://other.example'] }), /^JWT-SVID must name exactly one audience$/],
      [svid(clock, { exp: undefined }), /^JWT-SVID exp is required$/],
      [svid(clock, { aud: 'https://other.example' }), /^JWT-SVID aud is not acceptable$/],
      [svid(clock, { exp: nowS(clock) - LEEWAY - 1 }), /^JWT-SVID has expired$/],
      [svid(clock, { claims: { nbf: nowS(clock) + LEEWAY + 10 } }), /^JWT-SVID is not yet valid$/],
      [svid(clock, { claims: { iat: 'yesterday' } }), /^JWT-SVID iat is in the future$/],
      [svid(clock, { key: other }), /^JWT-SVID signature is invalid$/],
    ];
    for (const [token, message] of cases) await bad(v.verify(await token), message);
    const es384 = await generateKeyPair('ES384');
    const t384 = await new SignJWT({ sub: `spiffe://${TD}/a`, aud: AUD, exp: nowS(clock) + 60 })
      .setProtectedHeader({ alg: 'ES384', kid: 'svid-1' })
      .sign(es384.privateKey);
    await bad(v.verify(t384), /^JWT-SVID alg "ES384" is not allowed$/);
    await bad(v.verify(await hand({ kid: 'svid-1' }, { sub: `spiffe://${TD}/a` })), /^JWT-SVID alg "undefined" is not allowed$/);
  });

  test('expiry is judged on the injected clock with the leeway', async () => {
    const clock = movableClock();
    const v = new ProofVerifier({ trust: await trustStore(), clock, audience: AUD, leewaySeconds: LEEWAY });
    // exp in the fake clock's past by less than the leeway: accepted (jose would refuse on real time).
    await v.verify(await svid(clock, { exp: nowS(clock) - LEEWAY + 2 }));
  });

  test('a domain without singleAudience accepts several audiences that include ours', async () => {
    const clock = movableClock();
    const v = new ProofVerifier({ trust: await trustStore({ singleAudience: false }), clock, audience: AUD, leewaySeconds: LEEWAY });
    await v.verify(await svid(clock, { aud: [AUD, 'https://other.example'] }));
  });

  test('not a JWT; neither SVID nor a trusted issuer; a mixed-case spiffe scheme is judged as an SVID', async () => {
    const clock = movableClock();
    const v = new ProofVerifier({ trust: await trustStore(), clock, audience: AUD, leewaySeconds: LEEWAY });
    await bad(v.verify('nope'), /^the proof is not a JWT$/);
    await bad(
      v.verify(await oidcToken(clock, { iss: 'https://untrusted.example' })),
      /^the proof is neither a JWT-SVID nor a token of a trusted workload issuer$/,
    );
    await bad(v.verify(await oidcToken(clock, { iss: undefined })), /^the proof is neither/);
    await bad(v.verify(await svid(clock, { sub: 'Spiffe://prod.example.org/a' })), /^JWT-SVID sub is not a valid SPIFFE ID/);
  });
});

describe('routing and error details', () => {
  test('attack: a trusted workload issuer cannot mint a SPIFFE identity (a spiffe: sub is always judged as a JWT-SVID)', async () => {
    const clock = movableClock();
    const v = new ProofVerifier({ trust: await trustStore(), clock, audience: AUD, leewaySeconds: LEEWAY });
    await bad(v.verify(await oidcToken(clock, { sub: `spiffe://${TD}/agent/a` })), /^JWT-SVID alg "RS256" is not allowed$/);
  });

  test('a token with neither sub nor a trusted iss is refused as such (no crash on the missing sub)', async () => {
    const clock = movableClock();
    const v = new ProofVerifier({ trust: await trustStore(), clock, audience: AUD, leewaySeconds: LEEWAY });
    await bad(v.verify(await oidcToken(clock, { sub: undefined, iss: undefined })), /^the proof is neither/);
  });

  test('refusals by jose carry its error code as the cause; our own checks carry none', async () => {
    const clock = movableClock();
    const v = new ProofVerifier({ trust: await trustStore(), clock, audience: AUD, leewaySeconds: LEEWAY });
    const causeOf = async (p: Promise<unknown>) => {
      try {
        await p;
      } catch (err) {
        return { has: Object.hasOwn(err as object, 'cause'), cause: (err as { cause?: unknown }).cause };
      }
      assert.fail('expected a refusal');
    };
    assert.deepEqual(await causeOf(v.verify(await svid(clock, { exp: nowS(clock) - LEEWAY - 1 }))), {
      has: true,
      cause: 'ERR_JWT_EXPIRED',
    });
    assert.deepEqual(await causeOf(v.verify(await svid(clock, { sub: 'spiffe://other.example.org/a' }))), { has: false, cause: undefined });
  });

  test('a malformed token of a trusted issuer is refused as invalid (not as an unknown kid)', async () => {
    const clock = movableClock();
    const v = new ProofVerifier({ trust: await trustStore(), clock, audience: AUD, leewaySeconds: LEEWAY });
    const [h, , sig] = (await oidcToken(clock)).split('.');
    const payload = Buffer.from(JSON.stringify({ iss: ISSUER, sub: 's' })).toString('base64url');
    await bad(v.verify(`${h}.${payload}.%%%`), /^workload token is invalid$/);
    await bad(v.verify(`${h}.${payload}.${sig}`), /^workload token signature is invalid$/);
  });

  test('X.509-SVID chains go to the X.509 verifier (an empty chain is refused)', async () => {
    const v = new ProofVerifier({ trust: await trustStore(), clock: movableClock(), audience: AUD, leewaySeconds: LEEWAY });
    assert.throws(() => v.verifyX509([]), /no client certificate/);
  });
});

describe('verified-proof cache', () => {
  test('a cached proof is served until it expires (plus leeway), then verified afresh', async () => {
    const clock = movableClock();
    const trust = await trustStore();
    const v = new ProofVerifier({ trust, clock, audience: AUD, leewaySeconds: LEEWAY });
    const token = await svid(clock, { exp: nowS(clock) + 60 });
    const first = await v.verify(token);
    // Distrust the domain: only a cache hit can still succeed now.
    const domain = trust.domains.get(TD);
    trust.domains.delete(TD);
    clock.advance((60 + LEEWAY - 1) * 1000);
    assert.equal(await v.verify(token), first);
    clock.advance(1000);
    await bad(v.verify(token), /is not trusted/);
    // Trusted again, but past expiry: refused by the signature check itself, not served from a stale entry.
    if (domain !== undefined) trust.domains.set(TD, domain);
    await bad(v.verify(token), /^JWT-SVID has expired$/);
  });

  test('the cache is bounded: the oldest entry is evicted first', async () => {
    const clock = movableClock();
    const trust = await trustStore();
    const v = new ProofVerifier({ trust, clock, audience: AUD, leewaySeconds: LEEWAY, cacheSize: 2 });
    const a = await svid(clock, { sub: `spiffe://${TD}/a` });
    const b = await svid(clock, { sub: `spiffe://${TD}/b` });
    const c = await svid(clock, { sub: `spiffe://${TD}/c` });
    await v.verify(a);
    await v.verify(b);
    await v.verify(c);
    trust.domains.delete(TD);
    await bad(v.verify(a), /is not trusted/);
    assert.equal((await v.verify(b)).identity.key, `spiffe:spiffe://${TD}/b`);
    assert.equal((await v.verify(c)).identity.key, `spiffe:spiffe://${TD}/c`);
  });
});

describe('OIDC workload tokens', () => {
  test('a token of a trusted issuer gives the iss + sub identity', async () => {
    const clock = movableClock();
    const v = new ProofVerifier({ trust: await trustStore(), clock, audience: AUD, leewaySeconds: LEEWAY });
    const token = await oidcToken(clock);
    assert.deepEqual(await v.verify(token), {
      identity: {
        kind: 'oidc',
        key: `oidc:${ISSUER} system:serviceaccount:ns:agent`,
        issuer: ISSUER,
        subject: 'system:serviceaccount:ns:agent',
      },
      expiresAt: nowS(clock) + 300,
      proofId: createHash('sha256').update(token).digest('base64url').slice(0, 22),
    });
  });

  test('attack: wrong audience, unlisted alg, unknown kid, no sub, expired, bad signature', async () => {
    const clock = movableClock();
    const v = new ProofVerifier({ trust: await trustStore(), clock, audience: AUD, leewaySeconds: LEEWAY });
    await bad(v.verify(await oidcToken(clock, { aud: 'https://other.example' })), /^workload token aud is not acceptable$/);
    await bad(v.verify(await oidcToken(clock, {}, { kid: 'nope' })), /^workload token kid is unknown$/);
    await bad(v.verify(await oidcToken(clock, { sub: undefined })), /^workload token sub is not acceptable$/);
    await bad(v.verify(await oidcToken(clock, { exp: undefined })), /^workload token exp is not acceptable$/);
    await bad(v.verify(await oidcToken(clock, { exp: nowS(clock) - LEEWAY - 1 })), /^workload token has expired$/);
    await v.verify(await oidcToken(clock, { exp: nowS(clock) - LEEWAY + 2 }));
    const es = await generateKeyPair('ES256');
    const esToken = await new SignJWT({ iss: ISSUER, aud: AUD, sub: 's', exp: nowS(clock) + 60 })
      .setProtectedHeader({ alg: 'ES256', kid: 'oidc-1' })
      .sign(es.privateKey);
    await bad(v.verify(esToken), /^workload token alg "ES256" is not allowed$/);
    const t = await oidcToken(clock);
    await bad(v.verify(`${t.slice(0, t.lastIndexOf('.'))}.${'A'.repeat(342)}`), /^workload token signature is invalid$/);
  });

  test('verifyIssuerToken checks the exact issuer and names what it verified', async () => {
    const clock = movableClock();
    const issuer = new OidcIssuer({ issuer: ISSUER, audience: AUD, algorithms: ['RS256'], jwks: { keys: [oidcJwk] } });
    const { payload } = await verifyIssuerToken(await oidcToken(clock), issuer, clock, LEEWAY, 'human token');
    assert.equal(payload.sub, 'system:serviceaccount:ns:agent');
    await bad(
      verifyIssuerToken(await oidcToken(clock, { iss: 'https://evil.example' }), issuer, clock, LEEWAY, 'human token'),
      /^human token iss is not acceptable$/,
    );
    await bad(verifyIssuerToken('x', issuer, clock, LEEWAY, 'human token'), /^the human token is not a JWT$/);
  });
});
