// Access tokens (src/oauth/access-token.ts) and their verification (src/oauth/verify.ts): real
// Ed25519 signing keys in SQLite, real DPoP verifier; the mandate and agent lookups are small
// in-memory stand-ins so each resolution rule (revoked, ended, expired ancestor, agent status) can
// be set directly. Every check has a refused case; iss and aud are checked separately.
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { calculateJwkThumbprint, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import type { AgentRegistry } from '../../src/agents/registry.js';
import type { Mandate } from '../../src/mandates/mandate.js';
import type { MandateService } from '../../src/mandates/service.js';
import { ACCESS_TOKEN_TYP, AccessTokenIssuer, actChain } from '../../src/oauth/access-token.js';
import { DpopVerifier } from '../../src/oauth/dpop.js';
import { SIGNING_ALG, SigningKeys } from '../../src/oauth/signing-keys.js';
import { TokenVerifier } from '../../src/oauth/verify.js';
import type { Principal } from '../../src/principals/principal.js';
import { generateMasterKeySpec, parseMasterKeys, SecretBox } from '../../src/secrets/secret-box.js';
import type { Store } from '../../src/store/types.js';
import { sqliteFactory } from '../helpers/stores.js';
import { movableClock, rejectsWith } from './helpers.js';

const ISS = 'https://broker.example';
const AUD = 'https://broker.example/rs';
const LEEWAY = 5;
const factory = sqliteFactory();
const secrets = new SecretBox(parseMasterKeys(generateMasterKeySpec('t')));

let store: Store;
const clock = movableClock();
const START = clock.now();
let keys: SigningKeys;
let tokens: AccessTokenIssuer;

// In-memory mandate and agent lookups.
const mandates = new Map<string, Mandate>();
const revokedTokens = new Set<string>();
const ended = new Set<string>();
const agents = new Map<string, Principal>();

const mandateService = {
  isTokenRevoked: (jti: string) => revokedTokens.has(jti),
  get: async (id: string) => mandates.get(id),
  chain: async (m: Mandate) => {
    const out: Mandate[] = [m];
    let cur = m;
    while (cur.parentId !== undefined) {
      const p = mandates.get(cur.parentId);
      if (p === undefined) break;
      out.unshift(p);
      cur = p;
    }
    return out;
  },
  hasEnded: (id: string) => ended.has(id),
} as unknown as MandateService;
const agentRegistry = {
  get: async (id: string) => (agents.has(id) ? { principal: agents.get(id) } : undefined),
} as unknown as AgentRegistry;

function principal(id: string, status: Principal['status'] = 'active'): Principal {
  return {
    id,
    actorType: 'agent',
    displayName: id,
    owner: undefined,
    environment: undefined,
    status,
    roles: [],
    attributes: {},
    createdAt: 0,
    updatedAt: 0,
  };
}

function mandate(over: Partial<Mandate> = {}): Mandate {
  const id = over.id ?? `m-${randomUUID()}`;
  const m: Mandate = {
    id,
    agentId: 'agent-1',
    rootId: id,
    purpose: 'p',
    taskType: 't',
    environment: 'e',
    scope: { tools: [], delegable: false },
    depth: 0,
    status: 'active',
    expiresAt: clock.now() + 3_600_000,
    createdAt: clock.now(),
    ...over,
  };
  mandates.set(m.id, m);
  return m;
}

function verifier(options: { issuer?: string; audience?: string; assertCurrent?: () => void } = {}) {
  return new TokenVerifier({
    keys,
    mandates: mandateService,
    agents: agentRegistry,
    dpop: new DpopVerifier({ store, clock, maxAgeSeconds: 60, leewaySeconds: LEEWAY, requireNonce: false, requireResourceNonce: false }),
    clock,
    issuer: options.issuer ?? ISS,
    audience: options.audience ?? AUD,
    leewaySeconds: LEEWAY,
    ...(options.assertCurrent === undefined ? {} : { assertCurrent: options.assertCurrent }),
  });
}

async function mint(m: Mandate, over: { jkt?: string; exp?: number } = {}) {
  return tokens.mint({
    sub: 'human-1',
    clientId: m.agentId,
    mandateId: m.id,
    details: { type: 'mandate', mandate_id: m.id },
    exp: over.exp ?? Math.floor(clock.now() / 1000) + 300,
    ...(over.jkt === undefined ? {} : { jkt: over.jkt }),
  });
}

const invalid = (p: Promise<unknown>, message: RegExp) => rejectsWith(p, 'OAUTH_INVALID_TOKEN', message);
const bearer = (token: string) => ({ token, scheme: 'Bearer' as const, method: 'POST', url: `${ISS}/mcp` });

before(async () => {
  store = await factory.open();
  keys = new SigningKeys({ store, secrets, clock, rotateAfterMs: 86_400_000, publishRetiredMs: 3_600_000 });
  await keys.ensureCurrent();
  tokens = new AccessTokenIssuer(keys, clock, ISS, AUD);
  agents.set('agent-1', principal('agent-1'));
});
after(() => factory.cleanup());

describe('minting', () => {
  test('an access token carries the RFC 9068 header and every claim', async () => {
    const m = mandate();
    const exp = Math.floor(clock.now() / 1000) + 120;
    const { token, claims } = await tokens.mint({
      sub: 'human-1',
      clientId: 'agent-1',
      mandateId: m.id,
      details: { type: 'mandate', x: 1 },
      act: { sub: 'agent-0' },
      jkt: 'thumb',
      exp,
    });
    const header = decodeProtectedHeader(token);
    assert.deepEqual(header, { alg: SIGNING_ALG, kid: keys.active().kid, typ: ACCESS_TOKEN_TYP });
    assert.equal(ACCESS_TOKEN_TYP, 'at+jwt');
    const payload = decodeJwt(token);
    assert.deepEqual(payload, { ...claims });
    assert.equal(claims.iss, ISS);
    assert.equal(claims.aud, AUD);
    assert.equal(claims.sub, 'human-1');
    assert.equal(claims.client_id, 'agent-1');
    assert.equal(claims.mandate, m.id);
    assert.deepEqual(claims.authorization_details, [{ type: 'mandate', x: 1 }]);
    assert.deepEqual(claims.act, { sub: 'agent-0' });
    assert.deepEqual(claims.cnf, { jkt: 'thumb' });
    assert.equal(claims.iat, Math.floor(clock.now() / 1000));
    assert.equal(claims.exp, exp);
    assert.match(claims.jti, /^[A-Za-z0-9_-]{22}$/);
    assert.notEqual((await mint(m)).claims.jti, claims.jti);
  });

  test('measure() predicts the exact length of the token mint() signs', async () => {
    const m = mandate();
    const inputs = [
      { sub: 's', clientId: 'a', mandateId: m.id, details: {}, exp: 1 },
      { sub: 'human-1', clientId: 'agent-1', mandateId: m.id, details: { type: 'mandate', note: 'é€😀' }, exp: 2_000_000_000 },
      {
        sub: 'hh',
        clientId: 'agent-22',
        mandateId: `${m.id}x`,
        details: { a: 'x'.repeat(101) },
        act: { sub: 'b', act: { sub: 'a' } },
        jkt: 'j'.repeat(43),
        exp: 3,
      },
      { sub: 'hhh', clientId: 'agent-333', mandateId: `${m.id}xy`, details: { a: 'y'.repeat(1000) }, exp: 44 },
    ];
    for (const input of inputs) assert.equal(tokens.measure(input), (await tokens.mint(input)).token.length);
  });

  test('without act and jkt the token has neither claim', async () => {
    const { token } = await mint(mandate());
    const payload = decodeJwt(token);
    assert.equal('act' in payload, false);
    assert.equal('cnf' in payload, false);
  });

  test('actChain: the subject is not an actor; the latest actor is outermost', () => {
    assert.equal(actChain(['a'], 'a'), undefined);
    assert.deepEqual(actChain(['a', 'b'], 'a'), { sub: 'b' });
    assert.deepEqual(actChain(['a', 'b', 'c'], 'a'), { sub: 'c', act: { sub: 'b' } });
    assert.deepEqual(actChain(['a', 'b'], 'human'), { sub: 'b', act: { sub: 'a' } });
    assert.deepEqual(actChain([], 'human'), undefined);
  });
});

describe('token signature and claims', () => {
  test('a token we minted verifies and resolves to its mandate, chain and agent', async () => {
    const parent = mandate({ onBehalfOf: 'human-1' });
    const m = mandate({ parentId: parent.id, rootId: parent.id, depth: 1, onBehalfOf: 'human-1' });
    const { token, claims } = await mint(m);
    const r = await verifier().verify(bearer(token));
    assert.equal(r.tokenId, claims.jti);
    assert.equal(r.mandate.id, m.id);
    assert.deepEqual(
      r.chain.map((c) => c.id),
      [parent.id, m.id],
    );
    assert.equal(r.agent.id, 'agent-1');
    assert.equal(r.onBehalfOf, 'human-1');
    assert.deepEqual(r.claims, claims);
    const noObo = await verifier().verify(bearer((await mint(mandate())).token));
    assert.equal('onBehalfOf' in noObo, false);
  });

  test('attack: a token for another issuer is refused (iss is checked)', async () => {
    const { token } = await mint(mandate());
    // The refusal names both issuers (issue 19: a broker restarted on another address).
    await invalid(
      verifier({ issuer: 'https://other.example' }).verify(bearer(token)),
      new RegExp(`^the token was issued by "${ISS}", but this broker is "https://other\\.example"$`),
    );
  });

  test('attack: a token for another audience is refused (aud is checked)', async () => {
    const { token } = await mint(mandate());
    await invalid(verifier({ audience: 'https://other.example/rs' }).verify(bearer(token)), /^token claim aud is not acceptable$/);
  });

  test('attack: not a JWT, another alg, another typ, no kid, unknown kid', async () => {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const kid = keys.active().kid;
    await invalid(verifier().verifyToken('nope'), /^the token is not a JWT$/);
    await invalid(
      verifier().verifyToken(`${b64({ alg: 'ES256', typ: 'at+jwt', kid })}.${b64({})}.x`),
      /^token alg "ES256" is not allowed$/,
    );
    await invalid(verifier().verifyToken(`${b64({ alg: 'EdDSA', typ: 'JWT', kid })}.${b64({})}.x`), /^token typ must be at\+jwt$/);
    await invalid(verifier().verifyToken(`${b64({ alg: 'EdDSA', typ: 'at+jwt' })}.${b64({})}.x`), /^token kid is required$/);
    await invalid(verifier().verifyToken(`${b64({ alg: 'EdDSA', typ: 'at+jwt', kid: 'nope' })}.${b64({})}.x`), /^token kid is unknown$/);
  });

  test('attack: a token signed by a key that is not ours (our kid) is refused', async () => {
    const { privateKey } = await generateKeyPair('EdDSA');
    const now = Math.floor(clock.now() / 1000);
    const forged = await new SignJWT({
      iss: ISS,
      aud: AUD,
      sub: 's',
      client_id: 'agent-1',
      mandate: 'm',
      jti: 'j',
      iat: now,
      exp: now + 60,
    })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: keys.active().kid })
      .sign(privateKey);
    await invalid(verifier().verifyToken(forged), /^the token signature is invalid$/);
  });

  async function signed(claims: Record<string, unknown>) {
    const k = keys.active();
    return new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: k.kid }).sign(k.privateKey);
  }
  const base = () => {
    const now = Math.floor(clock.now() / 1000);
    return { iss: ISS, aud: AUD, sub: 's', client_id: 'agent-1', mandate: 'm', jti: randomUUID(), iat: now, exp: now + 60 };
  };

  test('every required claim is required', async () => {
    for (const claim of ['sub', 'exp', 'iat', 'jti', 'mandate', 'client_id']) {
      const c: Record<string, unknown> = base();
      delete c[claim];
      await invalid(verifier().verifyToken(await signed(c)), new RegExp(`^token claim ${claim} is not acceptable$`));
    }
  });

  test('attack: a non-string mandate claim is refused', async () => {
    await invalid(verifier().verifyToken(await signed({ ...base(), mandate: 42 })), /^token mandate claim is malformed$/);
  });

  test('attack: a malformed signature segment', async () => {
    const t = await signed(base());
    await invalid(verifier().verifyToken(`${t.split('.').slice(0, 2).join('.')}.%%%`), /^the token is invalid$/);
  });

  test('expiry is judged on the injected clock with the leeway, also for cached tokens', async () => {
    const now = Math.floor(clock.now() / 1000);
    // Years from real time: a verifier that used Date.now() would refuse (or accept) the wrong ones.
    const justPast = await signed({ ...base(), exp: now - LEEWAY + 1 });
    await verifier().verifyToken(justPast);
    await invalid(verifier().verifyToken(await signed({ ...base(), exp: now - LEEWAY - 1 })), /^the token has expired$/);
    const v = verifier();
    const t = await signed({ ...base(), exp: now + 10 });
    await v.verifyToken(t);
    clock.advance((10 + LEEWAY - 1) * 1000);
    await v.verifyToken(t);
    clock.advance(2000);
    await invalid(v.verifyToken(t), /^the token has expired$/);
    // The cache entry is gone: the next attempt is judged afresh by jose (still expired).
    await invalid(v.verifyToken(t), /^the token has expired$/);
    clock.set(now * 1000);
  });

  test('verified claims are cached per token (served without the key) and bounded by expiry, not by count', async () => {
    const own = await factory.open();
    const ownKeys = new SigningKeys({ store: own, secrets, clock, rotateAfterMs: 86_400_000, publishRetiredMs: 3_600_000 });
    await ownKeys.ensureCurrent();
    const issuer = new AccessTokenIssuer(ownKeys, clock, ISS, AUD);
    const v = new TokenVerifier({
      keys: ownKeys,
      mandates: mandateService,
      agents: agentRegistry,
      dpop: new DpopVerifier({
        store: own,
        clock,
        maxAgeSeconds: 60,
        leewaySeconds: LEEWAY,
        requireNonce: false,
        requireResourceNonce: false,
      }),
      clock,
      issuer: ISS,
      audience: AUD,
      leewaySeconds: LEEWAY,
    });
    const exp = Math.floor(clock.now() / 1000) + 100;
    const input = (id: string) => ({ sub: 's', clientId: 'agent-1', mandateId: id, details: {}, exp });
    const a = await issuer.mint(input('a'));
    const b = await issuer.mint(input('b'));
    const c = await issuer.mint(input('c'));
    await v.verifyToken(a.token);
    await v.verifyToken(b.token);
    // The key disappears: only cached tokens still verify.
    await own.run('DELETE FROM signing_keys');
    await ownKeys.reload();
    clock.advance(10_001);
    assert.equal((await v.verifyToken(a.token)).mandate, 'a');
    assert.equal((await v.verifyToken(b.token)).mandate, 'b');
    await invalid(v.verifyToken(c.token), /^token kid is unknown$/);
    // Exactly at exp + leeway the cached entry is no longer served.
    clock.set((exp + LEEWAY) * 1000);
    await invalid(v.verifyToken(a.token), /^the token has expired$/);
    clock.set((exp + LEEWAY) * 1000 - 1);
    await invalid(v.verifyToken(a.token), /^token kid is unknown$/);
    assert.equal((await v.verifyToken(b.token)).mandate, 'b');
    clock.set(START);
  });

  test('an unknown kid reloads the key set at most every 10 s (a rotation on another replica is picked up)', async () => {
    const v = verifier();
    const other = new SigningKeys({ store, secrets, clock, rotateAfterMs: 86_400_000, publishRetiredMs: 3_600_000 });
    await other.ensureCurrent();
    // A second instance rotates; `keys` (used by the verifier) has not seen the new kid yet.
    await other.rotate();
    const m = mandate();
    const fresh = await new AccessTokenIssuer(other, clock, ISS, AUD).mint({
      sub: 's',
      clientId: 'agent-1',
      mandateId: m.id,
      details: {},
      exp: Math.floor(clock.now() / 1000) + 300,
    });
    await v.verifyToken(fresh.token);
    // Now a kid nobody has: the verifier reloaded just now, so it does not reload again within 10 s.
    const third = new SigningKeys({ store, secrets, clock, rotateAfterMs: 86_400_000, publishRetiredMs: 3_600_000 });
    await third.ensureCurrent();
    await third.rotate();
    const newer = await new AccessTokenIssuer(third, clock, ISS, AUD).mint({
      sub: 's',
      clientId: 'agent-1',
      mandateId: m.id,
      details: {},
      exp: Math.floor(clock.now() / 1000) + 300,
    });
    await invalid(v.verifyToken(newer.token), /^token kid is unknown$/);
    clock.advance(10_000);
    await invalid(v.verifyToken(newer.token), /^token kid is unknown$/);
    clock.advance(1);
    await v.verifyToken(newer.token);
    await keys.reload();
    tokens = new AccessTokenIssuer(keys, clock, ISS, AUD);
  });
});

