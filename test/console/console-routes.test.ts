// The console's server side: static files with SPA fallback and a strict CSP, sign-in settings,
// the live event stream over the change feed, and the read models (overview, timeline, proof),
// on both stores.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { ensureConsoleBuilt } from '../helpers/console-build.js';
import { storeFactories } from '../helpers/stores.js';
import { freePort } from '../identity/helpers.js';

describe('console static files', () => {
  let t: TestApp;
  before(async () => {
    ensureConsoleBuilt();
    t = await buildTestApp();
  });
  after(() => t.close());

  test('serves index.html for console routes, with a CSP that allows no third party', async () => {
    for (const url of ['/console/', '/console/approvals/apr_1', '/console/mandates/mnd_x?status=active']) {
      const res = await t.app.inject({ url });
      assert.equal(res.statusCode, 200, url);
      assert.match(res.body, /<div id="root">/);
      assert.equal(res.headers['cache-control'], 'no-cache');
      const csp = String(res.headers['content-security-policy']);
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.equal(res.headers['referrer-policy'], 'no-referrer');
    }
  });

  test('hashed assets are immutable; a missing asset is a 404, not the app', async () => {
    const index = (await t.app.inject({ url: '/console/' })).body;
    const script = /src="\/console\/(assets\/[^"]+\.js)"/.exec(index)?.[1];
    assert.ok(script, 'index.html references a bundled script');
    const js = await t.app.inject({ url: `/console/${script}` });
    assert.equal(js.statusCode, 200);
    assert.match(String(js.headers['content-type']), /text\/javascript/);
    assert.match(String(js.headers['cache-control']), /immutable/);
    assert.doesNotMatch(index, /https?:\/\//, 'no CDN or remote reference in the page');
    assert.equal((await t.app.inject({ url: '/console/assets/nope.js' })).statusCode, 404);
    assert.equal((await t.app.inject({ url: '/console/../package.json' })).statusCode, 404);
    assert.equal((await t.app.inject({ url: '/console' })).headers.location, '/console/');
  });

  test('sign-in settings name the development issuer in demo mode', async () => {
    const s = (await t.app.inject({ url: '/console/config.json' })).json() as Record<string, unknown>;
    assert.equal(s.clientId, 'mandate-console');
    assert.equal(s.issuer, t.broker.devIssuer?.issuer);
    assert.match(String(s.redirectUri), /\/console\/callback$/);
    assert.equal(s.demo, true);
  });
});

