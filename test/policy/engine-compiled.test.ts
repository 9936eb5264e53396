// The compiled engine against cedar-wasm: extension constructors and functions on generated
// strings, tricky expressions, generated requests over every shipped policy set (a sample; the
// full ≥ 100,000 run is `npm run -s cedar:differential`), and what it refuses or hands over.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { wasmEngine } from '../../src/policy/cedar/engine.js';
import { type CompiledEngineSet, compiledEngine } from '../../src/policy/compiled/engine.js';
import { parseDecimal, parseIp } from '../../src/policy/compiled/extensions.js';
import type { EngineRequest, PolicyFile } from '../../src/policy/engine.js';
import { compiledOutcome, str, wasmOutcome } from './cedar-expressions.js';
import { differential, shippedSets } from './engine-differential.js';

function mutations(alphabet: string, valid: string[]): fc.Arbitrary<string> {
  const chars = alphabet.split('');
  return fc.oneof(
    fc.string({ unit: fc.constantFrom(...chars), maxLength: 24 }),
    fc.constantFrom(...valid),
    fc
      .tuple(fc.constantFrom(...valid), fc.nat(30), fc.constantFrom(...chars))
      .map(([v, i, c]) => v.slice(0, i % (v.length + 1)) + c + v.slice(i % (v.length + 1))),
    fc.tuple(fc.constantFrom(...valid), fc.nat(30)).map(([v, i]) => v.slice(0, i % (v.length + 1)) + v.slice((i % (v.length + 1)) + 1)),
  );
}

const EXTENSIONS: Record<string, [fc.Arbitrary<string>, (s: string, t: string) => string[]]> = {
  ipaddr: [
    mutations('0123456789abcdefABCDEF:./', [
      '127.0.0.1',
      '10.0.0.0/8',
      '::1',
      '::',
      'ff02::1/16',
      '1:2:3:4:5:6:7:8',
      '1::/0',
      '224.1.2.3/4',
      '::ffff:1.2.3.4',
      '1:2:3:4:5:6:7::',
      '127.0.0.1/08',
    ]),
    (s, t) => [
      `ip(${s}).isLoopback()`,
      `ip(${s}).isMulticast()`,
      `ip(${s}).isIpv4()`,
      `ip(${s}).isIpv6()`,
      `ip(${s}) == ip(${t})`,
      `ip(${s}).isInRange(ip(${t}))`,
    ],
  ],
  decimal: [
    mutations('-0123456789.', [
      '0.0',
      '-0.5',
      '1.2345',
      '922337203685477.5807',
      '-922337203685477.5808',
      '922337203685477.5808',
      '00.10',
      '1.',
      '1.00000',
    ]),
    (s, t) => [
      `decimal(${s}).lessThan(decimal(${t}))`,
      `decimal(${s}) == decimal(${t})`,
      `decimal(${s}).greaterThanOrEqual(decimal("0.0"))`,
    ],
  ],
  datetime: [
    mutations('0123456789-T:.Z+', [
      '2024-01-01',
      '2024-02-29T12:00:00Z',
      '2023-02-29',
      '1970-01-01T00:00:00.001Z',
      '2024-01-01T23:59:59+2359',
      '0000-01-01',
      '9999-12-31T23:59:59.999Z',
      '2024-01-01T00:00:60Z',
    ]),
    (s, t) => [
      `datetime(${s}) < datetime(${t})`,
      `datetime(${s}) == datetime(${t})`,
      `datetime(${s}).toDate() == datetime(${t})`,
      `datetime(${s}).toTime() < duration("12h")`,
      `datetime(${s}).durationSince(datetime(${t})) > duration("0ms")`,
    ],
  ],
  duration: [
    mutations('-0123456789dhms', [
      '1d',
      '2h30m',
      '-1ms',
      '1d2h3m4s5ms',
      '0ms',
      '9223372036854775807ms',
      '-9223372036854775808ms',
      '106751991168d',
      '1m1ms',
      '1ms1s',
    ]),
    (s, t) => [
      `duration(${s}) < duration(${t})`,
      `duration(${s}) == duration(${t})`,
      `duration(${s}).toSeconds() == duration(${t}).toSeconds()`,
      `duration(${s}).toDays() < 3`,
      `datetime("2024-01-01").offset(duration(${s})) > datetime("2024-01-01")`,
    ],
  ],
};

describe('compiled engine: extension types agree with cedar-wasm on generated strings', () => {
  for (const [name, [arb, exprs]] of Object.entries(EXTENSIONS)) {
    it(`${name}: validity, value, functions`, () => {
      let compared = 0;
      fc.assert(
        fc.property(arb, arb, (a, b) => {
          const es = exprs(str(a), str(b));
          const expected = wasmOutcome(es);
          if (expected === undefined) return;
          const got = compiledOutcome(es);
          if (typeof got === 'string') return; // handed to cedar-wasm (a Long beyond 2^53)
          compared += 1;
          assert.deepEqual(got, expected, `${a} / ${b}`);
        }),
        { numRuns: 400, seed: 20261126 },
      );
      assert.ok(compared > 300, `only ${compared} compared`);
    });
  }

  it('the parsers reject what Cedar rejects (adversarial spot checks)', () => {
    assert.throws(() => parseIp('01.2.3.4'));
    assert.throws(() => parseIp('::ffff:1.2.3.4'));
    assert.throws(() => parseIp('1.2.3.4/033'));
    assert.throws(() => parseDecimal('1.23456'));
    assert.equal(parseDecimal('-0.5').v, -5000n);
  });
});

