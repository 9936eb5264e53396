// What the metrics cost one governed tools/call: the recordings the gateway makes per allowed call
// (decision counted and timed, two audit appends timed, the upstream call counted and timed, the
// HTTP response counted and timed), on the broker's Metrics (src/observability/), beside the same
// recordings through prom-client's own Counter/Histogram with label objects (what a straightforward
// instrumentation would cost). In-process, no I/O, so a busy machine moves it much less than the
// gateway bench; it prints the median of --repeat runs.
//
//   npx tsx bench/metrics.bench.ts [--calls 1000000] [--repeat 5]
//   npm run bench -- metrics
import { parseArgs } from 'node:util';
import { Counter, Histogram, Registry } from 'prom-client';
import { Metrics } from '../src/observability/metrics.js';

const { values: opt } = parseArgs({ options: { calls: { type: 'string' }, repeat: { type: 'string' } } });
const QUICK = process.env.BENCH_QUICK === '1';
const CALLS = Number(opt.calls ?? (QUICK ? 200_000 : 1_000_000));
const REPEAT = Number(opt.repeat ?? (QUICK ? 3 : 5));

const m = new Metrics();
const lean = () => {
  m.decided('allow', 'policy');
  m.decisionTimed(0.00031);
  m.auditAppended(0.00042);
  m.auditAppended(0.00038);
  m.upstreamCalled('helpdesk', 'ok', 0.0021);
  m.httpResponded('POST', '/mcp', 200, 0.0031);
};

const r = new Registry();
const decisions = new Counter({ name: 'd', help: 'd', labelNames: ['outcome', 'reason'], registers: [r] });
const decide = new Histogram({ name: 'ds', help: 'ds', buckets: [0.0001, 0.001, 0.01, 0.1, 1], registers: [r] });
const audit = new Histogram({ name: 'a', help: 'a', buckets: [0.0001, 0.001, 0.01, 0.1, 1], registers: [r] });
const upCalls = new Counter({ name: 'u', help: 'u', labelNames: ['upstream', 'outcome'], registers: [r] });
const upSeconds = new Histogram({ name: 'us', help: 'us', labelNames: ['upstream'], buckets: [0.001, 0.01, 0.1, 1], registers: [r] });
const http = new Counter({ name: 'h', help: 'h', labelNames: ['method', 'route', 'status'], registers: [r] });
const httpSeconds = new Histogram({
  name: 'hs',
  help: 'hs',
  labelNames: ['method', 'route'],
  buckets: [0.001, 0.01, 0.1, 1],
  registers: [r],
});
const plain = () => {
  decisions.inc({ outcome: 'allow', reason: 'policy' });
  decide.observe(0.00031);
  audit.observe(0.00042);
  audit.observe(0.00038);
  upCalls.inc({ upstream: 'helpdesk', outcome: 'ok' });
  upSeconds.observe({ upstream: 'helpdesk' }, 0.0021);
  http.inc({ method: 'POST', route: '/mcp', status: '200' });
  httpSeconds.observe({ method: 'POST', route: '/mcp' }, 0.0031);
};

function nsPerCall(fn: () => void): number {
  for (let i = 0; i < Math.min(CALLS, 100_000); i++) fn();
  const runs: number[] = [];
  for (let k = 0; k < REPEAT; k++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < CALLS; i++) fn();
    runs.push(Number(process.hrtime.bigint() - t) / CALLS);
  }
  runs.sort((a, b) => a - b);
  return runs[Math.floor(runs.length / 2)] as number;
}

const leanNs = nsPerCall(lean);
const plainNs = nsPerCall(plain);
process.stdout.write(`metrics recorded per governed call (${CALLS.toLocaleString('en-US')} calls, median of ${REPEAT}):\n`);
process.stdout.write(`  broker Metrics (bound children):      ${leanNs.toFixed(0)} ns\n`);
process.stdout.write(`  prom-client with label objects:        ${plainNs.toFixed(0)} ns\n`);
process.stdout.write(`RESULT metrics ns_per_call=${leanNs.toFixed(0)} prom_client_ns_per_call=${plainNs.toFixed(0)} calls=${CALLS}\n`);
