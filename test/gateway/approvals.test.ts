// Approvals on both stores: binding to the canonical call, single use under concurrency, expiry,
// denial, who may decide, and signed webhook notifications to a real local receiver.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import type { ApprovalContext } from '../../src/approvals/approval.js';
import { callHash } from '../../src/approvals/call-hash.js';
import { WebhookNotifier } from '../../src/approvals/notifier.js';
import { type ApprovalRequest, ApprovalService, type Approver } from '../../src/approvals/service.js';
import type { AuditService } from '../../src/audit/log.js';
import { systemClock } from '../../src/lib/clock.js';
import { ChangeFeed } from '../../src/store/changes.js';
import type { Store } from '../../src/store/types.js';
import { generateWebhookSecret, WebhookDeliveries, WebhookSender } from '../../src/webhooks/index.js';
import { fakeClock, openAudit, testSecrets } from '../audit/helpers.js';
import { storeFactories } from '../helpers/stores.js';

const SECRET = generateWebhookSecret();

describe('canonical call hash', () => {
  it('ignores key order and changes with any argument, the tool or the mandate', () => {
    const base = callHash({ mandateId: 'm1', tool: 'helpdesk.execute_refund', args: { customerId: 'C-1009', amountCents: 4900 } });
    assert.equal(base, callHash({ mandateId: 'm1', tool: 'helpdesk.execute_refund', args: { amountCents: 4900, customerId: 'C-1009' } }));
    assert.match(base, /^[0-9a-f]{64}$/);
    for (const other of [
      { mandateId: 'm1', tool: 'helpdesk.execute_refund', args: { customerId: 'C-1009', amountCents: 4901 } },
      { mandateId: 'm1', tool: 'helpdesk.execute_refund', args: { customerId: 'C-1009', amountCents: '4900' } },
      { mandateId: 'm1', tool: 'helpdesk.execute_refund', args: { customerId: 'C-1009', amountCents: 4900, note: '' } },
      { mandateId: 'm2', tool: 'helpdesk.execute_refund', args: { customerId: 'C-1009', amountCents: 4900 } },
      { mandateId: 'm1', tool: 'helpdesk.propose_refund', args: { customerId: 'C-1009', amountCents: 4900 } },
    ]) {
      assert.notEqual(callHash(other), base);
    }
  });
});

const human = (id: string, roles: string[]): Approver => ({ id, name: id, roles, via: 'oidc' });

