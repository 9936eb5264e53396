// Mandate storage and lifecycle on both stores: open/delegate rows, cascade of ends to every
// descendant, revocation reaching a second replica through the change feed, expiry with a fake
// clock, individually revoked tokens, the DPoP replay table and signing-key rotation.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import type { Agent } from '../../src/agents/agent.js';
import { AgentRegistry } from '../../src/agents/registry.js';
import type { Clock } from '../../src/lib/clock.js';
import type { MandateRequest } from '../../src/mandates/mandate.js';
import { MandateService } from '../../src/mandates/service.js';
import { DpopVerifier } from '../../src/oauth/dpop.js';
import { SigningKeys } from '../../src/oauth/signing-keys.js';
import { PrincipalRepository } from '../../src/principals/repository.js';
import { SecretBox } from '../../src/secrets/secret-box.js';
import { ChangeFeed } from '../../src/store/changes.js';
import type { Store } from '../../src/store/types.js';
import { storeFactories } from '../helpers/stores.js';

class FakeClock implements Clock {
  t = Date.UTC(2026, 0, 1);
  now(): number {
    return this.t;
  }
}

const request = (over: Partial<MandateRequest> = {}): MandateRequest => ({
  type: 'mandate',
  purpose: 'test',
  taskType: 'support.refund',
  environment: 'production',
  ttlSeconds: 600,
  tools: [{ tool: 'helpdesk.search_tickets' }, { tool: 'helpdesk.propose_refund', args: { amountCents: { max: 100 } } }],
  delegable: true,
  ...over,
});

