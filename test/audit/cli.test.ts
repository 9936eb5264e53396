// `mandate audit …` end to end on a SQLite file: vkey, checkpoint, verify (ok, then tampered with
// the index named), prove + verify-proof offline, export + verify-proof, explain --json.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AuditService } from '../../src/audit/log.js';
import { systemClock } from '../../src/lib/clock.js';
import { generateMasterKeySpec, parseMasterKeys, SecretBox } from '../../src/secrets/secret-box.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';

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
