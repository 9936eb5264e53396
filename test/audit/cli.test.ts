// `mandate audit …` end to end on a SQLite file: vkey, checkpoint, verify (ok, then tampered with
// the index named), prove + verify-proof offline, export + verify-proof, explain --json.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AuditService } from '../../src/audit/log.js';
import { systemClock } from '../../src/lib/clock.js';
import { generateMasterKeySpec, parseMasterKeys, SecretBox } from '../../src/secrets/secret-box.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { buildTestApp } from '../helpers/app.js';

const MAIN = join(import.meta.dirname, '../../src/cli/main.ts');
const dir = mkdtempSync(join(tmpdir(), 'mandate-audit-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const masterKey = generateMasterKeySpec('cli');
const configFile = join(dir, 'mandate.json');
writeFileSync(configFile, JSON.stringify({ mode: 'production', dataDir: dir, audit: { origin: 'cli.test/audit' } }));

function mandate(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    env: { ...process.env, MANDATE_MASTER_KEY: masterKey },
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('the audit CLI verifies, proves, exports and explains', { timeout: 120_000 }, async () => {
  const store = openSqliteStore({ path: join(dir, 'mandate.db') });
  await store.migrate();
  const audit = await AuditService.open({
    store,
    secrets: new SecretBox(parseMasterKeys(masterKey)),
    clock: systemClock,
    origin: 'cli.test/audit',
  });
  await audit.append({
    type: 'mandate.opened',
    actors: [{ type: 'agent', id: 'a1' }],
    mandateId: 'm1',
    data: { purpose: 'ticket T-1', onBehalfOf: 'alice' },
  });
  for (let i = 0; i < 40; i++)
    await audit.append({ type: 'tool.forwarded', actors: [{ type: 'agent', id: 'a1' }], mandateId: 'm1', data: { i } });
  await audit.checkpoint();
  const vkey = audit.vkey;
  await audit.close();
  await store.close();

  const c = ['--config', configFile];
  assert.equal(mandate('audit', 'vkey', ...c).stdout.trim(), vkey);
  const verified = mandate('audit', 'verify', ...c, '--vkey', vkey);
  assert.equal(verified.status, 0, verified.stderr);
  assert.match(verified.stdout, /^ok: 41 entries, 1 checkpoints verified/);

  const proof = mandate('audit', 'prove', ...c, '--leaf', '7');
  assert.equal(proof.status, 0, proof.stderr);
  const proofFile = join(dir, 'proof.json');
  writeFileSync(proofFile, proof.stdout);
  assert.match(mandate('audit', 'verify-proof', proofFile, '--vkey', vkey).stdout, /^ok: entry 7 is in the log of size 41/);
  writeFileSync(proofFile, proof.stdout.replace('"index": 7', '"index": 8'));
  const badProof = mandate('audit', 'verify-proof', proofFile, '--vkey', vkey);
  assert.equal(badProof.status, 1);
  assert.match(badProof.stderr, /ERR_AUDIT_VERIFY_FAILED/);

  const exportFile = join(dir, 'export.jsonl');
  assert.equal(mandate('audit', 'export', ...c, '--from', '3', '--to', '30', '--out', exportFile).status, 0);
  assert.match(mandate('audit', 'verify-proof', exportFile, '--vkey', vkey).stdout, /^ok: 27 exported entries/);

  const explained = JSON.parse(mandate('audit', 'explain', '5', ...c, '--json').stdout);
  assert.equal(explained.mandates[0].mandateId, 'm1');
  assert.equal(explained.onBehalfOf, 'alice');

  // Tamper with one stored event: verify exits 1 and names the index.
  const tamper = openSqliteStore({ path: join(dir, 'mandate.db') });
  await tamper.run(`UPDATE audit_entries SET body = replace(body, '"i":12', '"i":13') WHERE seq = 13`);
  await tamper.close();
  const failed = mandate('audit', 'verify', ...c);
  assert.equal(failed.status, 1);
  assert.match(failed.stderr, /ERR_AUDIT_VERIFY_FAILED: .*first bad index 13/);
});

/** Like `mandate` but without blocking this process (the test serves HTTP meanwhile). */
function mandateAsync(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
      env: { ...process.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

test('audit verify --url checks a live log through its tiles with only the vkey and a token', { timeout: 120_000 }, async () => {
  const t = await buildTestApp();
  try {
    for (let i = 0; i < 300; i++) await t.broker.audit.append({ type: 'risk.signal', actors: [], data: { i } });
    const address = await t.app.listen({ host: '127.0.0.1', port: 0 });
    const url = `${address}/audit/log/`;
    const vkey = t.broker.audit.vkey;
    const token = await t.operatorToken('carol', ['auditor']);
    const saved = join(dir, 'seen.checkpoint');
    const first = await mandateAsync('audit', 'verify', '--url', url, '--vkey', vkey, '--token', token, '--save', saved);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /^ok: 300 entries reproduce the signed checkpoint/);
    await t.broker.audit.append({ type: 'risk.signal', actors: [], data: { i: 300 } });
    await t.broker.audit.checkpoint();
    const second = await mandateAsync('audit', 'verify', '--url', url, '--vkey', vkey, '--token', token, '--previous', saved);
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stdout, /^ok: 301 entries/);
    const noToken = await mandateAsync('audit', 'verify', '--url', url, '--vkey', vkey);
    assert.equal(noToken.status, 1);
    assert.match(noToken.stderr, /ERR_AUDIT_VERIFY_FAILED: .*HTTP 401/);
  } finally {
    await t.close();
  }
});
