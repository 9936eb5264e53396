// Gateway overhead: the same tools/call workload (one fast read tool on a raw HTTP MCP server)
// sent straight to the upstream and through Mandate's /mcp (token verified, scope and Cedar
// decided, decision durably audited, forwarded, result audited), in one run, for both protocol
// revisions (2026-07-28 stateless, 2025-11-25 sessions) and both Cedar engines (`compiled`,
// `wasm`), each engine in its own broker process. Per engine and revision: closed-loop throughput,
// direct then gateway back to back; open loop at a fixed offered rate for the added latency; and
// a CPU profile of the broker under the closed loop, printed as µs per call by area. Upstream,
// broker and load generator are separate processes on the same cores. Prints numbers; fails only
// when the rig cannot run.
//
//   npx tsx bench/gateway.bench.ts [--seconds 5] [--concurrency 16] [--rate 500] [--engines compiled,wasm]
//                                  [--revisions modern,legacy] [--profile-seconds 5] [--no-profile] [--repeat 3]
//   npm run bench -- gateway --seconds 5
// BENCH_QUICK=1: --seconds 2 --repeat 1 unless given (under a minute). BENCH_DIR=/path: the disk of the broker's SQLite file.
// BENCH_WRITER_THREAD=off: the broker commits SQLite write batches on its event loop (store.sqlite.writerThread: false).
// BENCH_KEEP_PROFILES=1: keep the broker's .cpuprofile files (Chrome DevTools opens them).
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { analyse, formatBreakdown } from './lib/cpu-profile.js';
import { type Broker, directTarget, type Engine, gatewayTarget, startBroker, startUpstream, type UpstreamKind } from './lib/gateway-rig.js';
import { type RunResult, startLoadgen } from './lib/loadgen.js';
import { REVISIONS, type Revision, type Target, VERSION } from './lib/mcp-wire.js';
import { cpuOver, fsyncLatency } from './lib/procstat.js';
import { percentile } from './lib/stats.js';

const { values: opt } = parseArgs({
  options: {
    seconds: { type: 'string' },
    'open-seconds': { type: 'string' },
    'profile-seconds': { type: 'string' },
    concurrency: { type: 'string' },
    rate: { type: 'string' },
    engines: { type: 'string', default: 'compiled,wasm' },
    revisions: { type: 'string', default: REVISIONS.join(',') },
    'no-profile': { type: 'boolean', default: false },
    top: { type: 'string', default: '12' },
    repeat: { type: 'string' },
    upstreams: { type: 'string', default: 'sdk,raw' },
  },
});
const QUICK = process.env.BENCH_QUICK === '1';
const SECONDS = Number(opt.seconds ?? process.env.BENCH_SECONDS ?? (QUICK ? 2 : 5));
const OPEN_SECONDS = Number(opt['open-seconds'] ?? SECONDS);
const PROFILE_SECONDS = Number(opt['profile-seconds'] ?? Math.min(5, SECONDS));
const CONCURRENCY = Number(opt.concurrency ?? process.env.BENCH_CONCURRENCY ?? 16);
const RATE = Number(opt.rate ?? 500);
const WARM_SECONDS = Math.min(2, SECONDS);
/** Direct/gateway pairs per cell, alternating; the median stands (a busy machine makes single runs noisy). */
const REPEAT = Math.max(1, Number(opt.repeat ?? (QUICK ? 1 : 3)));
const ENGINES = (opt.engines ?? '').split(',').filter((e): e is Engine => e === 'compiled' || e === 'wasm');
const ONLY = (opt.revisions ?? '').split(',').filter((r): r is Revision => (REVISIONS as readonly string[]).includes(r));
/**
 * Upstreams, in order: the first gets every measurement (throughput, latency, profile) and stands
 * for the RESULT line; the others get the closed-loop throughput pair with the first engine only.
 * `sdk` is the official MCP SDK 2.x server (what the issue's baseline measured); `raw` is the
 * cheapest server that still speaks MCP, so its ratio shows the gateway's cost against almost nothing.
 */
const UPSTREAMS = (opt.upstreams ?? '').split(',').filter((u): u is UpstreamKind => u === 'sdk' || u === 'raw');

const out = (line: string) => process.stdout.write(`${line}\n`);
const f = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
const n0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');

interface Measured {
  readonly run: RunResult;
  /** CPU seconds per process over the run, and the machine's busy seconds. */
  readonly cpu: Record<string, number>;
  readonly machine: number;
  /** CPU seconds of the broker's event-loop thread over the run. */
  readonly brokerMain: number;
  readonly seconds: number;
}

