// Property-based tests (fast-check) of the scope model, path normalization and the canonical call
// hash: soundness of isSubset against matchCall on generated calls, fail-closed matching,
// normalization that never lets a path resolve outside its root, and a stable, order-free hash.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { callHash } from '../../src/approvals/call-hash.js';
import { MandateError } from '../../src/errors/index.js';
import { isWithin, normalizePath, withinViolation } from '../../src/scope/path.js';
import {
  type ArgConstraint,
  argConstraintSchema,
  isSubset,
  matchCall,
  type Scope,
  scopeSchema,
  type ToolGrant,
} from '../../src/scope/scope.js';

// A fixed seed keeps CI reproducible; FC_SEED overrides it to explore.
const SEED = Number(process.env.FC_SEED ?? 20261126);
const run = (prop: fc.IProperty<unknown> | fc.IAsyncProperty<unknown>, numRuns: number) =>
  fc.assert(prop as fc.IProperty<unknown>, { seed: SEED, numRuns });

// ---- generators -------------------------------------------------------------------------------

/** Segments, hostile ones included, so generated paths hit every refusal. */
const segment = fc.constantFrom(
  'a',
  'b',
  'pub',
  'public',
  'x.txt',
  '..',
  '.',
  '',
  '...',
  '%2e%2e',
  '%2F',
  'c\\d',
  '..\\..',
  '\u0000',
  '\uff0e\uff0e',
  '~',
  '100%',
);
const rawPath = fc
  .tuple(fc.boolean(), fc.array(segment, { maxLength: 6 }), fc.boolean())
  .map(([abs, segs, trailing]) => `${abs ? '/' : ''}${segs.join('/')}${trailing ? '/' : ''}`);
const roots = ['/', '/a', '/a/b', '/a/pub', '/a/public', '/a/b/public', '/b'];
const root = fc.constantFrom(...roots, '/a/', '//a//b');
const prefixes = fc.constantFrom('', '/', '/a', '/a/', '/a/b/', '/a/pub', '/a/public/', 'a/', 'C-', '/b/x');
const scalarValue = fc.oneof(
  fc.constantFrom('/a/b/x.txt', '/a/public/x.txt', '/a/b/../c', 'C-1', 'a/b', '/b'),
  fc.integer({ min: -3, max: 12 }),
  fc.boolean(),
);

/** One op with a value; constraints are one to three of them (mostly one: real grants are simple). */
const op = fc.oneof(
  scalarValue.map((v) => ['eq', v] as const),
  fc.array(scalarValue, { minLength: 1, maxLength: 3 }).map((v) => ['in', v] as const),
  prefixes.map((v) => ['prefix', v] as const),
  fc.integer({ min: -2, max: 10 }).map((v) => ['min', v] as const),
  fc.integer({ min: -2, max: 10 }).map((v) => ['max', v] as const),
  fc.integer({ min: 0, max: 20 }).map((v) => ['maxLength', v] as const),
  root.map((v) => ['within', v] as const),
);
const constraint: fc.Arbitrary<ArgConstraint> = fc
  .oneof({ arbitrary: fc.array(op, { minLength: 1, maxLength: 1 }), weight: 3 }, fc.array(op, { minLength: 2, maxLength: 3 }))
  .map((ops) => Object.fromEntries(ops) as ArgConstraint);

/** Path constraints over a few shared anchors, so child and parent often meet at an edge. */
const anchor = fc.constantFrom('/', '/a', '/a/', '/a/b', '/a/b/', '/a/pub', '/a/public', '/a/public/', '//a//b');
const pathConstraint: fc.Arbitrary<ArgConstraint> = fc.oneof(
  { arbitrary: fc.tuple(fc.constantFrom('within', 'prefix'), anchor).map(([k, v]) => ({ [k]: v }) as ArgConstraint), weight: 3 },
  fc
    .record(
      {
        within: anchor,
        prefix: anchor,
        maxLength: fc.integer({ min: 0, max: 40 }),
        eq: fc.constantFrom('/a/b/x', '/a/public/x', '/a//b/x', '/a/pubx', '/a/b/../x'),
      },
      { requiredKeys: [] },
    )
    .filter((c) => Object.keys(c).length > 0 && (c.eq === undefined || Object.keys(c).length === 1)),
);

