// Gateway overhead: the same tools/call workload (a fast read tool on a stateful streamable HTTP
// MCP server) sent directly to the upstream and through Mandate's /mcp gateway (token verified,
// decided by Cedar, decision and result durably audited, forwarded over a pooled SDK session),
// in one run, side by side. Upstream, gateway and load generator are separate processes sharing
// the machine's cores. BENCH_QUICK=1 finishes in under 20 s.
//
//   npx tsx bench/gateway.bench.ts

import { session, startRig, TOOL } from './lib/gateway-rig.js';
import { saturate } from './lib/load.js';
import { summarize } from './lib/stats.js';

const QUICK = process.env.BENCH_QUICK === '1';

/** Open loop at a fixed rate: latency without queueing in the load generator. */
async function paced(call: (id: number) => Promise<void>, rate: number, seconds: number) {
  const lat: number[] = [];
  const total = Math.round(rate * seconds);
  const t0 = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const s = performance.now();
    pending.push(call(i).then(() => void lat.push(performance.now() - s)));
  }
  await Promise.all(pending);
  return summarize(lat);
}

const f = (n: number, d = 2) => n.toFixed(d);

async function main(): Promise<void> {
  const rig = await startRig();
  try {
    const direct = await session(rig.upstreamUrl, {}, TOOL.direct);
    const through = await session(rig.gatewayUrl, { authorization: `Bearer ${rig.token}` }, TOOL.gateway);
    const total = QUICK ? 1500 : 20_000;
    const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 16);
    // Warm up both paths (JIT, pooled sessions, cached token verification).
    await saturate(direct, 300, 8);
    await saturate(through, 300, 8);
    const d = await saturate(direct, total, concurrency);
    const g = await saturate(through, total, concurrency);
    process.stdout.write(
      `gateway bench (${QUICK ? 'quick' : 'full'}; ${total} calls, ${concurrency} in flight; shared CPU: upstream, gateway and load generator on the same cores)\n`,
    );
    process.stdout.write(`  direct  : ${f(d.rate, 0)} calls/s  p50 ${f(d.p50)} ms  p99 ${f(d.p99)} ms\n`);
    process.stdout.write(
      `  gateway : ${f(g.rate, 0)} calls/s  p50 ${f(g.p50)} ms  p99 ${f(g.p99)} ms  (verified, decided, 2 audit appends, forwarded)\n`,
    );
    const seconds = QUICK ? 3 : 10;
    const dp = await paced(direct, 500, seconds);
    const gp = await paced(through, 500, seconds);
    process.stdout.write(
      `  at 500 calls/s for ${seconds} s: direct p50 ${f(dp.p50)} ms p99 ${f(dp.p99)} ms; gateway p50 ${f(gp.p50)} ms p99 ${f(gp.p99)} ms\n`,
    );
    process.stdout.write(
      `RESULT gateway throughput_ratio=${f(g.rate / d.rate)} gateway_calls_per_s=${f(g.rate, 0)} direct_calls_per_s=${f(d.rate, 0)} added_p50_ms_at_500=${f(gp.p50 - dp.p50)}\n`,
    );
  } finally {
    await rig.close();
  }
}

await main();
