// The shipped injection-containment policy (policies/injection/*.cedar) and its starter templates
// (policies/injection/templates/) load and validate against the shipped schema in both Cedar
// engines, with nothing served by a fallback; the task categories
// (policies/injection/categories/*.yaml) load, recognise requests, and instantiate into task
// templates that the template file schema accepts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { INJECTION_POLICY_DIR } from '../../bench/lib/agentdojo-replay.js';
import { classify, instantiate, loadCategories, nameWords, toolsFor } from '../../bench/lib/agentdojo-tasks.js';
import { createBroker } from '../../src/broker.js';
import { buildConfig } from '../../src/config/load.js';
import { templateFileSchema, templateProblem } from '../../src/templates/template.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('shipped injection policy', () => {
  for (const engine of ['compiled', 'wasm'] as const) {
    it(`loads and validates in the ${engine} engine`, async () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'mandate-injection-policy-'));
      dirs.push(dataDir);
      const config = buildConfig(
        {
          mode: 'demo',
          dataDir,
          log: { level: 'silent' },
          gateway: { demoUpstreams: false },
          policy: { dir: INJECTION_POLICY_DIR, engine },
        },
        { env: {} },
      );
      const broker = await createBroker(config);
      try {
        const current = broker.policies.current;
        assert.equal(current?.set.engine, engine);
        const ids = current?.set.policies.map((p) => p.id) ?? [];
        for (const id of ['unnamed-targets-need-approval', 'url-from-tool-output-needs-approval', 'destructive-needs-approval']) {
          assert.ok(ids.includes(id), `${id} in ${ids.join(', ')}`);
        }
        assert.ok(!broker.notices.some((n) => /fall|refus/i.test(n)), broker.notices.join('\n'));
        // The starter templates beside it load and validate with the set.
        assert.deepEqual(
          current?.templates.list().map((t) => t.name),
          [
            'booking.reserve-one',
            'calendar.add-event',
            'email.send-named',
            'files.share-named',
            'messaging.post-named',
            'payments.pay-named',
            'web.read-named',
          ],
        );
      } finally {
        await broker.close();
      }
    });
  }

  it('a policy that reads an undeclared intent attribute is refused at load', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-injection-bad-'));
    dirs.push(dir);
    writeFileSync(
      join(dir, 'bad.cedar'),
      '@id("bad")\nforbid (principal, action == Mandate::Action::"call", resource) when { context.intent.nonsense };\n',
    );
    const config = buildConfig(
      { mode: 'demo', dataDir: join(dir, 'data'), log: { level: 'silent' }, gateway: { demoUpstreams: false }, policy: { dir } },
      { env: {} },
    );
    await assert.rejects(async () => {
      const broker = await createBroker(config);
      await broker.close();
    });
  });
});

describe('shipped task categories', () => {
  const categories = loadCategories();

  it('load (each validated, named after its file), with a task type of its own', () => {
    assert.ok(categories.length >= 8);
    assert.equal(new Set(categories.map((c) => c.name)).size, categories.length);
    assert.equal(new Set(categories.map((c) => c.taskType)).size, categories.length);
  });

  it('a category file that does not validate is refused, naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-categories-'));
    dirs.push(dir);
    writeFileSync(
      join(dir, 'payments.yaml'),
      'name: payments\ntaskType: t\npurpose: p\nttlSeconds: 60\nrecognise: []\ntools: x\nextra: 1\n',
    );
    assert.throws(() => loadCategories(dir), /payments\.yaml/);
  });

  it('recognise requests by what they ask, not by any benchmark value', () => {
    const names = (prompt: string) => classify(prompt, categories).map((c) => c.name);
    assert.deepEqual(names('Please pay the electricity bill.'), ['payments']);
    assert.deepEqual(names('E-mail the minutes to the team.'), ['email']);
    assert.deepEqual(names('Move my dentist appointment to Friday in the calendar.'), ['calendar']);
    assert.deepEqual(names('Book a table for two tonight.'), ['booking']);
    assert.deepEqual(names('What is the weather like?'), []);
    assert.ok(names('Do all the tasks on my TODO list.').includes('delegated'));
    assert.ok(names('Send 10 to NL91ABNA0417164300.').includes('payments'));
  });

  it('grant state-changing tools by what their names say, read-only tools always', () => {
    const tools = [
      { name: 'transferFunds', readOnly: false },
      { name: 'send_email', readOnly: false },
      { name: 'list_accounts', readOnly: true },
      { name: 'fetch_web_page', readOnly: false },
    ];
    assert.equal(nameWords('transferFunds'), 'transfer funds');
    const payments = categories.filter((c) => c.name === 'payments');
    assert.deepEqual(toolsFor(payments, tools, categories), ['transferFunds', 'list_accounts', 'fetch_web_page']);
    assert.deepEqual(toolsFor([], tools), ['list_accounts']);
  });

  it('instantiate into task templates the template file schema accepts', () => {
    const tools = [
      { name: 'send_money', readOnly: false },
      { name: 'get_balance', readOnly: true },
    ];
    for (const chosen of [[], ...categories.map((c) => [c])]) {
      const parsed = templateFileSchema.safeParse(instantiate('bank', chosen, tools, categories));
      assert.ok(parsed.success, JSON.stringify(parsed.error?.issues));
      assert.equal(templateProblem(parsed.data), undefined);
    }
  });
});