/** A pair (child, parent) where the parent is built from the child's own strings: edges meet. */
const related = (c: ArgConstraint): fc.Arbitrary<[ArgConstraint, ArgConstraint]> => {
  const strings = [c.prefix, c.within, typeof c.eq === 'string' ? c.eq : undefined].filter((v): v is string => v !== undefined);
  if (strings.length === 0) return fc.constant([c, c]);
  return fc
    .tuple(fc.constantFrom(...strings), fc.integer({ min: 0, max: 2 }), fc.constantFrom('', '/'), fc.constantFrom('within', 'prefix'))
    .map(([v, cut, tail, kind]) => {
      const trimmed =
        `${v
          .split('/')
          .slice(0, Math.max(1, v.split('/').length - cut))
          .join('/')}${tail}` || '/';
      return [c, { [kind]: trimmed } as ArgConstraint];
    });
};

const ARGS = ['path', 'n'] as const;
const TOOLS = ['t', 'u'] as const;
const grant: fc.Arbitrary<ToolGrant> = fc.record(
  {
    tool: fc.constantFrom(...TOOLS),
    args: fc.dictionary(fc.constantFrom(...ARGS), constraint, { maxKeys: 2 }),
    maxCalls: fc.integer({ min: 0, max: 5 }),
  },
  { requiredKeys: ['tool'] },
);
const scope: fc.Arbitrary<Scope> = fc.record({ tools: fc.array(grant, { maxLength: 3 }), delegable: fc.boolean() });

/**
 * A child that is often a real narrowing of `parent`: each grant kept, with extra ops conjoined
 * to one argument, or with one argument's constraint replaced (a subset only sometimes: the
 * interesting borderline cases, e.g. an `eq` with `..` under a `prefix`).
 */
const narrowed = (parent: Scope): fc.Arbitrary<Scope> =>
  fc.record({
    tools: fc
      .tuple(
        ...parent.tools.map((g) =>
          fc.tuple(fc.constant(g), fc.constantFrom('keep', 'merge', 'replace'), fc.constantFrom(...ARGS), constraint),
        ),
      )
      .map((gs) =>
        gs.map(([g, how, name, extra]): ToolGrant => {
          if (how === 'keep') return g;
          const args = { ...g.args };
          args[name] = how === 'merge' ? { ...extra, ...(args[name] ?? {}) } : extra;
          return { ...g, args };
        }),
      ),
    delegable: fc.constant(false),
  });

const argValue = fc.oneof(
  rawPath,
  fc.constantFrom('/a/b/x.txt', '/a/public/x.txt', '/a/pub', '/a/b', '/b/x', 'C-1', '/a/b/../c'),
  fc.array(fc.oneof(rawPath, fc.constantFrom('/a/b/x.txt', '/a/public/y')), { maxLength: 3 }),
  fc.integer({ min: -3, max: 12 }),
  fc.boolean(),
  fc.constant(null),
  fc.constant(undefined),
  fc.object({ maxDepth: 1 }),
);
const call = fc.record({ tool: fc.constantFrom(...TOOLS), path: argValue, n: argValue });
const argsOf = (c: { path: unknown; n: unknown }): Record<string, unknown> => {
  const a: Record<string, unknown> = {};
  if (c.path !== undefined) a.path = c.path;
  if (c.n !== undefined) a.n = c.n;
  return a;
};

/** Which arguments are paths: unknown (isSubset must be sound for both readings), none, or `path`. */
const pathKnowledge = fc.constantFrom<'unknown' | 'none' | 'path'>('unknown', 'none', 'path');
const matchReadings = (k: 'unknown' | 'none' | 'path'): string[][] => (k === 'unknown' ? [[], ['path']] : k === 'none' ? [[]] : [['path']]);
const subsetOptions = (k: 'unknown' | 'none' | 'path') =>
  k === 'unknown' ? {} : { pathArgs: () => (k === 'path' ? ['path'] : []) as readonly string[] };

const valid = (s: Scope) => scopeSchema.safeParse(s).success;

// ---- isSubset ---------------------------------------------------------------------------------

