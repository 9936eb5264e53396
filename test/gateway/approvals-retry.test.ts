// Approval retry semantics on both stores and across two replicas on one database: one pending
// approval per exact call (even when replicas race), retries that audit nothing, findForCall's
// answers (pending, approved-unused, a standing denial), withdraw for tasks/cancel, and the console
// overview counting approval requests rather than decision events.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { ApprovalContext } from '../../src/approvals/approval.js';
import { callHash } from '../../src/approvals/call-hash.js';
import { silentNotifier } from '../../src/approvals/notifier.js';
import { type ApprovalRequest, ApprovalService, type Approver } from '../../src/approvals/service.js';
import type { AuditService } from '../../src/audit/log.js';
import type { Broker } from '../../src/broker.js';
import { computeOverview } from '../../src/http/routes/console-api.js';
import { ChangeFeed } from '../../src/store/changes.js';
import type { Store } from '../../src/store/types.js';
import { fakeClock, openAudit, testSecrets } from '../audit/helpers.js';
import { databases } from '../tasks/helpers.js';

const TTL = 60_000;
const human = (id: string, roles: string[]): Approver => ({ id, name: id, roles, via: 'oidc' });
const bob = human('bob', ['approver', 'support-lead']);

interface Replica {
  store: Store;
  changes: ChangeFeed;
  audit: AuditService;
  approvals: ApprovalService;
}

