// One conformance suite for the PolicyEngine interface, run against every implementation: loading
// (strict validation, ids, located problems, all or nothing) and Cedar's authorization semantics
// (forbid overrides permit, default deny, erroring policies skipped and reported, hierarchy,
// extension types). To add an engine: call engineConformance(name, () => engine) at the bottom.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Provenance } from '../../src/intent/index.js';
import { wasmEngine } from '../../src/policy/cedar/engine.js';
import { type CompiledEngineSet, compiledEngine } from '../../src/policy/compiled/engine.js';
import { cedarRequest } from '../../src/policy/decisions.js';
import type { EngineAnswer, EngineRequest, LoadedPolicySet, PolicyEngine, PolicyFile } from '../../src/policy/engine.js';
import { authorizeAny } from '../../src/policy/engine-async.js';
import { DEMO_POLICY_DIR, SHIPPED_SCHEMA } from '../../src/policy/source.js';
import type { DecisionApproval, DecisionInput } from '../../src/policy/types.js';
import { agent as baseAgent, mandate, NOW, tool } from './fixtures.js';

export const SCHEMA: PolicyFile = {
  path: 'docs.cedarschema',
  text: `namespace Docs {
  entity Group in [Group];
  entity User in [Group] = { level: Long, email: String, tags: Set<String>, manager?: User };
  entity Doc = { owner: User, classification: String, readers: Set<User>, minScore: decimal };
  action read, write appliesTo { principal: [User], resource: [Doc], context: { ip: ipaddr, score: decimal, n: Long, at?: datetime } };
  action edit in [write] appliesTo { principal: [User], resource: [Doc], context: { ip: ipaddr, score: decimal, n: Long, at?: datetime } };
}`,
};

export const POLICIES = `@id("owners-read")
permit (principal, action == Docs::Action::"read", resource) when { resource.owner == principal };

@id("group-read")
permit (principal in Docs::Group::"staff", action == Docs::Action::"read", resource)
when { resource.classification != "secret" && context.ip.isInRange(ip("10.0.0.0/8")) };

@id("writers")
permit (principal, action in Docs::Action::"write", resource)
when { principal.level >= 3 && context.score.greaterThanOrEqual(resource.minScore) && principal.email like "*@example.com" };

@id("no-secret-for-juniors")
forbid (principal, action, resource) when { resource.classification == "secret" && principal.level < 5 };

@id("tagged-blocked")
forbid (principal, action, resource) when { principal.tags.contains("blocked") };

@id("manager-chain")
permit (principal, action == Docs::Action::"read", resource)
when { principal has manager && principal.manager.level > 5 };

@id("overflow")
forbid (principal, action, resource) when { context.n * context.n * context.n > 0 && false };
`;

const G = (id: string) => ({ type: 'Docs::Group', id });
const U = (id: string) => ({ type: 'Docs::User', id });
const D = (id: string) => ({ type: 'Docs::Doc', id });
const A = (id: string) => ({ type: 'Docs::Action', id });
const dec = (s: string) => ({ __extn: { fn: 'decimal', arg: s } });
const ipx = (s: string) => ({ __extn: { fn: 'ip', arg: s } });

const users = {
  alice: { uid: U('alice'), attrs: { level: 5, email: 'alice@example.com', tags: [] }, parents: [G('eng')] },
  bob: { uid: U('bob'), attrs: { level: 1, email: 'bob@example.com', tags: [] }, parents: [] },
  carol: {
    uid: U('carol'),
    attrs: { level: 4, email: 'carol@example.org', tags: ['blocked'], manager: { __entity: U('alice') } },
    parents: [],
  },
  dan: { uid: U('dan'), attrs: { level: 2, email: 'dan@example.com', tags: [], manager: { __entity: U('ghost') } }, parents: [] },
};
const groups = [
  { uid: G('eng'), attrs: {}, parents: [G('staff')] },
  { uid: G('staff'), attrs: {}, parents: [] },
];
const doc = (id: string, owner: string, classification: string) => ({
  uid: D(id),
  attrs: { owner: { __entity: U(owner) }, classification, readers: [], minScore: dec('0.5') },
  parents: [],
});
export const entities = [...Object.values(users), ...groups, doc('plan', 'bob', 'internal'), doc('keys', 'alice', 'secret')];