describe('isSubset (properties)', () => {
  it('is reflexive for every valid scope, whatever is known about path arguments', () => {
    run(
      fc.property(scope, pathKnowledge, (s, k) => {
        fc.pre(valid(s));
        const r = isSubset(s, s, subsetOptions(k));
        assert.ok(r.ok, r.ok ? '' : r.reason);
      }),
      1500,
    );
  });

  it('is sound: every call the child accepts, the parent accepts', () => {
    let subsets = 0;
    run(
      fc.property(
        scope.chain((p) => fc.tuple(fc.constant(p), fc.oneof(scope, narrowed(p)))),
        pathKnowledge,
        fc.array(call, { minLength: 1, maxLength: 12 }),
        ([parent, child], k, calls) => {
          fc.pre(valid(parent) && valid(child));
          if (!isSubset(child, parent, subsetOptions(k)).ok) return;
          subsets++;
          for (const c of calls) {
            for (const pathArgs of matchReadings(k)) {
              const args = argsOf(c);
              if (matchCall(child, c.tool, args, { pathArgs }).ok) {
                const r = matchCall(parent, c.tool, args, { pathArgs });
                assert.ok(r.ok, `child accepted ${JSON.stringify(c)} (pathArgs ${pathArgs}) but the parent says ${r.ok ? '' : r.reason}`);
              }
            }
          }
        },
      ),
      1200,
    );
    assert.ok(subsets > 150, `only ${subsets} generated pairs were subsets: the property was barely exercised`);
  });

  it('is sound per constraint, on values built from the constraints themselves', () => {
    const suffix = fc.array(segment, { maxLength: 3 }).map((segs) => segs.join('/'));
    /** Values near the edges of `c`: its own eq/in values, its prefix or root extended. */
    const near = (c: ArgConstraint): fc.Arbitrary<unknown> =>
      fc.oneof(
        fc.constantFrom<unknown>(c.eq ?? '', ...(c.in ?? []), c.prefix ?? '', c.within ?? ''),
        suffix.map((x) => `${c.prefix ?? ''}${x}`),
        suffix.map((x) => `${c.within ?? ''}/${x}`),
        fc.array(
          suffix.map((x) => `${c.within ?? ''}/${x}`),
          { minLength: 1, maxLength: 2 },
        ),
        argValue,
      );
    let subsets = 0;
    run(
      fc.property(
        fc
          .oneof(
            fc.tuple(fc.oneof(constraint, pathConstraint), fc.oneof(constraint, pathConstraint)),
            fc.oneof(constraint, pathConstraint).chain(related),
          )
          .chain(([c, p]) =>
            fc.tuple(fc.constant(c), fc.constant(p), fc.array(fc.oneof(near(c), near(p)), { minLength: 1, maxLength: 8 })),
          ),
        pathKnowledge,
        ([c, p, values], k) => {
          fc.pre(argConstraintSchema.safeParse(c).success && argConstraintSchema.safeParse(p).success);
          const child: Scope = { tools: [{ tool: 't', args: { path: c } }], delegable: false };
          const parent: Scope = { tools: [{ tool: 't', args: { path: p } }], delegable: false };
          if (!isSubset(child, parent, subsetOptions(k)).ok) return;
          subsets++;
          for (const v of values) {
            for (const pathArgs of matchReadings(k)) {
              if (!matchCall(child, 't', { path: v }, { pathArgs }).ok) continue;
              const r = matchCall(parent, 't', { path: v }, { pathArgs });
              assert.ok(
                r.ok,
                `${JSON.stringify(c)} ⊆ ${JSON.stringify(p)} but ${JSON.stringify(v)} (pathArgs ${pathArgs}): ${r.ok ? '' : r.reason}`,
              );
            }
          }
        },
      ),
      4000,
    );
    assert.ok(subsets > 400, `only ${subsets} generated pairs were subsets`);
  });

  it('is transitive', () => {
    run(
      fc.property(
        scope.chain((c) => narrowed(c).chain((b) => fc.tuple(fc.constant(c), fc.constant(b), narrowed(b)))),
        pathKnowledge,
        ([c, b, a], k) => {
          fc.pre(valid(a) && valid(b) && valid(c));
          const o = subsetOptions(k);
          if (isSubset(a, b, o).ok && isSubset(b, c, o).ok) {
            const r = isSubset(a, c, o);
            assert.ok(r.ok, r.ok ? '' : r.reason);
          }
        },
      ),
      1500,
    );
  });
});

// ---- matchCall --------------------------------------------------------------------------------

