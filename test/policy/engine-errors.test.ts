// Fail closed inside the engine: a policy that errors while evaluating (Cedar skips it, which could
// skip a forbid) makes the decision a deny carrying the error; no policy set means deny.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { DecisionService } from '../../src/policy/decisions.js';
import { SHIPPED_SCHEMA } from '../../src/policy/source.js';
import { PolicyStore } from '../../src/policy/store.js';
import { agent, mandate, NOW, tool } from './fixtures.js';

const schema = { path: 'mandate.cedarschema', text: readFileSync(SHIPPED_SCHEMA, 'utf8') };
const noBudgets = { consume: async () => ({ ok: true as const }), fits: async () => ({ ok: true as const }) };

function service(policies: string | undefined): DecisionService {
  const store = new PolicyStore({ dir: undefined, schemaPath: SHIPPED_SCHEMA, now: () => NOW });
  if (policies !== undefined) {
    const r = store.loadSource({ schema, files: [{ path: 'p.cedar', text: policies }], entities: undefined });
    assert.ok(r.ok, JSON.stringify(r));
  }
  return new DecisionService({ policies: store, budgets: noBudgets, clock: { now: () => NOW }, approverRoles: ['admin'] });
}

const call = () => {
  const m = mandate({ depth: 1, parentId: undefined });
  return { mandate: m, chain: [m], agent, tool: tool('helpdesk.search_tickets'), args: {}, now: NOW };
};

describe('engine errors fail closed', () => {
  it('an overflow inside a forbid is a deny with the error, although a permit holds', async () => {
    const d = await service(
      '@id("allow")\npermit (principal, action == Mandate::Action::"call", resource);\n' +
        '@id("overflows")\nforbid (principal, action == Mandate::Action::"call", resource)\nwhen { context.delegationDepth + 9223372036854775807 > 0 };\n',
    ).decide(call());
    assert.equal(d.outcome, 'deny');
    assert.match(d.errors?.join(' ') ?? '', /overflows/);
  });

  it('no policy set loaded is a deny', async () => {
    const store = new PolicyStore({ dir: '/nonexistent', schemaPath: SHIPPED_SCHEMA, now: () => NOW });
    const s = new DecisionService({ policies: store, budgets: noBudgets, clock: { now: () => NOW }, approverRoles: [] });
    const d = await s.decide(call());
    assert.equal(d.outcome, 'deny');
    assert.deepEqual(d.errors, ['no org policy is loaded']);
  });

  it('an empty policy set permits nothing', async () => {
    const d = await service('').decide(call());
    assert.equal(d.outcome, 'deny');
    assert.match(d.reasons.join(' '), /no org policy permits/);
  });
});