for (const factory of await storeFactories()) {
  describe(`mandate lifecycle (${factory.name})`, { skip: factory.skip }, () => {
    let store: Store;
    const clock = new FakeClock();
    let feedA: ChangeFeed;
    let feedB: ChangeFeed;
    let a: MandateService;
    let b: MandateService;
    let agents: AgentRegistry;
    let triage: Agent;
    let helper: Agent;
    let helper2: Agent;

    before(async () => {
      store = await factory.open();
      feedA = new ChangeFeed(store, { clock, pollIntervalMs: 60_000 });
      feedB = new ChangeFeed(store, { clock, pollIntervalMs: 60_000 });
      await feedA.start();
      await feedB.start();
      const options = { store, clock, audit: undefined, maxTtlSeconds: 3600, maxDelegationDepth: 3 };
      a = new MandateService({ ...options, changes: feedA });
      b = new MandateService({ ...options, changes: feedB });
      const principals = new PrincipalRepository(store, clock);
      await principals.create({ id: 'bob', actorType: 'human', displayName: 'Bob' });
      agents = new AgentRegistry(store, principals, feedA, clock);
      const ceiling = { tools: [{ tool: 'helpdesk.search_tickets' }, { tool: 'helpdesk.propose_refund' }], delegable: true };
      triage = await agents.register({
        id: 'triage',
        displayName: 'Triage',
        owner: 'bob',
        environment: 'production',
        identity: { spiffeId: 'spiffe://t.example/triage' },
        ceiling,
      });
      helper = await agents.register({
        id: 'helper',
        displayName: 'Helper',
        owner: 'bob',
        environment: 'production',
        identity: { issuer: 'https://k8s.example', subject: 'system:serviceaccount:ops:helper' },
        ceiling,
        mayReceiveDelegation: true,
      });
      helper2 = await agents.register({
        id: 'helper2',
        displayName: 'Helper 2',
        owner: 'bob',
        environment: 'production',
        identity: { spiffeId: 'spiffe://t.example/helper2' },
        ceiling,
        mayReceiveDelegation: true,
      });
    });
    after(async () => {
      await feedA?.stop();
      await feedB?.stop();
      await factory.cleanup();
    });

    test('agent profiles round-trip and resolve by identity key', async () => {
      assert.equal((await agents.byIdentity('spiffe:spiffe://t.example/triage'))?.principal.id, 'triage');
      assert.equal((await agents.byIdentity('oidc:https://k8s.example system:serviceaccount:ops:helper'))?.principal.id, 'helper');
      assert.equal(await agents.byIdentity('spiffe:spiffe://t.example/other'), undefined);
      const h = await agents.require('helper');
      assert.equal(h.mayReceiveDelegation, true);
      assert.equal(h.dpopRequired, false);
      assert.deepEqual(h.identity, { issuer: 'https://k8s.example', subject: 'system:serviceaccount:ops:helper' });
      await assert.rejects(
        agents.register({
          id: 'dup',
          displayName: 'D',
          owner: 'bob',
          environment: 'production',
          identity: { spiffeId: 'spiffe://t.example/triage' },
          ceiling: { tools: [] },
        }),
        /already bound/,
      );
      assert.equal(await agents.get('dup'), undefined, 'no half-registered agent is left behind');
    });

    test('concurrent opens are all stored (group commit) and readable by another replica', async () => {
      const opened = await Promise.all(Array.from({ length: 40 }, () => a.open(triage, request())));
      assert.equal(new Set(opened.map((m) => m.id)).size, 40);
      for (const m of opened.slice(0, 5)) assert.equal((await b.get(m.id))?.status, 'active');
      const listed = await a.list({ agentId: 'triage', limit: 1000 });
      assert.ok(listed.length >= 40);
    });

    test('ending a root revokes every descendant and reaches the other replica', async () => {
      const root = await a.open(triage, request());
      const child = await a.delegate(root, helper, request({ ttlSeconds: 300 }));
      const grandchild = await a.delegate(child, helper2, request({ ttlSeconds: 200, tools: [{ tool: 'helpdesk.search_tickets' }] }));
      const unrelated = await a.open(triage, request());
      // Replica B has the whole chain cached as active.
      assert.deepEqual(
        (await b.chain(await b.require(grandchild.id))).map((m) => m.id),
        [root.id, child.id, grandchild.id],
      );
      const ended = await a.end(root.id, 'completed', { type: 'agent', id: 'triage' }, 'done');
      assert.deepEqual(ended.map((m) => m.id).sort(), [root.id, child.id, grandchild.id].sort());
      assert.equal((await a.get(grandchild.id))?.status, 'revoked');
      assert.equal((await a.get(root.id))?.status, 'completed');
      assert.equal((await a.get(unrelated.id))?.status, 'active');
      await feedB.catchUp(); // what B's NOTIFY listener or poll timer does
      assert.equal(b.hasEnded(grandchild.id), true);
      assert.equal(b.hasEnded(unrelated.id), false);
      await assert.rejects(a.end(root.id, 'failed', { type: 'agent', id: 'triage' }), /is completed/);
      assert.deepEqual(await a.end(root.id, 'revoked', { type: 'operator', id: 'alice' }), [], 'revoking an ended mandate is a no-op');
    });

    test('ending a middle mandate leaves its ancestors alone', async () => {
      const root = await a.open(triage, request());
      const child = await a.delegate(root, helper, request({ ttlSeconds: 300 }));
      const grandchild = await a.delegate(child, helper2, request({ ttlSeconds: 200 }));
      await a.end(child.id, 'revoked', { type: 'agent', id: 'triage' });
      assert.equal((await a.get(root.id))?.status, 'active');
      assert.equal((await a.get(grandchild.id))?.status, 'revoked');
    });

    test('delegation rules: subset of parent and of receiver ceiling, TTL, depth, receiver allowed', async () => {
      const root = await a.open(triage, request());
      await assert.rejects(a.delegate(root, triage, request({ ttlSeconds: 60 })), /may not receive delegations/);
      await assert.rejects(a.delegate(root, helper, request({ ttlSeconds: 601 })), /outlive its parent/);
      await assert.rejects(
        a.delegate(
          root,
          helper,
          request({ ttlSeconds: 60, tools: [{ tool: 'helpdesk.propose_refund', args: { amountCents: { max: 101 } } }] }),
        ),
        /not a subset of the parent/,
      );
      await assert.rejects(a.delegate(root, helper, request({ ttlSeconds: 60, environment: 'staging' })), /environment/);
      const nd = await a.open(triage, request({ delegable: false }));
      await assert.rejects(a.delegate(nd, helper, request({ ttlSeconds: 60 })), /not delegable/);
      let m = root;
      for (let depth = 1; depth <= 3; depth++)
        m = await a.delegate(m, depth % 2 === 1 ? helper : helper2, request({ ttlSeconds: 600 - depth }));
      assert.equal(m.depth, 3);
      await assert.rejects(a.delegate(m, helper, request({ ttlSeconds: 10 })), /depth 4 exceeds the limit of 3/);
    });

    test('expiry: mandates end by themselves and the sweep records it', async () => {
      const m = await a.open(triage, request({ ttlSeconds: 60 }));
      clock.t += 61_000;
      assert.ok((await a.sweepExpired()) >= 1);
      assert.equal((await a.get(m.id))?.status, 'expired');
      await feedB.catchUp();
      assert.equal(b.hasEnded(m.id), true);
    });

    test('individually revoked tokens are known to every replica; repeat revocations are idempotent', async () => {
      const exp = Math.floor(clock.now() / 1000) + 300;
      await a.revokeToken('jti-1', 'mnd_x', exp);
      await a.revokeToken('jti-1', 'mnd_x', exp);
      assert.equal(a.isTokenRevoked('jti-1'), true);
      await feedB.catchUp();
      assert.equal(b.isTokenRevoked('jti-1'), true);
      const fresh = new MandateService({ store, clock, audit: undefined, maxTtlSeconds: 3600, maxDelegationDepth: 3, changes: feedB });
      await fresh.start();
      assert.equal(fresh.isTokenRevoked('jti-1'), true, 'loaded from the store at start');
    });

    test('the DPoP replay table refuses a proof id (without a nonce) seen by another replica', async () => {
      const mk = () => new DpopVerifier({ store, clock, maxAgeSeconds: 60, leewaySeconds: 5, requireNonce: false });
      const { privateKey, publicKey } = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
      const jwk = await crypto.subtle.exportKey('jwk', publicKey);
      const proof = await new SignJWT({ jti: 'proof-id-123456', htm: 'POST', htu: 'https://m.example/mcp' })
        .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y } })
        .setIssuedAt(Math.floor(clock.now() / 1000))
        .sign(privateKey);
      const fail = (m: string) => new Error(m) as never;
      await mk().verify({ proof, method: 'POST', url: 'https://m.example/mcp' }, fail);
      await assert.rejects(mk().verify({ proof, method: 'POST', url: 'https://m.example/mcp?x=1' }, fail), /already been used/);
    });

    test('signing keys: sealed at rest, rotation keeps the previous key published', async () => {
      const secrets = new SecretBox([{ kid: 'k', key: Buffer.alloc(32, 9) }]);
      const keys = new SigningKeys({ store, secrets, clock, rotateAfterMs: 86_400_000, publishRetiredMs: 3_600_000 });
      await keys.ensureCurrent();
      const first = keys.active().kid;
      const [row] = await store.query<{ private_sealed: string }>('SELECT private_sealed FROM signing_keys WHERE kid = ?', [first]);
      assert.match(row?.private_sealed ?? '', /^v1\.k\./, 'the private key is sealed');
      assert.doesNotMatch(row?.private_sealed ?? '', /"d"/);
      const second = await keys.rotate();
      assert.notEqual(second, first);
      assert.deepEqual(
        keys
          .jwks()
          .keys.map((k) => k.kid)
          .sort(),
        [first, second].sort(),
      );
      assert.ok(keys.publicKey(first));
      const other = new SigningKeys({ store, secrets, clock, rotateAfterMs: 86_400_000, publishRetiredMs: 3_600_000 });
      await other.ensureCurrent();
      assert.equal(other.active().kid, second, 'another replica picks up the rotation');
      clock.t += 2 * 3_600_000;
      await other.reload();
      assert.deepEqual(
        other.jwks().keys.map((k) => k.kid),
        [second],
        'retired keys leave the JWKS once their tokens have expired',
      );
    });
  });
}
