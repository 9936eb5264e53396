// Pools of hostile values, drawn once per run from fast-check arbitraries (seeded) plus a fixed
// list of values known to break parsers: generators pick from them instead of calling fast-check
// per input, which keeps a million inputs cheap.
import fc from 'fast-check';

export interface Pools {
  /** Arbitrary JSON values (any type, nested). */
  readonly json: readonly unknown[];
  /** Strings: unicode, binary, lone surrogates, control characters. */
  readonly strings: readonly string[];
  /** Raw JSON texts that JSON.parse treats specially or refuses. */
  readonly rawJson: readonly string[];
  /** Strings that mean something to path, SQL, template or header parsers. */
  readonly nasty: readonly string[];
}

const NASTY = [
  '',
  ' ',
  '\u0000',
  '%00',
  '..',
  '../',
  '..%2f',
  '%2e%2e%2f',
  '%2e%2e/',
  '..\\',
  '%5c',
  '%',
  '%z',
  '%zz',
  '%c0%af',
  '%c0%ae%c0%ae/',
  '%ff',
  '%u0041',
  '//',
  '/./',
  '\\',
  'null',
  'true',
  'undefined',
  'NaN',
  '__proto__',
  'constructor',
  'prototype',
  "' OR 1=1 --",
  '"; DROP TABLE audit_events; --',
  `$\{jndi:ldap://127.0.0.1/x}`,
  '{{7*7}}',
  '<script>alert(1)</script>',
  '\r\nX-Injected: 1',
  '\ud800',
  '\udfff\ud800',
  '\u202e',
  '\ufeff',
  '🙂'.repeat(64),
  'A'.repeat(4096),
  'x'.repeat(70_000),
  'spiffe://demo.mandate.local/agent/fuzz',
  'spiffe://demo.mandate.local/agent/../admin',
  'spiffe://DEMO.mandate.local/agent/fuzz',
  'fz.lookup',
  'fz.lookup\u0000',
  'FZ.LOOKUP',
  'fz..lookup',
  'admin',
  'alice',
  '-1',
  '1e400',
  '9007199254740993',
  'eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.',
];

const RAW_JSON = [
  '1e400',
  '-1e400',
  '-0',
  '1e-400',
  '123456789012345678901234567890',
  'NaN',
  'Infinity',
  '-Infinity',
  'undefined',
  '[',
  '{',
  '{"a":',
  '"\\ud800"',
  '"\\u0000"',
  '{"__proto__":{"admin":true}}',
  '{"constructor":{"prototype":{"admin":true}}}',
  '{"a":1,"a":2}',
  '[]',
  '{}',
  'null',
  '""',
  `"${'a'.repeat(200_000)}"`,
  `[${'0,'.repeat(50_000)}0]`,
  `${'['.repeat(2_000)}${']'.repeat(2_000)}`,
  `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
  `${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}`,
];

export function makePools(seed: number, size = 1500): Pools {
  const opts = (offset: number) => ({ seed: seed + offset, numRuns: size });
  const json = fc.sample(fc.jsonValue({ maxDepth: 4 }), opts(1));
  const strings = fc.sample(
    fc.oneof(
      fc.string({ unit: 'binary', maxLength: 64 }),
      fc.string({ unit: 'grapheme', maxLength: 64 }),
      fc.string({ unit: 'binary-ascii', maxLength: 300 }),
      fc.constantFrom(...NASTY),
    ),
    opts(2),
  );
  const anything = fc.sample(
    fc.anything({ maxDepth: 3, withNullPrototype: true, withBigInt: false, withBoxedValues: false, withTypedArray: false }),
    opts(3),
  );
  // anything() adds NaN, -0 and Infinity, which JSON turns into null: exactly the confusions to test.
  return { json: [...json, ...anything], strings, rawJson: RAW_JSON, nasty: NASTY };
}