describe('matchCall (properties)', () => {
  it('never throws, whatever the arguments', () => {
    run(
      fc.property(
        scope,
        fc.constantFrom(...TOOLS),
        fc.oneof(fc.object(), fc.dictionary(fc.constantFrom(...ARGS, '__proto__', 'toString'), fc.anything())),
        fc.boolean(),
        (s, tool, args, paths) => {
          fc.pre(valid(s));
          const r = matchCall(s, tool, args as Record<string, unknown>, { pathArgs: paths ? ['path'] : [] });
          assert.equal(typeof r.ok, 'boolean');
        },
      ),
      800,
    );
  });

  it('fails closed on a missing argument or a value of the wrong type', () => {
    const stringOps = fc.record({ prefix: prefixes, maxLength: fc.integer({ min: 0, max: 30 }), within: root }, { requiredKeys: [] });
    const notAString = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.object(), fc.constant(undefined));
    run(
      fc.property(stringOps, notAString, fc.boolean(), (c, value, paths) => {
        fc.pre(Object.keys(c).length > 0);
        const s: Scope = { tools: [{ tool: 't', args: { path: c } }], delegable: false };
        const args = value === undefined ? {} : { path: value };
        assert.equal(matchCall(s, 't', args, { pathArgs: paths ? ['path'] : [] }).ok, false);
      }),
      1000,
    );
    run(
      fc.property(
        fc.integer({ min: -5, max: 5 }),
        fc.oneof(fc.string(), fc.boolean(), fc.constant(null), fc.array(fc.integer())),
        (max, value) => {
          const s: Scope = { tools: [{ tool: 't', args: { n: { max } } }], delegable: false };
          assert.equal(matchCall(s, 't', { n: value }).ok, false);
        },
      ),
      500,
    );
  });

  it('an inherited property is never taken for an argument', () => {
    const s: Scope = { tools: [{ tool: 't', args: { toString: { maxLength: 1000 } } }], delegable: false };
    assert.equal(matchCall(s, 't', {}).ok, false);
  });
});

// ---- path normalization -----------------------------------------------------------------------

/** What an upstream might do with the raw value: resolve it, after decoding and/or reading `\` as `/`. */
function upstreamReadings(value: string): string[] {
  const readings = [value, value.replaceAll('\\', '/')];
  try {
    const decoded = decodeURIComponent(value);
    readings.push(decoded, decoded.replaceAll('\\', '/'));
  } catch {
    // Not decodable: an upstream that decodes would refuse it.
  }
  return readings.map((r) => r.normalize('NFKC'));
}

/** Reference containment: resolve like Node does and compare with path.relative. */
function refWithin(resolved: string, rootText: string): boolean {
  const rel = posix.relative(rootText, resolved);
  return rel === '' || (rel.split('/')[0] !== '..' && !posix.isAbsolute(rel));
}

describe('normalizePath (properties)', () => {
  const anyPath = fc.oneof(rawPath, fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }));

  it('is idempotent and its result has no empty, . or .. segments', () => {
    run(
      fc.property(anyPath, (v) => {
        const p = normalizePath(v);
        if (!p.ok) return;
        const again = normalizePath(p.path.text);
        assert.ok(again.ok);
        assert.equal(again.path.text, p.path.text);
        for (const s of p.path.segments) assert.ok(s !== '' && s !== '.' && s !== '..' && !s.includes('/'));
        assert.ok(!p.path.text.split('/').includes('..'));
        assert.equal(p.path.absolute, v.startsWith('/'));
      }),
      3000,
    );
  });

  it('accepted paths resolve inside the root however an upstream reads them (decoding, backslashes, NFKC)', () => {
    const underRoot = fc.tuple(fc.constantFrom(...roots), rawPath).map(([r, p]) => `${r}/${p}`);
    run(
      fc.property(fc.oneof(anyPath, underRoot), fc.constantFrom(...roots), (v, r) => {
        const rp = normalizePath(r);
        assert.ok(rp.ok);
        if (withinViolation(rp.path, v) !== undefined) return;
        for (const reading of upstreamReadings(v)) {
          assert.ok(refWithin(posix.resolve('/cwd', reading), r), `${JSON.stringify(v)} read as ${JSON.stringify(reading)} escapes ${r}`);
        }
      }),
      3000,
    );
  });

  it('containment agrees with the reference on normal paths', () => {
    run(
      fc.property(rawPath, fc.constantFrom(...roots), (v, r) => {
        const p = normalizePath(v);
        const rp = normalizePath(r);
        fc.pre(p.ok && p.path.absolute);
        assert.ok(rp.ok);
        if (!p.ok) return;
        assert.equal(isWithin(p.path, rp.path), refWithin(posix.resolve(v), r));
      }),
      3000,
    );
  });

  it('the schema accepts as `within` exactly the absolute paths that normalize', () => {
    run(
      fc.property(anyPath, (v) => {
        const p = normalizePath(v);
        assert.equal(argConstraintSchema.safeParse({ within: v }).success, p.ok && p.path.absolute);
      }),
      2000,
    );
  });
});

