// Scope model (src/scope/scope.ts): the schema's bounds on both sides, non-finite numbers, and
// the exact reason and path of every refusal of matchCall and isSubset — operators and agents see
// these reasons, and a refusal for the wrong reason usually means a rule stopped being checked.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { normalizePath, withinViolation } from '../../src/scope/path.js';
import {
  type ArgConstraint,
  argConstraintSchema,
  isSubset,
  matchCall,
  type Scope,
  scopeSchema,
  toolGrantSchema,
  violation,
} from '../../src/scope/scope.js';

const scope = (tools: Scope['tools'], delegable = false): Scope => ({ tools, delegable });
const arg = (c: ArgConstraint): Scope => scope([{ tool: 't', args: { a: c } }]);
const subsetReason = (child: Scope, parent: Scope) => {
  const r = isSubset(child, parent);
  return r.ok ? 'ok' : `${r.path}: ${r.reason}`;
};
const issues = (r: { success: boolean; error?: { issues: { message: string }[] } }) =>
  r.success ? [] : (r.error?.issues.map((i) => i.message) ?? []);

describe('schema bounds', () => {
  test('in: 1 and 1000 values are accepted, 0 and 1001 refused', () => {
    assert.equal(argConstraintSchema.safeParse({ in: [1] }).success, true);
    assert.equal(argConstraintSchema.safeParse({ in: [1, 2] }).success, true);
    assert.equal(argConstraintSchema.safeParse({ in: Array.from({ length: 1000 }, (_, i) => i) }).success, true);
    assert.equal(argConstraintSchema.safeParse({ in: [] }).success, false);
    assert.equal(argConstraintSchema.safeParse({ in: Array.from({ length: 1001 }, (_, i) => i) }).success, false);
  });

  test('maxLength: 0 and positive integers are accepted, negatives refused', () => {
    assert.equal(argConstraintSchema.safeParse({ maxLength: 0 }).success, true);
    assert.equal(argConstraintSchema.safeParse({ maxLength: 5 }).success, true);
    assert.equal(argConstraintSchema.safeParse({ maxLength: -1 }).success, false);
  });

  test('an empty constraint is refused with the list of ops', () => {
    const [message, ...rest] = issues(argConstraintSchema.safeParse({}));
    assert.match(message ?? '', /^at least one of eq, in, prefix, min, max, maxLength\b/);
    assert.deepEqual(rest, []);
    assert.equal(argConstraintSchema.safeParse({ prefix: '' }).success, true);
  });

  test('non-finite numbers are refused in eq, in, min, max and sum.max', () => {
    // JSON cannot carry Infinity, but a programmatic caller (or a YAML file: .inf) can.
    assert.equal(argConstraintSchema.safeParse({ eq: Number.POSITIVE_INFINITY }).success, false);
    assert.equal(argConstraintSchema.safeParse({ in: [Number.NaN] }).success, false);
    assert.equal(argConstraintSchema.safeParse({ min: Number.NEGATIVE_INFINITY }).success, false);
    assert.equal(argConstraintSchema.safeParse({ max: Number.POSITIVE_INFINITY }).success, false);
    assert.equal(toolGrantSchema.safeParse({ tool: 't', sum: { arg: 'a', max: Number.POSITIVE_INFINITY } }).success, false);
    assert.equal(toolGrantSchema.safeParse({ tool: 't', sum: { arg: 'a', max: -1 } }).success, false);
  });

  test('scopes: at most 500 grants; delegable defaults to false', () => {
    assert.equal(scopeSchema.safeParse({ tools: Array.from({ length: 500 }, () => ({ tool: 't' })) }).success, true);
    assert.equal(scopeSchema.safeParse({ tools: Array.from({ length: 501 }, () => ({ tool: 't' })) }).success, false);
    assert.deepEqual(scopeSchema.parse({ tools: [] }), { tools: [], delegable: false });
  });
});

