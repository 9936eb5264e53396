// SPIFFE ID parsing (src/identity/spiffe-id.ts) at its exact limits and with its exact reasons:
// the 2048-byte and 255-character bounds on both sides, byte (not character) length, every allowed
// character class, and how an invalid character is reported.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { checkTrustDomain, parseSpiffeId } from '../../src/identity/spiffe-id.js';

const reason = (v: unknown) => {
  const r = parseSpiffeId(v);
  return r.ok ? 'ok' : r.reason;
};

describe('SPIFFE ID limits and reasons', () => {
  test('non-strings and the empty string are refused as empty', () => {
    for (const v of [undefined, null, 42, {}, '']) assert.equal(reason(v), 'SPIFFE ID is empty');
  });

  test('exactly 2048 bytes is accepted, 2049 refused; length counts UTF-8 bytes', () => {
    const prefix = 'spiffe://example.org/';
    const at = `${prefix}${'a'.repeat(2048 - prefix.length)}`;
    assert.equal(Buffer.byteLength(at), 2048);
    assert.equal(reason(at), 'ok');
    assert.equal(reason(`${at}b`), 'SPIFFE ID is longer than 2048 bytes');
    // 2048 characters but 2049 bytes: the byte bound applies before the character check.
    const multi = `${prefix}${'a'.repeat(2048 - prefix.length - 1)}é`;
    assert.equal(multi.length, 2048);
    assert.equal(reason(multi), 'SPIFFE ID is longer than 2048 bytes');
  });

  test('a 255-character trust domain is accepted, 256 refused', () => {
    assert.equal(reason(`spiffe://${'a'.repeat(255)}/x`), 'ok');
    assert.equal(reason(`spiffe://${'a'.repeat(256)}/x`), 'trust domain is longer than 255 characters');
    assert.equal(checkTrustDomain('a'.repeat(255)), undefined);
    assert.equal(checkTrustDomain('a'.repeat(256)), 'trust domain is longer than 255 characters');
  });

  test('exact reasons for scheme, missing trust domain, trailing slash, empty and dot segments', () => {
    assert.equal(reason('spiffe:/example.org'), 'SPIFFE ID must start with "spiffe://"');
    assert.equal(reason('xspiffe://example.org'), 'SPIFFE ID must start with "spiffe://"');
    assert.equal(reason('spiffe://'), 'trust domain is missing');
    assert.equal(reason('spiffe:///a'), 'trust domain is missing');
    assert.equal(checkTrustDomain(''), 'trust domain is missing');
    assert.equal(reason('spiffe://example.org/a/'), 'path must not end with "/"');
    assert.equal(reason('spiffe://example.org/a//b'), 'path must not contain empty segments');
    assert.equal(reason('spiffe://example.org/.'), 'path must not contain "." or ".." segments');
    assert.equal(reason('spiffe://example.org/a/..'), 'path must not contain "." or ".." segments');
    assert.equal(reason('spiffe://example.org/a/.b/..c/b..'), 'ok');
  });

  test('trust domain characters: lowercase letters, digits, dot, dash, underscore only', () => {
    assert.equal(checkTrustDomain('abc-xyz_09.example'), undefined);
    for (const ch of ['A', 'Z', ':', '@', '%', '/', '~', '+', '!']) {
      assert.equal(checkTrustDomain(`ex${ch}ample`), `trust domain contains an invalid character "${ch}"`);
    }
  });

  test('path characters: letters of both cases, digits, dot, dash, underscore only', () => {
    assert.equal(reason('spiffe://example.org/AZaz09._-'), 'ok');
    for (const ch of ['%', '~', '+', ':', '@', '!', '*', '\\']) {
      assert.equal(reason(`spiffe://example.org/a${ch}b`), `path contains an invalid character "${ch}"`);
    }
  });

  test('unprintable and non-ASCII characters are reported as code points', () => {
    assert.equal(reason('spiffe://example.org/a b'), 'path contains an invalid character "U+0020"');
    assert.equal(reason('spiffe://example.org/a\u0000b'), 'path contains an invalid character "U+0000"');
    assert.equal(reason('spiffe://example.org/a\u007fb'), 'path contains an invalid character "U+007f"');
    assert.equal(reason('spiffe://exämple.org'), 'trust domain contains an invalid character "U+00e4"');
    assert.equal(reason('spiffe://example.org/\u{1f600}'), 'path contains an invalid character "U+1f600"');
    assert.equal(reason('spiffe://example.org/a!b'), 'path contains an invalid character "!"');
    assert.equal(reason('spiffe://example.org/a~b'), 'path contains an invalid character "~"');
  });

  test('the parsed ID keeps trust domain, path and the original URI', () => {
    assert.deepEqual(parseSpiffeId('spiffe://example.org'), {
      ok: true,
      id: { trustDomain: 'example.org', path: '', uri: 'spiffe://example.org' },
    });
    assert.deepEqual(parseSpiffeId('spiffe://example.org/a/b'), {
      ok: true,
      id: { trustDomain: 'example.org', path: '/a/b', uri: 'spiffe://example.org/a/b' },
    });
  });
});
