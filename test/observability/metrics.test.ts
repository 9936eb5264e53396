// Domain metrics and refusal logs from a real broker: calls through /mcp (real token exchange, real
// upstreams), then /metrics scraped and parsed; refusal lines read from the broker's pino logger on
// a capturing destination. Also: docs/operations.md lists exactly the registered metrics and the
// spans, and the optional bearer token on /metrics.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { Metrics } from '../../src/observability/metrics.js';
import { SPANS } from '../../src/observability/tracing.js';
import { type GatewayHarness, meta, startGateway } from '../gateway/harness.js';
import { buildTestApp } from '../helpers/app.js';

/** Parses a Prometheus exposition into `name{labels}` → value. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const at = line.lastIndexOf(' ');
    out.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return out;
}

const series = (m: Map<string, number>, key: string) => m.get(key) ?? 0;

describe('domain metrics and refusal logs from real calls', () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  let h: GatewayHarness;
  const scrape = async () => {
    const res = await fetch(`${h.base}/metrics`);
    assert.equal(res.status, 200);
    return parse(await res.text());
  };

  before(async () => {
    h = await startGateway({ logger: pino({ level: 'info' }, sink) });
  });
  after(async () => h?.close());

  it('counts an allowed call, a denial by reason code, and times decide, audit append and the upstream', async () => {
    const before = await scrape();
    const { token, mandateId } = await h.mandate([
      { tool: 'helpdesk.search_tickets' },
      { tool: 'helpdesk.propose_refund', args: { customerId: { eq: 'C-1009' }, amountCents: { max: 25_000 } } },
    ]);
    const client = await h.connect(token);
    const ok = await client.callTool({ name: 'helpdesk.search_tickets', arguments: { query: 'charged twice' } });
    assert.notEqual(ok.isError, true);
    const scoped = await client.callTool({ name: 'helpdesk.propose_refund', arguments: { customerId: 'C-1009', amountCents: 99_999 } });
    assert.equal(meta(scoped).code, 'RPC_CALL_DENIED');
    const ungranted = await client.callTool({ name: 'helpdesk.delete_customer', arguments: { customerId: 'C-1009' } });
    assert.equal(meta(ungranted).code, 'RPC_CALL_DENIED');

    const now = await scrape();
    const d = (key: string) => series(now, key) - series(before, key);
    assert.equal(d('mandate_decisions_total{outcome="allow",reason="policy"}'), 1);
    assert.equal(d('mandate_decisions_total{outcome="deny",reason="scope"}'), 1);
    assert.equal(d('mandate_decisions_total{outcome="deny",reason="tool_not_granted"}'), 1);
    assert.equal(d('mandate_decisions_total{outcome="deny",reason="policy_forbid"}'), 0);
    assert.equal(d('mandate_decision_duration_seconds_count'), 2, 'decided twice (the ungranted tool is refused before deciding)');
    assert.equal(d('mandate_upstream_calls_total{upstream="helpdesk",outcome="ok"}'), 1);
    assert.equal(d('mandate_upstream_call_duration_seconds_count{upstream="helpdesk"}'), 1);
    // decision + result of the allowed call, the two refusals' decisions; the token exchange adds its own events.
    assert.ok(d('mandate_audit_append_duration_seconds_count') >= 4);
    assert.ok(d('mandate_token_requests_total{grant_type="urn:ietf:params:oauth:grant-type:token-exchange",result="issued"}') >= 1);
    assert.ok(now.has('mandate_change_feed_staleness_seconds'));
    // No identifiers in the exposition.
    const text = await (await fetch(`${h.base}/metrics`)).text();
    assert.ok(!text.includes(mandateId));
    assert.ok(!text.includes('C-1009'));

    // Each refusal logged once, with its code, reason code, decision, mandate and tool; no argument values.
    const refused = lines.filter((l) => l.msg === 'call refused' && l.mandateId === mandateId);
    assert.deepEqual(
      refused.map((l) => [l.code, l.reasonCode, l.tool]),
      [
        ['RPC_CALL_DENIED', 'scope', 'helpdesk.propose_refund'],
        ['RPC_CALL_DENIED', 'tool_not_granted', 'helpdesk.delete_customer'],
      ],
    );
    assert.equal(refused[0]?.decisionId, meta(scoped).decisionId);
    assert.equal(refused[1]?.decisionId, meta(ungranted).decisionId);
    assert.match(String(refused[0]?.reason), /amountCents/);
    assert.ok(!JSON.stringify(refused).includes('99999'), 'the refused amount is withheld from the log');
    assert.ok(!JSON.stringify(lines).includes(token), 'no token in any log line');
  });

  it('moves the pending gauge with an approval and records how long the human took', async () => {
    const call = { customerId: 'C-1009', amountCents: 4900 };
    const { token } = await h.mandate([
      { tool: 'helpdesk.execute_refund', args: { customerId: { eq: 'C-1009' }, amountCents: { max: 25_000 } } },
    ]);
    const client = await h.connect(token);
    const before = await scrape();
    const pendingBefore = series(before, 'mandate_approvals_pending');
    const first = await client.callTool({ name: 'helpdesk.execute_refund', arguments: call });
    const approvalId = meta(first).approvalId as string;
    assert.match(approvalId, /^apr_/);
    await client.callTool({ name: 'helpdesk.execute_refund', arguments: call });
    const asked = await scrape();
    assert.equal(series(asked, 'mandate_approvals_pending'), pendingBefore + 1);
    assert.equal(
      series(asked, 'mandate_decisions_total{outcome="approval_required",reason="policy"}') -
        series(before, 'mandate_decisions_total{outcome="approval_required",reason="policy"}'),
      1,
    );
    assert.equal(
      series(asked, 'mandate_decisions_total{outcome="approval_required",reason="pending"}') -
        series(before, 'mandate_decisions_total{outcome="approval_required",reason="pending"}'),
      1,
      'the retry while pending',
    );
    assert.equal(series(asked, 'mandate_approvals_requested_total') - series(before, 'mandate_approvals_requested_total'), 1);

    const ok = await fetch(`${h.base}/admin/v1/approvals/${approvalId}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await h.operatorToken('bob')}`, 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(ok.status, 200);
    const decided = await scrape();
    assert.equal(series(decided, 'mandate_approvals_pending'), pendingBefore);
    assert.equal(
      series(decided, 'mandate_approval_decision_duration_seconds_count{decision="approved"}') -
        series(before, 'mandate_approval_decision_duration_seconds_count{decision="approved"}'),
      1,
    );
    const done = await client.callTool({ name: 'helpdesk.execute_refund', arguments: call });
    assert.notEqual(done.isError, true);
    const ran = await scrape();
    assert.equal(
      series(ran, 'mandate_decisions_total{outcome="allow",reason="approval"}') -
        series(before, 'mandate_decisions_total{outcome="allow",reason="approval"}'),
      1,
    );
  });

  it('counts a refused token exchange by its registry code, and logs the refusal with its reason', async () => {
    const before = await scrape();
    const res = await fetch(`${h.base}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: 'not-a-jwt',
        subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
      }).toString(),
    });
    assert.equal(res.status, 400);
    const now = await scrape();
    const refused = [...now.entries()].filter(
      ([k, v]) =>
        k.startsWith('mandate_token_requests_total{grant_type="urn:ietf:params:oauth:grant-type:token-exchange",result="OAUTH_') &&
        v > series(before, k),
    );
    assert.equal(refused.length, 1, JSON.stringify(refused));
    const code = /result="([A-Z_]+)"/.exec(refused[0]?.[0] ?? '')?.[1];
    const line = lines.findLast((l) => l.msg === 'request refused' && l.code === code);
    assert.ok(line, `no refusal line with ${code}`);
    assert.equal(typeof line.reason, 'string');
    assert.ok(!JSON.stringify(lines).includes('not-a-jwt'), 'the presented token is not logged');
  });

  it('records when a revocation is in force on this replica', async () => {
    const { mandateId } = await h.mandate([{ tool: 'helpdesk.search_tickets' }]);
    const before = await scrape();
    const res = await fetch(`${h.base}/admin/v1/mandates/${mandateId}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await h.operatorToken('alice')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'metrics test' }),
    });
    assert.equal(res.status, 200, await res.text());
    const after = await scrape();
    assert.ok(
      series(after, 'mandate_revocation_propagation_seconds_count') > series(before, 'mandate_revocation_propagation_seconds_count'),
    );
    assert.ok(series(after, 'mandate_change_feed_applied_sequence') > series(before, 'mandate_change_feed_applied_sequence'));
    assert.ok(series(after, 'mandate_change_feed_lag_seconds_count') > series(before, 'mandate_change_feed_lag_seconds_count'));
  });
});

describe('docs/operations.md', () => {
  const doc = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');

  it('lists exactly the metrics the broker registers (process defaults aside)', async () => {
    const m = new Metrics();
    const registered = (await m.registry.getMetricsAsJSON())
      .map((x) => x.name)
      .filter((n) => !n.startsWith('mandate_process_') && !n.startsWith('mandate_nodejs_'));
    const documented = [...doc.matchAll(/^\| `(mandate_[a-z_]+)` \| (counter|gauge|histogram) \|/gm)].map((x) => x[1]);
    assert.deepEqual([...registered].sort(), [...documented].sort());
    // The type column is right too.
    for (const x of await m.registry.getMetricsAsJSON()) {
      const row = new RegExp(`^\\| \`${x.name}\` \\| ${x.type} \\|`, 'm');
      if (registered.includes(x.name)) assert.match(doc, row, x.name);
    }
  });

  it('lists exactly the spans', () => {
    const documented = [...doc.matchAll(/^\| `([a-z./_]+)` \| (server|client|internal) \|/gm)].map((x) => x[1]);
    assert.deepEqual([...Object.values(SPANS)].sort(), [...documented].sort());
  });
});

describe('/metrics behind a bearer token', () => {
  const TOKEN = 'scrape-token-0123456789abcdef0123456789';

  it('stays public by default', async () => {
    const t = await buildTestApp();
    try {
      assert.equal((await t.app.inject({ url: '/metrics' })).statusCode, 200);
      assert.ok(t.app.accessTable.some((e) => e.url === '/metrics' && e.access === 'public'));
    } finally {
      await t.close();
    }
  });

  it('demands the configured token when MANDATE_METRICS_TOKEN is set', async () => {
    const t = await buildTestApp({ env: { MANDATE_METRICS_TOKEN: TOKEN } });
    try {
      assert.ok(t.app.accessTable.some((e) => e.url === '/metrics' && e.access === 'scraper'));
      const none = await t.app.inject({ url: '/metrics' });
      assert.equal(none.statusCode, 401);
      assert.equal(none.json().error, 'ERR_AUTH_MISSING');
      for (const authorization of [
        `Bearer ${TOKEN}x`,
        `Bearer ${TOKEN.slice(0, -1)}`,
        `Basic ${TOKEN}`,
        'Bearer ',
        `Bearer ${'a'.repeat(600)}`,
      ]) {
        const res = await t.app.inject({ url: '/metrics', headers: { authorization } });
        assert.equal(res.statusCode, 401, authorization.slice(0, 20));
        assert.ok(!res.body.includes('mandate_decisions_total'));
      }
      // An operator's admin token is not the scrape token.
      const admin = await t.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${await t.operatorToken('alice')}` } });
      assert.equal(admin.statusCode, 401);
      const ok = await t.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(ok.statusCode, 200);
      assert.match(ok.body, /mandate_decisions_total/);
    } finally {
      await t.close();
    }
  });

  it('refuses a short MANDATE_METRICS_TOKEN at start', async () => {
    await assert.rejects(buildTestApp({ env: { MANDATE_METRICS_TOKEN: 'short' } }), { code: 'ERR_CONFIG_INVALID' });
  });
});
