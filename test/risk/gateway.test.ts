// The risk engine end to end through the real gateway, on both stores: an agent probing tools
// outside its mandate is first held for approval, then its delegation tree is revoked; the audit
// log names the signals; the owner's webhook gets a Standard Webhooks message; the agent can be
// quarantined. PostgreSQL half: skipped only when unreachable on a developer machine, with the
// reason; under CI storeFactories never skips.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { Webhook } from 'standardwebhooks';
import { explainEvent, renderExplanation } from '../../src/audit/explain.js';
import { meta, startGateway, TESTER } from '../gateway/harness.js';
import { storeFactories } from '../helpers/stores.js';

// A fixed test fixture secret (Standard Webhooks format), not a real credential.
const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const code = (r: unknown) => meta(r).code as string | undefined;

for (const factory of await storeFactories()) {
  describe(`risk through the gateway (${factory.name})`, { skip: factory.skip }, () => {
    let receiver: Server;
    const alerts: { headers: Record<string, string>; body: string }[] = [];
    before(async () => {
      receiver = createServer((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          alerts.push({ headers: req.headers as Record<string, string>, body });
          res.writeHead(204).end();
        });
      });
      await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    });
    after(async () => {
      receiver.close();
      await factory.cleanup();
    });

    test('probing: held for approval after 6 refusals, the tree revoked after 10, the owner told; the audit names the signals', async () => {
      const port = (receiver.address() as AddressInfo).port;
      const gw = await startGateway({
        store: await factory.open(),
        env: { MANDATE_RISK_WEBHOOK_SECRET: SECRET },
        config: { risk: { webhook: { url: `http://127.0.0.1:${port}/risk`, maxAttempts: 1 } }, server: { rateLimit: { enabled: false } } },
      });
      try {
        const { token, mandateId } = await gw.mandate([{ tool: 'helpdesk.search_tickets' }]);
        const client = await gw.connect(token);
        const granted = () =>
          client.callTool({ name: 'helpdesk.search_tickets', arguments: { query: 'refund' } }) as Promise<CallToolResult>;
        assert.notEqual((await granted()).isError, true, 'allowed before any probing');
        for (let i = 1; i <= 6; i++) {
          const r = (await client.callTool({ name: `secret.tool_${i}`, arguments: {} })) as CallToolResult;
          assert.equal(code(r), 'RPC_CALL_DENIED');
        }
        const held = await granted();
        assert.equal(held.isError, true);
        assert.equal(code(held), 'RPC_APPROVAL_REQUIRED', 'a require_approval response holds the granted call');
        for (let i = 7; i <= 10; i++) await client.callTool({ name: `secret.tool_${i}`, arguments: {} });
        const revoked = await until('the revocation', async () => {
          const m = await gw.broker.mandates.get(mandateId);
          return m?.status === 'revoked' ? m : undefined;
        });
        assert.equal(revoked.status, 'revoked');
        const events = await gw.broker.audit.entriesBy('mandate_id', mandateId);
        const responses = events.filter((e) => e.event.type === 'risk.response');
        const revoke = responses.find((e) => (e.event.data as { action?: string }).action === 'revoke');
        assert.ok(revoke, `risk.response events: ${JSON.stringify(responses.map((e) => e.event.data))}`);
        const signals = (revoke.event.data as { signals: { signal: string }[] }).signals.map((s) => s.signal);
        assert.deepEqual(signals.slice(0, 2), ['scope_probe', 'deny_rate']);
        // The revocation is audited as system/risk, after the response event.
        const ended = events.find((e) => e.event.type === 'mandate.revoked');
        assert.ok(ended && ended.seq > revoke.seq);
        // explain of the revocation shows the responses and the signals behind them.
        const told = renderExplanation(await explainEvent(gw.broker.audit, ended.id));
        assert.match(told, /risk\.response .*: revoke \(tree score \d+: scope_probe \+50/);
        // The owner's endpoint got a signed alert (agent score crossed 50).
        const alert = await until('the owner alert', async () => alerts.find((a) => a.body.includes('risk.alert')));
        const verified = new Webhook(SECRET).verify(alert.body, alert.headers) as { type: string; data: { agent: string; owner: string } };
        assert.equal(verified.type, 'risk.alert');
        assert.equal(verified.data.agent, TESTER.id);
        assert.equal(verified.data.owner, 'alice');
        assert.equal(gw.broker.risk.engine.score('tree', mandateId).signals[0]?.signal, 'scope_probe');
      } finally {
        await gw.close();
      }
    });

    test('the risk admin API refuses the unauthenticated, the unauthorized and malformed subjects', async () => {
      const gw = await startGateway({ store: await factory.open(), config: { server: { rateLimit: { enabled: false } } } });
      try {
        const { mandateId } = await gw.mandate([{ tool: 'helpdesk.search_tickets' }]);
        const get = async (path: string, token?: string) =>
          fetch(`${gw.base}${path}`, token === undefined ? {} : { headers: { authorization: `Bearer ${token}` } });
        const admin = await gw.operatorToken('alice');
        assert.equal((await get(`/admin/v1/risk/mandate/${mandateId}`)).status, 401);
        // An approver may decide approvals, not read agents' risk.
        assert.equal((await get(`/admin/v1/risk/mandate/${mandateId}`, await gw.operatorToken('bob', ['approver']))).status, 403);
        assert.equal((await get('/admin/v1/risk/nobody/x', admin)).status, 400, 'unknown subject kind');
        assert.equal((await get(`/admin/v1/risk/agent/${'a'.repeat(300)}`, admin)).status, 400, 'oversized id');
        assert.equal((await get('/admin/v1/risk/scores?subject=agent&limit=99999', admin)).status, 400, 'limit out of range');
        // An encoded path is an id like any other: looked up, never resolved against anything.
        const dotted = await get('/admin/v1/risk/tree/..%2F..%2Fagents', admin);
        assert.equal(dotted.status, 200);
        assert.deepEqual(await dotted.json(), { subject: 'tree', id: '../../agents', score: 0, signals: [], timeline: [] });
        const own = (await (await get(`/admin/v1/risk/mandate/${mandateId}`, admin)).json()) as { score: number };
        assert.equal(own.score, 0);
      } finally {
        await gw.close();
      }
    });

    test('a quarantine response stops the agent on its next call; legitimate calls trigger nothing', async () => {
      const gw = await startGateway({
        store: await factory.open(),
        config: {
          risk: { responses: [{ action: 'quarantine', subject: 'agent', at: 45 }] },
          server: { rateLimit: { enabled: false } },
        },
      });
      try {
        const { token } = await gw.mandate([{ tool: 'helpdesk.search_tickets' }, { tool: 'helpdesk.get_customer' }]);
        const client = await gw.connect(token);
        for (let i = 0; i < 20; i++) {
          const r = (await client.callTool({ name: 'helpdesk.search_tickets', arguments: { query: `q${i}` } })) as CallToolResult;
          assert.notEqual(r.isError, true);
        }
        assert.equal(gw.broker.risk.engine.score('agent', TESTER.id).score, 0, 'legitimate work scores 0');
        for (let i = 0; i < 10; i++) await client.callTool({ name: `other.tool_${i}`, arguments: {} });
        const agent = await until('the quarantine', async () => {
          const a = await gw.broker.agents.get(TESTER.id);
          return a?.principal.status === 'quarantined' ? a : undefined;
        });
        assert.equal(agent.principal.status, 'quarantined');
      } finally {
        await gw.close();
      }
    });
  });
}
