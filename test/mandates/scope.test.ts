// Data-driven cases for the scope model: a child may only narrow, and calls fail closed.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ArgConstraint, isSubset, matchCall, type Scope, scopeSchema, type ToolGrant } from '../../src/scope/scope.js';

const scope = (tools: ToolGrant[], delegable = true): Scope => ({ tools, delegable });
const one = (args: Record<string, ArgConstraint>, extra: Partial<ToolGrant> = {}): Scope => scope([{ tool: 't', args, ...extra }]);

// [name, child constraint, parent constraint, child ⊆ parent]
const constraintCases: [string, ArgConstraint, ArgConstraint, boolean][] = [
  ['same eq', { eq: 'a' }, { eq: 'a' }, true],
  ['different eq', { eq: 'b' }, { eq: 'a' }, false],
  ['eq inside in', { eq: 'a' }, { in: ['a', 'b'] }, true],
  ['eq outside in', { eq: 'c' }, { in: ['a', 'b'] }, false],
  ['in subset', { in: ['a'] }, { in: ['a', 'b'] }, true],
  ['in superset', { in: ['a', 'b', 'c'] }, { in: ['a', 'b'] }, false],
  ['in replaces eq (wider)', { in: ['a', 'b'] }, { eq: 'a' }, false],
  ['in with filter narrows to parent', { in: ['a', 'zz'], prefix: 'a' }, { eq: 'a' }, true],
  ['tighter max', { max: 5 }, { max: 10 }, true],
  ['equal max', { max: 10 }, { max: 10 }, true],
  ['looser max', { max: 11 }, { max: 10 }, false],
  ['dropping max for min', { min: 0 }, { max: 10 }, false],
  ['tighter interval', { min: 2, max: 5 }, { min: 1, max: 10 }, true],
  ['lower min', { min: 0, max: 5 }, { min: 1, max: 10 }, false],
  ['empty interval is a subset of anything', { min: 5, max: 1 }, { eq: 'x' }, true],
  ['point interval inside eq', { min: 3, max: 3 }, { eq: 3 }, true],
  ['point interval outside in', { min: 4, max: 4 }, { in: [3, 5] }, false],
  ['number interval never inside a finite set', { min: 3, max: 4 }, { in: [3, 4] }, false],
  ['eq number within max', { eq: 7 }, { max: 10 }, true],
  ['eq number above max', { eq: 11 }, { max: 10 }, false],
  ['eq string vs numeric parent (wrong type)', { eq: '5' }, { max: 10 }, false],
  ['eq number vs string parent', { eq: 5 }, { prefix: '5' }, false],
  ['eq boolean', { eq: true }, { in: [true] }, true],
  ['eq boolean outside', { eq: false }, { eq: true }, false],
  ['longer prefix', { prefix: 'C-10' }, { prefix: 'C-' }, true],
  ['shorter prefix', { prefix: 'C' }, { prefix: 'C-' }, false],
  ['unrelated prefix', { prefix: 'D-' }, { prefix: 'C-' }, false],
  ['prefix vs numeric parent', { prefix: 'C' }, { min: 0 }, false],
  ['interval vs string parent', { min: 0, max: 3 }, { prefix: 'C' }, false],
  ['eq with prefix', { eq: 'C-1009' }, { prefix: 'C-' }, true],
  ['eq without prefix', { eq: 'D-1009' }, { prefix: 'C-' }, false],
  ['prefix cannot fit in eq', { prefix: 'C-1009' }, { eq: 'C-1009' }, false],
  ['prefix with exact length is a point', { prefix: 'C-1009', maxLength: 6 }, { eq: 'C-1009' }, true],
  ['prefix+maxLength too short is empty', { prefix: 'C-1009', maxLength: 3 }, { eq: 'x' }, true],
  ['tighter maxLength', { maxLength: 5 }, { maxLength: 10 }, true],
  ['looser maxLength', { maxLength: 11 }, { maxLength: 10 }, false],
  ['drops maxLength', { prefix: 'a' }, { maxLength: 10 }, false],
  ['prefix and maxLength', { prefix: 'ab', maxLength: 4 }, { prefix: 'a', maxLength: 4 }, true],
  ['string and number ops together is empty', { prefix: 'a', max: 3 }, { eq: 'z' }, true],
  ['eq filtered by own max passes', { in: [1, 50], max: 10 }, { max: 10 }, true],
  ['in filtered by own ops fails when one survives', { in: [1, 50], max: 60 }, { max: 10 }, false],
];

