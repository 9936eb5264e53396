// Eager leases (obtained when a mandate that grants one of the upstream's tools opens) and the
// periodic reaper (a mandate that expired with nobody to hear it loses its leases within an interval).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Agent } from '../../src/agents/agent.js';
import { explainEvent } from '../../src/audit/explain.js';
import { DEV_TRUST_DOMAIN } from '../../src/identity/dev-spiffe.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';

const until = async (what: string, fn: () => Promise<boolean>, ms = 5000) => {
  const end = Date.now() + ms;
  while (!(await fn())) {
    assert.ok(Date.now() < end, `timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
};

describe('eager leases and the periodic reaper', () => {
  let t: TestApp;
  let agent: Agent;
  before(async () => {
    t = await buildTestApp({
      config: {
        leases: {
          reapIntervalMs: 1000,
          upstreams: {
            tickets: { type: 'mandate-token', audience: 'https://tickets.eager.example/mcp', obtain: 'eager' },
            lazy: { type: 'mandate-token', audience: 'https://lazy.eager.example/mcp' },
          },
        },
      },
    });
    for (const id of ['tickets', 'lazy']) {
      await t.broker.upstreams.registry.create({ id, transport: { type: 'http', url: `http://127.0.0.1:9/${id}` } }, { discover: false });
    }
    agent = await t.broker.agents.register({
      id: 'eager-agent',
      displayName: 'eager',
      owner: 'alice',
      environment: 'production',
      identity: { spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/eager-agent` },
      ceiling: { tools: [{ tool: 'tickets.read' }, { tool: 'lazy.read' }, { tool: 'other.x' }], delegable: false },
    });
  });
  after(() => t?.close());

  const open = (tools: string[]) =>
    t.broker.mandates.open(agent, {
      type: 'mandate',
      purpose: 'eager',
      taskType: 'support.refund',
      environment: 'production',
      ttlSeconds: 300,
      tools: tools.map((tool) => ({ tool })),
      delegable: false,
    });

  test('an eager upstream gets its lease when the mandate opens; lazy ones and ungranted ones do not', async () => {
    const m = await open(['tickets.read', 'lazy.read']);
    await until('the eager lease', async () => (await t.broker.leases.service.list(m.id)).some((l) => l.status === 'active'));
    const leases = await t.broker.leases.service.list(m.id);
    assert.deepEqual(
      leases.map((l) => l.upstream),
      ['tickets'],
    );
    const other = await open(['other.x']);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(await t.broker.leases.service.list(other.id), [], 'no tool of the upstream granted: no lease');
    // The first call finds it held: no second lease.
    const cred = await t.broker.leases.service.credentialFor({ upstreamId: 'tickets', mandateId: m.id });
    assert.equal(cred?.leaseId, leases[0]?.id);
  });

  test('the periodic reaper revokes the leases of a mandate that expired unheard', async () => {
    const m = await open(['lazy.read']);
    await t.broker.leases.service.credentialFor({ upstreamId: 'lazy', mandateId: m.id });
    await t.broker.store.run('UPDATE mandates SET expires_at = ? WHERE id = ?', [Date.now() - 1, m.id]);
    await until('the reaper', async () => (await t.broker.leases.service.list(m.id))[0]?.status === 'revoked', 4000);
    assert.equal((await t.broker.leases.service.list(m.id))[0]?.revokeReason, 'mandate expired');
    // The revocation is audited right after the lease row says so (the row first, then the event).
    const revokedEvents = () => t.broker.audit.entriesBy('mandate_id', m.id, { types: ['lease.revoked'] });
    await until('the lease.revoked event', async () => (await revokedEvents()).length > 0, 4000);
    // explain, from the revocation event: the mandate, and the leases issued and revoked under it.
    const [revoked] = await revokedEvents();
    assert.ok(revoked);
    const x = await explainEvent(t.broker.audit, revoked.id);
    assert.equal(x.mandates[0]?.mandateId, m.id);
    assert.equal(x.mandates[0]?.opened?.event.type, 'mandate.opened');
    assert.deepEqual(
      x.mandates[0]?.leases?.map((e) => e.event.type),
      ['lease.issued', 'lease.revoked'],
    );
  });
});

describe('a lease shorter than its mandate is renewed', () => {
  let t: TestApp;
  let offset = 0;
  const clock = { now: () => Date.now() + offset };
  before(async () => {
    t = await buildTestApp({
      clock,
      config: {
        leases: {
          reapIntervalMs: 3_600_000,
          upstreams: { tickets: { type: 'mandate-token', audience: 'https://renew.example/mcp', maxTtlSeconds: 30 } },
        },
      },
    });
    await t.broker.upstreams.registry.create(
      { id: 'tickets', transport: { type: 'http', url: 'http://127.0.0.1:9/t' } },
      { discover: false },
    );
  });
  after(() => t?.close());

  test('after the token expires the next call gets a fresh one; the old lease is revoked, the mandate never outlived', async () => {
    const agent = await t.broker.agents.register({
      id: 'renew-agent',
      displayName: 'renew',
      owner: 'alice',
      environment: 'production',
      identity: { spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/renew-agent` },
      ceiling: { tools: [{ tool: 'tickets.read' }], delegable: false },
    });
    const m = await t.broker.mandates.open(agent, {
      type: 'mandate',
      purpose: 'renew',
      taskType: 'support.refund',
      environment: 'production',
      ttlSeconds: 100,
      tools: [{ tool: 'tickets.read' }],
      delegable: false,
    });
    const seam = t.broker.leases.service;
    const first = await seam.credentialFor({ upstreamId: 'tickets', mandateId: m.id });
    assert.ok((first?.expiresAt ?? 0) <= clock.now() + 30_000);
    offset += 31_000;
    const second = await seam.credentialFor({ upstreamId: 'tickets', mandateId: m.id });
    assert.notEqual(second?.leaseId, first?.leaseId);
    assert.notEqual(second?.headers?.Authorization, first?.headers?.Authorization);
    const leases = await seam.list(m.id);
    assert.deepEqual(leases.map((l) => l.status).sort(), ['active', 'revoked']);
    assert.equal(leases.find((l) => l.status === 'revoked')?.revokeReason, 'lease expired');
    // Near the mandate's end the lease is capped at the mandate's expiry.
    offset += 60_000;
    const last = await seam.credentialFor({ upstreamId: 'tickets', mandateId: m.id });
    assert.ok((last?.expiresAt ?? Number.POSITIVE_INFINITY) <= m.expiresAt);
  });
});