describe('compiled engine: tricky expressions agree with cedar-wasm', () => {
  const EXPRS = [
    'decimal("1.0") == decimal("1.0000")',
    'ip("10.0.0.1/24") == ip("10.0.0.0/24")',
    '1 < "a"',
    'decimal("1.0") < decimal("2.0")',
    '"a*b" like "a\\*b"',
    '"a*b" like "a*"',
    '"aXb" like "a\\*b"',
    '"" like "*"',
    '"\u{1F600}x" like "*x"',
    '[1, 1] == [1]',
    '[1, [2]] == [[2], 1]',
    '{a: 1, b: "x"} == {b: "x", a: 1}',
    '{a: 1} == {a: 1, b: 2}',
    '[principal].contains(principal)',
    'principal in [principal, 1]',
    'principal in [1, principal]',
    'principal in principal',
    'if 1 then true else false',
    'if false then 1 else true',
    'true || 1',
    'false && 1',
    '1 || true',
    '!1',
    '9007199254740990 + 1 > 0',
    '-9007199254740990 - 1 < 0',
    '4294967296 * 4294967296 > 0',
    '[1,2].containsAll([1])',
    '[1,2].containsAny([3, "a"])',
    '[].isEmpty()',
    'principal.foo == 1',
    'principal has foo',
    '{a: {b: 1}} has a.b',
    '{a: 1} has a.b',
    'principal is U',
    '1 is U',
    'principal.hasTag("t")',
    'principal.getTag("t") == 1',
    'action in Action::"a"',
    'context has x',
    '1 == "1"',
    'decimal("1.0").lessThan(1)',
    'ip("1.2.3.4").isInRange(ip("::/0"))',
  ];
  it('each expression: satisfied, false or erroring exactly as cedar-wasm says', () => {
    const expected = wasmOutcome(EXPRS);
    assert.ok(expected !== undefined);
    const got = compiledOutcome(EXPRS);
    assert.notEqual(typeof got, 'string', String(got));
    assert.deepEqual(got, expected);
    // Not vacuous: some of each.
    assert.ok(expected.satisfied.length > 5 && expected.erroring.length > 5);
  });
});

describe('compiled engine: generated requests over every shipped policy set agree with cedar-wasm (sample)', () => {
  for (const set of shippedSets()) {
    it(`${set.name}: decision, determining and erroring policies`, () => {
      const r = differential(set, 1500, 14);
      process.stdout.write(
        `# ${set.name}: ${r.requests} requests agree (${r.allows} allowed, ${r.withErrors} with erroring policies, ${r.delegated} handed to cedar-wasm)\n`,
      );
      assert.equal(r.engine, 'compiled');
      assert.equal(r.delegated, 0);
      assert.ok(r.allows > 0 && r.allows < r.requests);
    });
  }
});

const SCHEMA: PolicyFile = {
  path: 's.cedarschema',
  text: 'entity U = { n: Long }; action a appliesTo { principal: [U], resource: [U], context: { n: Long } };',
};

describe('compiled engine: refuses or hands over what it does not evaluate exactly', () => {
  it('a set with an integer literal beyond 2^53 is refused with a reason; cedar-wasm serves it', () => {
    const r = compiledEngine.load(SCHEMA, [
      { path: 'p.cedar', text: 'permit (principal, action, resource) when { context.n < 9007199254740993 };' },
    ]);
    assert.ok(r.ok);
    assert.equal(r.set.engine, 'wasm');
    // cedar-wasm's JSON form already rounds it to 2^53: the reason names the rounded number.
    assert.match(r.notices[0] ?? '', /refused this set \(policy p\.cedar:1: the number \d+ is not a safe integer\); cedar-wasm serves it/);
    const ok = compiledEngine.load(SCHEMA, [
      { path: 'p.cedar', text: 'permit (principal, action, resource) when { context.n < 9007199254740991 };' },
    ]);
    assert.ok(ok.ok);
    assert.equal(ok.set.engine, 'compiled');
  });

  it('a request carrying a Long beyond 2^53 is evaluated by cedar-wasm, with its answer', () => {
    const files = [{ path: 'p.cedar', text: 'permit (principal, action, resource) when { context.n > 0 };' }];
    const c = compiledEngine.load(SCHEMA, files);
    const w = wasmEngine.load(SCHEMA, files);
    assert.ok(c.ok && w.ok);
    const req = (n: number): EngineRequest => ({
      principal: { type: 'U', id: 'a' },
      action: { type: 'Action', id: 'a' },
      resource: { type: 'U', id: 'b' },
      context: { n },
      entities: [],
    });
    const set = c.set as CompiledEngineSet;
    assert.deepEqual(set.authorize(req(5)), w.set.authorize(req(5)));
    assert.equal(set.delegated.count, 0);
    assert.deepEqual(set.authorize(req(2 ** 60)), w.set.authorize(req(2 ** 60)));
    assert.equal(set.delegated.count, 1);
    assert.match(set.delegated.last ?? '', /safe integer/);
  });

  it('a request that does not conform to the schema goes to cedar-wasm, which refuses it', () => {
    const files = [{ path: 'p.cedar', text: 'permit (principal, action, resource);' }];
    const c = compiledEngine.load(SCHEMA, files);
    assert.ok(c.ok);
    const a = c.set.authorize({
      principal: { type: 'U', id: 'a' },
      action: { type: 'Action', id: 'a' },
      resource: { type: 'U', id: 'b' },
      context: { n: 'one' } as never,
      entities: [],
    });
    assert.equal(a.decision, 'deny');
    assert.ok(a.errors.length > 0);
    assert.equal((c.set as CompiledEngineSet).delegated.count, 1);
  });
});