function req(principal: string, action: string, resource: string, context: Record<string, unknown> = {}): EngineRequest {
  return {
    principal: U(principal),
    action: A(action),
    resource: D(resource),
    context: { ip: ipx('10.1.2.3'), score: dec('0.75'), n: 2, ...context } as EngineRequest['context'],
    entities: entities as EngineRequest['entities'],
  };
}

export interface ConformanceOptions {
  /**
   * Hold the engine to decisions only: an external PDP answers allow or deny over AuthZEN, without
   * determining or erroring policies or an error list. Loading is checked in full either way.
   */
  readonly decisionsOnly?: boolean;
}

// Approval analysis: the shipped schema, the demo policies, and policies that exercise every way a
// policy may compare the approver role (==, !=, set contains, a permit that needs an approval).
const MANDATE_SCHEMA: PolicyFile = { path: 'mandate.cedarschema', text: readFileSync(SHIPPED_SCHEMA, 'utf8') };
const DEMO_FILES: PolicyFile[] = readdirSync(DEMO_POLICY_DIR)
  .filter((f) => f.endsWith('.cedar'))
  .sort()
  .map((f) => ({ path: f, text: readFileSync(join(DEMO_POLICY_DIR, f), 'utf8') }));
const APPROVAL_POLICIES: PolicyFile = {
  path: 'approval.cedar',
  text: `// Services may deploy only with an approval by an SRE or an admin.
@id("services-deploy-with-sre-or-admin")
permit (principal is Mandate::Agent, action == Mandate::Action::"call", resource == Mandate::Tool::"ops.deploy")
when { context has approval && ["sre", "admin"].contains(context.approval.approverRole) };

// Risky deploys: only an SRE's approval counts.
@id("risky-deploy-sre-only")
forbid (principal, action == Mandate::Action::"call", resource == Mandate::Tool::"ops.deploy")
when { context.risk > 50 }
unless { context has approval && !(context.approval.approverRole != "sre") };

// Mentions approval and approverRole == "finance" in a comment only: reads no approval.
@id("legacy-closed-approval")
forbid (principal, action == Mandate::Action::"call", resource) when { resource.upstream == "legacy" };
`,
};
const OPAQUE_POLICIES: PolicyFile = {
  path: 'opaque.cedar',
  text: `@id("finance-like")
forbid (principal, action == Mandate::Action::"call", resource == Mandate::Tool::"helpdesk.execute_refund")
unless { context has approval && context.approval.approverRole like "fin*" };
`,
};
const ROLES = ['support-lead', 'finance', 'admin', 'approver', 'sre', 'intern'];
/** Policies reading context.intent and context.template (src/intent/, docs/policies.md "Intent context"). */
const INTENT_POLICIES: PolicyFile = {
  path: 'intent.cedar',
  text: `@id("permit-all")
permit (principal, action == Mandate::Action::"call", resource);

@id("unnamed-targets")
forbid (principal, action == Mandate::Action::"call", resource)
when { !context.intent.unnamedTargets.isEmpty() };

@id("iban-from-tool-output")
forbid (principal, action == Mandate::Action::"call", resource)
when { context.intent.args has iban && context.intent.args.iban.fromToolOutput && context.intent.toolOutputTargets.contains("iban") };

@id("customer-named")
forbid (principal, action == Mandate::Action::"call", resource)
when { context.intent.hasRequest && context.intent.args has customerId && !context.intent.args.customerId.named };

@id("template-v3-approval")
forbid (principal, action == Mandate::Action::"call", resource)
when { context has template && context.template.version == 3 && context.template.requiresApproval };
`,
};

