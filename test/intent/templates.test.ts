// Task template files (src/templates/): loaded and validated with the policy set, versions, typed
// parameters (unknown, missing, ill-typed refused with ERR_TEMPLATE_*), substitution, and the
// policy store swapping templates with the set.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MandateError } from '../../src/errors/index.js';
import { SHIPPED_SCHEMA } from '../../src/policy/source.js';
import { PolicyStore } from '../../src/policy/store.js';
import { loadTemplates, type TemplateRegistry } from '../../src/templates/registry.js';
import { FIXTURE_POLICIES } from './fixtures.js';

const file = (path: string, text: string) => ({ path, text });
const fixture = (name: string) => file(name, readFileSync(join(FIXTURE_POLICIES, name), 'utf8'));

function registry(): TemplateRegistry {
  const r = loadTemplates([fixture('transfer.template.yaml'), fixture('transfer-v1.template.json'), fixture('mail.template.yaml')]);
  assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
  return r.registry;
}

const refusal = (f: () => unknown): MandateError => {
  try {
    f();
  } catch (err) {
    if (err instanceof MandateError) return err;
    throw err;
  }
  assert.fail('expected a refusal');
};

describe('template files', () => {
  it('load with their versions; the highest serves unless one is pinned', () => {
    const r = registry();
    assert.equal(r.size, 3);
    assert.equal(r.get('payments.transfer')?.version, 2);
    assert.equal(r.get('payments.transfer', 1)?.ttlSeconds, 300);
    assert.equal(r.get('payments.transfer', 3), undefined);
  });

  it('substitute validated, normalized parameters into constraints and budgets', () => {
    const t = registry().resolve({
      template: 'payments.transfer',
      params: { iban: 'de89 3704 0044 0532 0130 00', amount: 120.5 },
      request: 'pay it',
    });
    assert.deepEqual(t.tools, [
      { tool: 'bank.send_money', args: { recipient: { eq: 'DE89370400440532013000' }, amount: { max: 120.5 } }, maxCalls: 1 },
      { tool: 'bank.get_balance' },
      // bank.set_reference refers to the optional `reference`, not given: left out.
    ]);
    assert.equal(t.ttlSeconds, 600);
    assert.equal(t.request, 'pay it');
    assert.deepEqual(t.template, {
      name: 'payments.transfer',
      version: 2,
      params: { iban: 'DE89370400440532013000', amount: 120.5 },
      approval: { tools: [], unnamedTargets: true },
    });
  });

  it('a list parameter fills a whole `in` list', () => {
    const t = registry().resolve({ template: 'mail.reply', params: { recipients: ['Bob@Example.com', 'carol@example.org'] } });
    assert.deepEqual(t.tools[1], { tool: 'mail.send_email', args: { to: { in: ['bob@example.com', 'carol@example.org'] } }, maxCalls: 3 });
  });

  it('refuses unknown, missing and ill-typed parameters with ERR_TEMPLATE_PARAMS naming the parameter', () => {
    const r = registry();
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ iban: 'DE89370400440532013000', amount: 1, extra: 1 }, 'extra', /unknown parameter "extra"/],
      [{ amount: 1 }, 'iban', /"iban" \(iban\) is required/],
      [{ iban: 'DE88370400440532013000', amount: 1 }, 'iban', /IBAN with a valid checksum/],
      [{ iban: 'DE89370400440532013000', amount: '120' }, 'amount', /"amount"/],
      [{ iban: 'DE89370400440532013000', amount: -5 }, 'amount', /"amount"/],
      [{ iban: 'DE89370400440532013000', amount: 200000 }, 'amount', /"amount"/],
      [{ iban: ['DE89370400440532013000'], amount: 1 }, 'iban', /"iban"/],
      [{ iban: { toString: 'x' }, amount: 1 }, 'iban', /"iban"/],
      [{ iban: 'DE89370400440532013000', amount: 1, reference: 'x'.repeat(141) }, 'reference', /"reference"/],
      // A JSON body's own "__proto__" key is an unknown parameter like any other.
      [JSON.parse('{"iban":"DE89370400440532013000","amount":1,"__proto__":{"admin":true}}'), '__proto__', /unknown parameter "__proto__"/],
    ];
    for (const [params, param, message] of cases) {
      const e = refusal(() => r.resolve({ template: 'payments.transfer', params }));
      assert.equal(e.code, 'ERR_TEMPLATE_PARAMS', JSON.stringify(params));
      assert.match(e.message, message);
      assert.equal(e.details?.param, param);
    }
    const list = refusal(() => r.resolve({ template: 'mail.reply', params: { recipients: ['bob@example.com', 'not-an-address'] } }));
    assert.equal(list.code, 'ERR_TEMPLATE_PARAMS');
    assert.match(list.message, /recipients"\[1\] is not an e-mail address/);
  });

  it('refuses an unknown template or version with ERR_TEMPLATE_UNKNOWN, and a longer lifetime', () => {
    const r = registry();
    assert.equal(refusal(() => r.resolve({ template: 'nope', params: {} })).code, 'ERR_TEMPLATE_UNKNOWN');
    const v = refusal(() => r.resolve({ template: 'payments.transfer', version: 7, params: {} }));
    assert.equal(v.code, 'ERR_TEMPLATE_UNKNOWN');
    assert.match(v.message, /loaded: 2, 1/);
    const ttl = refusal(() =>
      r.resolve({ template: 'payments.transfer', ttlSeconds: 601, params: { iban: 'DE89370400440532013000', amount: 1 } }),
    );
    assert.equal(ttl.code, 'ERR_TEMPLATE_PARAMS');
  });

  it('validation at load: undeclared references, wrong types, bad approval defaults, duplicates, bad YAML', () => {
    const base = 'name: t\nversion: 1\npurpose: p\ntaskType: x\nttlSeconds: 60\n';
    const bad: [string, RegExp][] = [
      [`${base}tools:\n  - tool: a\n    args: { to: { eq: $params.who } }\n`, /\$params\.who, which the template does not declare/],
      [
        `${base}params: { who: { type: email } }\ntools:\n  - tool: a\n    args: { n: { max: $params.who } }\n`,
        /bound or budget needs integer/,
      ],
      [`${base}params: { who: { type: email, list: true } }\ntools:\n  - tool: a\n    args: { to: { eq: $params.who } }\n`, /is a list/],
      [
        `${base}params: { n: { type: integer } }\ntools:\n  - tool: a\n    args: { p: { prefix: $params.n } }\n`,
        /prefix and within need a string/,
      ],
      [`${base}tools:\n  - tool: a\napproval: { tools: [b] }\n`, /approval\.tools: names b/],
      [`${base}tools:\n  - tool: a\n    args: { to: { regex: x } }\n`, /unrecognized|Unrecognized/],
      [`${base}tools: []\n`, /tools/],
      [`${base}params: { e: { type: enum } }\ntools:\n  - tool: a\n`, /enum takes values/],
      [`${base}tools:\n  - tool: a\n  - [unclosed\n`, /not valid YAML/],
    ];
    for (const [text, message] of bad) {
      const r = loadTemplates([file('bad.template.yaml', text)]);
      assert.equal(r.ok, false, text);
      assert.match(JSON.stringify(!r.ok && r.problems), message, text);
    }
    const dup = loadTemplates([
      file('a.template.yaml', `${base}tools:\n  - tool: a\n`),
      file('b.template.yaml', `${base}tools:\n  - tool: b\n`),
    ]);
    assert.equal(dup.ok, false);
    assert.match(JSON.stringify(!dup.ok && dup.problems), /also defined in a\.template\.yaml/);
  });

  it('hostile YAML: alias bombs are refused, not expanded', () => {
    const bomb = `a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n`;
    const r = loadTemplates([file('bomb.template.yaml', bomb)]);
    assert.equal(r.ok, false);
  });
});

