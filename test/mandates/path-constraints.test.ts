// Path constraints: normalization refuses every traversal trick, `within` contains by segments,
// `prefix` on a path argument is path-aware, and `isSubset` narrows by path soundly.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isWithin, normalizePath } from '../../src/scope/path.js';
import { type ArgConstraint, argConstraintSchema, isSubset, matchCall, type Scope, violation } from '../../src/scope/scope.js';
import { defaultPathArgs } from '../../src/upstreams/catalog.js';

const ROOT = '/srv/data';
const one = (args: Record<string, ArgConstraint>): Scope => ({ tools: [{ tool: 'fs.read_text_file', args }], delegable: true });
const call = (s: Scope, path: unknown, pathArgs: string[] = ['path']) => matchCall(s, 'fs.read_text_file', { path }, { pathArgs });

// Values that must never pass a path check under `${ROOT}/public`, with the reason they give.
const HOSTILE: [string, RegExp][] = [
  [`${ROOT}/public/../private/secret.txt`, /'\.\.' segment/],
  [`${ROOT}/public/..`, /'\.\.' segment/],
  [`${ROOT}/public/./../private`, /'\.' segment|'\.\.' segment/],
  [`${ROOT}/public/%2e%2e/private/secret.txt`, /percent-encoded/],
  [`${ROOT}/public/%2E%2E%2Fprivate`, /percent-encoded/],
  [`${ROOT}/public%2f..%2fprivate`, /percent-encoded/],
  [`${ROOT}/public/%252e%252e/private`, /percent-encoded/],
  [`${ROOT}/public/..\\private\\secret.txt`, /backslash/],
  [`${ROOT}\\public\\..\\private`, /backslash/],
  [`${ROOT}/public/\u0000/../private`, /control character/],
  [`${ROOT}/public/ok.txt\u0000.png`, /control character/],
  [`${ROOT}/public/\uff0e\uff0e/private`, /Unicode normalization/],
  [`${ROOT}/public\uff0f..\uff0fprivate`, /Unicode normalization/],
  ['', /empty/],
  [`public/../../private`, /'\.\.' segment/],
];

describe('normalizePath', () => {
  it('collapses duplicate and trailing slashes, nothing else', () => {
    const p = normalizePath('//srv///data/public/');
    assert.ok(p.ok);
    assert.equal(p.path.text, '/srv/data/public');
    assert.deepEqual(p.path.segments, ['srv', 'data', 'public']);
    const root = normalizePath('/');
    assert.ok(root.ok);
    assert.equal(root.path.text, '/');
    const rel = normalizePath('a//b/');
    assert.ok(rel.ok);
    assert.equal(rel.path.text, 'a/b');
    assert.equal(rel.path.absolute, false);
  });

  for (const [value, reason] of HOSTILE) {
    it(`refuses ${JSON.stringify(value)}`, () => {
      const p = normalizePath(value);
      assert.equal(p.ok, false);
      assert.match(p.ok ? '' : p.reason, reason);
    });
  }

  it('keeps names that merely contain dots or a percent sign', () => {
    for (const v of ['/a/..b', '/a/b..', '/a/.hidden', '/a/...', '/a/100%', '/a/50%off']) assert.ok(normalizePath(v).ok, v);
  });

  it('refuses paths longer than PATH_MAX', () => {
    assert.equal(normalizePath(`/${'a'.repeat(5000)}`).ok, false);
  });

  it('contains by whole segments, never by characters', () => {
    const p = (s: string) => {
      const r = normalizePath(s);
      assert.ok(r.ok);
      return r.path;
    };
    assert.equal(isWithin(p('/a/public'), p('/a/pub')), false);
    assert.equal(isWithin(p('/a/public/x'), p('/a/public')), true);
    assert.equal(isWithin(p('/a/public'), p('/a/public/')), true);
    assert.equal(isWithin(p('/a'), p('/a/public')), false);
    assert.equal(isWithin(p('a/public'), p('/a')), false, 'relative is never within absolute');
    assert.equal(isWithin(p('/anything'), p('/')), true);
  });
});

