// The bounded pool lease revocation runs on (src/lib/bounded-pool.ts): never more than `limit`
// revocations in flight, every item processed even when some fail, the first failure reported.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countTrue } from '../../src/lib/bounded-pool.js';

const tick = () => new Promise<void>((r) => setImmediate(r));

test('bounded pool: at most limit in flight, all processed, count of true', async () => {
  let inFlight = 0;
  let peak = 0;
  const seen: number[] = [];
  const items = Array.from({ length: 100 }, (_, i) => i);
  const n = await countTrue(items, 7, async (i) => {
    inFlight++;
    peak = Math.max(peak, inFlight);
    await tick();
    if (i % 3 === 0) await tick();
    seen.push(i);
    inFlight--;
    return i % 2 === 0;
  });
  assert.equal(n, 50);
  assert.equal(peak, 7, 'the limit is reached and never exceeded');
  assert.deepEqual(
    [...seen].sort((a, b) => a - b),
    items,
    'each item exactly once',
  );
});

test('bounded pool: a failing item does not stop the others; the first failure is thrown after all settle', async () => {
  const seen = new Set<number>();
  await assert.rejects(
    countTrue([1, 2, 3, 4, 5, 6], 2, async (i) => {
      await tick();
      seen.add(i);
      if (i === 2) throw new Error('provider down for 2');
      if (i === 4) throw new Error('provider down for 4');
      return true;
    }),
    /provider down for 2/,
  );
  assert.equal(seen.size, 6, 'every lease was attempted');
});

test('bounded pool: empty input and a limit above the length', async () => {
  assert.equal(await countTrue([], 16, async () => true), 0);
  assert.equal(await countTrue([1, 2], 16, async () => true), 2);
});
