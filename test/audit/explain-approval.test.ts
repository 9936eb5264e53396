// explain of approval events as the broker writes them: the task's human comes from the mandate,
// never from the approver acting on the event; the approval's outcome, approver, role and comment
// are stated. And `mandate audit prove --from A --to B` answers for any sizes, like the API.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { explainEvent, renderExplanation } from '../../src/audit/explain.js';
import { AuditService } from '../../src/audit/log.js';
import { consistencyAnswer } from '../../src/audit/proof-answers.js';
import { systemClock } from '../../src/lib/clock.js';
import { generateMasterKeySpec, parseMasterKeys, SecretBox } from '../../src/secrets/secret-box.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { openAudit } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'mandate-explain-approval-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const bob = { type: 'human' as const, id: 'bob' };
const carol = { type: 'human' as const, id: 'carol' };
const triage = { type: 'agent' as const, id: 'support-triage' };

/** bob's agent asks; carol decides with a comment (the shapes src/mandates and src/approvals append). */
async function story(audit: AuditService, outcome: 'approved' | 'denied') {
  await audit.append({
    type: 'mandate.opened',
    actors: [bob, triage],
    mandateId: 'mnd_1',
    environment: 'production',
    data: { purpose: 'Resolve ticket T-4821', taskType: 'support.refund', agentId: 'support-triage', parentMandateId: null },
  });
  const decision = await audit.append({
    type: 'decision',
    actors: [bob, triage],
    mandateId: 'mnd_1',
    data: { decisionId: 'dec_1', outcome: 'approval_required', approvalId: 'apr_1', policies: ['large-refund-needs-finance'] },
  });
  await audit.append({
    type: 'approval.requested',
    actors: [bob, triage],
    mandateId: 'mnd_1',
    data: { approvalId: 'apr_1', decisionId: 'dec_1', tool: 'helpdesk.execute_refund' },
  });
  const decided = await audit.append({
    type: 'approval.decided',
    actors: [carol],
    mandateId: 'mnd_1',
    data: { approvalId: 'apr_1', decisionId: 'dec_1', outcome, role: 'finance', note: 'checked the statement' },
  });
  return { decision: decision.id, decided: decided.id };
}

test('explain of a denied approval: on behalf of bob, denied by carol as finance, with her comment', async () => {
  const store = openSqliteStore({ path: join(dir, 'denied.db') });
  await store.migrate();
  const audit = await openAudit(store);
  const { decided, decision } = await story(audit, 'denied');
  for (const id of [decided, decision]) {
    const x = await explainEvent(audit, id);
    assert.equal(x.onBehalfOf, 'bob', `event ${id}`);
    assert.deepEqual(x.approval, {
      id: 'apr_1',
      outcome: 'denied',
      decidedBy: 'carol',
      role: 'finance',
      note: 'checked the statement',
      consumed: false,
    });
    const text = renderExplanation(x);
    assert.match(text, /^approval apr_1: denied by carol as finance$/m);
    assert.match(text, /^ {2}comment: "checked the statement"$/m);
    assert.match(text, /^on behalf of: bob$/m);
  }
  await audit.close();
  await store.close();
});

test('explain of an approved, used approval says so; one still pending says pending', async () => {
  const store = openSqliteStore({ path: join(dir, 'approved.db') });
  await store.migrate();
  const audit = await openAudit(store);
  const { decided } = await story(audit, 'approved');
  await audit.append({
    type: 'approval.consumed',
    actors: [bob, triage],
    mandateId: 'mnd_1',
    data: { approvalId: 'apr_1', decisionId: 'dec_2' },
  });
  const x = await explainEvent(audit, decided);
  assert.equal(x.approval?.outcome, 'approved');
  assert.equal(x.approval?.consumed, true);
  assert.match(renderExplanation(x), /^approval apr_1: approved by carol as finance, used by the call$/m);
  const pending = await audit.append({
    type: 'approval.requested',
    actors: [bob, triage],
    mandateId: 'mnd_1',
    data: { approvalId: 'apr_2', decisionId: 'dec_3' },
  });
  const p = await explainEvent(audit, pending.id);
  assert.equal(p.approval?.outcome, 'pending');
  assert.equal(p.approval?.decidedBy, undefined);
  assert.equal(p.onBehalfOf, 'bob');
  await audit.close();
  await store.close();
});

test('audit prove --from 100 --to 200 answers like the API; signed ends carry a bundle verify-proof accepts', {
  timeout: 120_000,
}, async () => {
  const masterKey = generateMasterKeySpec('cli');
  const configFile = join(dir, 'mandate.json');
  writeFileSync(configFile, JSON.stringify({ mode: 'production', dataDir: dir, audit: { origin: 'prove.test/audit' } }));
  const store = openSqliteStore({ path: join(dir, 'mandate.db') });
  await store.migrate();
  const audit = await AuditService.open({
    store,
    secrets: new SecretBox(parseMasterKeys(masterKey)),
    clock: systemClock,
    origin: 'prove.test/audit',
  });
  for (let i = 0; i < 120; i++) await audit.append({ type: 'risk.signal', actors: [], data: { i } });
  await audit.checkpoint();
  for (let i = 120; i < 250; i++) await audit.append({ type: 'risk.signal', actors: [], data: { i } });
  await audit.checkpoint();
  const expected = await consistencyAnswer(audit, 100, 200);
  const vkey = audit.vkey;
  await audit.close();
  await store.close();

  const mandate = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, '../../src/cli/main.ts'), ...args], {
      env: { PATH: process.env.PATH ?? '', MANDATE_MASTER_KEY: masterKey },
      encoding: 'utf8',
    });
  const unsigned = mandate('audit', 'prove', '--config', configFile, '--from', '100', '--to', '200');
  assert.equal(unsigned.status, 0, unsigned.stderr);
  assert.deepEqual(JSON.parse(unsigned.stdout), JSON.parse(JSON.stringify(expected)));
  assert.equal(JSON.parse(unsigned.stdout).bundle, undefined);
  assert.match(unsigned.stderr, /not both signed checkpoints/);

  const signed = mandate('audit', 'prove', '--config', configFile, '--from', '120');
  assert.equal(signed.status, 0, signed.stderr);
  const answer = JSON.parse(signed.stdout);
  assert.equal(answer.treeSize1, 120);
  assert.equal(answer.treeSize2, 250);
  assert.equal(answer.bundle.kind, 'consistency');
  const file = join(dir, 'consistency.json');
  writeFileSync(file, signed.stdout);
  const verified = mandate('audit', 'verify-proof', file, '--vkey', vkey);
  assert.equal(verified.status, 0, verified.stderr);
  assert.match(verified.stdout, /^ok: checkpoint of size 250 extends checkpoint of size 120/);
  writeFileSync(file, unsigned.stdout);
  const nothing = mandate('audit', 'verify-proof', file, '--vkey', vkey);
  assert.equal(nothing.status, 1);
  assert.match(nothing.stderr, /ERR_AUDIT_VERIFY_FAILED: this proof carries no signed bundle/);
  const missing = mandate('audit', 'verify-proof', join(dir, 'nope.json'), '--vkey', vkey);
  assert.match(missing.stderr, /^mandate: ERR_FILE_UNREADABLE: cannot open .*nope\.json: no such file/);
});
