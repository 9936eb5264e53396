// src/lib/random-pool.ts: identifiers and secrets drawn from a refilled pool of CSPRNG bytes. The
// properties that matter: the requested length, no value handed out twice (across refills too),
// bytes not visibly biased, and the bounds refused.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { randomBase64url } from '../../src/lib/random-pool.js';

describe('randomBase64url', () => {
  test('returns n bytes as unpadded base64url', () => {
    for (const n of [1, 12, 16, 32, 256]) {
      const value = randomBase64url(n);
      assert.match(value, /^[A-Za-z0-9_-]+$/);
      assert.equal(Buffer.from(value, 'base64url').length, n);
    }
  });

  test('no value repeats across many pool refills (20,000 draws of 12 bytes = ~59 refills)', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) seen.add(randomBase64url(12));
    assert.equal(seen.size, 20_000);
  });

  test('consecutive draws share no bytes (each byte is handed out once, not re-read)', () => {
    const a = Buffer.from(randomBase64url(32), 'base64url');
    const b = Buffer.from(randomBase64url(32), 'base64url');
    assert.notDeepEqual(a, b);
    // A draw that straddles a refill is still fresh and full length.
    for (let i = 0; i < 200; i++) assert.equal(Buffer.from(randomBase64url(31), 'base64url').length, 31);
  });

  test('bytes are spread over 0..255 (no zeroed or constant output)', () => {
    const counts = new Array<number>(256).fill(0);
    for (let i = 0; i < 2_000; i++)
      for (const byte of Buffer.from(randomBase64url(32), 'base64url')) counts[byte] = (counts[byte] ?? 0) + 1;
    // 64,000 bytes: 250 expected per value; a stuck or wiped pool would leave values at 0 or pile them up.
    assert.ok(Math.min(...counts) > 150, `min ${Math.min(...counts)}`);
    assert.ok(Math.max(...counts) < 360, `max ${Math.max(...counts)}`);
  });

  test('refuses sizes outside 1..256 and non-integers', () => {
    for (const n of [0, -1, 257, 1.5, Number.NaN]) assert.throws(() => randomBase64url(n), RangeError);
  });
});