for (const factory of await storeFactories()) {
  describe(`console APIs on ${factory.name}`, { skip: factory.skip }, () => {
    let t: TestApp;
    let base: string;
    let admin: string;
    before(async () => {
      const port = await freePort();
      t = await buildTestApp({ store: await factory.open(), config: { server: { port }, changes: { pollIntervalMs: 100 } } });
      await t.app.listen({ host: '127.0.0.1', port });
      base = `http://127.0.0.1:${port}`;
      admin = await t.operatorToken('alice');
    });
    after(async () => {
      await t.close();
      await factory.cleanup();
    });

    test('the event stream needs an operator and forwards agent changes and audit growth', async () => {
      assert.equal((await fetch(`${base}/admin/v1/events`)).status, 401);
      const controller = new AbortController();
      // The timeout turns a missing event into a failure instead of a hang.
      const signal = AbortSignal.any([controller.signal, AbortSignal.timeout(30_000)]);
      const res = await fetch(`${base}/admin/v1/events`, { headers: { authorization: `Bearer ${admin}` }, signal });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      let text = '';
      const until = async (re: RegExp) => {
        while (!re.test(text)) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`stream ended before ${re}: ${text}`);
          text += decoder.decode(value, { stream: true });
        }
      };
      await until(/event: ready/);
      // Quarantining an agent writes a change (topic agent) and an audit event.
      const q = await fetch(`${base}/admin/v1/agents/support-triage/quarantine`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: '{}',
      });
      assert.equal(q.status, 200);
      await until(/event: agent\ndata: \{"key":"support-triage"/);
      await until(/event: audit\ndata: \{"size":\d+\}/);
      controller.abort();
    });

    test('overview counts decisions and approval latency; the timeline filters; an event proves against a checkpoint', async () => {
      const audit = t.broker.audit;
      const actors = [{ type: 'agent' as const, id: 'support-triage' }];
      for (const outcome of ['allow', 'allow', 'deny', 'approval_required']) {
        await audit.append({
          type: 'decision',
          actors,
          mandateId: 'mnd_t1',
          data: { outcome, tool: 'helpdesk.get_customer', decisionId: `d-${outcome}` },
        });
      }
      await audit.append({ type: 'approval.requested', actors, mandateId: 'mnd_t1', data: { approvalId: 'apr_t1' } });
      await audit.append({
        type: 'approval.decided',
        actors: [{ type: 'human', id: 'carol' }],
        mandateId: 'mnd_t1',
        data: { approvalId: 'apr_t1', outcome: 'approved' },
      });
      const get = async (path: string) => {
        const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${admin}` } });
        assert.equal(r.status, 200, await r.clone().text());
        return r.json() as Promise<Record<string, unknown>>;
      };
      const o = (await get('/admin/v1/console/overview?hours=1&buckets=6')) as {
        totals: Record<string, number>;
        buckets: { approvalLatencyP50: number | null }[];
      };
      assert.deepEqual(o.totals, { calls: 4, allowed: 2, denied: 1, approvalRequired: 1, approvalsRequested: 1, approvalsDecided: 1 });
      assert.ok(o.buckets.some((b) => b.approvalLatencyP50 !== null && b.approvalLatencyP50 >= 0));

      const denies = (await get('/admin/v1/console/audit?outcome=deny&agent=support-triage')) as {
        items: { event: { data: { outcome: string } } }[];
      };
      assert.equal(denies.items.length, 1);
      assert.equal(denies.items[0]?.event.data.outcome, 'deny');
      const byHuman = (await get('/admin/v1/console/audit?human=carol')) as { items: { event: { type: string } }[] };
      assert.deepEqual(
        byHuman.items.map((i) => i.event.type),
        ['approval.decided'],
      );
      const none = (await get('/admin/v1/console/audit?mandate=mnd_other')) as { items: unknown[] };
      assert.equal(none.items.length, 0);

      const newest = (await get('/admin/v1/console/audit?limit=1')) as { items: { id: string; seq: number }[] };
      const id = newest.items[0]?.id ?? '';
      const one = (await get(`/admin/v1/console/audit/${id}`)) as {
        proof: { treeSize: number; hashes: string[] };
        checkpoint: { size: number; note: string };
        vkey: string;
      };
      // The proof is for a signed checkpoint that includes the event, never the moving head.
      assert.equal(one.proof.treeSize, one.checkpoint.size);
      assert.ok(one.checkpoint.size > (newest.items[0]?.seq ?? Number.POSITIVE_INFINITY));
      assert.match(one.checkpoint.note, /\n\n— /);
      assert.equal(one.vkey, audit.vkey);
      const approver = await t.operatorToken('carol');
      const forbidden = await fetch(`${base}/admin/v1/console/audit`, { headers: { authorization: `Bearer ${approver}` } });
      assert.equal(forbidden.status, 403);
    });

    test('what-if explains a hand-written call against the live policy set', async () => {
      const r = await fetch(`${base}/admin/v1/console/policy/explain`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          call: {
            tool: { name: 'helpdesk.execute_refund', actionClass: 'execute', sensitivity: 'confidential' },
            args: { customerId: 'C-1009', amountCents: 25_000 },
          },
        }),
      });
      assert.equal(r.status, 200);
      const x = (await r.json()) as { outcome: string; approvalRoles: string[]; policies: { id: string }[] };
      assert.equal(x.outcome, 'approval_required');
      assert.deepEqual(x.approvalRoles, ['finance']);
      assert.ok(x.policies.some((p) => p.id === 'large-refund-needs-finance'));
    });
  });
}