interface Cell {
  readonly upstream: UpstreamKind;
  readonly engine: Engine;
  readonly revision: Revision;
  /** Closed loop: the pair (direct, then gateway) with the median ratio. */
  readonly direct: Measured;
  readonly gateway: Measured;
  /** Open loop: gateway minus direct latency (ms), median over the pairs. */
  addedP50: number;
  addedP99: number;
  /** Failed calls in the open loops. */
  errors: number;
}

function describe(label: string, m: Measured, calls = m.run.calls): string {
  const r = m.run;
  const ours = Object.values(m.cpu).reduce((a, b) => a + b, 0);
  const errors = r.errors > 0 ? `  ${r.errors} ERRORS (first: ${r.firstError})` : '';
  const broker = label.includes('gateway') ? `  broker ${n0(((m.cpu.broker ?? Number.NaN) * 1e6) / Math.max(1, calls))} µs CPU/call` : '';
  return (
    `${label}${n0(r.rate).padStart(7)} calls/s  p50 ${f(r.p50)} p99 ${f(r.p99)} ms${broker}  cores: ` +
    Object.entries(m.cpu)
      .map(([k, v]) => `${k} ${f(v / m.seconds)}`)
      .join(', ') +
    `, rest of machine ${f((m.machine - ours) / m.seconds)}${errors}`
  );
}

function describeOpen(label: string, r: RunResult): string {
  const errors = r.errors > 0 ? `  ${r.errors} ERRORS (first: ${r.firstError})` : '';
  return `${label}p50 ${f(r.p50)} p90 ${f(r.p90)} p99 ${f(r.p99)} max ${f(r.max)} ms (${r.calls} calls; sends late by p99 ${f(r.lagP99 ?? Number.NaN)} ms)${errors}`;
}

async function main(): Promise<void> {
  const gen = await startLoadgen();
  const cells: Cell[] = [];
  const unsupported: string[] = [];
  out(
    `gateway bench (${QUICK ? 'quick' : 'full'}): per upstream, engine and revision ${SECONDS} s closed loop at ${CONCURRENCY} in flight ` +
      `(direct, then gateway), ${OPEN_SECONDS} s open loop at ${RATE} calls/s offered (direct, then gateway)` +
      `${opt['no-profile'] ? '' : `, ${PROFILE_SECONDS} s profiled closed loop`}. Upstream (${UPSTREAMS.join(', then ')}), broker ` +
      `(one per engine) and load generator (node:http keep-alive, its own process) share this machine's cores; ` +
      `upstreams after the first: closed loop with the first engine only.`,
  );
  try {
    for (const [i, kind] of UPSTREAMS.entries()) await measure(kind, i === 0, gen, cells, unsupported);
  } finally {
    await gen.close();
  }
  summary(cells, unsupported);
}

