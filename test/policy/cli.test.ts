// `mandate policy validate|test|explain` as an operator runs them (a real process).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { createBroker } from '../../src/broker.js';
import { buildConfig } from '../../src/config/load.js';
import { buildApp } from '../../src/http/app.js';
import { DEMO_POLICY_DIR } from '../../src/policy/source.js';

const run = promisify(execFile);

async function mandate(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('mandate policy', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'mandate-policy-cli-'));
  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('validate accepts the demo policies', async () => {
    const r = await mandate('policy', 'validate', 'policies/demo');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ok: 10 policies valid/);
  });

  it('validate points at file, line and column and exits 1', async () => {
    writeFileSync(
      join(tmp, 'bad.cedar'),
      '// a comment\npermit (principal, action == Mandate::Action::"call", resource)\n  when { resource.colour == "red" };\n',
    );
    const r = await mandate('policy', 'validate', tmp);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ERR_POLICY_INVALID/);
    assert.match(r.stderr, /bad\.cedar:3:10: .*colour/);
  });

  it('test runs the demo cases and the Todo AuthZEN cases', async () => {
    const demo = await mandate('policy', 'test', 'policies/demo', 'policies/tests');
    assert.equal(demo.code, 0, demo.stdout + demo.stderr);
    assert.match(demo.stdout, /18\/18 cases passed/);
    const todo = await mandate(
      'policy',
      'test',
      '--config',
      'examples/authzen-todo/config.yaml',
      'examples/authzen-todo/policies',
      'examples/authzen-todo/cases.yaml',
    );
    assert.equal(todo.code, 0, todo.stdout + todo.stderr);
  });

  it('test fails (exit 1) and shows what it got when an expectation is wrong', async () => {
    writeFileSync(
      join(tmp, 'wrong.yaml'),
      'cases:\n  - name: deleting is allowed (wrong)\n    call:\n      tool: { name: helpdesk.delete_customer, actionClass: destructive }\n    expect: { outcome: allow }\n',
    );
    const r = await mandate('policy', 'test', 'policies/demo', join(tmp, 'wrong.yaml'));
    assert.equal(r.code, 1);
    assert.match(r.stdout, /FAIL .*deleting is allowed/);
    assert.match(r.stdout, /outcome: expected allow, got approval_required/);
  });

  it('explain shows outcome, reasons, the deciding policy with its place, and approver roles', async () => {
    writeFileSync(
      join(tmp, 'req.yaml'),
      'call:\n  tool: { name: helpdesk.execute_refund, actionClass: execute }\n  args: { customerId: C-1009, amountCents: 20000 }\n',
    );
    const r = await mandate('policy', 'explain', 'policies/demo', '--request', join(tmp, 'req.yaml'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /outcome: approval_required/);
    assert.match(r.stdout, /policy large-refund-needs-finance \(.*10-helpdesk\.cedar:\d+\)/);
    assert.match(r.stdout, /approver roles: finance/);
  });
});

describe('mandate policy status|reload against a running broker', () => {
  const TOKEN = 'cli-policy-bootstrap-token-0123456789abcdef';
  const tmp = mkdtempSync(join(tmpdir(), 'mandate-policy-remote-'));
  let app: FastifyInstance;
  let url: string;
  before(async () => {
    cpSync(DEMO_POLICY_DIR, join(tmp, 'policies'), { recursive: true });
    const config = buildConfig(
      { mode: 'demo', dataDir: join(tmp, 'data'), log: { level: 'silent' }, policy: { dir: join(tmp, 'policies') } },
      { env: { MANDATE_BOOTSTRAP_TOKEN: TOKEN } },
    );
    app = await buildApp(await createBroker(config));
    await app.listen({ host: '127.0.0.1', port: 0 });
    url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  });
  after(async () => {
    await app.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('status shows the set; reload picks up a new file; a bad file is refused with its place', async () => {
    const status = await mandate('policy', 'status', '--url', url, '--token', TOKEN);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).policies.length, 10);
    writeFileSync(
      join(tmp, 'policies', '70-new.cedar'),
      '@id("cli-added")\nforbid (principal, action, resource) when { context.risk > 70 };\n',
    );
    const ok = await mandate('policy', 'reload', '--url', url, '--token', TOKEN);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(JSON.parse(ok.stdout).policies, 11);
    writeFileSync(join(tmp, 'policies', '70-new.cedar'), 'forbid (principal, action, resource) when { context.rsk > 70 };\n');
    const bad = await mandate('policy', 'reload', '--url', url, '--token', TOKEN);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /ERR_POLICY_INVALID.*\n?.*70-new\.cedar:1:\d+/);
  });
});
