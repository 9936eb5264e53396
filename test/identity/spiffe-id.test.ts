// SPIFFE ID validation against the SPIFFE-ID specification (§2.1 trust domain, §2.2 path, §2.3 length).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseSpiffeId } from '../../src/identity/spiffe-id.js';

describe('parseSpiffeId', () => {
  const valid = [
    'spiffe://example.org',
    'spiffe://example.org/workload',
    'spiffe://example.org/ns/prod/sa/payments',
    'spiffe://a-b_c.9/x.y-z_0',
    'spiffe://example.org/...x',
    'spiffe://example.org/A/Upper/Path',
  ];
  for (const id of valid) {
    test(`accepts ${id}`, () => {
      const r = parseSpiffeId(id);
      assert.equal(r.ok, true, r.ok ? '' : r.reason);
    });
  }

  // The spec's rejection list, one case each.
  const invalid: [string, string, RegExp][] = [
    ['empty', '', /empty/],
    ['wrong scheme', 'https://example.org/workload', /spiffe:\/\//],
    ['uppercase scheme', 'SPIFFE://example.org/workload', /spiffe:\/\//],
    ['missing slashes', 'spiffe:example.org/workload', /spiffe:\/\//],
    ['missing trust domain', 'spiffe:///workload', /trust domain is missing/],
    ['uppercase trust domain', 'spiffe://Example.org/workload', /invalid character "E"/],
    ['port', 'spiffe://example.org:8080/workload', /invalid character ":"/],
    ['userinfo', 'spiffe://user@example.org/workload', /invalid character "@"/],
    ['query', 'spiffe://example.org/workload?x=1', /invalid character "\?"/],
    ['fragment', 'spiffe://example.org/workload#frag', /invalid character "#"/],
    ['percent-encoding', 'spiffe://example.org/work%20load', /invalid character "%"/],
    ['trailing slash', 'spiffe://example.org/workload/', /end with/],
    ['trust domain with trailing slash only', 'spiffe://example.org/', /end with/],
    ['empty segment', 'spiffe://example.org//workload', /empty segments/],
    ['dot segment', 'spiffe://example.org/./workload', /"\." or "\.\."/],
    ['dot-dot segment', 'spiffe://example.org/a/../b', /"\." or "\.\."/],
    ['non-ASCII', 'spiffe://example.org/wörk', /invalid character/],
    ['space', 'spiffe://example.org/a b', /invalid character/],
    ['too long', `spiffe://example.org/${'a'.repeat(2040)}`, /2048/],
    ['trust domain too long', `spiffe://${'a'.repeat(256)}/x`, /255/],
  ];
  for (const [name, id, reason] of invalid) {
    test(`rejects ${name}`, () => {
      const r = parseSpiffeId(id);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.reason, reason);
    });
  }

  test('splits trust domain and path', () => {
    const r = parseSpiffeId('spiffe://prod.example.org/ns/a');
    assert.deepEqual(r, { ok: true, id: { trustDomain: 'prod.example.org', path: '/ns/a', uri: 'spiffe://prod.example.org/ns/a' } });
  });
});