// ---- canonical call hash ----------------------------------------------------------------------

/** The same JSON value with every object's keys in another order. */
function shuffleKeys(v: unknown, flip: boolean): unknown {
  if (Array.isArray(v)) return v.map((x) => shuffleKeys(x, flip));
  if (v === null || typeof v !== 'object') return v;
  const entries = Object.entries(v as Record<string, unknown>);
  if (flip) entries.reverse();
  else entries.sort(([a], [b]) => (a < b ? 1 : a > b ? -1 : 0));
  const out: Record<string, unknown> = {};
  for (const [k, x] of entries)
    Object.defineProperty(out, k, { value: shuffleKeys(x, flip), enumerable: true, writable: true, configurable: true });
  return out;
}

describe('callHash (properties)', () => {
  const args = fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 6 }) as fc.Arbitrary<
    Record<string, unknown>
  >;
  const ids = fc.string({ minLength: 1, maxLength: 12 });

  it('does not depend on key order, at any depth', () => {
    run(
      fc.property(ids, ids, args, fc.boolean(), (mandateId, tool, a, flip) => {
        const h = callHash({ mandateId, tool, args: a });
        assert.equal(callHash({ mandateId, tool, args: shuffleKeys(a, flip) as Record<string, unknown> }), h);
        assert.match(h, /^[0-9a-f]{64}$/);
      }),
      1000,
    );
  });

  it('gives distinct hashes to distinct calls', () => {
    run(
      fc.property(ids, ids, args, ids, ids, args, (m1, t1, a1, m2, t2, a2) => {
        const same = m1 === m2 && t1 === t2 && JSON.stringify(shuffleKeys(a1, false)) === JSON.stringify(shuffleKeys(a2, false));
        // `same` compares JSON texts, where -0 and 0 are one number, as they are on the wire.
        const h1 = callHash({ mandateId: m1, tool: t1, args: a1 });
        const h2 = callHash({ mandateId: m2, tool: t2, args: a2 });
        if (!same) assert.notEqual(h1, h2, `${JSON.stringify([m1, t1, a1])} vs ${JSON.stringify([m2, t2, a2])}`);
        else assert.equal(h1, h2);
      }),
      1000,
    );
  });

  it('separates the mandate, the tool and every argument value', () => {
    run(
      fc.property(ids, ids, args, fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), (m, t, a, key, value) => {
        const h = callHash({ mandateId: m, tool: t, args: a });
        assert.notEqual(callHash({ mandateId: `${m}x`, tool: t, args: a }), h);
        assert.notEqual(callHash({ mandateId: m, tool: `${t}x`, args: a }), h);
        const changed = { ...a, [key]: value };
        const differs = JSON.stringify(shuffleKeys(changed, false)) !== JSON.stringify(shuffleKeys(a, false));
        if (differs) assert.notEqual(callHash({ mandateId: m, tool: t, args: changed }), h);
      }),
      1000,
    );
  });

  it('is stable: SHA-256 of the RFC 8785 form (a fixed vector)', () => {
    const expected = createHash('sha256')
      .update('{"args":{"a":"x","b":[1,2.5,{"c":null,"d":true}]},"mandateId":"m1","tool":"t.x"}')
      .digest('hex');
    assert.equal(callHash({ mandateId: 'm1', tool: 't.x', args: { b: [1, 2.5, { d: true, c: null }], a: 'x' } }), expected);
  });

  it('refuses arguments canonical JSON cannot represent with RPC_INVALID_PARAMS, never another error', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 10n]) {
      assert.throws(
        () => callHash({ mandateId: 'm', tool: 't', args: { n: { deep: [bad] } } }),
        (e: unknown) => e instanceof MandateError && e.code === 'RPC_INVALID_PARAMS',
      );
    }
  });
});
