// One decision per call: the decision service evaluates org policy once on the allow and plain-deny
// paths and exactly twice when an approval could matter (the call, then the set's approval probe for
// every configured role at once), whatever the number of approver roles; and its decisions equal the
// previous algorithm's (one evaluation per configured role after a search of the policy text) on the
// demo policies and policies that exercise every kind of role comparison, for both in-process engines.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Scope } from '../../src/mandates/scope.js';
import { wasmEngine } from '../../src/policy/cedar/engine.js';
import { compiledEngine } from '../../src/policy/compiled/engine.js';
import { cedarRequest, DecisionService } from '../../src/policy/decisions.js';
import type { EngineAnswer, EngineRequest, LoadedPolicySet, PolicyEngine, PolicyFile } from '../../src/policy/engine.js';
import { DEMO_POLICY_DIR, SHIPPED_SCHEMA } from '../../src/policy/source.js';
import type { PolicyStore } from '../../src/policy/store.js';
import type { CatalogTool, Decision, DecisionApproval, DecisionInput } from '../../src/policy/types.js';
import { agent as baseAgent, mandate, NOW, tool } from './fixtures.js';

const SCHEMA: PolicyFile = { path: 'mandate.cedarschema', text: readFileSync(SHIPPED_SCHEMA, 'utf8') };
const DEMO: PolicyFile[] = readdirSync(DEMO_POLICY_DIR)
  .filter((f) => f.endsWith('.cedar'))
  .sort()
  .map((f) => ({ path: f, text: readFileSync(join(DEMO_POLICY_DIR, f), 'utf8') }));
const EXTRA: PolicyFile = {
  path: 'extra.cedar',
  text: `@id("services-deploy-with-sre-or-admin")
permit (principal is Mandate::Agent, action == Mandate::Action::"call", resource == Mandate::Tool::"ops.deploy")
when { context has approval && ["sre", "admin"].contains(context.approval.approverRole) };

@id("risky-deploy-sre-only")
forbid (principal, action == Mandate::Action::"call", resource == Mandate::Tool::"ops.deploy")
when { context.risk > 50 }
unless { context has approval && context.approval.approverRole == "sre" };

// An approval is mentioned here, in a comment, and the policy reads none.
@id("legacy-closed")
forbid (principal, action == Mandate::Action::"call", resource) when { resource.upstream == "legacy" };
`,
};
const OPAQUE: PolicyFile = {
  path: 'opaque.cedar',
  text: `@id("finance-like")
forbid (principal, action == Mandate::Action::"call", resource == Mandate::Tool::"helpdesk.execute_refund")
when { context.args has amountCents && context.args.amountCents > 20000 }
unless { context has approval && context.approval.approverRole like "fin*" };
`,
};
const ROLES = ['support-lead', 'finance', 'admin', 'approver', 'sre'];

const TOOLS: CatalogTool[] = [
  tool('helpdesk.execute_refund'),
  tool('helpdesk.delete_customer'),
  tool('helpdesk.get_customer'),
  tool('helpdesk.search_tickets'),
  { ...tool('ops.deploy'), upstream: 'ops', actionClass: 'execute' },
  { ...tool('legacy.purge'), upstream: 'legacy' },
];
const scope: Scope = { tools: TOOLS.map((t) => ({ tool: t.name })), delegable: false };

function grid(): DecisionInput[] {
  const out: DecisionInput[] = [];
  const approvals: (DecisionApproval | undefined)[] = [
    undefined,
    { id: 'ap', approverId: 'bob', approverRole: 'support-lead' },
    { id: 'ap', approverId: 'dana', approverRole: 'admin' },
  ];
  for (const t of TOOLS)
    for (const environment of ['production', 'sandbox'])
      for (const args of [{ amountCents: 5000 }, { amountCents: 30000 }, {}])
        for (const actorType of ['agent', 'service'])
          for (const status of ['active', 'quarantined'])
            for (const riskScore of [0, 60, 90])
              for (const approval of approvals) {
                const m = mandate({ environment, scope });
                const agent = { ...baseAgent, actorType, status, environment: 'production' };
                out.push({ mandate: m, chain: [m], agent, tool: t, args, riskScore, now: NOW, ...(approval ? { approval } : {}) });
              }
  return out;
}

/** The previous algorithm, verbatim in substance: a text search, then one evaluation per role. */
function previous(set: LoadedPolicySet, input: DecisionInput): Pick<Decision, 'outcome' | 'policies' | 'approvalRoles'> {
  const answer = set.authorize(cedarRequest(set, input, input.approval));
  if (answer.errors.length > 0) return { outcome: 'deny', policies: answer.policies };
  if (answer.decision === 'allow') return { outcome: 'allow', policies: answer.policies };
  const byId = new Map(set.policies.map((p) => [p.id, p]));
  const mentions = (text: string | undefined) => text?.includes('approval') === true;
  const relevant =
    answer.policies.length > 0 ? answer.policies.every((pid) => mentions(byId.get(pid)?.text)) : set.policies.some((p) => mentions(p.text));
  const roles: string[] = [];
  if (relevant) {
    for (const role of ROLES) {
      const a = set.authorize(cedarRequest(set, input, { id: 'pending', approverId: 'pending-approver', approverRole: role }));
      if (a.decision === 'allow' && a.errors.length === 0) roles.push(role);
    }
  }
  return roles.length > 0
    ? { outcome: 'approval_required', policies: answer.policies, approvalRoles: roles }
    : { outcome: 'deny', policies: answer.policies };
}

/** The set with every evaluation (a call to authorize or to the approval probe) counted. */
function counted(set: LoadedPolicySet): { set: LoadedPolicySet; count: { n: number } } {
  const count = { n: 0 };
  const probe = set.approval?.rolesAllowing;
  const wrapped: LoadedPolicySet = {
    ...set,
    authorize: (r: EngineRequest): EngineAnswer => {
      count.n += 1;
      return set.authorize(r);
    },
    ...(set.approval === undefined
      ? {}
      : {
          approval: {
            uses: set.approval.uses,
            ...(probe === undefined
              ? {}
              : {
                  rolesAllowing: (r: EngineRequest, roles: readonly string[]) => {
                    count.n += 1;
                    return probe(r, roles);
                  },
                }),
          },
        }),
  };
  return { set: wrapped, count };
}

function service(set: LoadedPolicySet): DecisionService {
  return new DecisionService({
    policies: { current: { set } } as unknown as PolicyStore,
    budgets: { consume: async () => ({ ok: true }), fits: async () => ({ ok: true }) } as never,
    clock: { now: () => NOW },
    approverRoles: ROLES,
  });
}

function load(engine: PolicyEngine, files: PolicyFile[]): LoadedPolicySet {
  const r = engine.load(SCHEMA, files);
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.problems));
  return r.set;
}

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