describe('the policy store loads templates beside the policies, all or nothing', () => {
  it('serves the templates of the last valid load; a bad template refuses the whole set', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-templates-'));
    try {
      writeFileSync(join(dir, '00-intent.cedar'), readFileSync(join(FIXTURE_POLICIES, '00-intent.cedar')));
      writeFileSync(join(dir, 'transfer.template.yaml'), readFileSync(join(FIXTURE_POLICIES, 'transfer.template.yaml')));
      writeFileSync(join(dir, 'notes.yaml'), 'not a template: true\n');
      const store = new PolicyStore({ dir, schemaPath: SHIPPED_SCHEMA, now: () => 0 });
      const first = await store.load();
      assert.ok(first.ok);
      assert.equal(store.current?.templates.get('payments.transfer')?.version, 2);
      assert.equal(store.current?.templates.size, 1, 'only *.template.yaml files are templates');

      writeFileSync(join(dir, 'broken.template.yaml'), 'name: x\n');
      const second = await store.load();
      assert.equal(second.ok, false);
      assert.match(JSON.stringify(!second.ok && second.problems), /broken\.template\.yaml/);
      assert.equal(store.current?.templates.size, 1, 'the previous templates keep serving');

      rmSync(join(dir, 'broken.template.yaml'));
      writeFileSync(join(dir, 'mail.template.yaml'), readFileSync(join(FIXTURE_POLICIES, 'mail.template.yaml')));
      const third = await store.load();
      assert.ok(third.ok);
      assert.equal(third.changed, true, 'a template change alone is a change');
      assert.notEqual(third.version, first.ok ? first.version : '');
      assert.equal(store.current?.templates.size, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('docs/mandates.md "Task templates and parameters"', () => {
  it('the template example loads and the request example resolves against it', () => {
    const doc = readFileSync('docs/mandates.md', 'utf8');
    const section = doc.slice(doc.indexOf('### Task templates and parameters'));
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    const json = /```json[^\n]*\n([\s\S]*?)```/.exec(section)?.[1];
    assert.ok(yaml !== undefined && json !== undefined);
    const r = loadTemplates([file('transfer.template.yaml', yaml)]);
    assert.ok(r.ok, JSON.stringify(!r.ok && r.problems));
    const [entry] = JSON.parse(json) as Record<string, unknown>[];
    const { type: _, ...request } = entry as { type: string; template: string; params: Record<string, unknown> };
    const resolved = r.registry.resolve(request);
    assert.deepEqual(resolved.tools[0], {
      tool: 'bank.send_money',
      args: { recipient: { eq: 'DE89370400440532013000' }, amount: { max: 120 } },
      maxCalls: 1,
    });
    assert.equal(resolved.ttlSeconds, 300);
  });
});
