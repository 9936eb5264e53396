// One decision per call: the decision service evaluates org policy once on the allow and plain-deny
// paths and exactly twice when an approval could matter (the call, then the set's approval probe for
// every configured role at once), whatever the number of approver roles; and its decisions equal the
// previous algorithm's (one evaluation per configured role after a search of the policy text) on the
// demo policies and policies that exercise every kind of role comparison, for both in-process engines.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { wasmEngine } from '../../src/policy/cedar/engine.js';
import { compiledEngine } from '../../src/policy/compiled/engine.js';
import type { CatalogTool } from '../../src/policy/types.js';
import { counted, DEMO, EXTRA, grid, load, OPAQUE, previous, ROLES, scope, service, TOOLS } from './approval-fixtures.js';
import { agent as baseAgent, mandate, NOW } from './fixtures.js';

for (const engine of [wasmEngine, compiledEngine]) {
  describe(`one decision per call (${engine.name} engine)`, () => {
    it('decides as the previous algorithm did, with one evaluation (two when an approval can matter)', () => {
      const plain = load(engine, [...DEMO, EXTRA]);
      assert.equal(plain.engine, engine.name);
      const { set, count } = counted(plain);
      const decisions = service(set);
      const outcomes = new Map<string, number>();
      let previousEvaluations = 0;
      let evaluations = 0;
      for (const input of grid()) {
        const want = previous(plain, input);
        count.n = 0;
        const got = decisions.evaluate(input).decision;
        const label = `${input.tool.name} ${JSON.stringify(input.args)} ${input.agent.actorType}/${input.agent.status} ${input.mandate.environment} risk ${input.riskScore} ${input.approval?.approverRole ?? '-'}`;
        assert.deepEqual(
          { outcome: got.outcome, policies: got.policies, approvalRoles: got.approvalRoles },
          { ...want, approvalRoles: want.approvalRoles },
          label,
        );
        if (got.outcome === 'allow') assert.equal(count.n, 1, `allow: ${label}`);
        if (got.outcome === 'approval_required') assert.equal(count.n, 2, `approval_required: ${label}`);
        if (got.outcome === 'deny') assert.ok(count.n === 1 || count.n === 2, `deny: ${label}`);
        // A deny gets the probe only when every determining forbid reads the approval.
        if (got.outcome === 'deny' && got.policies.length > 0 && count.n === 2) {
          for (const id of got.policies) assert.equal(plain.approval?.uses.get(id)?.reads, true, label);
        }
        evaluations += count.n;
        previousEvaluations += got.outcome === 'allow' ? 1 : 1 + (got.outcome === 'approval_required' ? ROLES.length : 0);
        outcomes.set(got.outcome, (outcomes.get(got.outcome) ?? 0) + 1);
      }
      // The grid reaches all three outcomes, including approvals only a permit grants.
      assert.deepEqual([...outcomes.keys()].sort(), ['allow', 'approval_required', 'deny']);
      assert.ok(evaluations < previousEvaluations, `${evaluations} evaluations, previously at least ${previousEvaluations}`);
    });

    it('a plain deny (a forbid that reads no approval, or nothing permits and no permit reads one) is one evaluation', () => {
      const { set, count } = counted(load(engine, [...DEMO, EXTRA]));
      const decisions = service(set);
      const m = mandate({ scope });
      const quarantined = { ...baseAgent, status: 'quarantined' };
      const d1 = decisions.evaluate({
        mandate: m,
        chain: [m],
        agent: quarantined,
        tool: TOOLS[0] as CatalogTool,
        args: { amountCents: 5000 },
        now: NOW,
      });
      assert.equal(d1.decision.outcome, 'deny');
      assert.equal(count.n, 1);
      count.n = 0;
      const service_ = { ...baseAgent, actorType: 'service' };
      const d2 = decisions.evaluate({ mandate: m, chain: [m], agent: service_, tool: TOOLS[2] as CatalogTool, args: {}, now: NOW });
      assert.equal(d2.decision.outcome, 'deny');
      assert.deepEqual(d2.decision.policies, []);
      assert.equal(count.n, 2, 'nothing permitted, and a permit (services-deploy) reads approvals: the probe runs');
      count.n = 0;
      const demoOnly = counted(load(engine, DEMO));
      const d3 = service(demoOnly.set).evaluate({
        mandate: m,
        chain: [m],
        agent: service_,
        tool: TOOLS[2] as CatalogTool,
        args: {},
        now: NOW,
      });
      assert.equal(d3.decision.outcome, 'deny');
      assert.equal(demoOnly.count.n, 1, 'no demo permit reads an approval: nothing to probe');
    });

    it('a set that reads the role opaquely is evaluated once per role on the approval path, with the same answer', () => {
      const plain = load(engine, [...DEMO, OPAQUE]);
      assert.equal(plain.approval?.rolesAllowing, undefined);
      const { set, count } = counted(plain);
      const decisions = service(set);
      let approvals = 0;
      for (const input of grid()) {
        if (input.tool.name !== 'helpdesk.execute_refund') continue;
        count.n = 0;
        const got = decisions.evaluate(input).decision;
        const want = previous(plain, input);
        assert.deepEqual(
          { outcome: got.outcome, policies: got.policies, approvalRoles: got.approvalRoles },
          { ...want, approvalRoles: want.approvalRoles },
        );
        if (got.outcome === 'approval_required') {
          approvals += 1;
          assert.equal(count.n, 1 + ROLES.length);
        }
      }
      assert.ok(approvals > 0);
    });
  });
}