describe('isSubset: argument constraints', () => {
  for (const [name, child, parent, expected] of constraintCases) {
    it(`${name} → ${expected ? 'subset' : 'wider'}`, () => {
      const r = isSubset(one({ x: child }), one({ x: parent }));
      assert.equal(r.ok, expected, JSON.stringify(r));
      if (!r.ok) assert.equal(r.path, 'tools[0].args.x');
    });
  }

  it('checks soundness against matchCall on sampled values', () => {
    const samples: unknown[] = [
      0,
      1,
      2,
      3,
      4,
      5,
      7,
      10,
      11,
      50,
      60,
      -1,
      2.5,
      'a',
      'b',
      'c',
      'z',
      'zz',
      'ab',
      'abcd',
      'abcde',
      '5',
      'C',
      'C-',
      'C-10',
      'C-1009',
      'C-10090',
      'D-1009',
      'x',
      true,
      false,
      null,
      [],
      {},
    ];
    for (const [name, child, parent, expected] of constraintCases) {
      if (!expected) continue;
      for (const v of samples) {
        const inChild = matchCall(one({ x: child }), 't', { x: v }).ok;
        const inParent = matchCall(one({ x: parent }), 't', { x: v }).ok;
        assert.ok(!inChild || inParent, `${name}: ${JSON.stringify(v)} allowed by child but not parent`);
      }
    }
  });
});

describe('isSubset: grants, budgets, delegable', () => {
  const parent = scope([
    { tool: 'helpdesk.search_tickets' },
    { tool: 'helpdesk.get_customer', args: { customerId: { eq: 'C-1009' } } },
    { tool: 'helpdesk.propose_refund', args: { amountCents: { max: 25000 } }, maxCalls: 3 },
    { tool: 'helpdesk.execute_refund', args: { customerId: { eq: 'C-1009' } }, sum: { arg: 'amountCents', max: 25000 } },
  ]);
  const cases: [string, Scope, boolean, string?][] = [
    ['identical', parent, true],
    ['empty', scope([], false), true],
    ['drops tools', scope([{ tool: 'helpdesk.search_tickets' }]), true],
    ['adds a tool', scope([{ tool: 'helpdesk.delete_customer' }]), false, 'tools[0].tool'],
    ['adds a constraint', scope([{ tool: 'helpdesk.search_tickets', args: { q: { maxLength: 10 } } }]), true],
    ['drops a constraint', scope([{ tool: 'helpdesk.get_customer' }]), false, 'tools[0].args.customerId'],
    ['drops maxCalls', scope([{ tool: 'helpdesk.propose_refund', args: { amountCents: { max: 100 } } }]), false, 'tools[0].maxCalls'],
    [
      'raises maxCalls',
      scope([{ tool: 'helpdesk.propose_refund', args: { amountCents: { max: 100 } }, maxCalls: 4 }]),
      false,
      'tools[0].maxCalls',
    ],
    ['lowers maxCalls', scope([{ tool: 'helpdesk.propose_refund', args: { amountCents: { max: 100 } }, maxCalls: 1 }]), true],
    ['drops sum', scope([{ tool: 'helpdesk.execute_refund', args: { customerId: { eq: 'C-1009' } } }]), false, 'tools[0].sum'],
    [
      'sum on another arg',
      scope([{ tool: 'helpdesk.execute_refund', args: { customerId: { eq: 'C-1009' } }, sum: { arg: 'x', max: 1 } }]),
      false,
      'tools[0].sum',
    ],
    [
      'raises sum',
      scope([{ tool: 'helpdesk.execute_refund', args: { customerId: { eq: 'C-1009' } }, sum: { arg: 'amountCents', max: 25001 } }]),
      false,
      'tools[0].sum.max',
    ],
    [
      'lowers sum',
      scope([{ tool: 'helpdesk.execute_refund', args: { customerId: { eq: 'C-1009' } }, sum: { arg: 'amountCents', max: 100 } }]),
      true,
    ],
    [
      'second grant is the wider one',
      scope([{ tool: 'helpdesk.search_tickets' }, { tool: 'helpdesk.get_customer' }]),
      false,
      'tools[1].args.customerId',
    ],
  ];
  for (const [name, child, expected, path] of cases) {
    it(`${name} → ${expected}`, () => {
      const r = isSubset(child, parent);
      assert.equal(r.ok, expected, JSON.stringify(r));
      if (!r.ok) assert.equal(r.path, path);
    });
  }

  it('a child of a non-delegable parent may not be delegable', () => {
    const r = isSubset(scope([], true), scope([], false));
    assert.deepEqual(r, { ok: false, reason: 'the parent scope is not delegable', path: 'delegable' });
    assert.equal(isSubset(scope([], false), scope([], false)).ok, true);
  });

  it('a grant may fit any one of several parent grants of the same tool', () => {
    const p = scope([
      { tool: 't', args: { n: { eq: 1 } } },
      { tool: 't', args: { n: { eq: 2 } } },
    ]);
    assert.equal(isSubset(one({ n: { eq: 2 } }), p).ok, true);
    // The union of two grants is not a single grant: {in:[1,2]} must fit one of them.
    assert.equal(isSubset(one({ n: { in: [1, 2] } }), p).ok, false);
  });
});