async function measure(
  kind: UpstreamKind,
  first: boolean,
  gen: Awaited<ReturnType<typeof startLoadgen>>,
  cells: Cell[],
  unsupported: string[],
): Promise<void> {
  const upstream = await startUpstream(kind);
  try {
    out(`upstream=${kind}`);
    const direct = new Map<Revision, Target>();
    for (const revision of ONLY) direct.set(revision, await directTarget(upstream, revision));
    for (const t of direct.values()) await gen.closed(t, { seconds: WARM_SECONDS, concurrency: CONCURRENCY });
    for (const engine of first ? ENGINES : ENGINES.slice(0, 1)) {
      const broker = await startBroker(upstream.url, engine);
      try {
        let store = 'PostgreSQL store (BENCH_DATABASE_URL)';
        if (!process.env.BENCH_DATABASE_URL) {
          const disk = fsyncLatency(process.env.BENCH_DIR ?? tmpdir());
          store = `SQLite store, whose disk makes a 4 KiB write durable in p50 ${f(disk.p50)} ms, p99 ${f(disk.p99)} ms (fsync)`;
        }
        out(`engine=${engine}: ${broker.notices.join('; ') || 'no engine notice'}; ${store}`);
        const pids = { upstream: upstream.pid, broker: broker.pid, loadgen: gen.pid };
        const through = new Map<Revision, Target>();
        for (const revision of ONLY) {
          try {
            through.set(revision, await gatewayTarget(broker, revision));
          } catch (err) {
            unsupported.push(`${engine}/${VERSION[revision]}`);
            out(`  [${engine} ${VERSION[revision]}] not measured: ${(err as Error).message.slice(0, 240)}`);
          }
        }
        for (const t of through.values()) await gen.closed(t, { seconds: WARM_SECONDS, concurrency: CONCURRENCY });
        const mine: Cell[] = [];
        for (const [revision, gw] of through) {
          out(`  [${engine} ${VERSION[revision]}] closed loop, ${CONCURRENCY} in flight${REPEAT > 1 ? `, ${REPEAT} pairs` : ''}:`);
          const pairs: { direct: Measured; gateway: Measured }[] = [];
          for (let i = 0; i < REPEAT; i++) {
            const d = await cpuOver(pids, () => gen.closed(direct.get(revision) as Target, { seconds: SECONDS, concurrency: CONCURRENCY }));
            const before = await upstream.calls();
            const g = await cpuOver(pids, () => gen.closed(gw, { seconds: SECONDS, concurrency: CONCURRENCY }));
            const after = await upstream.calls();
            const pair = {
              direct: { run: d.result, cpu: d.cpu, machine: d.machine, seconds: d.seconds, brokerMain: d.brokerMain },
              gateway: { run: g.result, cpu: g.cpu, machine: g.machine, seconds: g.seconds, brokerMain: g.brokerMain },
            };
            pairs.push(pair);
            const upstreamEra = REVISIONS.filter((r) => after[r] > before[r])
              .map((r) => `${VERSION[r]} (${n0(after[r] - before[r])} calls)`)
              .join(' and ');
            out(describe('    direct  ', pair.direct));
            out(describe('    gateway ', pair.gateway));
            out(
              `    ratio ${f(g.result.rate / d.result.rate)}; the gateway forwarded to the upstream in ${upstreamEra || 'no revision'} ` +
                `over ${n0(after.connections - before.connections)} new connections`,
            );
          }
          // The pair with the median ratio stands for the cell (direct and gateway from the same moment).
          const median = [...pairs].sort((a, b) => a.gateway.run.rate / a.direct.run.rate - b.gateway.run.rate / b.direct.run.rate)[
            Math.floor((pairs.length - 1) / 2)
          ] as (typeof pairs)[number];
          if (REPEAT > 1) out(`    median pair: ratio ${f(median.gateway.run.rate / median.direct.run.rate)}`);
          mine.push({
            upstream: kind,
            engine,
            revision,
            direct: median.direct,
            gateway: median.gateway,
            addedP50: Number.NaN,
            addedP99: Number.NaN,
            errors: 0,
          });
        }
        for (const cell of first ? mine : []) {
          out(`  [${engine} ${VERSION[cell.revision]}] open loop at ${RATE} calls/s offered${REPEAT > 1 ? `, ${REPEAT} pairs` : ''}:`);
          const added50: number[] = [];
          const added99: number[] = [];
          for (let i = 0; i < REPEAT; i++) {
            const dOpen = await gen.open(direct.get(cell.revision) as Target, { seconds: OPEN_SECONDS, rate: RATE });
            const gOpen = await gen.open(through.get(cell.revision) as Target, { seconds: OPEN_SECONDS, rate: RATE });
            out(describeOpen('    direct  ', dOpen));
            out(describeOpen('    gateway ', gOpen));
            added50.push(gOpen.p50 - dOpen.p50);
            added99.push(gOpen.p99 - dOpen.p99);
            cell.errors += dOpen.errors + gOpen.errors;
            out(`    added p50 ${f(gOpen.p50 - dOpen.p50)} ms, p99 ${f(gOpen.p99 - dOpen.p99)} ms`);
          }
          cell.addedP50 = percentile(added50, 0.5);
          cell.addedP99 = percentile(added99, 0.5);
          if (REPEAT > 1) out(`    median: added p50 ${f(cell.addedP50)} ms, p99 ${f(cell.addedP99)} ms`);
          if (cell.gateway.run.rate < RATE * 1.25) {
            out(
              `    (closed-loop capacity ${n0(cell.gateway.run.rate)} calls/s is not far above the offered rate: this latency is mostly queueing)`,
            );
          }
        }
        cells.push(...mine);
        // Last for this broker: fetching source lines after the profile enables the debugger.
        if (first && !opt['no-profile']) {
          for (const [revision, gw] of through) {
            try {
              await profile(broker, engine, revision, gw, gen, pids);
            } catch (err) {
              out(`  [${engine} ${VERSION[revision]}] no profile: ${(err as Error).message}`);
              break;
            }
          }
        }
      } finally {
        await broker.close();
      }
    }
  } finally {
    await upstream.close();
  }
}