for (const db of await databases()) {
  // The skip is only the PostgreSQL half on a machine where PostgreSQL is unreachable, and it carries that
  // reason ("PostgreSQL unreachable at …", test/helpers/stores.ts); under CI (CI set) it never skips: it fails.
  describe(`approval retries (${db.name})`, { skip: db.skip }, () => {
    const clock = fakeClock();
    const secrets = testSecrets();
    let a: Replica;
    let b: Replica;
    let n = 0;

    const open = async (): Promise<Replica> => {
      const store = await db.openStore();
      const changes = new ChangeFeed(store, { clock, pollIntervalMs: 60_000 });
      await changes.start();
      const audit = await openAudit(store, secrets, clock);
      const approvals = new ApprovalService({
        store,
        clock,
        audit,
        changes,
        notifier: silentNotifier,
        ttlMs: TTL,
        consoleBaseUrl: 'https://mandate.example/console/approvals/',
        actorTypeOf: async (id) => (id === 'support-triage' ? 'agent' : 'human'),
        isMandateActive: async () => true,
      });
      return { store, changes, audit, approvals };
    };

    const request = (over: Partial<ApprovalRequest> = {}): ApprovalRequest => {
      const mandateId = over.mandateId ?? `m-${++n}`;
      const args = { customerId: 'C-1009', amountCents: 4900 };
      return {
        callHash: callHash({ mandateId, tool: 'helpdesk.execute_refund', args }),
        mandateId,
        tool: 'helpdesk.execute_refund',
        agentId: 'support-triage',
        onBehalfOf: 'dana',
        requiredRoles: ['support-lead'],
        forbiddenApprovers: ['support-triage', 'dana'],
        decisionId: `d-${n}`,
        reasons: ['production-refund-needs-approval'],
        context: { purpose: 'refund', args } as unknown as ApprovalContext,
        environment: 'production',
        actors: [{ type: 'agent', id: 'support-triage' }],
        ...over,
      };
    };

    const eventsOf = async (r: Replica, mandateId: string) =>
      (await r.audit.entriesBy('mandate_id', mandateId)).map((e) => e.event.type).filter((t) => t.startsWith('approval.'));

    before(async () => {
      a = await open();
      b = await open();
    });
    after(async () => {
      for (const r of [a, b]) {
        await r.audit.close();
        await r.changes.stop();
      }
      await db.cleanup();
    });

    it('opens one approval for many concurrent requests of one call over two replicas, audited once', async () => {
      const req = request();
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a : b).approvals.request(req)));
      assert.equal(results.filter((r) => r.created).length, 1);
      assert.equal(new Set(results.map((r) => r.approval.id)).size, 1);
      // Sequential retries after that: still nothing new.
      for (let i = 0; i < 20; i++) assert.equal((await b.approvals.request(req)).created, false);
      assert.deepEqual(await eventsOf(a, req.mandateId), ['approval.requested']);
      const rows = await a.store.query<{ c: number | string }>('SELECT COUNT(*) AS c FROM approvals WHERE mandate_id = ?', [req.mandateId]);
      assert.equal(Number(rows[0]?.c), 1);
    });

    it('keeps at most one pending approval per exact call in the store itself', async () => {
      const req = request();
      const { approval } = await a.approvals.request(req);
      const insert = (id: string, status: string) =>
        a.store.run(
          `INSERT INTO approvals (id, call_hash, mandate_id, tool, agent_id, status, required_roles, forbid_approvers, decision_id, reasons, context, created_at, expires_at)
           VALUES (?, ?, ?, 't', 'x', ?, '[]', '[]', 'd', '[]', '{}', ?, ?)`,
          [id, req.callHash, req.mandateId, status, clock.now(), clock.now() + TTL],
        );
      await assert.rejects(insert(`${approval.id}-dup`, 'pending'));
      await insert(`${approval.id}-old`, 'denied');
      await assert.rejects(insert(`${approval.id}-bad`, 'maybe'), 'statuses are checked');
    });

    it('findForCall answers pending, then approved-unused, then nothing once used', async () => {
      const req = request();
      assert.equal(await b.approvals.findForCall(req.mandateId, req.callHash), undefined);
      const { approval } = await a.approvals.request(req);
      assert.equal((await b.approvals.findForCall(req.mandateId, req.callHash))?.status, 'pending');
      assert.equal(await b.approvals.findForCall('m-other', req.callHash), undefined, "another mandate's call is another call");
      await a.approvals.decide(approval.id, bob, { approve: true });
      const approved = await b.approvals.findForCall(req.mandateId, req.callHash);
      assert.equal(approved?.status, 'approved');
      assert.equal(approved?.decidedBy, 'bob');
      assert.equal(await b.approvals.consume(approval.id, { actors: req.actors, mandateId: req.mandateId, decisionId: 'd' }), true);
      assert.equal(await a.approvals.findForCall(req.mandateId, req.callHash), undefined, 'used: the next call asks again');
    });

    it('answers retries of a denied call with the denial for the approval TTL after the decision, then lets it ask again', async () => {
      const req = request();
      const { approval } = await a.approvals.request(req);
      clock.advance(TTL - 1000); // decided at the very end of its life
      await a.approvals.decide(approval.id, human('carol', ['support-lead']), { approve: false, note: 'not this customer' });
      clock.advance(TTL - 1);
      const denied = await b.approvals.findForCall(req.mandateId, req.callHash);
      assert.equal(denied?.status, 'denied', 'past the approval expiry, the denial still answers');
      assert.equal(denied?.decidedNote, 'not this customer');
      assert.equal(denied?.decidedBy, 'carol');
      clock.advance(2);
      assert.equal(await b.approvals.findForCall(req.mandateId, req.callHash), undefined);
      const again = await b.approvals.request(req);
      assert.equal(again.created, true);
      assert.equal((await a.approvals.findForCall(req.mandateId, req.callHash))?.id, again.approval.id);
    });

    it('opens a new approval when the pending one expired unanswered, recording that expiry once', async () => {
      const req = request();
      const first = await a.approvals.request(req);
      clock.advance(TTL + 1);
      assert.equal(await b.approvals.findForCall(req.mandateId, req.callHash), undefined, 'expired unanswered is no answer');
      const [x, y] = await Promise.all([a.approvals.request(req), b.approvals.request(req)]);
      assert.equal(Number(x.created) + Number(y.created), 1);
      assert.equal(x.approval.id, y.approval.id);
      assert.notEqual(x.approval.id, first.approval.id);
      assert.equal((await a.approvals.require(first.approval.id)).status, 'expired');
      await Promise.all([a.approvals.sweep(), b.approvals.sweep()]); // finds it already recorded
      assert.deepEqual(await eventsOf(a, req.mandateId), ['approval.requested', 'approval.expired', 'approval.requested']);
    });

    it('withdraws a pending approval once: never decided or used afterwards, and no longer in the inbox', async () => {
      const req = request();
      const { approval } = await a.approvals.request(req);
      const actors = req.actors;
      assert.equal(await b.approvals.withdraw(approval.id, { actors, mandateId: 'm-other' }), false, "another mandate's approval");
      const [w1, w2] = await Promise.all([
        a.approvals.withdraw(approval.id, { actors, mandateId: req.mandateId, taskId: 'task_x' }),
        b.approvals.withdraw(approval.id, { actors, mandateId: req.mandateId, taskId: 'task_x' }),
      ]);
      assert.equal(Number(w1) + Number(w2), 1);
      assert.equal(await a.approvals.withdraw(approval.id, { actors, mandateId: req.mandateId }), false, 'twice');
      assert.equal((await b.approvals.require(approval.id)).status, 'withdrawn');
      await assert.rejects(a.approvals.decide(approval.id, bob, { approve: true }), { code: 'ERR_APPROVAL_NOT_PENDING' });
      assert.equal((await a.approvals.list({ status: 'pending', mandateId: req.mandateId })).length, 0, 'not actionable in the console');
      assert.equal((await a.approvals.list({ status: 'withdrawn', mandateId: req.mandateId })).length, 1);
      assert.equal(await a.approvals.findForCall(req.mandateId, req.callHash), undefined);
      const events = await a.audit.entriesBy('approval_id', approval.id);
      assert.deepEqual(
        events.map((e) => e.event.type),
        ['approval.requested', 'approval.withdrawn'],
      );
      assert.equal(events[1]?.event.data.taskId, 'task_x');
      // The agent may ask again for the same call later: a fresh approval.
      assert.equal((await b.approvals.request(req)).created, true);
    });

    it('withdraws an approved, unused approval so it is never consumed; not a used or expired one', async () => {
      const approvedReq = request();
      const one = await a.approvals.request(approvedReq);
      await a.approvals.decide(one.approval.id, bob, { approve: true });
      assert.equal(await b.approvals.withdraw(one.approval.id, { actors: [], mandateId: approvedReq.mandateId }), true);
      assert.equal(await a.approvals.findUsable(approvedReq.mandateId, approvedReq.callHash), undefined);
      assert.equal(await a.approvals.consume(one.approval.id, { actors: [], mandateId: approvedReq.mandateId, decisionId: 'd' }), false);

      const usedReq = request();
      const two = await a.approvals.request(usedReq);
      await a.approvals.decide(two.approval.id, bob, { approve: true });
      assert.equal(await a.approvals.consume(two.approval.id, { actors: [], mandateId: usedReq.mandateId, decisionId: 'd' }), true);
      assert.equal(await b.approvals.withdraw(two.approval.id, { actors: [], mandateId: usedReq.mandateId }), false);
      assert.equal((await a.approvals.require(two.approval.id)).status, 'consumed');

      const lateReq = request();
      const three = await a.approvals.request(lateReq);
      clock.advance(TTL);
      assert.equal(await b.approvals.withdraw(three.approval.id, { actors: [], mandateId: lateReq.mandateId }), false);
      assert.equal(await b.approvals.withdraw('apr_guessed', { actors: [], mandateId: lateReq.mandateId }), false);
    });

    it('counts what was sent to a human by approval requests, not by retried decisions', async () => {
      clock.advance(2 * 3_600_000); // out of the window of the earlier tests' events
      const req = request();
      const actors = req.actors;
      // Three calls needing approval, one retried 110 times before the human answered (the numbers).
      for (let call = 0; call < 3; call++) {
        const r = request({ mandateId: req.mandateId, callHash: `${req.callHash}-${call}` });
        const retries = call === 0 ? 110 : 1;
        for (let i = 0; i < retries; i++) {
          await a.audit.append({
            type: 'decision',
            actors,
            mandateId: req.mandateId,
            data: { outcome: 'approval_required', decisionId: `d${call}-${i}` },
          });
        }
        await a.approvals.request(r);
      }
      const broker = { clock, audit: a.audit } as unknown as Broker;
      const o = await computeOverview(broker, 1, 4);
      assert.equal(o.totals.approvalsRequested, 3);
      assert.equal(o.totals.approvalRequired, 112, 'decisions are still counted as such');
    });
  });
}