describe('sender constraint', () => {
  let dpopKeys: CryptoKeyPair;
  let jwk: JWK;
  before(async () => {
    dpopKeys = (await generateKeyPair('ES256')) as CryptoKeyPair;
    jwk = await exportJWK(dpopKeys.publicKey);
  });
  const dpopProof = (token: string, htu = `${ISS}/mcp`) =>
    new SignJWT({
      jti: randomUUID(),
      htm: 'POST',
      htu,
      iat: clock.now() / 1000,
      ath: createHash('sha256').update(token).digest('base64url'),
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk })
      .sign(dpopKeys.privateKey);

  test('a DPoP-bound token verifies with the DPoP scheme and a matching proof', async () => {
    const { token } = await mint(mandate(), { jkt: await calculateJwkThumbprint(jwk) });
    const r = await verifier().verify({ ...bearer(token), scheme: 'DPoP', dpop: await dpopProof(token) });
    assert.equal(r.agent.id, 'agent-1');
  });

  test('attack: a DPoP-bound token as Bearer, or without a proof, or with a proof for another URL', async () => {
    const { token } = await mint(mandate(), { jkt: await calculateJwkThumbprint(jwk) });
    await invalid(verifier().verify(bearer(token)), /^this token is DPoP-bound and must be sent with the DPoP scheme$/);
    await invalid(verifier().verify({ ...bearer(token), scheme: 'DPoP' }), /^a DPoP proof is required$/);
    await invalid(
      verifier().verify({ ...bearer(token), scheme: 'DPoP', dpop: await dpopProof(token, 'https://evil.example/mcp') }),
      /^DPoP proof htu does not match the request URL$/,
    );
  });

  test('attack: a proof by another key than the bound one', async () => {
    const { token } = await mint(mandate(), { jkt: 'someone-elses-thumbprint' });
    await invalid(verifier().verify({ ...bearer(token), scheme: 'DPoP', dpop: await dpopProof(token) }), /cnf\.jkt/);
  });

  test('attack: an unbound token with the DPoP scheme', async () => {
    const { token } = await mint(mandate());
    await invalid(
      verifier().verify({ ...bearer(token), scheme: 'DPoP', dpop: await dpopProof(token) }),
      /^this token is not DPoP-bound; use the Bearer scheme$/,
    );
  });
});

