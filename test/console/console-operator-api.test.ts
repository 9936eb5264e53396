// The console's operator-facing read models: who is signed in and what the admin API lets them do
// (the console hides the rest), amount hints from the tool catalog, the Cedar source of the
// active policies, and what a revoke would end. Real broker (demo mode, SQLite), real helpdesk
// upstream (stdio) for the catalog.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Agent } from '../../src/agents/agent.js';
import { DELEGATED_TASK, DEMO_TASK } from '../../src/demo/agent.js';
import { authorizeOperator, type Permission, permissions } from '../../src/http/admin-policy.js';
import { activeDescendants, mayRevoke, permissionsOf } from '../../src/http/routes/console-api.js';
import type { Operator } from '../../src/identity/operators.js';
import type { Mandate } from '../../src/mandates/mandate.js';
import { AMOUNT_KEYWORD, amountArgsOf } from '../../src/upstreams/catalog.js';
import { buildTestApp, type TestApp } from '../helpers/app.js';

describe('console operator APIs', () => {
  let t: TestApp;
  const tokens: Record<string, string> = {};
  const get = async (path: string, who: string | undefined) => {
    const res = await t.app.inject({ url: path, headers: who === undefined ? {} : { authorization: `Bearer ${tokens[who]}` } });
    return { status: res.statusCode, body: res.json() as Record<string, unknown> };
  };

  before(async () => {
    t = await buildTestApp();
    tokens.alice = await t.operatorToken('alice');
    tokens.bob = await t.operatorToken('bob');
    tokens.carol = await t.operatorToken('carol');
    tokens.auditor = await t.operatorToken('alice', ['auditor']);
    tokens.nobody = await t.operatorToken('bob', []);
  });
  after(() => t.close());

  test('me: roles and exactly the permissions the route guard grants', async () => {
    assert.equal((await get('/admin/v1/console/me', undefined)).status, 401);
    const carol = await get('/admin/v1/console/me', 'carol');
    assert.equal(carol.status, 200);
    assert.deepEqual(carol.body.roles, ['approver', 'finance']);
    assert.equal(carol.body.via, 'oidc');
    // An approver reads approvals and the overview, decides, and nothing else of the admin API.
    assert.deepEqual([...(carol.body.permissions as string[])].sort(), [
      'approvals:decide',
      'approvals:read',
      'console:read',
      'mandates:end',
      'self:read',
    ]);
    const alice = (await get('/admin/v1/console/me', 'alice')).body.permissions as string[];
    assert.deepEqual([...alice].sort(), Object.keys(permissions).sort(), 'an admin holds every permission');
    const auditor = (await get('/admin/v1/console/me', 'auditor')).body.permissions as string[];
    assert.ok(auditor.includes('audit:read') && !auditor.includes('agents:write') && !auditor.includes('policy:write'));
    assert.deepEqual([...((await get('/admin/v1/console/me', 'nobody')).body.permissions as string[])].sort(), [
      'approvals:decide',
      'mandates:end',
      'self:read',
    ]);
  });

  test('permissionsOf agrees with authorizeOperator for every role and permission', () => {
    const roles = ['admin', 'auditor', 'approver', 'finance', 'pdp', 'resource-server', 'unknown'];
    for (const role of roles) {
      const op: Operator = { id: 'x', subject: 'x', name: 'x', roles: [role], via: 'oidc' };
      const held = new Set(permissionsOf(op));
      for (const p of Object.keys(permissions) as Permission[]) {
        let allowed = true;
        try {
          authorizeOperator(op, p);
        } catch {
          allowed = false;
        }
        assert.equal(held.has(p), allowed, `${role} ${p}`);
      }
    }
  });

  test('every page the console offers is refused by the API to an operator without its permission', async () => {
    // What the console hides for carol is exactly what the server forbids her.
    for (const [path, permission] of [
      ['/admin/v1/agents', 'agents:read'],
      ['/admin/v1/mandates', 'mandates:read'],
      ['/admin/v1/console/audit', 'audit:read'],
      ['/admin/v1/policies', 'policy:read'],
      ['/admin/v1/console/policies', 'policy:read'],
    ] as const) {
      assert.equal((await get(path, 'carol')).status, 403, path);
      assert.equal((await get(path, 'alice')).status, 200, path);
      assert.ok(
        !permissionsOf({ id: 'carol', subject: 'carol', name: 'c', roles: ['approver', 'finance'], via: 'oidc' }).includes(permission),
      );
    }
  });

  test('hints: amount arguments from the catalog, readable by approvers, not by an operator without console access', async () => {
    await t.broker.upstreams.discoverPending();
    const hints = await get('/admin/v1/console/hints', 'carol');
    assert.equal(hints.status, 200);
    const tools = hints.body.tools as Record<string, { amountArgs: Record<string, unknown> }>;
    assert.deepEqual(tools['helpdesk.execute_refund']?.amountArgs, { amountCents: { currency: 'USD', minorUnits: 2 } });
    assert.deepEqual(tools['helpdesk.propose_refund']?.amountArgs, { amountCents: { currency: 'USD', minorUnits: 2 } });
    assert.equal(tools['helpdesk.get_customer'], undefined, 'tools without amounts are not listed');
    assert.equal((await get('/admin/v1/console/hints', 'nobody')).status, 403);
  });

  test('amountArgsOf: a valid hint per top-level property; malformed hints are ignored, never trusted', () => {
    const hint = (v: unknown) => ({ type: 'integer', [AMOUNT_KEYWORD]: v });
    assert.deepEqual(
      amountArgsOf({
        type: 'object',
        properties: {
          cents: hint({ currency: 'USD', minorUnits: 2 }),
          yen: hint({ currency: 'JPY', minorUnits: 0 }),
          lower: hint({ currency: 'usd', minorUnits: 2 }),
          tooMany: hint({ currency: 'EUR', minorUnits: 9 }),
          fraction: hint({ currency: 'EUR', minorUnits: 1.5 }),
          extra: hint({ currency: 'EUR', minorUnits: 2, symbol: '<b>€</b>' }),
          text: hint('USD'),
          nested: { type: 'object', properties: { inner: hint({ currency: 'USD', minorUnits: 2 }) } },
          plain: { type: 'integer' },
          odd: null,
        },
      }),
      { cents: { currency: 'USD', minorUnits: 2 }, yen: { currency: 'JPY', minorUnits: 0 } },
    );
    assert.deepEqual(amountArgsOf({}), {});
    assert.deepEqual(amountArgsOf({ properties: 'x' }), {});
    // A property literally named __proto__ cannot pollute anything.
    const polluted = amountArgsOf(JSON.parse(`{"properties":{"__proto__":${JSON.stringify(hint({ currency: 'USD', minorUnits: 2 }))}}}`));
    assert.equal(({} as Record<string, unknown>).currency, undefined);
    assert.equal(Object.getPrototypeOf(polluted), Object.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(polluted, '__proto__')?.value, { currency: 'USD', minorUnits: 2 });
  });

  test('policies: the Cedar source of each active policy, for policy readers only', async () => {
    const r = await get('/admin/v1/console/policies', 'alice');
    assert.equal(r.status, 200);
    const policies = r.body.policies as { id: string; text: string; effect: string }[];
    const big = policies.find((p) => p.id === 'large-refund-needs-finance');
    assert.ok(big, 'the demo set has the finance policy');
    assert.match(big.text, /@id\("large-refund-needs-finance"\)/);
    assert.match(big.text, /amountCents/);
    assert.equal(r.body.version, t.broker.policies.current?.set.version);
    assert.equal((await get('/admin/v1/console/policies', 'auditor')).status, 200);
  });

  test('activity says what a revoke would end (active descendants) and whether the caller may', async () => {
    const { mandates, agents } = t.broker;
    const triage = (await agents.get('support-triage')) as Agent;
    const remediation = (await agents.get('remediation')) as Agent;
    const root = await mandates.open(triage, mandates.parseRequest(DEMO_TASK), 'bob');
    const child = await mandates.delegate(root, remediation, mandates.parseRequest(DELEGATED_TASK));
    const activity = async (id: string, who: string) =>
      (await get(`/admin/v1/console/mandates/${id}/activity`, who)).body.revoke as {
        allowed: boolean;
        activeDescendants: string[];
        complete: boolean;
      };
    assert.deepEqual(await activity(root.id, 'alice'), { allowed: true, activeDescendants: [child.id], complete: true });
    assert.deepEqual(await activity(child.id, 'alice'), { allowed: true, activeDescendants: [], complete: true });
    // An auditor reads mandates but may not revoke (not an admin, not the owner).
    assert.deepEqual(await activity(root.id, 'auditor'), { allowed: false, activeDescendants: [child.id], complete: true });
    // The count is what the revoke then ends.
    const res = await t.app.inject({
      method: 'POST',
      url: `/admin/v1/mandates/${root.id}/revoke`,
      headers: { authorization: `Bearer ${tokens.alice}`, 'content-type': 'application/json' },
      payload: '{}',
    });
    assert.deepEqual((res.json() as { ended: string[] }).ended.sort(), [root.id, child.id].sort());
    assert.deepEqual(await activity(root.id, 'alice'), { allowed: true, activeDescendants: [], complete: true });
  });

  test('mayRevoke: an admin, or the agent owner by subject; nobody else', () => {
    const op = (subject: string, roles: string[]): Operator => ({ id: `iss|${subject}`, subject, name: subject, roles, via: 'oidc' });
    assert.equal(mayRevoke(op('alice', ['admin']), 'bob'), true);
    assert.equal(mayRevoke(op('bob', ['auditor']), 'bob'), true);
    assert.equal(mayRevoke(op('carol', ['auditor', 'finance']), 'bob'), false);
    assert.equal(mayRevoke(op('bob', ['auditor']), undefined), false);
  });

  test('activeDescendants walks the whole subtree and skips ended mandates, never another branch', () => {
    const m = (id: string, parentId: string | undefined, status = 'active') => ({ id, parentId, status }) as unknown as Mandate;
    const tree = [m('r', undefined), m('a', 'r'), m('b', 'r', 'revoked'), m('a1', 'a'), m('b1', 'b'), m('x', undefined), m('x1', 'x')];
    const [root, a] = tree;
    assert.deepEqual(
      activeDescendants(root as Mandate, tree)
        .map((d) => d.id)
        .sort(),
      ['a', 'a1', 'b1'],
    );
    assert.deepEqual(
      activeDescendants(a as Mandate, tree).map((d) => d.id),
      ['a1'],
    );
  });
});
