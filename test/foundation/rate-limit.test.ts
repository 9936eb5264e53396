// Floods: per-address rate limits on the token endpoint, AuthZEN and sources that keep failing
// authentication (429 + Retry-After, in each endpoint's error shape), and refusals of unauthenticated
// requests counted into one `refusal.aggregated` audit event per source and window, while every
// decision about an authenticated caller is still audited on its own.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { explainEvent, renderExplanation } from '../../src/audit/explain.js';
import { OTHER_SOURCES, RefusalAggregator } from '../../src/audit/refusal-aggregator.js';
import type { AuditEventInput, AuditLog, AuditReceipt } from '../../src/audit/types.js';
import { createBroker } from '../../src/broker.js';
import { buildConfig, type ConfigInput } from '../../src/config/load.js';
import { buildApp } from '../../src/http/app.js';
import { GRANT_TOKEN_EXCHANGE, TOKEN_TYPE } from '../../src/oauth/token-exchange.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { mandateRequest, TRIAGE } from '../identity/helpers.js';

const FORM = 'application/x-www-form-urlencoded';

/** A token request whose subject token nobody could verify. */
const garbage = (i: number) =>
  new URLSearchParams({
    grant_type: GRANT_TOKEN_EXCHANGE,
    subject_token: `garbage-${i}`,
    subject_token_type: TOKEN_TYPE.jwt,
    authorization_details: JSON.stringify([mandateRequest()]),
  }).toString();

async function app(rateLimit: Record<string, unknown>): Promise<TestApp> {
  return buildTestApp({ config: { server: { rateLimit } } as ConfigInput });
}

const tokenPost = (t: TestApp, body: string, remoteAddress = '127.0.0.1') =>
  t.app.inject({ method: 'POST', url: '/oauth/token', headers: { 'content-type': FORM }, payload: body, remoteAddress });

async function eventsSince(t: TestApp, size: number) {
  const head = (await t.broker.audit.head()).size;
  return t.broker.audit.entries(size, head);
}

describe('token endpoint flood', () => {
  let t: TestApp;
  before(async () => {
    t = await app({ tokenEndpoint: 10 });
  });
  after(async () => {
    await t.close();
  });

  test('50 garbage token requests: 10 refused as invalid, 40 get 429 slow_down with Retry-After; ONE audit event with the count', async () => {
    await t.broker.refusals.flush();
    const start = (await t.broker.audit.head()).size;
    const statuses: number[] = [];
    for (let i = 0; i < 50; i++) {
      const res = await tokenPost(t, garbage(i));
      statuses.push(res.statusCode);
      if (res.statusCode === 429) {
        assert.equal(res.json().error, 'slow_down', 'OAuth endpoints answer in the OAuth error shape');
        assert.equal(typeof res.json().error_description, 'string');
        assert.match(String(res.headers['retry-after']), /^[1-9]\d*$/);
        assert.equal(res.headers['x-ratelimit-remaining'], undefined, 'no quota hints for probers');
        assert.ok(res.headers['x-request-id'], 'a 429 carries the request id like every response');
      }
    }
    assert.deepEqual(
      statuses.map((s) => (s === 429 ? 429 : 400)),
      [...Array(10).fill(400), ...Array(40).fill(429)],
    );
    assert.ok(statuses.slice(0, 10).every((s) => s === 400));
    // Nothing was written per request…
    assert.equal((await eventsSince(t, start)).length, 0, 'no audit event per garbage request');
    // …and the window ends in one event for this source, with the count.
    await t.broker.refusals.flush();
    const events = await eventsSince(t, start);
    assert.equal(events.length, 1);
    const [event] = events;
    assert.equal(event?.event.type, 'refusal.aggregated');
    assert.equal(event?.event.data.source, '127.0.0.1');
    assert.equal(event?.event.data.count, 50);
    const codes = event?.event.data.codes as Record<string, number>;
    assert.equal(codes.OAUTH_RATE_LIMITED, 40);
    assert.equal(codes.OAUTH_INVALID_SUBJECT_TOKEN, 10);
    assert.deepEqual(event?.event.data.endpoints, { token: 50 });
    assert.ok(!JSON.stringify(events).includes('garbage-'), 'the presented token never reaches the log');

    // The event goes through explain like any other.
    const text = renderExplanation(await explainEvent(t.broker.audit, event?.id ?? ''));
    assert.match(text, /refusal\.aggregated/);
  });

  test('another address has its own budget and its own event', async () => {
    const start = (await t.broker.audit.head()).size;
    const res = await tokenPost(t, garbage(99), '10.9.8.7');
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error, 'invalid_request');
    await t.broker.refusals.flush();
    const events = await eventsSince(t, start);
    assert.deepEqual(
      events.map((e) => [e.event.type, e.event.data.source, e.event.data.count]),
      [['refusal.aggregated', '10.9.8.7', 1]],
    );
  });

  test('health probes answer from a throttled address', async () => {
    assert.equal((await tokenPost(t, garbage(1))).statusCode, 429);
    assert.equal((await t.app.inject('/healthz')).statusCode, 200);
    assert.equal((await t.app.inject('/readyz')).statusCode, 200);
  });
});