describe('matchCall', () => {
  const s = scope([
    { tool: 'helpdesk.search_tickets' },
    { tool: 'helpdesk.get_customer', args: { customerId: { eq: 'C-1009' } } },
    { tool: 'helpdesk.propose_refund', args: { amountCents: { min: 1, max: 25000 }, reason: { maxLength: 20 } } },
    { tool: 'files.read', args: { path: { prefix: '/srv/tickets/' } } },
    { tool: 'files.read', args: { path: { in: ['/etc/motd'] } } },
  ]);
  const cases: [string, string, Record<string, unknown>, number | string][] = [
    ['ungranted tool', 'helpdesk.delete_customer', {}, 'not granted'],
    ['no constraints, any args', 'helpdesk.search_tickets', { q: 'x', deep: { a: 1 } }, 0],
    ['eq holds', 'helpdesk.get_customer', { customerId: 'C-1009' }, 1],
    ['eq fails', 'helpdesk.get_customer', { customerId: 'C-1010' }, 'must equal'],
    ['missing constrained arg', 'helpdesk.get_customer', {}, 'is missing'],
    ['wrong type for eq', 'helpdesk.get_customer', { customerId: ['C-1009'] }, 'must equal'],
    ['within max', 'helpdesk.propose_refund', { amountCents: 25000, reason: 'dup' }, 2],
    ['above max', 'helpdesk.propose_refund', { amountCents: 25001, reason: 'dup' }, 'must be <= 25000'],
    ['below min', 'helpdesk.propose_refund', { amountCents: 0, reason: 'dup' }, 'must be >= 1'],
    ['numeric string fails closed', 'helpdesk.propose_refund', { amountCents: '100', reason: 'dup' }, 'must be a number, got string'],
    ['null fails closed', 'helpdesk.propose_refund', { amountCents: null, reason: 'dup' }, 'got null'],
    ['object fails closed', 'helpdesk.propose_refund', { amountCents: { valueOf: 1 }, reason: 'x' }, 'got object'],
    ['too long', 'helpdesk.propose_refund', { amountCents: 5, reason: 'x'.repeat(21) }, 'at most 20 characters'],
    ['number for maxLength fails closed', 'helpdesk.propose_refund', { amountCents: 5, reason: 12 }, 'must be a string'],
    ['prefix holds', 'files.read', { path: '/srv/tickets/1' }, 3],
    ['second grant of the same tool', 'files.read', { path: '/etc/motd' }, 4],
    ['no grant of the tool fits', 'files.read', { path: '/etc/passwd' }, 'must start with'],
    ['inherited property is not an argument', 'helpdesk.get_customer', Object.create({ customerId: 'C-1009' }), 'is missing'],
  ];
  for (const [name, tool, args, expected] of cases) {
    it(name, () => {
      const r = matchCall(s, tool, args);
      if (typeof expected === 'number') {
        assert.ok(r.ok, JSON.stringify(r));
        assert.equal(r.index, expected);
        assert.equal(r.grant, s.tools[expected]);
      } else {
        assert.equal(r.ok, false);
        if (!r.ok) assert.match(r.reason, new RegExp(expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
      }
    });
  }
});

describe('scopeSchema', () => {
  it('parses DESIGN §7 tools and rejects unknown ops and empty constraints', () => {
    const ok = scopeSchema.safeParse({
      tools: [{ tool: 'helpdesk.execute_refund', args: { customerId: { eq: 'C-1009' } }, sum: { arg: 'amountCents', max: 25000 } }],
      delegable: true,
    });
    assert.equal(ok.success, true);
    assert.equal(scopeSchema.safeParse({ tools: [{ tool: 't', args: { a: { regex: '.*' } } }] }).success, false);
    assert.equal(scopeSchema.safeParse({ tools: [{ tool: 't', args: { a: {} } }] }).success, false);
    assert.equal(scopeSchema.safeParse({ tools: [{ tool: 't', maxCalls: -1 }] }).success, false);
    assert.equal(scopeSchema.safeParse({ tools: [{ tool: 't', args: { a: { max: Number.NaN } } }] }).success, false);
    assert.equal(scopeSchema.parse({ tools: [] }).delegable, false);
  });
});

describe('isSubset: randomized soundness and exactness against matchCall', () => {
  // A small deterministic PRNG (mulberry32) so failures reproduce.
  let seed = 0x5eed;
  const rand = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const numbers = [0, 1, 2, 3, 5, 8];
  const strings = ['', 'a', 'ab', 'abc', 'b', 'ba'];
  const values: unknown[] = [...numbers, -1, 4, 9, 2.5, ...strings, 'abcd', 'bab', 'c', true, false, null, ['a'], {}];

  function constraint(): ArgConstraint {
    for (;;) {
      const c: ArgConstraint = {};
      if (rand() < 0.15) c.eq = pick([...numbers, ...strings, true]);
      if (rand() < 0.2) c.in = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => pick([...numbers, ...strings]));
      if (rand() < 0.3) c.prefix = pick(strings);
      if (rand() < 0.25) c.maxLength = pick([0, 1, 2, 3]);
      if (rand() < 0.3) c.min = pick(numbers);
      if (rand() < 0.3) c.max = pick(numbers);
      if (Object.keys(c).length > 0) return c;
    }
  }

  it('never calls a wider child a subset (5,000 random pairs, checked on sample values)', () => {
    let subsets = 0;
    for (let i = 0; i < 5000; i++) {
      const child = constraint();
      const parent = constraint();
      if (!isSubset(one({ x: child }), one({ x: parent })).ok) continue;
      subsets += 1;
      for (const v of values) {
        if (matchCall(one({ x: child }), 't', { x: v }).ok) {
          assert.ok(
            matchCall(one({ x: parent }), 't', { x: v }).ok,
            `${JSON.stringify(child)} ⊆ ${JSON.stringify(parent)} but ${JSON.stringify(v)}`,
          );
        }
      }
    }
    assert.ok(subsets > 100, `only ${subsets} subset pairs were generated`);
  });

  it('every constraint is a subset of itself, and of a copy with fewer ops (exactness)', () => {
    for (let i = 0; i < 2000; i++) {
      const c = constraint();
      assert.ok(isSubset(one({ x: c }), one({ x: c })).ok, JSON.stringify(c));
      const looser = Object.fromEntries(Object.entries(c).filter(() => rand() < 0.5)) as ArgConstraint;
      if (Object.keys(looser).length === 0) continue;
      assert.ok(isSubset(one({ x: c }), one({ x: looser })).ok, `${JSON.stringify(c)} ⊆ ${JSON.stringify(looser)}`);
    }
  });
});
