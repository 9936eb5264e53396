// The decision function on both stores with the shipped demo policies: scope of the whole chain,
// budgets across the delegation tree, org policy, and approval as an outcome.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BudgetCounter } from '../../src/policy/budgets.js';
import { DecisionService } from '../../src/policy/decisions.js';
import { DEMO_POLICY_DIR, SHIPPED_SCHEMA } from '../../src/policy/source.js';
import { PolicyStore } from '../../src/policy/store.js';
import type { DecisionInput } from '../../src/policy/types.js';
import type { Store } from '../../src/store/types.js';
import { storeFactories } from '../helpers/stores.js';
import { agent, mandate, NOW, tool } from './fixtures.js';

const factories = await storeFactories();

async function service(store: Store): Promise<DecisionService> {
  const policies = new PolicyStore({ dir: DEMO_POLICY_DIR, schemaPath: SHIPPED_SCHEMA, now: () => NOW });
  const report = await policies.load();
  assert.ok(report.ok, JSON.stringify(report));
  return new DecisionService({
    policies,
    budgets: new BudgetCounter(store),
    clock: { now: () => NOW },
    approverRoles: ['support-lead', 'finance', 'admin'],
  });
}

function call(name: string, args: Record<string, unknown>, over: Partial<DecisionInput> = {}): DecisionInput {
  const m = mandate();
  return { mandate: m, chain: [m], agent, tool: tool(name), args, now: NOW, ...over };
}