describe('authenticated decisions are never aggregated', () => {
  let t: TestApp;
  before(async () => {
    t = await app({ tokenEndpoint: 100 });
  });
  after(async () => {
    await t.close();
  });

  const svidBody = async (spiffeId: string) => {
    const dev = t.broker.identity.devSpiffe;
    assert.ok(dev);
    const svid = await dev.mint({ spiffeId, audience: t.broker.identity.proofAudience });
    return new URLSearchParams({
      grant_type: GRANT_TOKEN_EXCHANGE,
      subject_token: svid,
      subject_token_type: TOKEN_TYPE.jwt,
      authorization_details: JSON.stringify([mandateRequest()]),
    }).toString();
  };

  test('each issued token and each refusal of a verified identity has its own event, amid garbage', async () => {
    const start = (await t.broker.audit.head()).size;
    for (let i = 0; i < 5; i++) {
      assert.equal((await tokenPost(t, await svidBody(TRIAGE))).statusCode, 200);
      assert.equal((await tokenPost(t, garbage(i))).statusCode, 400);
      // A valid proof of an unregistered workload is an authenticated caller: audited on its own.
      assert.equal((await tokenPost(t, await svidBody('spiffe://demo.mandate.local/agent/ghost'))).statusCode, 400);
    }
    await t.broker.refusals.flush();
    const events = await eventsSince(t, start);
    const count = (type: string) => events.filter((e) => e.event.type === type).length;
    assert.equal(count('token.issued'), 5);
    assert.equal(count('mandate.opened'), 5);
    assert.equal(count('identity.rejected'), 5);
    assert.ok(events.filter((e) => e.event.type === 'identity.rejected').every((e) => e.event.data.reason === 'not registered'));
    assert.equal(count('mandate.refused'), 5);
    const aggregated = events.filter((e) => e.event.type === 'refusal.aggregated');
    assert.equal(aggregated.length, 1);
    assert.equal(aggregated[0]?.event.data.count, 5, 'only the garbage was counted');
  });
});

