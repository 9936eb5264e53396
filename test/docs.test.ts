// Docs that must match the code: the error registry and the configuration reference.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { renderConfigReference } from '../src/config/reference.js';
import { errorRegistry } from '../src/errors/registry.js';

const read = (path: string) => readFileSync(new URL(`../${path}`, import.meta.url), 'utf8');

test('docs/errors.md lists exactly the registry codes, with their space and status', () => {
  const documented = new Map<string, { space: string; status: number }>();
  for (const match of read('docs/errors.md').matchAll(/^\| `([A-Z0-9_]+)` \| (\w+) \| (\d{3}) \|/gm)) {
    const [, code, space, status] = match;
    assert.ok(code !== undefined && space !== undefined && status !== undefined);
    assert.ok(!documented.has(code), `${code} is documented twice`);
    documented.set(code, { space, status: Number(status) });
  }
  const registered = Object.keys(errorRegistry);
  const undocumented = registered.filter((c) => !documented.has(c));
  const stale = [...documented.keys()].filter((c) => !registered.includes(c));
  assert.deepEqual(undocumented, [], 'codes missing from docs/errors.md');
  assert.deepEqual(stale, [], 'codes in docs/errors.md that are not in the registry');
  for (const [code, doc] of documented) {
    const spec = errorRegistry[code as keyof typeof errorRegistry];
    assert.equal(doc.space, spec.space, `${code} space`);
    assert.equal(doc.status, spec.status, `${code} status`);
  }
});

test('docs/configuration.md is generated from the current schema (run `npm run docs:config`)', () => {
  assert.equal(read('docs/configuration.md'), renderConfigReference());
});