async function profile(
  broker: Broker,
  engine: Engine,
  revision: Revision,
  target: Target,
  gen: Awaited<ReturnType<typeof startLoadgen>>,
  pids: Record<string, number>,
): Promise<void> {
  const measured = await cpuOver(pids, () =>
    broker.profile(() => gen.closed(target, { seconds: PROFILE_SECONDS, concurrency: CONCURRENCY })),
  );
  const { result: run, profile: p } = measured.result;
  const b = analyse(p);
  const calls = Math.max(1, run.calls);
  const perCall = (s: number) => n0((s * 1e6) / calls);
  out(
    `  [${engine} ${VERSION[revision]}] where the broker's per-call time goes (${PROFILE_SECONDS} s closed loop, ${CONCURRENCY} in flight, ` +
      `under the V8 sampling profiler: ${n0(run.rate)} calls/s, ${run.calls} calls${run.errors > 0 ? `, ${run.errors} ERRORS` : ''}). ` +
      `CPU per call: broker process ${perCall(measured.cpu.broker ?? Number.NaN)} µs (all threads), event-loop thread ${perCall(measured.brokerMain)} µs; ` +
      `the table is the event-loop thread's sampled busy time, ${n0(b.busyUs / calls)} µs/call (idle ${f((100 * b.idleUs) / (b.busyUs + b.idleUs), 1)} %), ` +
      `which also counts time blocked in synchronous calls (the SQLite COMMIT's fsync) and time the OS ran something else:`,
  );
  out(formatBreakdown(b, calls, Number(opt.top)));
}

/** The same engine and revision against the other upstreams: ` raw_throughput_ratio=… raw_direct_calls_per_s=…`. */
function others(pick: Cell, cells: readonly Cell[]): string {
  return cells
    .filter((c) => c.upstream !== pick.upstream && c.engine === pick.engine && c.revision === pick.revision)
    .map(
      (c) =>
        ` ${c.upstream}_throughput_ratio=${f(c.gateway.run.rate / c.direct.run.rate)} ${c.upstream}_direct_calls_per_s=${f(c.direct.run.rate, 0)}`,
    )
    .join('');
}

function summary(cells: Cell[], unsupported: string[]): void {
  out(
    'summary (closed loop: calls/s and the broker CPU per call, all threads and event loop; "loop max" = 1 s / event-loop CPU per call, ' +
      'the rate one fully busy event loop would reach if it never waited; open loop: latency added over direct at the offered rate):',
  );
  out(
    `  ${'upstream'.padEnd(9)}${'engine'.padEnd(9)}${'revision'.padEnd(12)}${'direct/s'.padStart(9)}${'gateway/s'.padStart(10)}${'ratio'.padStart(7)}` +
      `${'broker µs'.padStart(11)}${'loop µs'.padStart(9)}${'loop max/s'.padStart(12)}${'+p50 ms'.padStart(9)}${'+p99 ms'.padStart(9)}`,
  );
  for (const c of cells) {
    const calls = Math.max(1, c.gateway.run.calls);
    const brokerUs = ((c.gateway.cpu.broker ?? Number.NaN) * 1e6) / calls;
    const loopUs = (c.gateway.brokerMain * 1e6) / calls;
    out(
      `  ${c.upstream.padEnd(9)}${c.engine.padEnd(9)}${VERSION[c.revision].padEnd(12)}${n0(c.direct.run.rate).padStart(9)}${n0(c.gateway.run.rate).padStart(10)}` +
        `${f(c.gateway.run.rate / c.direct.run.rate).padStart(7)}${n0(brokerUs).padStart(11)}${n0(loopUs).padStart(9)}${n0(1e6 / loopUs).padStart(12)}` +
        `${f(c.addedP50).padStart(9)}${f(c.addedP99).padStart(9)}`,
    );
  }
  const errors = cells.reduce((n, c) => n + c.direct.run.errors + c.gateway.run.errors + c.errors, 0);
  if (errors > 0) out(`  ${errors} calls failed (see above): the rates count successful calls only`);
  if (unsupported.length > 0) out(`  not measured: ${unsupported.join(', ')}`);
  // The RESULT keys come from the compiled engine on the 2026-07-28 revision; whatever stands in
  // for it (another engine or revision) is named by engine= and revision=.
  const firsts = cells.filter((c) => c.upstream === UPSTREAMS[0]);
  const pick =
    firsts.find((c) => c.engine === 'compiled' && c.revision === 'modern') ??
    firsts.find((c) => c.revision === 'modern') ??
    firsts.find((c) => c.engine === 'compiled') ??
    firsts[0];
  if (pick === undefined) {
    out(
      'RESULT gateway throughput_ratio=n/a gateway_calls_per_s=n/a direct_calls_per_s=n/a added_p50_ms_at_500=n/a added_p99_ms_at_500=n/a',
    );
    process.exitCode = 1;
    return;
  }
  const g = pick.gateway.run;
  const d = pick.direct.run;
  out(
    `RESULT gateway throughput_ratio=${f(g.rate / d.rate)} gateway_calls_per_s=${f(g.rate, 0)} direct_calls_per_s=${f(d.rate, 0)} ` +
      `added_p50_ms_at_${RATE}=${f(pick.addedP50)} added_p99_ms_at_${RATE}=${f(pick.addedP99)} ` +
      `engine=${pick.engine} revision=${VERSION[pick.revision]} upstream=${pick.upstream}${others(pick, cells)} errors=${errors}`,
  );
}

await main();