describe('unauthenticated requests in general', () => {
  let t: TestApp;
  before(async () => {
    t = await app({ unauthenticated: 6, authzen: 3 });
  });
  after(async () => {
    await t.close();
  });

  test('401s on /mcp, the admin API and AuthZEN are counted per source; past the budget the source gets 429', async () => {
    await t.broker.refusals.flush();
    const start = (await t.broker.audit.head()).size;
    const from = '192.0.2.10';
    const host = new URL(t.broker.gateway.resource).host;
    const refused = [
      await t.app.inject({ method: 'POST', url: '/mcp', payload: {}, headers: { host }, remoteAddress: from }),
      await t.app.inject({ method: 'GET', url: '/admin/v1/agents', remoteAddress: from }),
      await t.app.inject({ method: 'GET', url: '/admin/v1/agents', headers: { authorization: 'Bearer nonsense' }, remoteAddress: from }),
      await t.app.inject({ method: 'POST', url: '/access/v1/evaluation', payload: {}, remoteAddress: from }),
      await t.app.inject({ method: 'GET', url: '/admin/v1/principals', remoteAddress: from }),
      await t.app.inject({
        method: 'POST',
        url: '/mcp',
        payload: {},
        headers: { host, authorization: 'Bearer x.y.z' },
        remoteAddress: from,
      }),
    ];
    assert.deepEqual(
      refused.map((r) => r.statusCode),
      [401, 401, 401, 401, 401, 401],
    );
    // The budget (6 refused authentications) is spent: the next request is refused before any verification.
    const admin = await t.app.inject({ method: 'GET', url: '/admin/v1/agents', remoteAddress: from });
    assert.equal(admin.statusCode, 429);
    assert.equal(admin.json().error, 'ERR_RATE_LIMITED');
    assert.ok(Number(admin.headers['retry-after']) >= 1);
    const mcp = await t.app.inject({ method: 'POST', url: '/mcp', payload: {}, headers: { host }, remoteAddress: from });
    assert.equal(mcp.statusCode, 429);
    assert.equal(mcp.json().error.data.code, 'ERR_RATE_LIMITED', '/mcp answers JSON-RPC, its 429 too');
    assert.ok(Number(mcp.headers['retry-after']) >= 1);
    // Even a valid operator token waits for the window from this source…
    const alice = await t.operatorToken('alice');
    const blocked = await t.app.inject({
      method: 'GET',
      url: '/admin/v1/agents',
      headers: { authorization: `Bearer ${alice}` },
      remoteAddress: from,
    });
    assert.equal(blocked.statusCode, 429);
    // …while another source is served.
    const served = await t.app.inject({ method: 'GET', url: '/admin/v1/agents', headers: { authorization: `Bearer ${alice}` } });
    assert.equal(served.statusCode, 200);

    await t.broker.refusals.flush();
    const events = (await eventsSince(t, start)).filter((e) => e.event.type === 'refusal.aggregated');
    assert.equal(events.length, 1);
    const data = events[0]?.event.data as {
      source: string;
      count: number;
      endpoints: Record<string, number>;
      codes: Record<string, number>;
    };
    assert.equal(data.source, from);
    assert.equal(data.count, 9);
    assert.equal(data.endpoints['/mcp'], 3);
    assert.equal(data.endpoints['/admin/v1/agents'], 4);
    assert.equal(data.endpoints['/access/v1/evaluation'], 1);
    assert.equal(data.codes.ERR_AUTH_MISSING, 3);
    assert.equal(data.codes.OAUTH_INVALID_TOKEN, 2);
    assert.equal(data.codes.ERR_RATE_LIMITED, 3);
  });

  test('AuthZEN: requests per address beyond the limit get 429 ERR_RATE_LIMITED', async () => {
    const alice = await t.operatorToken('alice');
    const ask = () =>
      t.app.inject({
        method: 'POST',
        url: '/access/v1/evaluation',
        headers: { authorization: `Bearer ${alice}` },
        payload: { subject: { type: 'agent', id: 'a' }, action: { name: 'read' }, resource: { type: 'tool', id: 't' } },
        remoteAddress: '198.51.100.7',
      });
    const start = (await t.broker.audit.head()).size;
    const statuses = [];
    for (let i = 0; i < 5; i++) statuses.push((await ask()).statusCode);
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    // Every answered (authenticated) evaluation has its own decision event; the throttled ones were never evaluated.
    const decisions = (await eventsSince(t, start)).filter((e) => e.event.type === 'decision');
    assert.equal(decisions.length, 3);
    const res = await ask();
    assert.equal(res.json().error, 'ERR_RATE_LIMITED');
    assert.ok(Number(res.headers['retry-after']) >= 1);
  });
});

