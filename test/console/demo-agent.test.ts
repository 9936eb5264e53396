// The demo agent (`npm run demo:agent`) as a separate process against a listening demo broker:
// when the finance approver denies the refund, the agent stops waiting, still shows delegation
// and the out-of-scope deny, completes, and exits 2 (the refund did not run).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { buildTestApp, type TestApp } from '../helpers/app.js';
import { ROOT } from '../helpers/console-build.js';
import { freePort } from '../identity/helpers.js';

describe('demo agent', () => {
  let t: TestApp;
  let base: string;
  before(async () => {
    const port = await freePort();
    t = await buildTestApp({ config: { server: { port } } });
    await t.app.listen({ host: '127.0.0.1', port });
    base = `http://127.0.0.1:${port}`;
  });
  after(() => t.close());

  test('a denied approval ends the wait; the run still delegates, is denied out of scope, and completes', async () => {
    const proc = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/demo/agent.ts',
        '--url',
        base,
        '--data-dir',
        t.dataDir,
        '--poll-seconds',
        '1',
        '--approval-timeout-seconds',
        '120',
      ],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    proc.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    proc.stderr.on('data', (b: Buffer) => {
      out += b.toString();
    });
    const exited = new Promise<number | null>((resolve) => proc.on('exit', resolve));
    const deadline = Date.now() + 120_000;
    let approvalId: string | undefined;
    while (approvalId === undefined) {
      approvalId = /waiting for approval (apr_[A-Za-z0-9-]+)/.exec(out)?.[1];
      if (proc.exitCode !== null || Date.now() > deadline) assert.fail(`no approval was requested:\n${out}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const carol = await t.operatorToken('carol');
    const res = await fetch(`${base}/admin/v1/approvals/${approvalId}/deny`, {
      method: 'POST',
      headers: { authorization: `Bearer ${carol}`, 'content-type': 'application/json' },
      body: JSON.stringify({ note: 'not a duplicate' }),
    });
    assert.equal(res.status, 200);
    assert.equal(await exited, 2, out);
    assert.match(out, /not approved/);
    assert.match(out, /denied \(RPC_CALL_DENIED\)/);
    const mandateId = /mandate (mnd_[A-Za-z0-9_-]+): "Resolve ticket/.exec(out)?.[1] ?? '';
    assert.equal((await t.broker.mandates.get(mandateId))?.status, 'completed');
    assert.equal((await t.broker.approvals.require(approvalId)).status, 'denied');
  });
});
