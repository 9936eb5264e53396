// `mandate report …` as an operator runs it: a report in each format from the store, an evidence
// pack written and verified offline with the pinned key, refused after one changed byte, and bad
// flags refused with one line.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AuditService } from '../../src/audit/log.js';
import { auditOrigin } from '../../src/broker.js';
import { buildConfig } from '../../src/config/load.js';
import { systemClock } from '../../src/lib/clock.js';
import { resolveSecretBox } from '../../src/secrets/index.js';
import { openStore } from '../../src/store/index.js';

const MAIN = new URL('../../src/cli/main.ts', import.meta.url).pathname;

describe('mandate report (CLI)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-report-cli-'));
  const cfg = join(dir, 'mandate.yaml');
  const run = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), MAIN, ...args], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 120_000,
      env: { ...process.env, MANDATE_URL: '' },
    });

  before(async () => {
    writeFileSync(cfg, `mode: demo\ndataDir: ${join(dir, 'data')}\nlog:\n  level: silent\n`);
    const config = buildConfig({ mode: 'demo', dataDir: join(dir, 'data'), log: { level: 'silent' } }, { env: {} });
    const store = openStore(config);
    await store.migrate();
    const audit = await AuditService.open({
      store,
      secrets: resolveSecretBox(config).box,
      clock: systemClock,
      origin: auditOrigin(config),
    });
    for (let i = 0; i < 5; i++) {
      await audit.append({ type: 'admin.agent.registered', actors: [{ type: 'operator', id: 'alice' }], data: { agentId: `a${i}` } });
    }
    await audit.close();
    await store.close();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('prints reports in every format', () => {
    const csv = run('report', 'credentials', '--config', cfg, '--format', 'csv');
    assert.equal(csv.status, 0, csv.stderr);
    assert.match(csv.stdout, /^Upstream,Transport,/);
    const html = run('report', 'controls', '--config', cfg, '--framework', 'eu-ai-act', '--format', 'html');
    assert.match(html.stdout, /<td>Art\. 12<\/td>/);
    const md = run('report', 'delegation', '--config', cfg, '--format', 'md', '--since', '7d');
    assert.match(md.stdout, /^# Delegation depth and fan-out/);
    const bad = run('report', 'inventory', '--config', cfg, '--format', 'exe');
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^mandate: ERR_CONFIG_INVALID: --format/);
    assert.match(run('report', 'inventory', '--config', cfg, '--since', 'soon').stderr, /ERR_CONFIG_INVALID: --since/);
  });

  it('writes an evidence pack that verifies offline, and not after one changed byte', () => {
    const out = join(dir, 'pack');
    const made = run('report', 'evidence', '--config', cfg, '--framework', 'nist-csf-2', '--since', '1d', '--out', out);
    assert.equal(made.status, 0, made.stderr);
    const vkey = join(dir, 'pinned.vkey');
    writeFileSync(vkey, run('audit', 'vkey', '--config', cfg).stdout);
    const ok = run('report', 'verify-evidence', out, '--vkey-file', vkey);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /^ok: 5 cited events are in the signed log/);
    const proof = join(out, 'proofs', readdirSync(join(out, 'proofs'))[0] as string);
    assert.equal(run('audit', 'verify-proof', proof, '--vkey-file', vkey).status, 0);
    const text = readFileSync(proof, 'utf8');
    writeFileSync(proof, text.replace('admin.agent.registered', 'admin.agent.registereD'));
    const bad = run('report', 'verify-evidence', out, '--vkey-file', vkey);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^mandate: ERR_AUDIT_VERIFY_FAILED: evidence pack: event \d+:/);
    assert.equal(run('report', 'verify-evidence', out).status, 1, 'no key, no verdict');
  });
});
