// The database goes away under load, on both stores (PostgreSQL: a throwaway cluster stopped with
// `pg_ctl -m immediate`; SQLite: the database and its WAL made immutable with `chattr +i`, which
// holds even for root). Every call during the outage fails closed with a clear code, the upstream
// receives nothing that is not audited, the broker process survives, and it recovers by itself
// when the database returns; `mandate audit verify` passes at the end.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  acknowledged,
  assertAcknowledgedAudited,
  type BrokerProcess,
  type BrokerSite,
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
import { type PgCluster, pgClusterSkip, startPgCluster } from './pg-cluster.js';

type Phase = 'before' | 'outage' | 'transition' | 'after';
interface Outcome {
  readonly kind: 'sdk' | 'raw' | 'token' | 'authzen';
  /** Phase when the request was sent. */
  readonly phase: Phase;
  /** Phase when its answer arrived. */
  readonly ended?: Phase;
  readonly ok: boolean;
  /** HTTP status and the error code the client saw (JSON-RPC code, OAuth error, registry code). */
  readonly status?: number;
  readonly code?: string;
}

/** Whether `chattr +i` works on this filesystem (ext2/3/4, xfs, btrfs; not tmpfs/overlay). */
function chattrSkip(): string | false {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-chattr-'));
  const file = join(dir, 'probe');
  try {
    execFileSync('touch', [file]);
    execFileSync('chattr', ['+i', file], { stdio: 'ignore' });
    execFileSync('chattr', ['-i', file], { stdio: 'ignore' });
    return false;
  } catch {
    return 'chattr +i is not available here (needs e2fsprogs, CAP_LINUX_IMMUTABLE and a filesystem that supports it)';
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Outage {
  readonly site: BrokerSite;
  takeAway(): void;
  giveBack(): void;
  cleanup(): Promise<void>;
}

async function sqliteOutage(): Promise<Outage> {
  const site = await brokerSite({ kind: 'sqlite' });
  const db = join(site.dataDir, 'mandate.db');
  // The folder too, so SQLite cannot replace its journal files; root ignores modes but not +i.
  const files = [db, `${db}-wal`, site.dataDir];
  return {
    site,
    takeAway: () => execFileSync('chattr', ['+i', ...files]),
    giveBack: () => execFileSync('chattr', ['-i', ...files]),
    async cleanup() {
      try {
        execFileSync('chattr', ['-i', ...files], { stdio: 'ignore' });
      } catch {}
      rmSync(site.dataDir, { recursive: true, force: true });
    },
  };
}

async function postgresOutage(): Promise<Outage> {
  const cluster: PgCluster = await startPgCluster();
  try {
    const site = await brokerSite({ kind: 'postgres', databaseUrl: cluster.url, schema: 'mandate' });
    return {
      site,
      takeAway: () => cluster.stop(),
      giveBack: () => cluster.start(),
      async cleanup() {
        cluster.destroy();
        rmSync(site.dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    cluster.destroy();
    throw err;
  }
}

/**
 * A clear refusal on /mcp: the JSON-RPC error naming the audit or store outage, or (when the store
 * fails before MCP, e.g. verifying the token) HTTP 503 with the serializer's body, which hides
 * ERR_STORE_UNAVAILABLE as server_error / ERR_INTERNAL. Never a success, a 500 or a dropped connection.
 */
function clearMcpRefusal(o: Outcome): boolean {
  const code = o.code ?? '';
  if (/ERR_(STORE|AUDIT)_UNAVAILABLE|the audit log cannot record this action/.test(code)) return true;
  return (o.status === 503 || code.startsWith('503:')) && /server_error|ERR_(STORE|AUDIT|REPLICA)_|ERR_INTERNAL/.test(code);
}

const errorCode = (e: unknown): string => {
  const err = e as { code?: unknown; data?: { code?: unknown }; message?: string };
  return `${String(err.code)}:${String(err.data?.code ?? '')}:${String(err.message ?? '').slice(0, 300)}`;
};

for (const kind of ['sqlite', 'postgres'] as const) {
  const skip = kind === 'sqlite' ? chattrSkip() : (pgClusterSkip() ?? false);
  test(`the database goes away under load: fail closed, then recover without a restart (${kind})`, {
    skip,
    timeout: 115_000,
  }, async (t) => {
    const outage = kind === 'sqlite' ? await sqliteOutage() : await postgresOutage();
    const { site } = outage;
    const upstream = await startCountingUpstream();
    let broker: BrokerProcess | undefined;
    t.after(async () => {
      await broker?.kill();
      await upstream.close();
      await outage.cleanup();
    });
    broker = await site.start();
    const base = broker.url;
    const { operatorToken } = await provision(site, broker, upstream.url);
    const first = await exchange(site, base);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    const token = first.token ?? '';
    const acked = acknowledged();
    acked.tokens.add(claimsOf(token).jti);

    let phase: Phase = 'before';
    let stop = false;
    let seq = 0;
    const outcomes: Outcome[] = [];
    const record = (o: Outcome) => outcomes.push({ ...o, ended: phase });

    const sdkLoad = async () => {
      const client = await mcpClient(base, token);
      while (!stop) {
        const at = phase;
        const n = `s${seq++}`;
        try {
          const r = await client.callTool({ name: TOOL, arguments: { n } });
          if (r.isError !== true) acked.calls.add(n);
          const code = (r._meta?.['mandate/error'] as { code?: string } | undefined)?.code;
          record({ kind: 'sdk', phase: at, ok: r.isError !== true, ...(code === undefined ? {} : { code }) });
        } catch (err) {
          record({ kind: 'sdk', phase: at, ok: false, code: errorCode(err) });
          await sleep(20);
        }
      }
      await client.close().catch(() => {});
    };
    const rawLoad = async () => {
      const sid = await rawSession(base, token);
      while (!stop) {
        const at = phase;
        const n = `r${seq++}`;
        try {
          const r = await rawCall(base, token, sid, n);
          const ok = r.status === 200 && r.result !== undefined && r.result.isError !== true;
          if (ok) acked.calls.add(n);
          record({ kind: 'raw', phase: at, ok, status: r.status, ...(r.error === undefined ? {} : { code: errorCode(r.error) }) });
        } catch (err) {
          record({ kind: 'raw', phase: at, ok: false, code: `client:${(err as Error).message}` });
        }
        if (phase !== 'before') await sleep(20);
      }
    };
    const tokenLoad = async () => {
      while (!stop) {
        const at = phase;
        try {
          const r = await exchange(site, base);
          if (r.token !== undefined) acked.tokens.add(claimsOf(r.token).jti);
          record({ kind: 'token', phase: at, ok: r.status === 200, status: r.status, code: String(r.body.error ?? '') });
        } catch (err) {
          record({ kind: 'token', phase: at, ok: false, code: `client:${(err as Error).message}` });
        }
        await sleep(20);
      }
    };
    const authzenLoad = async () => {
      while (!stop) {
        const at = phase;
        try {
          const r = await evaluate(base, operatorToken);
          const id = (r.body.context as { id?: string } | undefined)?.id;
          if (r.status === 200 && typeof id === 'string') acked.authzen.add(id);
          record({ kind: 'authzen', phase: at, ok: r.status === 200, status: r.status, code: String(r.body.code ?? r.body.error ?? '') });
        } catch (err) {
          record({ kind: 'authzen', phase: at, ok: false, code: `client:${(err as Error).message}` });
        }
        await sleep(20);
      }
    };
    const loads = [sdkLoad(), sdkLoad(), rawLoad(), rawLoad(), tokenLoad(), authzenLoad()];

    const warm = Date.now() + 30_000;
    while (upstream.received.size < 30 && Date.now() < warm) await sleep(50);
    const receivedBefore = upstream.received.size;
    assert.ok(receivedBefore > 10, `load reached the upstream before the outage (${receivedBefore})`);
    phase = 'transition';
    outage.takeAway();
    // Calls already past their durable audit when the database went may still finish; judge
    // only requests started once the outage is established.
    await sleep(500);
    phase = 'outage';
    await sleep(2000);
    // Readiness tells the load balancer, naming the store and never a path.
    const down = await fetch(`${base}/readyz`);
    const downBody = (await down.json()) as { status?: string; checks?: { store?: { ready: boolean } } };
    assert.equal(down.status, 503, JSON.stringify(downBody));
    assert.equal(downBody.checks?.store?.ready, false, JSON.stringify(downBody));
    await sleep(2000);
    phase = 'transition';
    assert.ok(broker.alive(), `the broker survived the outage\n${broker.stderr()}`);
    outage.giveBack();
    const returned = Date.now();
    // Recovery by itself: no restart, the same sessions and token.
    let recoveredMs = -1;
    while (Date.now() - returned < 30_000) {
      try {
        const sid = await rawSession(base, token);
        const r = await rawCall(base, token, sid, `probe${seq++}`);
        if (r.status === 200 && r.result?.isError !== true) {
          recoveredMs = Date.now() - returned;
          break;
        }
      } catch {}
      await sleep(200);
    }
    assert.ok(recoveredMs >= 0, `the broker recovered within 30 s of the database returning\n${broker.stderr()}`);
    phase = 'after';
    await sleep(1500);
    const up = await fetch(`${base}/readyz`);
    assert.equal(up.status, 200, await up.text());
    stop = true;
    await Promise.all(loads);
    assert.ok(broker.alive(), `the broker is still the same process\n${broker.stderr()}`);

    // Requests sent and answered while the database was away (one sent during the outage may
    // legitimately succeed once it is back: it waited, it was not answered unaudited).
    const during = outcomes.filter((o) => o.phase === 'outage' && o.ended === 'outage');
    const summary = (list: Outcome[]) => {
      const counts = new Map<string, number>();
      for (const o of list) {
        const key = `${o.kind} ${o.ok ? 'ok' : 'fail'} ${o.status ?? ''} ${(o.code ?? '').replace(/"request_id":"[^"]*"?/, '')}`;
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      return [...counts].map(([k, v]) => `${v} × ${k}`).join('\n');
    };
    t.diagnostic(`${kind}: during the outage\n${summary(during)}`);
    t.diagnostic(`${kind}: recovered ${recoveredMs} ms after the database returned`);
    for (const k of ['sdk', 'raw', 'token', 'authzen'] as const) {
      assert.ok(
        during.some((o) => o.kind === k),
        `${k} requests were made during the outage`,
      );
    }
    // Everything acknowledged (before, during, after) is audited; the upstream saw nothing unaudited.
    const { entries } = await assertAcknowledgedAudited(site, acked, upstream.received);
    // Fail closed: nothing succeeded while the database was away...
    assert.deepEqual(
      during.filter((o) => o.ok),
      [],
      'no request succeeded during the outage',
    );
    // ...and each refusal carries a clear code, not a generic internal error or a dropped connection.
    for (const o of during) {
      if (o.kind === 'token')
        assert.ok(o.status === 503 && /server_error|ERR_(STORE|AUDIT)_UNAVAILABLE/.test(o.code ?? ''), `token: ${o.status} ${o.code}`);
      if (o.kind === 'authzen')
        assert.ok(o.status === 503 && /ERR_(STORE|AUDIT)_UNAVAILABLE/.test(o.code ?? ''), `authzen: ${o.status} ${o.code}`);
      if (o.kind === 'raw' || o.kind === 'sdk') assert.ok(clearMcpRefusal(o), `${o.kind}: ${o.status} ${o.code}`);
    }
    // Recovered: every kind of request succeeds again after the database returned.
    const after = outcomes.filter((o) => o.phase === 'after');
    for (const k of ['sdk', 'raw', 'token', 'authzen'] as const) {
      assert.ok(
        after.some((o) => o.kind === k && o.ok),
        `${k} succeeds again after recovery:\n${summary(after)}`,
      );
    }
    const verify = site.verifyCli();
    assert.equal(verify.status, 0, verify.output);
    assert.equal(verify.report.ok, true, verify.output);
    assert.ok(verify.report.entries >= entries, verify.output);
  });
}