/** Every call of a grid that reaches each kind of policy: tools, environments, amounts, actors, risk, approvers. */
function approvalGrid(): DecisionInput[] {
  const tools = [
    tool('helpdesk.execute_refund'),
    tool('helpdesk.delete_customer'),
    tool('helpdesk.get_customer'),
    { ...tool('ops.deploy'), upstream: 'ops', actionClass: 'execute' as const },
    { ...tool('legacy.purge'), upstream: 'legacy' },
  ];
  const out: DecisionInput[] = [];
  for (const t of tools)
    for (const environment of ['production', 'sandbox'])
      for (const args of [{ amountCents: 5000 }, { amountCents: 20000 }, {}])
        for (const actorType of ['agent', 'service'])
          for (const onBehalfOf of ['dana', 'pending-approver', undefined])
            for (const riskScore of [0, 60]) {
              const m = mandate({ environment, ...(onBehalfOf === undefined ? { onBehalfOf: undefined } : { onBehalfOf }) });
              const agent = { ...baseAgent, actorType, environment: 'production' };
              out.push({ mandate: m, chain: [m], agent, tool: t, args, riskScore, now: NOW });
            }
  return out;
}

const hypothetical = (role: string): DecisionApproval => ({ id: 'pending', approverId: 'pending-approver', approverRole: role });