describe('shutdown', () => {
  test('closing the broker writes the open window before the audit log closes', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'mandate-refusals-'));
    try {
      const config = buildConfig({ mode: 'demo', dataDir, log: { level: 'silent' } }, { env: {} });
      const broker = await createBroker(config);
      const server = await buildApp(broker);
      for (let i = 0; i < 3; i++) {
        const res = await server.inject({
          method: 'POST',
          url: '/oauth/token',
          headers: { 'content-type': FORM },
          payload: garbage(i),
          remoteAddress: '203.0.113.9',
        });
        assert.equal(res.statusCode, 400);
      }
      await server.close();
      const store = openSqliteStore({ path: join(dataDir, 'mandate.db') });
      try {
        const rows = await store.query<{ body: string }>("SELECT body FROM audit_entries WHERE type = 'refusal.aggregated'");
        assert.equal(rows.length, 1);
        const leaf = JSON.parse(rows[0]?.body ?? '{}') as { event: { data: { source: string; count: number } } };
        assert.deepEqual([leaf.event.data.source, leaf.event.data.count], ['203.0.113.9', 3]);
      } finally {
        await store.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('limits off', () => {
  test('with server.rateLimit.enabled false nothing is throttled, and garbage is still aggregated', async () => {
    const t = await app({ enabled: false, tokenEndpoint: 1 });
    try {
      await t.broker.refusals.flush();
      const start = (await t.broker.audit.head()).size;
      for (let i = 0; i < 20; i++) assert.equal((await tokenPost(t, garbage(i))).statusCode, 400);
      await t.broker.refusals.flush();
      const events = await eventsSince(t, start);
      assert.deepEqual(
        events.map((e) => [e.event.type, e.event.data.count]),
        [['refusal.aggregated', 20]],
      );
    } finally {
      await t.close();
    }
  });
});

/** An audit log that keeps what it is given (the aggregator's contract is AuditLog.append). */
class KeptLog implements AuditLog {
  readonly events: AuditEventInput[] = [];
  async append(event: AuditEventInput): Promise<AuditReceipt> {
    this.events.push(event);
    return { seq: this.events.length - 1, id: String(this.events.length - 1), leafHash: '' };
  }
  redact(secret: string): string {
    return secret;
  }
}

describe('RefusalAggregator', () => {
  test('writes one event per source when the window ends by itself, and nothing for an empty window', async () => {
    const log = new KeptLog();
    const agg = new RefusalAggregator({ audit: log, windowMs: 50, maxSources: 10 });
    for (let i = 0; i < 7; i++) agg.record({ source: 'a', endpoint: 'token', code: 'X' });
    agg.record({ source: 'b', endpoint: '/mcp', code: 'Y' });
    await new Promise((r) => setTimeout(r, 80));
    assert.deepEqual(
      log.events.map((e) => [e.type, e.data.source, e.data.count]),
      [
        ['refusal.aggregated', 'a', 7],
        ['refusal.aggregated', 'b', 1],
      ],
    );
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(log.events.length, 2, 'an empty window writes nothing');
    await agg.close();
  });

  test('close writes the open window; later refusals are ignored', async () => {
    const log = new KeptLog();
    const agg = new RefusalAggregator({ audit: log, windowMs: 60_000, maxSources: 10 });
    agg.record({ source: 'a', endpoint: 'token', code: 'X' });
    await agg.close();
    assert.equal(log.events.length, 1);
    agg.record({ source: 'a', endpoint: 'token', code: 'X' });
    await agg.flush();
    assert.equal(log.events.length, 1);
  });

  test('a flood from more sources than maxSources is bounded: the rest share one bucket', async () => {
    const log = new KeptLog();
    const agg = new RefusalAggregator({ audit: log, windowMs: 60_000, maxSources: 3 });
    for (let i = 0; i < 1000; i++) agg.record({ source: `10.0.${i >> 8}.${i & 255}`, endpoint: 'token', code: 'X' });
    await agg.close();
    assert.equal(log.events.length, 4);
    const other = log.events.find((e) => e.data.source === OTHER_SOURCES);
    assert.equal(other?.data.count, 997);
  });
});
