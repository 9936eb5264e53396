// bench/replicas: (1) how fast a revocation on one replica reaches another (revoke answered on A →
// the token is refused on B), over many revocations, printed next to the 5-minute token lifetime
// it replaces as the exposure window; (2) aggregate gateway throughput (authorized, audited
// tools/call) with 1 and with 2 replicas in the same run. Real broker processes, one PostgreSQL.
// The load generator speaks raw JSON-RPC over keep-alive HTTP so its own cost stays small.
// BENCH_QUICK=1 runs 100 revocations instead of 1,000 and shorter load phases.
import { openDemoMandate, startCluster } from '../test/helpers/replicas.js';
import { summarize } from './lib/stats.js';

const QUICK = process.env.BENCH_QUICK === '1';
const REVOCATIONS = QUICK ? 100 : 1000;
const LOAD_MS = QUICK ? 2000 : 8000;
const CONCURRENCY = 16;
const TOOLS = [{ tool: 'helpdesk.search_tickets' }];
const TOKEN_LIFETIME_MS = 5 * 60 * 1000;

const cluster = await startCluster({ replicas: 2, config: { mode: 'demo', changes: { pollIntervalMs: 1000, maxStalenessMs: 5000 } } });
try {
  const [a, b] = cluster.replicas;
  if (a === undefined || b === undefined) throw new Error('two replicas expected');
  const admin = { authorization: `Bearer ${cluster.bootstrapToken}` };
  const form = (body: Record<string, string>) => ({
    method: 'POST',
    headers: { ...admin, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(body),
  });
  const active = async (base: string, token: string) =>
    ((await (await fetch(`${base}/oauth/introspect`, form({ token }))).json()) as { active: boolean }).active;

  const samples: number[] = [];
  for (let i = 0; i < REVOCATIONS; i++) {
    const { token, mandateId } = await openDemoMandate(cluster, { tools: TOOLS });
    if (!(await active(b.url, token))) throw new Error('B must accept the token before the revocation');
    const revoked = await fetch(`${a.url}/admin/v1/mandates/${mandateId}/revoke`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: '{}',
    });
    if (revoked.status !== 200) throw new Error(`revoke failed: ${revoked.status}`);
    const t0 = performance.now();
    while (await active(b.url, token)) {
      if (performance.now() - t0 > 10_000) throw new Error('revocation never reached B');
    }
    samples.push(performance.now() - t0);
  }
  // ── aggregate gateway throughput: the same workload against A only, then spread over A and B ──
  const { token } = await openDemoMandate(cluster, { tools: TOOLS });
  const mcpHeaders = (sid?: string) => ({
    authorization: `Bearer ${token}`,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2025-06-18',
    ...(sid === undefined ? {} : { 'mcp-session-id': sid }),
  });
  const openSession = async (base: string) => {
    const init = await fetch(`${base}/mcp`, {
      method: 'POST',
      headers: mcpHeaders(),
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } },
      }),
    });
    const sid = init.headers.get('mcp-session-id') ?? undefined;
    await init.text();
    await (
      await fetch(`${base}/mcp`, {
        method: 'POST',
        headers: mcpHeaders(sid),
        body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
      })
    ).text();
    return sid;
  };
  const callBody = (id: number) =>
    JSON.stringify({
      jsonrpc: '2.0',
      id,
      method: 'tools/call',
      params: { name: 'helpdesk.search_tickets', arguments: { query: 'refund' } },
    });
  const sessions = { [a.url]: await openSession(a.url), [b.url]: await openSession(b.url) };
  // Warm each replica's upstream session (a stdio upstream starts on first use).
  for (const base of [a.url, b.url])
    await (await fetch(`${base}/mcp`, { method: 'POST', headers: mcpHeaders(sessions[base]), body: callBody(1) })).text();

  async function phase(targets: string[]): Promise<{ perSec: number; p50: number; p99: number; errors: number }> {
    const latencies: number[] = [];
    let errors = 0;
    const end = performance.now() + LOAD_MS;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, w) => {
        const base = targets[w % targets.length] as string;
        let id = w * 1_000_000;
        while (performance.now() < end) {
          const t0 = performance.now();
          const res = await fetch(`${base}/mcp`, { method: 'POST', headers: mcpHeaders(sessions[base]), body: callBody(++id) });
          const body = (await res.json()) as { result?: { isError?: boolean } };
          if (res.status !== 200 || body.result === undefined || body.result.isError === true) errors++;
          else latencies.push(performance.now() - t0);
        }
      }),
    );
    const s = summarize(latencies);
    return { perSec: latencies.length / (LOAD_MS / 1000), p50: s.p50, p99: s.p99, errors };
  }
  const one = await phase([a.url]);
  const two = await phase([a.url, b.url]);
  for (const [label, r] of [
    ['1 replica', one],
    ['2 replicas', two],
  ] as const) {
    process.stdout.write(
      `gateway tools/call, ${label.padEnd(10)} ${r.perSec.toFixed(0).padStart(6)} calls/s   p50 ${r.p50.toFixed(2)} ms   p99 ${r.p99.toFixed(2)} ms   errors ${r.errors}\n`,
    );
  }

  const s = summarize(samples);
  process.stdout.write(
    `revocation propagation A→B over ${s.n} revocations: p50 ${s.p50.toFixed(2)} ms   p99 ${s.p99.toFixed(2)} ms   max ${s.max.toFixed(2)} ms\n`,
  );
  process.stdout.write(`token lifetime it replaces as exposure window: ${TOKEN_LIFETIME_MS} ms\n`);
  process.stdout.write(
    `RESULT replicas revocations=${s.n} propagation_p50_ms=${s.p50.toFixed(2)} propagation_p99_ms=${s.p99.toFixed(2)} ` +
      `token_lifetime_over_p99=${(TOKEN_LIFETIME_MS / s.p99).toFixed(0)}x goal_p99_le_100ms=${s.p99 <= 100 ? 'met' : 'missed'} ` +
      `gateway_1_replica_per_s=${one.perSec.toFixed(0)} gateway_2_replicas_per_s=${two.perSec.toFixed(0)} ratio_2_over_1=${(two.perSec / one.perSec).toFixed(2)}x\n`,
  );
} finally {
  await cluster.close();
}