/** The interface's contract, for the engine `make` returns. */
export function engineConformance(name: string, make: () => PolicyEngine, options: ConformanceOptions = {}): void {
  describe(`PolicyEngine conformance: ${name}`, () => {
    const engine = make();
    const strict = options.decisionsOnly !== true;
    const loaded = engine.load(SCHEMA, [{ path: 'docs.cedar', text: POLICIES }]);
    const set = (): LoadedPolicySet => {
      assert.ok(loaded.ok, loaded.ok ? '' : JSON.stringify(loaded.problems));
      return loaded.set;
    };
    // Engines over the network answer asynchronously (src/policy/engine-async.ts); others directly.
    const ask = (request: EngineRequest) => authorizeAny(set(), request);
    const expectAnswer = (got: EngineAnswer, want: EngineAnswer) =>
      strict ? assert.deepEqual(got, want) : assert.equal(got.decision, want.decision, JSON.stringify(got));

    it('has a name and loads a valid set: ids from @id, effects, a version equal to the reference engine’s', () => {
      assert.equal(typeof engine.name, 'string');
      assert.ok(engine.name.length > 0);
      const s = set();
      assert.deepEqual(
        s.policies.map((p) => [p.id, p.effect]),
        [
          ['owners-read', 'permit'],
          ['group-read', 'permit'],
          ['writers', 'permit'],
          ['no-secret-for-juniors', 'forbid'],
          ['tagged-blocked', 'forbid'],
          ['manager-chain', 'permit'],
          ['overflow', 'forbid'],
        ],
      );
      const reference = wasmEngine.load(SCHEMA, [{ path: 'docs.cedar', text: POLICIES }]);
      assert.ok(reference.ok);
      assert.equal(s.version, reference.set.version);
      assert.equal(typeof s.engine, 'string');
    });

    it('an unannotated policy is named file:line', () => {
      const r = engine.load(SCHEMA, [{ path: 'x/y.cedar', text: '\n\npermit (principal, action == Docs::Action::"read", resource);' }]);
      assert.ok(r.ok);
      assert.equal(r.set.policies[0]?.id, 'x/y.cedar:3');
    });

    it('refuses the whole set when one policy fails strict validation, locating the problem', () => {
      const bad = `${POLICIES}\n@id("typo")\npermit (principal, action, resource) when { resource.colour == "red" };\n`;
      const r = engine.load(SCHEMA, [{ path: 'docs.cedar', text: bad }]);
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.equal(r.problems[0]?.file, 'docs.cedar');
      // The problem is reported where it is (the undeclared attribute), not elsewhere in the file.
      assert.equal(r.problems[0]?.line, bad.slice(0, bad.indexOf('resource.colour')).split('\n').length);
    });

    it('refuses syntax errors, duplicate ids and templates', () => {
      const syntax = engine.load(SCHEMA, [{ path: 's.cedar', text: 'permit (principal, action, resource) when { 1 + };' }]);
      assert.equal(syntax.ok, false);
      const dup = engine.load(SCHEMA, [
        { path: 'a.cedar', text: '@id("x") permit (principal, action == Docs::Action::"read", resource);' },
        { path: 'b.cedar', text: '@id("x") permit (principal, action == Docs::Action::"read", resource);' },
      ]);
      assert.equal(dup.ok, false);
      if (!dup.ok) assert.match(dup.problems[0]?.message ?? '', /already used/);
      const template = engine.load(SCHEMA, [{ path: 't.cedar', text: 'permit (principal == ?principal, action, resource);' }]);
      assert.equal(template.ok, false);
    });

    it('allows with the satisfied permits as determining policies', async () => {
      const a = await ask(req('alice', 'read', 'plan'));
      expectAnswer(a, { decision: 'allow', policies: ['group-read'], erroring: [], errors: [] });
      const b = await ask(req('bob', 'read', 'plan'));
      expectAnswer(b, { decision: 'allow', policies: ['owners-read'], erroring: [], errors: [] });
    });

    it('follows the entity hierarchy transitively (alice in eng in staff), and not beyond it', async () => {
      const outside = await ask(req('alice', 'read', 'plan', { ip: ipx('192.168.0.1') }));
      if (strict) assert.deepEqual(outside.policies, []);
      assert.equal(outside.decision, 'deny');
    });

    it('forbid overrides permit; the forbids are the determining policies', async () => {
      const a = await ask(req('alice', 'read', 'keys')); // alice owns keys, but level 5 is not < 5 …
      assert.equal(a.decision, 'allow');
      const bobKeys = entities.map((e) => (e.uid.id === 'keys' ? doc('keys', 'bob', 'secret') : e));
      const b = await ask({ ...req('bob', 'read', 'keys'), entities: bobKeys as EngineRequest['entities'] });
      expectAnswer(b, { decision: 'deny', policies: ['no-secret-for-juniors'], erroring: [], errors: [] });
    });

    it('denies by default when no permit applies', async () => {
      expectAnswer(await ask(req('bob', 'edit', 'plan')), { decision: 'deny', policies: [], erroring: [], errors: [] });
    });

    it('action groups: edit is in write; decimal comparison and like decide the permit', async () => {
      assert.equal((await ask(req('alice', 'edit', 'plan'))).decision, 'allow');
      assert.equal((await ask(req('alice', 'edit', 'plan', { score: dec('0.4999') }))).decision, 'deny');
      assert.equal((await ask(req('carol', 'write', 'plan'))).decision, 'deny'); // example.org, and blocked
    });

    it('a policy that errors does not apply, is reported, and makes the answer a deny', async () => {
      // dan's manager does not exist: `principal.manager.level` errors in manager-chain.
      const d = await ask(req('dan', 'read', 'plan'));
      assert.equal(d.decision, 'deny');
      if (strict) assert.deepEqual(d.erroring, ['manager-chain']);
      if (strict) assert.equal(d.errors.length, 1);
      // carol's manager (alice, level 5) exists: no error, and 5 is not > 5.
      if (strict) assert.deepEqual((await ask(req('carol', 'read', 'plan'))).erroring, []);
    });

    it('i64 overflow is an error of that policy (it does not apply), not a crash', async () => {
      const d = await ask(req('bob', 'read', 'plan', { n: 4_294_967_296 }));
      if (strict) assert.deepEqual(d.erroring, ['overflow']);
      if (strict) assert.deepEqual(d.policies, ['owners-read']);
      assert.equal(d.decision, 'deny');
      if (strict) assert.deepEqual((await ask(req('bob', 'read', 'plan', { n: 2_097_151 }))).erroring, []);
    });

    describe('approval analysis', () => {
      const withApproval = engine.load(MANDATE_SCHEMA, [...DEMO_FILES, APPROVAL_POLICIES]);
      const loadedSet = (r: typeof withApproval): LoadedPolicySet => {
        assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.problems));
        return r.set;
      };

      if (!strict) {
        it('an engine that cannot analyze policies offers no approval analysis (its denials stay denials)', () => {
          assert.equal(loadedSet(withApproval).approval, undefined);
        });
        return;
      }

      it('tells, per policy and from its structure, whether it reads context.approval and which roles it compares', () => {
        const uses = loadedSet(withApproval).approval?.uses;
        assert.ok(uses !== undefined);
        assert.equal(uses.size, loadedSet(withApproval).policies.length);
        const use = (id: string) => {
          const u = uses.get(id);
          return u && { reads: u.reads, roles: [...u.roles], opaque: u.opaque };
        };
        assert.deepEqual(use('active-agents-within-mandate'), { reads: false, roles: [], opaque: false });
        assert.deepEqual(use('production-refund-needs-approval'), { reads: true, roles: ['finance', 'support-lead'], opaque: false });
        assert.deepEqual(use('large-refund-needs-finance'), { reads: true, roles: ['finance'], opaque: false });
        assert.deepEqual(use('destructive-needs-admin-approval'), { reads: true, roles: ['admin'], opaque: false });
        assert.deepEqual(use('approver-is-a-second-human'), { reads: true, roles: [], opaque: false });
        assert.deepEqual(use('services-deploy-with-sre-or-admin'), { reads: true, roles: ['admin', 'sre'], opaque: false });
        assert.deepEqual(use('risky-deploy-sre-only'), { reads: true, roles: ['sre'], opaque: false });
        // Its text says "approval" and "approverRole"; its structure reads neither.
        assert.deepEqual(use('legacy-closed-approval'), { reads: false, roles: [], opaque: false });
        assert.deepEqual(use('high-risk-refused'), { reads: false, roles: [], opaque: false });
      });

      it('answers for every role in one evaluation exactly as one evaluation per role does', () => {
        const set = loadedSet(withApproval);
        const rolesAllowing = set.approval?.rolesAllowing;
        assert.ok(rolesAllowing !== undefined, 'a set that compares roles only with literals has a probe');
        const seen = new Set<string>();
        let cases = 0;
        for (const input of approvalGrid()) {
          const expected = ROLES.filter((role) => {
            const a = set.authorize(cedarRequest(set, input, hypothetical(role)));
            return a.decision === 'allow' && a.errors.length === 0;
          });
          // The probe request carries any role (the first): the probe does not read its value.
          for (const first of [ROLES[0] as string, 'intern']) {
            const got = rolesAllowing(cedarRequest(set, input, hypothetical(first)), ROLES);
            assert.deepEqual(
              got,
              expected,
              `${input.tool.name} ${JSON.stringify(input.args)} ${input.agent.actorType} ${input.mandate.environment}`,
            );
          }
          seen.add(expected.join(','));
          cases += 1;
        }
        assert.equal(cases, 360);
        // The grid reaches no role, one role, several, and roles only a permit admits.
        for (const want of ['', 'finance', 'admin', 'support-lead,finance', 'admin,sre', 'sre'])
          assert.ok(seen.has(want), `no case allows [${want}]: ${[...seen].join(' | ')}`);
      });

      it('a set that reads the role opaquely says so and has no one-evaluation probe', () => {
        const set = loadedSet(engine.load(MANDATE_SCHEMA, [...DEMO_FILES, OPAQUE_POLICIES]));
        const u = set.approval?.uses.get('finance-like');
        assert.deepEqual(u && { reads: u.reads, opaque: u.opaque }, { reads: true, opaque: true });
        assert.equal(set.approval?.rolesAllowing, undefined);
      });
    });

    it('reads the intent context: its sets (isEmpty, contains), per-argument records (has) and the optional template', async () => {
      if (!strict) return;
      const r = engine.load(MANDATE_SCHEMA, [INTENT_POLICIES]);
      assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
      const s = r.set;
      const provenance = new Provenance();
      provenance.record('m-intent', 'pay GB82 WEST 1234 5698 7654 32 now');
      const answer = async (args: Record<string, unknown>, over: Partial<DecisionInput['mandate']> = {}) => {
        const m = mandate({ id: 'm-intent', requestText: 'Refund customer C-1009 to DE89 3704 0044 0532 0130 00', ...over });
        const input: DecisionInput = {
          mandate: m,
          chain: [m],
          agent: baseAgent,
          tool: tool('helpdesk.execute_refund'),
          args,
          now: NOW,
          provenance: provenance.view('m-intent'),
        };
        const a = await authorizeAny(s, cedarRequest(s, input, undefined));
        return [a.decision, a.policies.join(',')];
      };
      assert.deepEqual(await answer({ customerId: 'C-1009', iban: 'DE89370400440532013000' }), ['allow', 'permit-all']);
      assert.deepEqual(await answer({ customerId: 'C-1009', iban: 'DE00000000000000000000' }), ['deny', 'unnamed-targets']);
      assert.deepEqual(await answer({ customerId: 'C-1009', iban: 'GB82WEST12345698765432' }), [
        'deny',
        'iban-from-tool-output,unnamed-targets',
      ]);
      assert.deepEqual(await answer({ customerId: 'C-2000' }), ['deny', 'customer-named']);
      const template = { name: 't', version: 3, approval: { tools: ['helpdesk.execute_refund'], unnamedTargets: false } };
      assert.deepEqual(await answer({ customerId: 'C-1009' }, { template }), ['deny', 'template-v3-approval']);
    });

    it('a request that does not conform to the schema is a deny with an error', async () => {
      const wrongType = await ask({ ...req('bob', 'read', 'plan'), principal: D('plan') });
      assert.equal(wrongType.decision, 'deny');
      if (strict) assert.ok(wrongType.errors.length > 0);
      const missing = await ask({ ...req('bob', 'read', 'plan'), context: { ip: ipx('10.0.0.1') } });
      assert.equal(missing.decision, 'deny');
      if (strict) assert.ok(missing.errors.length > 0);
      const undeclaredAction = await ask({ ...req('bob', 'read', 'plan'), action: A('delete') });
      assert.equal(undeclaredAction.decision, 'deny');
      if (strict) assert.ok(undeclaredAction.errors.length > 0);
    });
  });
}

