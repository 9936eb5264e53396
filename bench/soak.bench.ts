// Soak: tools/call through Mandate's /mcp gateway for SOAK_SECONDS (default 600) at half the
// capacity measured at the start (open loop, fixed rate), on the rig of bench/gateway.bench.ts.
// Prints, per interval (SOAK_INTERVAL_S, default 60): calls, errors, p50/p99, the broker's RSS;
// then `RESULT soak rss_growth_pct=… p99_first_ms=… p99_last_ms=… calls=… errors=…`. RSS growth is
// measured from the end of warm-up to the end. Opt-in: `npm run bench -- soak` (not in `npm run bench`).
//
//   SOAK_SECONDS=120 npx tsx bench/soak.bench.ts
import { readFileSync } from 'node:fs';
import { session, startRig, TOOL } from './lib/gateway-rig.js';
import { saturate } from './lib/load.js';
import { summarize } from './lib/stats.js';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 600);
const INTERVAL_S = Number(process.env.SOAK_INTERVAL_S ?? 60);
const FRACTION = Number(process.env.SOAK_FRACTION ?? 0.5);

/** Resident set size of a process in MB (Linux /proc). */
function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? Number.NaN : Number(m[1]) / 1024;
}

/** The broker's V8 heap in use (MB), from its Prometheus metrics: tells a leak from heap sizing. */
async function heapMb(gateway: URL): Promise<number> {
  const text = await (await fetch(new URL('/metrics', gateway))).text();
  const m = /^mandate_nodejs_heap_size_used_bytes (\S+)$/m.exec(text);
  return m === null ? Number.NaN : Number(m[1]) / 1024 / 1024;
}

interface Interval {
  calls: number;
  errors: number;
  lat: number[];
}

const f = (n: number, d = 1) => n.toFixed(d);

async function main(): Promise<void> {
  const rig = await startRig();
  try {
    const call = await session(rig.gatewayUrl, { authorization: `Bearer ${rig.token}` }, TOOL.gateway);
    // Warm-up, then capacity: a closed loop long enough to be past JIT and pool start-up.
    await saturate(call, 500, 8);
    const capacity = await saturate(call, 3000, 16);
    const rate = Math.max(1, capacity.rate * FRACTION);
    process.stdout.write(
      `soak: capacity ${f(capacity.rate, 0)} calls/s (closed loop, 16 in flight); ${SECONDS} s at ${f(rate, 0)} calls/s, report every ${INTERVAL_S} s\n`,
    );
    const rssStart = rssMb(rig.gatewayPid);
    const heapStart = await heapMb(rig.gatewayUrl);
    const intervals: Interval[] = [];
    const rss: number[] = [];
    const t0 = performance.now();
    const total = Math.round(rate * SECONDS);
    const pending = new Set<Promise<void>>();
    let report = t0 + INTERVAL_S * 1000;
    // RSS is sampled live at each interval's end; latencies are printed once every call has settled.
    const heap: number[] = [];
    const sample = async (until: number) => {
      while (report <= until) {
        report += INTERVAL_S * 1000;
        rss.push(rssMb(rig.gatewayPid));
        heap.push(await heapMb(rig.gatewayUrl));
        process.stdout.write(
          `  ${String(rss.length * INTERVAL_S).padStart(4)} s: rss ${f(rss[rss.length - 1] as number)} MB, heap used ${f(heap[heap.length - 1] as number)} MB\n`,
        );
      }
    };
    for (let i = 0; i < total; i++) {
      const due = t0 + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      await sample(performance.now());
      const index = Math.floor((performance.now() - t0) / (INTERVAL_S * 1000));
      const bucket = intervals[index] ?? { calls: 0, errors: 0, lat: [] };
      intervals[index] = bucket;
      const s = performance.now();
      const p: Promise<void> = call(i).then(
        () => {
          bucket.calls++;
          bucket.lat.push(performance.now() - s);
        },
        () => {
          bucket.calls++;
          bucket.errors++;
        },
      );
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
    await Promise.all(pending);
    await sample(t0 + SECONDS * 1000);
    intervals.forEach((cur, index) => {
      const st = summarize(cur.lat);
      process.stdout.write(
        `  interval ${index + 1}: ${cur.calls} calls, ${cur.errors} errors, p50 ${f(st.p50, 2)} ms, p99 ${f(st.p99, 2)} ms, rss at end ${f(rss[index] ?? Number.NaN)} MB, heap used ${f(heap[index] ?? Number.NaN)} MB\n`,
      );
    });
    const full = intervals.filter((x) => x.calls > 0);
    const first = summarize(full[0]?.lat ?? []);
    const last = summarize(full[full.length - 1]?.lat ?? []);
    const rssEnd = rss[rss.length - 1] ?? rssMb(rig.gatewayPid);
    const calls = intervals.reduce((n, x) => n + x.calls, 0);
    const errors = intervals.reduce((n, x) => n + x.errors, 0);
    process.stdout.write(`  rss ${f(rssStart)} MB after warm-up → ${f(rssEnd)} MB at the end (max ${f(Math.max(...rss))} MB)\n`);
    process.stdout.write(`  heap used ${f(heapStart)} MB after warm-up → ${f(heap[heap.length - 1] ?? Number.NaN)} MB at the end\n`);
    process.stdout.write(
      `RESULT soak rss_growth_pct=${f(((rssEnd - rssStart) / rssStart) * 100)} p99_first_ms=${f(first.p99, 2)} p99_last_ms=${f(last.p99, 2)} calls=${calls} errors=${errors}\n`,
    );
  } finally {
    await rig.close();
  }
}

await main();
