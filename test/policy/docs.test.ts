// The examples in docs/policies.md and docs/authzen.md are real: Cedar blocks validate against the
// shipped schema, the scope parses, the case passes against the demo policies, the AuthZEN request
// is allowed by the Todo example.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { CaseRunner, parseCases } from '../../src/policy/cases.js';
import { compilePolicySet } from '../../src/policy/cedar/engine.js';
import { DEMO_POLICY_DIR, SHIPPED_SCHEMA } from '../../src/policy/source.js';
import { PolicyStore } from '../../src/policy/store.js';
import { scopeSchema } from '../../src/scope/scope.js';

/** Fenced blocks of one language, whatever follows it on the fence line (`sh run`, `json valid schema=…`). */
const blocks = (file: string, lang: string) =>
  [...readFileSync(file, 'utf8').matchAll(new RegExp(`\`\`\`${lang}(?:[ \\t][^\\n]*)?\\n([\\s\\S]*?)\`\`\``, 'g'))].map(
    (m) => m[1] as string,
  );

describe('docs/policies.md examples', () => {
  const schema = { path: 'mandate.cedarschema', text: readFileSync(SHIPPED_SCHEMA, 'utf8') };

  it('every cedar block validates strictly against the shipped schema', () => {
    const cedar = blocks('docs/policies.md', 'cedar');
    assert.ok(cedar.length >= 2);
    cedar.forEach((text, i) => {
      const r = compilePolicySet(schema, [{ path: `block-${i}.cedar`, text }]);
      assert.ok(r.ok, JSON.stringify(r));
    });
  });

  it('the scope example parses', () => {
    const [json] = blocks('docs/policies.md', 'json');
    assert.ok(scopeSchema.safeParse(JSON.parse(json as string)).success);
  });

  it('the case example passes against the demo policies', async () => {
    const store = new PolicyStore({ dir: DEMO_POLICY_DIR, schemaPath: SHIPPED_SCHEMA, now: () => 0 });
    assert.ok((await store.load()).ok);
    const runner = new CaseRunner({
      policies: store,
      approverRoles: ['support-lead', 'finance', 'admin'],
      namespace: 'Mandate',
      types: {},
      now: 0,
    });
    const [yaml] = blocks('docs/policies.md', 'yaml');
    for (const c of parseCases(parseYaml(yaml as string))) {
      const r = runner.run('docs', c);
      assert.ok(r.ok, JSON.stringify(r));
    }
  });
});

describe('docs/authzen.md example', () => {
  it('the curl request is allowed by examples/authzen-todo', async () => {
    const sh = blocks('docs/authzen.md', 'sh').find((b) => /-d '/.test(b));
    assert.ok(sh !== undefined, 'the page has its curl example');
    const body = JSON.parse(/-d '([\s\S]*?)'/.exec(sh)?.[1] as string);
    const store = new PolicyStore({
      dir: 'examples/authzen-todo/policies',
      schemaPath: 'examples/authzen-todo/todo.cedarschema',
      entitiesPath: 'examples/authzen-todo/entities.json',
      now: () => 0,
    });
    assert.ok((await store.load()).ok);
    const runner = new CaseRunner({ policies: store, approverRoles: [], namespace: 'Todo', types: {}, now: 0 });
    assert.equal(runner.explainAuthzen(body).decision, true);
  });
});
