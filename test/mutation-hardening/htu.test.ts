// The `htu` comparison of DPoP proofs (RFC 9449 §4.3 check 9) as pure functions: RFC 3986 §6.2.2
// normalisation of the proof's URI (normalizeHtu) and of a request path (normalizePath), with
// property tests (fast-check) next to hand-picked hostile cases.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { normalizeHtu, normalizePath } from '../../src/oauth/dpop.js';

const UNRESERVED = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~';
const pct = (c: string) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
/** A path segment of unreserved characters that is not a dot segment. */
const segment = fc
  .array(fc.constantFrom(...UNRESERVED.split('')), { minLength: 1, maxLength: 12 })
  .map((cs) => cs.join(''))
  .filter((s) => s !== '.' && s !== '..');
const path = fc.array(segment, { minLength: 0, maxLength: 6 }).map((ss) => `/${ss.join('/')}`);

describe('normalizePath', () => {
  test('percent-encoding any unreserved character (either hex case) names the same path', () => {
    fc.assert(
      fc.property(path, fc.array(fc.boolean(), { maxLength: 80 }), fc.boolean(), (p, which, upper) => {
        let i = 0;
        const encoded = p.replace(/[^/]/g, (c) => {
          if (!which[i++]) return c;
          const e = pct(c);
          return upper ? e.toUpperCase() : e.toLowerCase();
        });
        assert.equal(normalizePath(encoded), p);
      }),
    );
  });

  test('is idempotent and its result never holds a dot segment or an encoded separator', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (raw) => {
        const once = normalizePath(`/${raw}`);
        if (once === undefined) return;
        assert.equal(normalizePath(once), once);
        for (const s of once.split('/')) assert.ok(s !== '.' && s !== '..', once);
        assert.doesNotMatch(once, /%2F|%5C|\\/i);
      }),
    );
  });

  test('attack: dot segments, encoded or not, and encoded separators are refused rather than resolved', () => {
    for (const p of [
      '/a/../mcp',
      '/a/./mcp',
      '/a/%2e%2e/mcp',
      '/a/%2E./mcp',
      '/.%2e/mcp',
      '/a/..',
      '/mcp%2Fx',
      '/mcp%2fx',
      '/mcp%5Cx',
      '/a\\b',
    ]) {
      assert.equal(normalizePath(p), undefined, p);
    }
  });

  test('attack: malformed escapes, control characters, non-ASCII, relative and network-path forms are refused', () => {
    for (const p of ['/a%', '/a%4', '/a%zz', '/a b', '/a\u0000', '/caf\u00e9', 'mcp', '', '//evil.example/mcp']) {
      assert.equal(normalizePath(p), undefined, JSON.stringify(p));
    }
  });

  test('other escapes are kept, in upper case', () => {
    assert.equal(normalizePath('/a%20b/%c3%a9'), '/a%20b/%C3%A9');
    assert.equal(normalizePath('/'), '/');
  });
});

describe('normalizeHtu', () => {
  test('scheme and host case, the default port, query and fragment do not matter; the path does', () => {
    assert.equal(normalizeHtu('HTTPS://Broker.Example:443/%6Dcp?x=1#f'), 'https://broker.example/mcp');
    assert.equal(normalizeHtu('http://broker.example:80'), 'http://broker.example/');
    assert.equal(normalizeHtu('http://broker.example:8080/mcp'), 'http://broker.example:8080/mcp');
    assert.notEqual(normalizeHtu('https://broker.example/MCP'), normalizeHtu('https://broker.example/mcp'));
  });

  test('attack: user info, other schemes, dotted or encoded-separator paths never equal a real URI', () => {
    const real = normalizeHtu('https://broker.example/mcp');
    for (const htu of [
      'https://user@broker.example/mcp',
      'https://user:pw@broker.example/mcp',
      'ftp://broker.example/mcp',
      'https://broker.example/x/../mcp',
      'https://broker.example/x/%2e%2e/mcp',
      'https://broker.example/mcp%2F',
      'https://broker.example//mcp',
      'https:/broker.example/mcp',
      'broker.example/mcp',
    ]) {
      assert.notEqual(normalizeHtu(htu), real, htu);
      assert.match(normalizeHtu(htu), /^invalid:/, htu);
    }
  });

  test('equal normalised URIs are exactly the equivalent spellings (property)', () => {
    fc.assert(
      fc.property(path, fc.constantFrom('http', 'HTTP', 'https', 'Https'), (p, scheme) => {
        const port = scheme.toLowerCase() === 'https' ? ':443' : ':80';
        const spelled = `${scheme}://BROKER.example${port}${p.replace(/[a-z]/, (c) => pct(c))}?q=${p}`;
        assert.equal(normalizeHtu(spelled), `${scheme.toLowerCase()}://broker.example${p}`);
      }),
    );
  });
});