describe('matchCall and violation reasons', () => {
  test('attack: NaN and Infinity never satisfy a numeric bound', () => {
    assert.equal(violation({ min: 0 }, Number.NaN), 'must be a number, got number');
    assert.equal(violation({ min: 0 }, Number.POSITIVE_INFINITY), 'must be a number, got number');
    assert.equal(violation({ max: 10 }, Number.NEGATIVE_INFINITY), 'must be a number, got number');
    assert.equal(violation({ max: 10 }, '5'), 'must be a number, got string');
    assert.equal(violation({ max: 10 }, 10), undefined);
    assert.equal(violation({ max: 10 }, 11), 'must be <= 10, got 11');
    assert.equal(violation({ min: 1 }, 0), 'must be >= 1, got 0');
  });

  test('exact reasons for eq, in, prefix and maxLength, with type names', () => {
    assert.equal(violation({ eq: 'a' }, 'b'), 'must equal "a"');
    assert.equal(violation({ in: ['a', 2] }, 'b'), 'must be one of "a", 2');
    assert.equal(violation({ prefix: 'x/' }, 'y'), 'must start with "x/"');
    assert.equal(violation({ prefix: 'x/' }, ['x/']), 'must be a string, got array');
    assert.equal(violation({ maxLength: 2 }, null), 'must be a string, got null');
    assert.equal(violation({ maxLength: 2 }, { a: 1 }), 'must be a string, got object');
    assert.equal(violation({ maxLength: 2 }, 'abc'), 'must be at most 2 characters, got 3');
    assert.equal(violation({ maxLength: 2 }, 'ab'), undefined);
    assert.equal(violation({ eq: 1 }, undefined), 'is missing');
  });

  test('the reason lists every grant that failed, separated by "; "', () => {
    const s = scope([
      { tool: 't', args: { a: { eq: 1 } } },
      { tool: 't', args: { a: { eq: 2 } } },
    ]);
    assert.deepEqual(matchCall(s, 't', { a: 3 }), { ok: false, reason: 'tool t: argument a must equal 1; argument a must equal 2' });
    assert.deepEqual(matchCall(s, 'u', {}), { ok: false, reason: 'tool u is not granted' });
    const m = matchCall(s, 't', { a: 2 });
    assert.equal(m.ok && m.index, 1);
  });
});

describe('isSubset reasons and paths', () => {
  test('missing tool, dropped constraint, widened argument', () => {
    assert.equal(subsetReason(scope([{ tool: 'u' }]), scope([{ tool: 't' }])), 'tools[0].tool: tool u is not in the parent scope');
    assert.equal(
      subsetReason(scope([{ tool: 't' }]), scope([{ tool: 't', args: { a: { eq: 1 } } }])),
      "tools[0].args.a: argument a drops the parent's constraint",
    );
    assert.equal(
      subsetReason(arg({ in: [1, 2] }), arg({ eq: 1 })),
      "tools[0].args.a: argument a allows 2, but the parent's constraint says it must equal 1",
    );
  });

  test('budgets: dropped or larger maxCalls and sum', () => {
    const p = scope([{ tool: 't', maxCalls: 3, sum: { arg: 'n', max: 10 } }]);
    assert.equal(subsetReason(scope([{ tool: 't', sum: { arg: 'n', max: 10 } }]), p), "tools[0].maxCalls: drops the parent's maxCalls 3");
    assert.equal(
      subsetReason(scope([{ tool: 't', maxCalls: 4, sum: { arg: 'n', max: 10 } }]), p),
      "tools[0].maxCalls: maxCalls 4 exceeds the parent's 3",
    );
    assert.equal(subsetReason(scope([{ tool: 't', maxCalls: 3 }]), p), "tools[0].sum: drops the parent's budget on the sum of n");
    assert.equal(
      subsetReason(scope([{ tool: 't', maxCalls: 3, sum: { arg: 'm', max: 1 } }]), p),
      "tools[0].sum: drops the parent's budget on the sum of n",
    );
    assert.equal(
      subsetReason(scope([{ tool: 't', maxCalls: 3, sum: { arg: 'n', max: 11 } }]), p),
      "tools[0].sum.max: sum of n 11 exceeds the parent's 10",
    );
    assert.equal(subsetReason(scope([{ tool: 't', maxCalls: 3, sum: { arg: 'n', max: 10 } }]), p), 'ok');
  });

  test('infinite child sets against finite, empty, numeric and string parents', () => {
    const why = (c: ArgConstraint, p: ArgConstraint) => subsetReason(arg(c), arg(p)).replace(/^tools\[0\]\.args\.a: argument a /, '');
    assert.equal(why({ min: 0 }, { in: [1, 2] }), "allows values outside the parent's finite set");
    assert.equal(why({ prefix: 'a' }, { eq: 'a' }), "allows values outside the parent's finite set");
    assert.equal(why({ min: 0 }, { min: 5, max: 1 }), "allows values outside the parent's finite set");
    assert.equal(why({ prefix: 'a' }, { prefix: 'a', min: 1 }), "allows values outside the parent's finite set");
    assert.equal(why({ min: 0 }, { prefix: 'a' }), 'allows numbers, the parent only strings');
    assert.equal(why({ prefix: 'a' }, { max: 5 }), 'allows strings, the parent only numbers');
    assert.equal(why({ min: 0 }, { min: 1 }), "lowers min below the parent's 1");
    assert.equal(why({ max: 5 }, { min: 1 }), "lowers min below the parent's 1");
    assert.equal(why({ min: 1 }, { max: 5 }), "raises max above the parent's 5");
    assert.equal(why({ min: 1, max: 6 }, { max: 5 }), "raises max above the parent's 5");
    assert.equal(why({ min: 2, max: 4 }, { min: 1, max: 5 }), 'ok');
    assert.equal(why({ prefix: 'b' }, { prefix: 'a' }), 'prefix "b" does not narrow the parent\'s "a"');
    assert.equal(why({ prefix: 'ab' }, { prefix: 'a', maxLength: 3 }), "raises maxLength above the parent's 3");
    assert.equal(why({ prefix: 'ab', maxLength: 4 }, { prefix: 'a', maxLength: 3 }), "raises maxLength above the parent's 3");
    assert.equal(why({ prefix: 'ab', maxLength: 3 }, { prefix: 'a', maxLength: 3 }), 'ok');
  });

  test('degenerate child sets: empty intervals and exact-length prefixes', () => {
    const why = (c: ArgConstraint, p: ArgConstraint) => subsetReason(arg(c), arg(p));
    // min > max accepts nothing, so it fits anywhere; min = max is the single value.
    assert.equal(why({ min: 5, max: 1 }, { eq: 3 }), 'ok');
    assert.equal(why({ min: 3, max: 3 }, { eq: 3 }), 'ok');
    assert.equal(
      why({ min: 4, max: 4 }, { eq: 3 }),
      "tools[0].args.a: argument a allows 4, but the parent's constraint says it must equal 3",
    );
    // maxLength below the prefix length accepts nothing; equal to it accepts the prefix only.
    assert.equal(why({ prefix: 'abc', maxLength: 2 }, { eq: 'x' }), 'ok');
    assert.equal(why({ prefix: 'abc', maxLength: 3 }, { eq: 'abc' }), 'ok');
    assert.equal(why({ maxLength: 0 }, { eq: '' }), 'ok');
    assert.equal(
      why({ prefix: 'abc', maxLength: 4 }, { eq: 'abc' }),
      "tools[0].args.a: argument a allows values outside the parent's finite set",
    );
    // A constraint that mixes string and number ops accepts nothing.
    assert.equal(why({ prefix: 'a', max: 1 }, { eq: 'zzz' }), 'ok');
  });

  test('a child of a non-delegable parent may not be delegable; the first failing parent grant is reported', () => {
    assert.equal(subsetReason(scope([], true), scope([], false)), 'delegable: the parent scope is not delegable');
    assert.equal(subsetReason(scope([], false), scope([], true)), 'ok');
    const parent = scope([
      { tool: 't', args: { a: { eq: 1 } } },
      { tool: 't', args: { a: { eq: 2 } } },
    ]);
    assert.equal(
      subsetReason(arg({ eq: 3 }), parent),
      "tools[0].args.a: argument a allows 3, but the parent's constraint says it must equal 1",
    );
    assert.equal(subsetReason(arg({ eq: 2 }), parent), 'ok');
  });
});