describe('within', () => {
  const s = one({ path: { within: `${ROOT}/public` } });

  it('allows a file inside, the root itself and a list of files inside', () => {
    assert.ok(call(s, `${ROOT}/public/ok.txt`).ok);
    assert.ok(call(s, `${ROOT}/public`).ok);
    assert.ok(call(s, `${ROOT}//public/sub/ok.txt`).ok);
    assert.ok(call(s, [`${ROOT}/public/a`, `${ROOT}/public/b`]).ok);
  });

  for (const [value] of HOSTILE) {
    it(`refuses ${JSON.stringify(value)}`, () => {
      const r = call(s, value, []);
      assert.equal(r.ok, false, 'within is path-aware whatever the catalog says');
    });
  }

  it('refuses siblings sharing a prefix, relative paths, wrong types and bad lists', () => {
    assert.match(reason(call(s, `${ROOT}/public-not/x`)), /must be within/);
    assert.match(reason(call(s, `${ROOT}/pub`)), /must be within/);
    assert.match(reason(call(s, 'public/ok.txt')), /relative path/);
    assert.match(reason(call(s, 42)), /must be a path or a list of paths/);
    assert.match(reason(call(s, [])), /at least one path/);
    assert.match(reason(call(s, [`${ROOT}/public/a`, `${ROOT}/private/b`])), /\[1\] must be within/);
    assert.match(reason(call(s, [`${ROOT}/public/a`, 7])), /\[1\] must be a path/);
    assert.match(reason(matchCall(s, 'fs.read_text_file', {})), /is missing/);
  });

  it('is validated by the schema: absolute, normalizable', () => {
    assert.ok(argConstraintSchema.safeParse({ within: '/srv/data/' }).success);
    for (const bad of ['srv/data', '/srv/../etc', '/srv/%2e%2e', 'C:\\data', '', '/srv/./x']) {
      assert.equal(argConstraintSchema.safeParse({ within: bad }).success, false, bad);
    }
  });
});

describe('prefix on a path argument', () => {
  const s = one({ path: { prefix: `${ROOT}/public/` } });

  it('the reported traversal: refused when the catalog marks the argument as a path', () => {
    const r = call(s, `${ROOT}/public/../private/secret.txt`);
    assert.equal(r.ok, false);
    assert.match(reason(r), /'\.\.' segment/);
    // The plain reading (an argument that is not a path) keeps string semantics.
    assert.ok(call(s, `${ROOT}/public/../private/secret.txt`, []).ok);
  });

  for (const [value] of HOSTILE) {
    it(`refuses ${JSON.stringify(value)}`, () => assert.equal(call(s, value).ok, false));
  }

  it('allows a normal file and compares the normal form', () => {
    assert.ok(call(s, `${ROOT}/public/ok.txt`).ok);
    assert.ok(call(s, `${ROOT}//public//ok.txt`).ok);
    assert.match(reason(call(s, 'srv/data/public/ok.txt')), /relative path/);
  });

  it('other arguments of the same grant keep plain semantics', () => {
    const g = one({ path: { prefix: '/a/' }, note: { prefix: 'x/' } });
    assert.ok(matchCall(g, 'fs.read_text_file', { path: '/a/b', note: 'x/../y' }, { pathArgs: ['path'] }).ok);
  });

  it('violation defaults to the plain reading', () => {
    assert.equal(violation({ prefix: '/a/' }, '/a/../b'), undefined);
    assert.match(violation({ prefix: '/a/' }, '/a/../b', 'path') ?? '', /'\.\.'/);
  });
});