for (const factory of await storeFactories()) {
  describe(`approvals (${factory.name})`, { skip: factory.skip }, () => {
    let store: Store;
    let changes: ChangeFeed;
    let audit: AuditService;
    let service: ApprovalService;
    let receiver: Server;
    const received: { body: string; headers: Record<string, string> }[] = [];
    const clock = fakeClock();
    const ended = new Set<string>();
    let n = 0;

    const request = (over: Partial<ApprovalRequest> = {}): ApprovalRequest => {
      const mandateId = over.mandateId ?? `m-${++n}`;
      const args = { customerId: 'C-1009', amountCents: 4900 };
      return {
        callHash: callHash({ mandateId, tool: 'helpdesk.execute_refund', args }),
        mandateId,
        tool: 'helpdesk.execute_refund',
        agentId: 'support-triage',
        onBehalfOf: 'dana',
        requiredRoles: ['support-lead', 'finance'],
        forbiddenApprovers: ['support-triage', 'dana'],
        decisionId: `d-${n}`,
        reasons: ['production-refund-needs-approval'],
        context: { purpose: 'refund', args } as unknown as ApprovalContext,
        environment: 'production',
        actors: [{ type: 'agent', id: 'support-triage' }],
        ...over,
      };
    };

    before(async () => {
      store = await factory.open();
      changes = new ChangeFeed(store, { clock, pollIntervalMs: 60_000 });
      await changes.start();
      audit = await openAudit(store, testSecrets(), clock);
      receiver = createServer((req, res) => {
        let body = '';
        req.on('data', (c) => (body += c));
        req.on('end', () => {
          received.push({ body, headers: req.headers as Record<string, string> });
          res.end();
        });
      });
      await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
      const { port } = receiver.address() as { port: number };
      service = new ApprovalService({
        store,
        clock,
        audit,
        changes,
        notifier: new WebhookNotifier(
          // Signed with the real clock: receivers check webhook-timestamp against theirs.
          new WebhookSender({
            name: 'approvals',
            url: `http://127.0.0.1:${port}/hook`,
            secret: SECRET,
            timeoutMs: 2000,
            deliveries: new WebhookDeliveries(store),
            clock: systemClock,
          }),
        ),
        ttlMs: 60_000,
        consoleBaseUrl: 'https://mandate.example/console/approvals/',
        actorTypeOf: async (id) => (id === 'support-triage' ? 'agent' : 'human'),
        isMandateActive: async (id) => !ended.has(id),
      });
    });
    after(async () => {
      await audit.close();
      await changes.stop();
      receiver.close();
      await factory.cleanup();
    });

    it('returns the pending approval for a repeated call instead of a new one', async () => {
      const req = request();
      const a = await service.request(req);
      const b = await service.request(req);
      assert.equal(a.created, true);
      assert.equal(b.created, false);
      assert.equal(b.approval.id, a.approval.id);
      assert.equal(await service.findUsable(req.mandateId, req.callHash), undefined);
    });

    it('is consumed exactly once by concurrent callers', async () => {
      const req = request();
      const { approval } = await service.request(req);
      await service.decide(approval.id, human('bob', ['approver', 'support-lead']), { approve: true });
      const usable = await service.findUsable(req.mandateId, req.callHash);
      assert.equal(usable?.approverRole, 'support-lead');
      const results = await Promise.all(
        Array.from({ length: 8 }, () => service.consume(approval.id, { actors: req.actors, mandateId: req.mandateId, decisionId: 'd' })),
      );
      assert.equal(results.filter(Boolean).length, 1);
      assert.equal(await service.findUsable(req.mandateId, req.callHash), undefined);
      const events = await audit.entriesBy('approval_id', approval.id);
      assert.deepEqual(
        events.map((e) => e.event.type),
        ['approval.requested', 'approval.decided', 'approval.consumed'],
      );
    });

    it('never allows once denied or expired', async () => {
      const denied = request();
      const d = await service.request(denied);
      await service.decide(d.approval.id, human('carol', ['finance']), { approve: false, note: 'no' });
      assert.equal(await service.findUsable(denied.mandateId, denied.callHash), undefined);
      assert.equal(await service.consume(d.approval.id, { actors: [], mandateId: denied.mandateId, decisionId: 'd' }), false);

      const late = request();
      const l = await service.request(late);
      await service.decide(l.approval.id, human('bob', ['support-lead']), { approve: true });
      clock.advance(60_001);
      assert.equal((await service.require(l.approval.id)).status, 'expired');
      assert.equal(await service.findUsable(late.mandateId, late.callHash), undefined);
      assert.equal(await service.consume(l.approval.id, { actors: [], mandateId: late.mandateId, decisionId: 'd' }), false);
      assert.ok((await service.sweep()) >= 1);
      const pending = await service.request(request());
      clock.advance(60_001);
      await assert.rejects(service.decide(pending.approval.id, human('bob', ['support-lead']), { approve: true }), {
        code: 'ERR_APPROVAL_NOT_PENDING',
      });
    });

    it('refuses the agent, the on-behalf-of human, the bootstrap token, the wrong role, and ended mandates', async () => {
      const req = request();
      const { approval } = await service.request(req);
      const refuse = (who: Approver, code = 'ERR_APPROVER_NOT_ALLOWED') =>
        assert.rejects(service.decide(approval.id, who, { approve: true }), { code });
      await refuse(human('support-triage', ['support-lead']));
      await refuse(human('dana', ['finance']));
      await refuse({ id: 'bootstrap', name: 'bootstrap', roles: ['admin'], via: 'bootstrap' });
      await refuse(human('alice', ['admin']));
      assert.equal((await service.decide(approval.id, human('bob', ['support-lead']), { approve: true })).status, 'approved');
      const other = request();
      const o = await service.request(other);
      ended.add(other.mandateId);
      await assert.rejects(service.decide(o.approval.id, human('carol', ['finance']), { approve: true }), {
        code: 'ERR_APPROVAL_NOT_PENDING',
      });
    });

    it('signs webhook notifications per Standard Webhooks', async () => {
      received.length = 0;
      const { approval } = await service.request(request());
      // Delivery is asynchronous (never blocks the gateway): wait for this approval's notification.
      for (let i = 0; i < 250 && !received.some((r) => r.body.includes(approval.id)); i++) await new Promise((r) => setTimeout(r, 20));
      const hit = received.find((r) => r.body.includes(approval.id));
      assert.ok(hit, 'the receiver got the notification');
      const body = new Webhook(SECRET).verify(hit.body, hit.headers) as { type: string; data: { approval: { url: string } } };
      assert.equal(body.type, 'approval.requested');
      assert.equal(body.data.approval.url, `https://mandate.example/console/approvals/${approval.id}`);
      assert.throws(() => new Webhook(generateWebhookSecret()).verify(hit.body, hit.headers), /No matching signature/);
    });
  });
}