describe('within combined with other ops', () => {
  test('attack: within plus a numeric bound accepts nothing (a string path is not a number)', () => {
    assert.equal(violation({ within: '/srv', max: 5 }, '/srv/a'), 'must be a number, got string');
    assert.equal(violation({ within: '/srv' }, '/srv/a'), undefined);
  });
});

describe('path normalization limits and reasons', () => {
  test('4096 characters are accepted, 4097 refused with the limit', () => {
    assert.equal(normalizePath(`/${'a'.repeat(4095)}`).ok, true);
    assert.deepEqual(normalizePath(`/${'a'.repeat(4096)}`), { ok: false, reason: 'is longer than 4096 characters' });
  });

  test('a % not followed by two hex digits is not an escape; a compatibility character that is no separator is kept', () => {
    for (const v of ['/a%2g', '/100%', '/srv/\ufb01le']) assert.equal(normalizePath(v).ok, true, v);
    assert.equal(normalizePath('/a%2f').ok, false);
  });

  test('withinViolation names why, with the normalized root', () => {
    const root = normalizePath('/srv/data');
    const rel = normalizePath('srv/data');
    assert.ok(root.ok && rel.ok);
    assert.equal(withinViolation(root.path, '/srv/../x'), "is not an acceptable path: it contains a '..' segment");
    assert.equal(withinViolation(root.path, 'srv/data/x'), 'is a relative path, the constraint "/srv/data" an absolute one');
    assert.match(withinViolation(rel.path, '/srv/data') ?? '', /^is an? absolute path, the constraint "srv\/data" a relative one$/);
    assert.equal(withinViolation(root.path, '/srv/other'), 'must be within "/srv/data"');
    assert.equal(withinViolation(root.path, '/srv/data/x'), undefined);
  });
});
