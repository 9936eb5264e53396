// The policy store: strict validation with file:line:column problems, all-or-nothing swaps (a bad
// set never replaces a good one), reload without restart, and reload on every replica.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { compilePolicySet } from '../../src/policy/cedar/engine.js';
import { DEMO_POLICY_DIR, SHIPPED_SCHEMA } from '../../src/policy/source.js';
import { PolicyStore } from '../../src/policy/store.js';
import { ChangeFeed } from '../../src/store/changes.js';
import { storeFactories } from '../helpers/stores.js';

const schema = { path: 'mandate.cedarschema', text: readFileSync(SHIPPED_SCHEMA, 'utf8') };
const factories = await storeFactories();
const permitAll = '@id("p")\npermit (principal, action == Mandate::Action::"call", resource);\n';

function tempPolicyDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-policies-'));
  cpSync(DEMO_POLICY_DIR, dir, { recursive: true });
  return dir;
}

describe('compilePolicySet: problems point to file, line and column', () => {
  it('a syntax error', () => {
    const r = compilePolicySet(schema, [
      { path: 'a.cedar', text: `${permitAll}\n// two\npermit (principal, action, resource) when { 1 + };\n` },
    ]);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.problems[0]?.file, 'a.cedar');
    assert.equal(r.problems[0]?.line, 5);
    assert.equal(r.problems[0]?.column, 49); // the unexpected `}`
  });

  it('an attribute the schema does not declare (strict validation), in the second policy of a file', () => {
    const text = `${permitAll}\n@id("q")\nforbid (principal, action == Mandate::Action::"call", resource)\nwhen { resource.colour == "red" };\n`;
    const r = compilePolicySet(schema, [{ path: 'dir/b.cedar', text }]);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.problems[0]?.file, 'dir/b.cedar');
    assert.equal(r.problems[0]?.line, 6);
    assert.equal(r.problems[0]?.column, 8);
    assert.match(r.problems[0]?.message ?? '', /colour/);
  });

  it('a type error (comparing a string with a number)', () => {
    const r = compilePolicySet(schema, [
      { path: 'c.cedar', text: 'permit (principal, action == Mandate::Action::"call", resource) when { context.environment > 3 };' },
    ]);
    assert.equal(r.ok, false);
  });

  it('an unknown entity type', () => {
    const r = compilePolicySet(schema, [
      { path: 'd.cedar', text: 'permit (principal is Mandate::Robot, action == Mandate::Action::"call", resource);' },
    ]);
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.problems[0]?.message ?? '', /Robot/);
  });

  it('a duplicate @id names both places', () => {
    const r = compilePolicySet(schema, [
      { path: 'e.cedar', text: permitAll },
      { path: 'f.cedar', text: `\n${permitAll}` },
    ]);
    assert.equal(r.ok, false);
    if (!r.ok)
      assert.deepEqual([r.problems[0]?.file, r.problems[0]?.line, /e\.cedar:1/.test(r.problems[0]?.message ?? '')], ['f.cedar', 2, true]);
  });

  it('templates are refused; policies without @id get file:line ids', () => {
    const t = compilePolicySet(schema, [{ path: 'g.cedar', text: 'permit (principal == ?principal, action, resource);' }]);
    assert.equal(t.ok, false);
    const r = compilePolicySet(schema, [{ path: 'h.cedar', text: '\n\npermit (principal, action == Mandate::Action::"call", resource);' }]);
    assert.ok(r.ok);
    if (r.ok) assert.equal(r.set.policies[0]?.id, 'h.cedar:3');
  });

  it('a broken schema is reported against the schema file', () => {
    const r = compilePolicySet({ path: 's.cedarschema', text: 'namespace X { entity A = { a: Strng }; }' }, []);
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.problems[0]?.file, 's.cedarschema');
  });
});