describe('resolution from memory', () => {
  test('a stale replica fails closed before anything else', async () => {
    const { token } = await mint(mandate());
    const v = verifier({
      assertCurrent: () => {
        throw new Error('stale');
      },
    });
    await assert.rejects(v.verify(bearer(token)), /stale/);
  });

  test('attack: expiry of the claims is re-checked at resolution (leeway included)', async () => {
    const { claims } = await mint(mandate());
    const now = clock.now();
    await verifier().resolve({ ...claims, exp: Math.floor(now / 1000) - LEEWAY + 1 });
    await invalid(verifier().resolve({ ...claims, exp: now / 1000 - LEEWAY }), /^the token has expired$/);
  });

  test('attack: a revoked token', async () => {
    const { token, claims } = await mint(mandate());
    revokedTokens.add(claims.jti);
    await invalid(verifier().verify(bearer(token)), /^the token has been revoked$/);
  });

  test('attack: an unknown mandate', async () => {
    const m = mandate();
    const { token } = await mint(m);
    mandates.delete(m.id);
    await invalid(verifier().verify(bearer(token)), /^the token names an unknown mandate$/);
  });

  test('attack: the mandate or an ancestor ended, revoked, expired or completed', async () => {
    const root = mandate();
    const child = mandate({ parentId: root.id, rootId: root.id, depth: 1 });
    const { token } = await mint(child);
    await verifier().verify(bearer(token));
    ended.add(root.id);
    await invalid(verifier().verify(bearer(token)), new RegExp(`^ancestor mandate ${root.id} is revoked$`));
    ended.delete(root.id);
    ended.add(child.id);
    await invalid(verifier().verify(bearer(token)), /^the mandate is revoked$/);
    ended.delete(child.id);
    mandates.set(root.id, { ...root, expiresAt: clock.now() });
    await invalid(verifier().verify(bearer(token)), new RegExp(`^ancestor mandate ${root.id} is expired$`));
    mandates.set(root.id, { ...root, status: 'completed' });
    await invalid(verifier().verify(bearer(token)), new RegExp(`^ancestor mandate ${root.id} is completed$`));
    mandates.set(root.id, root);
    mandates.set(child.id, { ...child, expiresAt: clock.now() + 1 });
    await verifier().verify(bearer(token));
  });

  test('attack: the agent is unregistered or not active', async () => {
    const m = mandate({ agentId: 'agent-2' });
    const { token } = await mint(m);
    await invalid(verifier().verify(bearer(token)), /^the agent of this mandate is no longer registered$/);
    agents.set('agent-2', principal('agent-2', 'quarantined'));
    await invalid(verifier().verify(bearer(token)), /^the agent is quarantined$/);
    agents.set('agent-2', principal('agent-2'));
    await verifier().verify(bearer(token));
  });
});
