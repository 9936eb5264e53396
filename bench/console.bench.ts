// bench/console: cost of the console's read models on a full scan window (20,000 audit events;
// BENCH_QUICK=1: 5,000) in a demo broker on SQLite — the overview charts and a filtered timeline
// that matches nothing (its worst case) — against a baseline in the same run: reading the same
// entries with `audit.entries` and nothing else. Shows what the aggregation adds to the read.
//   npx tsx bench/console.bench.ts            (BENCH_QUICK=1 for a < 20 s run)
import { buildTestApp } from '../test/helpers/app.js';
import { summarize } from './lib/stats.js';

const QUICK = process.env.BENCH_QUICK === '1';
const EVENTS = QUICK ? 5_000 : 20_000;
const RUNS = QUICK ? 5 : 15;

const t = await buildTestApp();
const admin = await t.operatorToken('alice');
const outcomes = ['allow', 'allow', 'allow', 'deny', 'approval_required'];
const pending: Promise<unknown>[] = [];
for (let i = 0; i < EVENTS; i++) {
  pending.push(
    t.broker.audit.append({
      type: i % 50 === 0 ? 'approval.decided' : 'decision',
      actors: [
        { type: 'human', id: 'bob' },
        { type: 'agent', id: `agent-${i % 20}` },
      ],
      mandateId: `m-${i % 500}`,
      environment: 'production',
      data: { decisionId: `d-${i}`, approvalId: `apr-${i % 300}`, outcome: outcomes[i % outcomes.length], tool: 'helpdesk.get_customer' },
    }),
  );
  if (pending.length >= 1000) await Promise.all(pending.splice(0));
}
await Promise.all(pending);

async function time(fn: () => Promise<unknown>): Promise<number[]> {
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    await fn();
    samples.push(performance.now() - start);
  }
  return samples;
}

const baseline = await time(async () => {
  for (let at = 0; at < EVENTS; at += 1000) await t.broker.audit.entries(at, at + 1000);
});
const inject = (url: string) => async () => {
  const r = await t.app.inject({ url, headers: { authorization: `Bearer ${admin}` } });
  if (r.statusCode !== 200) throw new Error(`${url}: ${r.statusCode} ${r.body}`);
};
const overview = await time(inject('/admin/v1/console/overview?hours=24&buckets=24'));
const timeline = await time(inject('/admin/v1/console/audit?agent=nobody&limit=100'));

const fmt = (name: string, s: number[]) => {
  const x = summarize(s);
  return `${name.padEnd(36)} p50 ${x.p50.toFixed(1).padStart(8)} ms   p99 ${x.p99.toFixed(1).padStart(8)} ms   ${((EVENTS / x.p50) * 1000).toFixed(0).padStart(8)} events/s`;
};
process.stdout.write(`console read models over ${EVENTS} audit events, ${RUNS} runs each (SQLite, shared CPU)\n`);
process.stdout.write(`${fmt('baseline: audit.entries scan', baseline)}\n`);
process.stdout.write(`${fmt('GET /console/overview (24 buckets)', overview)}\n`);
process.stdout.write(`${fmt('GET /console/audit (no match)', timeline)}\n`);
const b = summarize(baseline).p50;
process.stdout.write(
  `summary: overview ${(summarize(overview).p50 / b).toFixed(2)}x and timeline ${(summarize(timeline).p50 / b).toFixed(2)}x the bare scan (p50)\n`,
);
await t.close();