describe('PolicyStore', () => {
  const dirs: string[] = [];
  after(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('keeps serving the previous set when a new one is invalid, and swaps in a valid one', async () => {
    const dir = tempPolicyDir();
    dirs.push(dir);
    const store = new PolicyStore({ dir, schemaPath: SHIPPED_SCHEMA, now: () => 0 });
    const first = await store.load();
    assert.ok(first.ok);
    const version = store.current?.set.version;
    writeFileSync(join(dir, '30-broken.cedar'), 'forbid (principal, action, resource) when { context.nope };');
    const bad = await store.load();
    assert.equal(bad.ok, false);
    if (!bad.ok) assert.equal(bad.serving, version);
    assert.equal(store.current?.set.version, version);
    assert.equal(store.lastProblems[0]?.file.endsWith('30-broken.cedar'), true);
    writeFileSync(join(dir, '30-broken.cedar'), permitAll.replace('"p"', '"extra"'));
    const good = await store.load();
    assert.ok(good.ok && good.changed);
    assert.notEqual(store.current?.set.version, version);
    assert.ok(store.current?.set.policies.some((p) => p.id === 'extra'));
    assert.deepEqual(store.lastProblems, []);
  });

  it('an unreadable directory is a problem, not a crash', async () => {
    const store = new PolicyStore({ dir: '/nonexistent/policies', schemaPath: SHIPPED_SCHEMA, now: () => 0 });
    const r = await store.load();
    assert.equal(r.ok, false);
  });

  it('an entities file that does not match the schema is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-entities-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'e.json'), JSON.stringify([{ uid: { type: 'Mandate::Agent', id: 'a' }, attrs: { owner: 5 }, parents: [] }]));
    const store = new PolicyStore({ dir: DEMO_POLICY_DIR, schemaPath: SHIPPED_SCHEMA, entitiesPath: join(dir, 'e.json'), now: () => 0 });
    assert.equal((await store.load()).ok, false);
    writeFileSync(join(dir, 'e.json'), '{not json');
    assert.equal((await store.load()).ok, false);
  });

  for (const factory of factories) {
    it(`a reload on one replica reloads the others through the change feed (${factory.name})`, { skip: factory.skip }, async () => {
      const db = await factory.open();
      const clock = { now: () => Date.now() };
      const feedA = new ChangeFeed(db, { clock, pollIntervalMs: 60_000 });
      const feedB = new ChangeFeed(db, { clock, pollIntervalMs: 60_000 });
      await feedA.start();
      await feedB.start();
      try {
        const dir = tempPolicyDir();
        dirs.push(dir);
        const a = new PolicyStore({ dir, schemaPath: SHIPPED_SCHEMA, now: () => 0 });
        const b = new PolicyStore({ dir, schemaPath: SHIPPED_SCHEMA, now: () => 0 });
        await a.load();
        await b.load();
        a.follow(feedA);
        b.follow(feedB);
        writeFileSync(join(dir, '40-new.cedar'), permitAll.replace('"p"', '"added-later"'));
        const report = await a.reload(db, feedA);
        assert.ok(report.ok && report.changed);
        await feedB.catchUp();
        assert.equal(b.current?.set.version, a.current?.set.version);
        assert.ok(b.current?.set.policies.some((p) => p.id === 'added-later'));
        // A reload that changes nothing publishes nothing.
        const again = await a.reload(db, feedA);
        assert.ok(again.ok && !again.changed);
      } finally {
        await feedA.stop();
        await feedB.stop();
        await factory.cleanup();
      }
    });
  }
});

describe('PolicyStore.watch', () => {
  it('reloads when a policy file changes, and refuses a bad edit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-watch-'));
    cpSync(DEMO_POLICY_DIR, dir, { recursive: true });
    const factory = factories[0];
    assert.ok(factory);
    const db = await factory.open();
    const store = new PolicyStore({ dir, schemaPath: SHIPPED_SCHEMA, now: () => 0 });
    try {
      assert.ok((await store.load()).ok);
      const reports: unknown[] = [];
      const next = () =>
        new Promise<{ ok: boolean }>((resolve) => {
          const n = reports.length;
          const t = setInterval(() => {
            if (reports.length > n) {
              clearInterval(t);
              resolve(reports[reports.length - 1] as { ok: boolean });
            }
          }, 20);
        });
      store.watch(db, undefined, (r) => reports.push(r), 50);
      let pending = next();
      writeFileSync(join(dir, '60-watched.cedar'), '@id("watched")\nforbid (principal, action, resource) when { context.risk > 50 };\n');
      assert.equal((await pending).ok, true);
      assert.ok(store.current?.set.policies.some((p) => p.id === 'watched'));
      pending = next();
      writeFileSync(join(dir, '60-watched.cedar'), 'forbid (principal, action, resource) when { context.rsk > 50 };\n');
      assert.equal((await pending).ok, false);
      assert.ok(store.current?.set.policies.some((p) => p.id === 'watched'));
    } finally {
      store.close();
      await factory.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