describe('isSubset with paths', () => {
  const sub = (c: ArgConstraint, p: ArgConstraint, pathArgs?: string[]) =>
    isSubset(one({ path: c }), one({ path: p }), pathArgs === undefined ? {} : { pathArgs: () => pathArgs });

  // [name, child, parent, pathArgs (undefined = unknown), child ⊆ parent]
  const cases: [string, ArgConstraint, ArgConstraint, string[] | undefined, boolean][] = [
    ['deeper within', { within: '/a/b/c' }, { within: '/a/b' }, undefined, true],
    ['same within', { within: '/a/b/' }, { within: '/a/b' }, undefined, true],
    ['wider within', { within: '/a' }, { within: '/a/b' }, undefined, false],
    ['sibling by characters', { within: '/a/bc' }, { within: '/a/b' }, undefined, false],
    ['within under root', { within: '/x' }, { within: '/' }, undefined, true],
    ['dropping within', { maxLength: 10 }, { within: '/a' }, undefined, false],
    ['plain prefix under within: unsure, refused', { prefix: '/a/b/' }, { within: '/a' }, undefined, false],
    ['plain prefix under within: not a path, refused', { prefix: '/a/b/' }, { within: '/a' }, [], false],
    ['path prefix under within', { prefix: '/a/b/' }, { within: '/a' }, ['path'], true],
    ['path prefix under within, same dir', { prefix: '/a/' }, { within: '/a' }, ['path'], true],
    ['path prefix not ending at a segment', { prefix: '/a/bc' }, { within: '/a/b' }, ['path'], false],
    ['path prefix equal to the root text', { prefix: '/a' }, { within: '/a' }, ['path'], false],
    ['within under a path prefix', { within: '/a/b' }, { prefix: '/a/' }, ['path'], false],
    ['within (strings only) under a path prefix', { within: '/a/b', maxLength: 100 }, { prefix: '/a/' }, ['path'], true],
    ['within under a plain prefix: unsure', { within: '/a/b', maxLength: 100 }, { prefix: '/a/' }, undefined, false],
    ['eq inside within', { eq: '/a/b/c.txt' }, { within: '/a/b' }, undefined, true],
    ['eq traversing out of within', { eq: '/a/b/../c.txt' }, { within: '/a/b' }, undefined, false],
    ['eq traversing past a path prefix: unsure', { eq: '/a/b/../c' }, { prefix: '/a/b/' }, undefined, false],
    ['eq traversing past a path prefix', { eq: '/a/b/../c' }, { prefix: '/a/b/' }, ['path'], false],
    ['eq traversing past a plain prefix (not a path)', { eq: '/a/b/../c' }, { prefix: '/a/b/' }, [], true],
    ['longer prefix, path or not', { prefix: '/a/b/c/' }, { prefix: '/a/b/' }, undefined, true],
    ['within and prefix under within', { within: '/a/b', prefix: '/a/b/x' }, { within: '/a' }, undefined, true],
    ['within contradicts numbers: empty', { within: '/a', min: 1 }, { within: '/b' }, undefined, true],
    ['numbers under within', { min: 1 }, { within: '/a' }, undefined, false],
  ];
  for (const [name, c, p, pathArgs, expected] of cases) {
    it(name, () => {
      const r = sub(c, p, pathArgs);
      assert.equal(r.ok, expected, r.ok ? 'subset' : r.reason);
      if (!r.ok) assert.equal(r.path, 'tools[0].args.path');
    });
  }

  it('delegation narrowing by path: a child within /a/b/c of a parent within /a/b only calls under /a/b/c', () => {
    const parent = one({ path: { within: '/a/b' } });
    const child = one({ path: { within: '/a/b/c' } });
    assert.ok(isSubset(child, parent).ok);
    assert.ok(call(child, '/a/b/c/x').ok);
    assert.equal(call(child, '/a/b/c/../d').ok, false);
    assert.equal(call(child, '/a/b/d').ok, false);
  });
});

describe('catalog path arguments', () => {
  it('marks the filesystem server arguments that name files', () => {
    const schema = {
      type: 'object',
      properties: {
        path: { type: 'string' },
        paths: { type: 'array', items: { type: 'string' } },
        source: { type: 'string' },
        destination: { type: 'string' },
        pattern: { type: 'string' },
        excludePatterns: { type: 'array', items: { type: 'string' } },
        head: { type: 'number' },
        outputPath: { type: 'string' },
      },
    };
    assert.deepEqual(defaultPathArgs(schema), ['path', 'paths', 'source', 'destination', 'outputPath']);
  });

  it('does not mark a numeric argument or a schema without properties', () => {
    assert.deepEqual(defaultPathArgs({ properties: { path: { type: 'integer' } } }), []);
    assert.deepEqual(defaultPathArgs({}), []);
  });
});

function reason(r: { ok: boolean; reason?: string }): string {
  return r.ok ? '(allowed)' : (r.reason ?? '');
}