for (const factory of factories) {
  describe(`decisions (${factory.name})`, { skip: factory.skip }, () => {
    let store: Store;
    let decisions: DecisionService;
    before(async () => {
      store = await factory.open();
      decisions = await service(store);
    });
    after(() => factory.cleanup());

    it('allows a granted read and names the grant and the permit', async () => {
      const d = await decisions.decide(call('helpdesk.get_customer', { customerId: 'C-1009' }));
      assert.equal(d.outcome, 'allow', d.reasons.join('\n'));
      assert.deepEqual(d.grant?.index, 1);
      assert.deepEqual(d.policies, ['active-agents-within-mandate']);
      assert.match(d.id, /^[0-9a-f-]{36}$/);
    });

    it('denies an argument outside the scope before asking Cedar', async () => {
      const d = await decisions.decide(call('helpdesk.get_customer', { customerId: 'C-2000' }));
      assert.equal(d.outcome, 'deny');
      assert.deepEqual(d.policies, []);
      assert.match(d.reasons.join(' '), /customerId must equal "C-1009"/);
    });

    it('denies a tool that is not granted', async () => {
      const d = await decisions.decide(call('helpdesk.export_all', {}));
      assert.equal(d.outcome, 'deny');
      assert.match(d.reasons[0] ?? '', /not granted/);
    });

    it('fails closed on a wrong-typed constrained argument', async () => {
      const d = await decisions.decide(call('helpdesk.propose_refund', { customerId: 'C-1009', amountCents: '100' }));
      assert.equal(d.outcome, 'deny');
      assert.match(d.reasons.join(' '), /must be a number/);
    });

    it('fails closed on a wrong-typed argument the schema declares (Cedar never sees it)', async () => {
      const d = await decisions.decide(call('helpdesk.search_tickets', { query: 42 }));
      assert.equal(d.outcome, 'deny');
      assert.match(d.errors?.join(' ') ?? '', /context\.args\.query must be a string/);
    });

    it('in production a refund execution requires support-lead or finance approval', async () => {
      const d = await decisions.decide(call('helpdesk.execute_refund', { customerId: 'C-1009', amountCents: 5000 }));
      assert.equal(d.outcome, 'approval_required', d.reasons.join('\n'));
      assert.deepEqual(d.approvalRoles, ['support-lead', 'finance']);
      assert.deepEqual(d.policies, ['production-refund-needs-approval']);
    });

    it('a large refund requires finance only', async () => {
      const d = await decisions.decide(call('helpdesk.execute_refund', { customerId: 'C-1009', amountCents: 20000 }));
      assert.equal(d.outcome, 'approval_required');
      assert.deepEqual(d.approvalRoles, ['finance']);
    });

    it('with a finance approval the large refund is allowed and counted against the sum budget', async () => {
      const m = mandate();
      const input = call(
        'helpdesk.execute_refund',
        { customerId: 'C-1009', amountCents: 20000 },
        {
          mandate: m,
          chain: [m],
          approval: { id: 'ap-1', approverId: 'carol', approverRole: 'finance' },
        },
      );
      const d = await decisions.decide(input);
      assert.equal(d.outcome, 'allow', d.reasons.join('\n'));
      // 20000 of 25000 spent: another 6000 exceeds the budget even with approval.
      const again = await decisions.decide({ ...input, args: { customerId: 'C-1009', amountCents: 6000 } });
      assert.equal(again.outcome, 'deny');
      assert.match(again.reasons.join(' '), /exceed its budget/);
    });

    it('an approval from the on-behalf-of human is not a second pair of eyes', async () => {
      const d = await decisions.decide(
        call('helpdesk.delete_customer', { customerId: 'C-1009' }, { approval: { id: 'ap', approverId: 'dana', approverRole: 'admin' } }),
      );
      assert.notEqual(d.outcome, 'allow');
      assert.ok(d.policies.includes('approver-is-a-second-human'), d.policies.join());
    });

    it('deleting a customer needs an admin approval', async () => {
      const d = await decisions.decide(call('helpdesk.delete_customer', { customerId: 'C-1009' }));
      assert.equal(d.outcome, 'approval_required');
      assert.deepEqual(d.approvalRoles, ['admin']);
      const ok = await decisions.decide(
        call('helpdesk.delete_customer', { customerId: 'C-1009' }, { approval: { id: 'ap', approverId: 'alice', approverRole: 'admin' } }),
      );
      assert.equal(ok.outcome, 'allow');
    });

    it('the sandbox is looser: a small refund runs without approval', async () => {
      const m = mandate({ environment: 'sandbox' });
      const d = await decisions.decide(
        call(
          'helpdesk.execute_refund',
          { customerId: 'C-1009', amountCents: 500 },
          {
            mandate: m,
            chain: [m],
            agent: { ...agent, environment: 'sandbox' },
          },
        ),
      );
      assert.equal(d.outcome, 'allow', d.reasons.join('\n'));
    });

    it('a sandbox agent cannot act under a production mandate', async () => {
      const d = await decisions.decide(call('helpdesk.search_tickets', {}, { agent: { ...agent, environment: 'sandbox' } }));
      assert.equal(d.outcome, 'deny');
      assert.deepEqual(d.policies, ['agent-stays-in-its-environment']);
    });

    it('a quarantined agent is stopped and no approval can change that', async () => {
      const d = await decisions.decide(
        call('helpdesk.delete_customer', { customerId: 'C-1009' }, { agent: { ...agent, status: 'quarantined' } }),
      );
      assert.equal(d.outcome, 'deny');
      assert.equal(d.approvalRoles, undefined);
    });

    it('high risk is refused', async () => {
      const d = await decisions.decide(call('helpdesk.search_tickets', {}, { riskScore: 95 }));
      assert.equal(d.outcome, 'deny');
      assert.deepEqual(d.policies, ['high-risk-refused']);
    });

    it('maxCalls is counted per mandate and only for allowed calls', async () => {
      const m = mandate();
      const input = call('helpdesk.propose_refund', { customerId: 'C-1009', amountCents: 100 }, { mandate: m, chain: [m] });
      // A denied call (scope) does not consume the budget.
      assert.equal((await decisions.decide({ ...input, args: { customerId: 'C-1009', amountCents: 999999 } })).outcome, 'deny');
      for (let i = 0; i < 3; i++) assert.equal((await decisions.decide(input)).outcome, 'allow');
      const fourth = await decisions.decide(input);
      assert.equal(fourth.outcome, 'deny');
      assert.match(fourth.reasons.join(' '), /used all 3 calls/);
    });

    it('budgets count across the delegation tree: a child spends its ancestor budget', async () => {
      const parent = mandate();
      const childScope = {
        tools: [{ tool: 'helpdesk.propose_refund', args: { customerId: { eq: 'C-1009' }, amountCents: { max: 100 } }, maxCalls: 3 }],
        delegable: false,
      };
      const child1 = mandate({ parentId: parent.id, depth: 1, scope: childScope });
      const child2 = mandate({ parentId: parent.id, depth: 1, scope: childScope });
      const args = { customerId: 'C-1009', amountCents: 50 };
      const by = (c: typeof child1) => call('helpdesk.propose_refund', args, { mandate: c, chain: [parent, c] });
      assert.equal((await decisions.decide(by(child1))).outcome, 'allow');
      assert.equal((await decisions.decide(by(child1))).outcome, 'allow');
      assert.equal((await decisions.decide(by(child2))).outcome, 'allow');
      const d = await decisions.decide(by(child2));
      assert.equal(d.outcome, 'deny');
      assert.match(d.reasons.join(' '), new RegExp(`mandate ${parent.id} grant #2 has used all 3 calls`));
    });

    it('budgets hold under concurrent calls (no overspend)', async () => {
      const m = mandate();
      const input = call('helpdesk.propose_refund', { customerId: 'C-1009', amountCents: 1 }, { mandate: m, chain: [m] });
      const results = await Promise.all(Array.from({ length: 10 }, () => decisions.decide(input)));
      assert.equal(results.filter((r) => r.outcome === 'allow').length, 3);
    });

    it('a call must also fit every ancestor scope', async () => {
      const parent = mandate({ scope: { tools: [{ tool: 'helpdesk.search_tickets' }], delegable: true } });
      // A child whose scope (wrongly) grants more than its parent is still held to the parent's.
      const child = mandate({ parentId: parent.id, depth: 1 });
      const d = await decisions.decide(call('helpdesk.get_customer', { customerId: 'C-1009' }, { mandate: child, chain: [parent, child] }));
      assert.equal(d.outcome, 'deny');
      assert.match(d.reasons.join(' '), new RegExp(`ancestor mandate ${parent.id}`));
    });

    it('refuses broken chains, inactive and expired mandates, and another agent', async () => {
      const m = mandate();
      const other = mandate();
      const cases: [Partial<DecisionInput>, RegExp][] = [
        [{ chain: [] }, /chain is empty/],
        [{ mandate: m, chain: [other] }, /does not end/],
        [{ mandate: m, chain: [mandate({ parentId: 'x' }), m] }, /root mandate/],
        [{ mandate: { ...m, status: 'revoked' }, chain: [{ ...m, status: 'revoked' }] }, /is revoked/],
        [{ mandate: m, chain: [m], now: NOW + 1_000_000 }, /expired/],
        [{ mandate: m, chain: [m], agent: { ...agent, id: 'someone-else' } }, /another agent/],
        [{ mandate: m, chain: [m], args: [] as unknown as Record<string, unknown> }, /not an object/],
      ];
      for (const [over, reason] of cases) {
        const d = await decisions.decide(call('helpdesk.search_tickets', {}, over));
        assert.equal(d.outcome, 'deny');
        assert.match(d.reasons[0] ?? '', reason);
      }
    });
  });
}