engineConformance('wasm (reference)', () => wasmEngine);
engineConformance('compiled', () => compiledEngine);

describe('the compiled engine serves the approval probe itself', () => {
  it('compiles the probe set of the demo and approval policies (no call goes to cedar-wasm)', () => {
    const r = compiledEngine.load(MANDATE_SCHEMA, [...DEMO_FILES, APPROVAL_POLICIES]);
    assert.ok(r.ok);
    const set = r.set as CompiledEngineSet;
    assert.equal(set.engine, 'compiled');
    const own = set.approval?.rolesAllowing;
    assert.ok(own !== undefined);
    assert.notEqual(own, set.fallback.approval?.rolesAllowing, 'the probe is compiled, not cedar-wasm’s');
    const [input] = approvalGrid();
    assert.ok(input !== undefined);
    assert.deepEqual(own(cedarRequest(set, input, hypothetical('finance')), ROLES), ['support-lead', 'finance']);
    assert.equal(set.delegated.count, 0);
  });
});

describe('the compiled engine serves the conformance set itself', () => {
  it('compiles it (no fallback to cedar-wasm)', () => {
    const r = compiledEngine.load(SCHEMA, [{ path: 'docs.cedar', text: POLICIES }]);
    assert.ok(r.ok);
    assert.equal(r.set.engine, 'compiled');
    assert.deepEqual(r.notices, []);
  });
});
