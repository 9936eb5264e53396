// Lines operators need from a real broker's logger (pino on a capturing destination): the start
// line, and a policy edit on disk that is refused (the last valid set stays) or applied.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { buildTestApp, type TestApp } from '../helpers/app.js';

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('operator log lines', () => {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  const dir = mkdtempSync(join(tmpdir(), 'mandate-logs-'));
  let t: TestApp;

  before(async () => {
    cpSync(new URL('../../policies/demo', import.meta.url), join(dir, 'policies'), { recursive: true });
    t = await buildTestApp({ config: { policy: { dir: join(dir, 'policies'), watch: true } }, logger: pino({ level: 'info' }, sink) });
  });
  after(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('says the broker started, with its mode, store and whether /metrics is protected', () => {
    const started = lines.find((l) => l.msg === 'broker started');
    assert.ok(started);
    assert.equal(started.mode, 'demo');
    assert.equal(started.store, 'sqlite');
    assert.equal(started.metrics, 'public');
    assert.equal(started.tracing, 'off');
  });

  it('warns when a policy edit on disk is refused, and says when a valid one is applied', async () => {
    const serving = t.broker.policies.current?.set.version;
    writeFileSync(join(dir, 'policies', '99-broken.cedar'), 'permit(principal, action, resource) when { nonsense');
    await until(() => lines.some((l) => l.msg === 'policy change on disk refused; the last valid set stays in force'));
    const refused = lines.find((l) => l.msg === 'policy change on disk refused; the last valid set stays in force');
    assert.equal(refused?.level, 40);
    assert.equal(refused?.serving, serving);
    assert.ok(Array.isArray(refused?.problems) && (refused.problems as unknown[]).length > 0);
    assert.equal(t.broker.policies.current?.set.version, serving);

    writeFileSync(join(dir, 'policies', '99-broken.cedar'), 'forbid(principal, action, resource) when { false };\n');
    await until(() => lines.some((l) => l.msg === 'policy reloaded from disk'));
    assert.notEqual(t.broker.policies.current?.set.version, serving);
  });
});

describe('admin API refusals in the log', () => {
  it('name the code, reason, route pattern and the operator refused', async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const t = await buildTestApp({ logger: pino({ level: 'info' }, sink) });
    try {
      // bob is an approver: listing principals needs principals:read.
      const bob = await t.operatorToken('bob');
      const res = await t.app.inject({ url: '/admin/v1/principals', headers: { authorization: `Bearer ${bob}` } });
      assert.equal(res.statusCode, 403);
      const line = lines.find((l) => l.msg === 'request refused' && l.status === 403);
      assert.ok(line, JSON.stringify(lines.map((l) => l.msg)));
      assert.equal(line.code, 'ERR_FORBIDDEN');
      assert.equal(line.route, '/admin/v1/principals');
      assert.match(String(line.operator), /bob$/);
      assert.equal(typeof line.reason, 'string');
      assert.ok(!JSON.stringify(lines).includes(bob), 'the operator token is not logged');
    } finally {
      await t.close();
    }
  });
});
