// The demo agent survives a long approval wait: with the broker's and the agent's clock moved on
// by 11 minutes while it waits (5-minute tokens expire twice over), it renews its access token with
// the rotated refresh token and keeps the SAME mandate and MCP session, so the approved refund
// runs and the mandate completes. Real broker, real upstreams, no waiting in real time.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runDemoAgent } from '../../src/demo/agent.js';
import type { Clock } from '../../src/lib/clock.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { freePort } from './helpers.js';

describe('demo agent across token expiries', () => {
  let t: TestApp;
  let base: string;
  let offsetMs = 0;
  const clock: Clock = { now: () => Date.now() + offsetMs };
  before(async () => {
    const port = await freePort();
    // The replica freshness check runs on the moved clock too; it is not under test here.
    t = await buildTestApp({ config: { server: { port }, changes: { maxStalenessMs: 3_600_000 } }, clock });
    await t.app.listen({ host: '127.0.0.1', port });
    base = `http://127.0.0.1:${port}`;
  });
  after(() => t.close());

  test('an 11-minute approval wait: the token is renewed, the mandate stays the same, the refund runs', async () => {
    const lines: string[] = [];
    const run = runDemoAgent({
      url: base,
      dataDir: t.dataDir,
      onBehalfOf: 'bob',
      pollMs: 100,
      approvalTimeoutMs: 3_600_000,
      keepOpen: false,
      log: (line) => lines.push(line),
      clock,
    });
    let approvalId: string | undefined;
    const deadline = Date.now() + 60_000;
    while (approvalId === undefined) {
      approvalId = /waiting for approval (apr_[A-Za-z0-9-]+)/.exec(lines.join('\n'))?.[1];
      if (Date.now() > deadline) assert.fail(`no approval was requested:\n${lines.join('\n')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    // Eleven minutes pass in steps while the agent keeps retrying the call.
    for (let i = 0; i < 11; i++) {
      offsetMs += 60_000;
      await new Promise((r) => setTimeout(r, 250));
    }
    const carol = await t.operatorToken('carol');
    const res = await fetch(`${base}/admin/v1/approvals/${approvalId}/approve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${carol}`, 'content-type': 'application/json' },
      body: JSON.stringify({ note: 'duplicate charge confirmed' }),
    });
    assert.equal(res.status, 200, await res.text());
    const result = await run;
    const log = lines.join('\n');
    assert.equal(result.approved, true, log);
    assert.equal(result.completed, true, log);
    assert.ok(result.renewals >= 2, `renewed ${result.renewals} times:\n${log}`);
    // Every renewal names the same mandate.
    const renewed = [...log.matchAll(/same mandate (mnd_[A-Za-z0-9_-]+)/g)].map((m) => m[1]);
    assert.equal(renewed.length, result.renewals);
    assert.ok(
      renewed.every((id) => id === result.mandateId),
      log,
    );
    assert.equal((await t.broker.mandates.require(result.mandateId)).status, 'completed');
    const issued = await t.broker.audit.entriesBy('mandate_id', result.mandateId, { types: ['token.issued'] });
    assert.equal(issued.filter((e) => (e.event.data as Record<string, unknown>).grant === 'refresh_token').length, result.renewals);
    // One mandate for the whole run of the root agent.
    assert.equal((await t.broker.mandates.list({ agentId: 'support-triage' })).length, 1);
  });
});
