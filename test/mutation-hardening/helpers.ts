// Small fixtures shared by the mutation-hardening suites: a clock the test moves, a fresh SQLite
// store, and an OAuthError-style rejection helper that checks code and message together.
import assert from 'node:assert/strict';
import { MandateError } from '../../src/errors/index.js';
import type { Clock } from '../../src/lib/clock.js';

/** A clock frozen at `start` (whole seconds, far from real time so a mutant that uses Date.now() shows). */
export function movableClock(start = Date.UTC(2031, 4, 6, 7, 8, 9)): Clock & { set(ms: number): void; advance(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    set: (ms) => {
      now = ms;
    },
    advance: (ms) => {
      now += ms;
    },
  };
}

/** Awaits `p` and asserts it rejects with a MandateError of `code` whose message matches `message`. */
export async function rejectsWith(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof MandateError, `expected a MandateError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}

/** Synchronous variant of rejectsWith. */
export function throwsWith(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MandateError, `expected a MandateError, got ${String(err)}`);
    assert.equal(err.code, code);
    assert.match(err.message, message);
    return true;
  });
}
