// kill -9 of a real broker under load through the real gateway, token endpoint and AuthZEN, on both
// stores: after a restart, every decision a client saw acknowledged is in the audit log, the
// upstream received nothing without an audited allow, and `mandate audit verify` (CLI) passes.
// (test/audit/crash.test.ts covers the log alone; this covers the broker's acknowledgement paths.)
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { test } from 'node:test';
import { dropSchema, freshSchema, POSTGRES_URL, postgresFactory } from '../helpers/stores.js';
import {
  acknowledged,
  assertAcknowledgedAudited,
  type BrokerProcess,
  brokerSite,
  claimsOf,
  evaluate,
  exchange,
  mcpClient,
  provision,
  rawCall,
  rawSession,
  sleep,
  startCountingUpstream,
  TOOL,
} from './harness.js';

const pgSkip = (await postgresFactory()).skip;

for (const kind of ['sqlite', 'postgres'] as const) {
  test(`kill -9 under load: every acknowledged decision survives (${kind})`, {
    skip: kind === 'postgres' && pgSkip,
    timeout: 110_000,
  }, async (t) => {
    const schema = freshSchema();
    const site = await brokerSite(kind === 'sqlite' ? { kind } : { kind, databaseUrl: POSTGRES_URL, schema });
    const upstream = await startCountingUpstream();
    let broker: BrokerProcess | undefined;
    t.after(async () => {
      await broker?.kill();
      await upstream.close();
      rmSync(site.dataDir, { recursive: true, force: true });
      if (kind === 'postgres') await dropSchema(schema).catch(() => {});
    });
    broker = await site.start();
    const { operatorToken } = await provision(site, broker, upstream.url);
    const first = await exchange(site, broker.url);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const token = first.token ?? '';
    const acked = acknowledged();
    acked.tokens.add(claimsOf(token).jti);

    let stop = false;
    let seq = 0;
    let failedAfterKill = 0;
    const base = broker.url;
    // The SDK client path (sessions) and the raw HTTP path, both counting only answered successes.
    const sdkLoad = async () => {
      const client = await mcpClient(base, token);
      while (!stop) {
        const n = `s${seq++}`;
        try {
          const r = await client.callTool({ name: TOOL, arguments: { n } });
          if (r.isError !== true) acked.calls.add(n);
        } catch {
          failedAfterKill++;
        }
      }
      await client.close().catch(() => {});
    };
    const rawLoad = async () => {
      const sid = await rawSession(base, token);
      while (!stop) {
        const n = `r${seq++}`;
        try {
          const r = await rawCall(base, token, sid, n);
          if (r.status === 200 && r.result !== undefined && r.result.isError !== true) acked.calls.add(n);
        } catch {
          failedAfterKill++;
        }
      }
    };
    const tokenLoad = async () => {
      while (!stop) {
        try {
          const r = await exchange(site, base);
          if (r.token !== undefined) acked.tokens.add(claimsOf(r.token).jti);
        } catch {
          failedAfterKill++;
        }
      }
    };
    const authzenLoad = async () => {
      while (!stop) {
        try {
          const r = await evaluate(base, operatorToken);
          const id = (r.body.context as { id?: string } | undefined)?.id;
          if (r.status === 200 && typeof id === 'string') acked.authzen.add(id);
        } catch {
          failedAfterKill++;
        }
      }
    };
    const loads = [sdkLoad(), sdkLoad(), sdkLoad(), rawLoad(), rawLoad(), rawLoad(), tokenLoad(), authzenLoad(), authzenLoad()];
    // Kill once the load is well under way, in the middle of group commits.
    const deadline = Date.now() + 30_000;
    while (acked.calls.size < 300 && Date.now() < deadline) await sleep(50);
    await broker.kill();
    await sleep(300);
    stop = true;
    await Promise.all(loads);
    assert.ok(
      [...acked.calls].some((n) => n.startsWith('r')),
      'raw HTTP calls were answered too',
    );
    assert.ok(acked.calls.size >= 300, `load reached ${acked.calls.size} calls before the kill`);
    assert.ok(acked.tokens.size >= 2 && acked.authzen.size >= 2, `tokens ${acked.tokens.size}, authzen ${acked.authzen.size}`);
    assert.ok(failedAfterKill > 0, 'requests in flight at the kill failed (the kill happened under load)');

    // Restart on the same store: the log is complete and verifies, and the broker serves again.
    broker = await site.start();
    const { entries } = await assertAcknowledgedAudited(site, acked, upstream.received);
    const verify = site.verifyCli();
    assert.equal(verify.status, 0, verify.output);
    assert.equal(verify.report.ok, true, verify.output);
    assert.ok(verify.report.entries >= entries, verify.output);
    const again = await rawCall(broker.url, token, await rawSession(broker.url, token), 'after-restart');
    assert.equal(again.status, 200);
    assert.notEqual(again.result?.isError, true, JSON.stringify(again));
    assert.ok(upstream.received.has('after-restart'));
    t.diagnostic(
      `${kind}: acknowledged ${acked.calls.size} calls, ${acked.tokens.size} tokens, ${acked.authzen.size} AuthZEN decisions; log ${entries} entries`,
    );
  });
}
