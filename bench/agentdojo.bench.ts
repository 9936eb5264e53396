// AgentDojo replay (../shared/benchmarks/agentdojo): does a mandate opened from the user's prompt
// alone contain the attacker? Every suite's traces go through Mandate's real gateway
// (bench/lib/agentdojo-replay.ts): per user task the legitimate calls alone, then per case with
// concrete attacker calls the legitimate calls followed by the attacker's, in one mandate; the
// same for a tool-name-only baseline in the same run. Prints per-suite tables; the last line is
// the RESULT line. Method and numbers: docs/injection.md.
//
//   npm run bench -- agentdojo [--data ../shared/benchmarks/agentdojo] [--suites banking,slack] [--engine compiled|wasm] [--verbose]
// BENCH_DIR=/path: where the brokers keep their SQLite files (default /dev/shm when it exists).
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { phases, replay, type SuiteResult } from './lib/agentdojo-replay.js';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    data: { type: 'string' },
    suites: { type: 'string' },
    engine: { type: 'string', default: 'compiled' },
    verbose: { type: 'boolean', default: false },
  },
});
// Relative to where it runs: `npm run bench` runs in the repository's root.
const DEFAULT_DATA = '../shared/benchmarks/agentdojo';
const dataDir = resolve(opt.data ?? positionals[0] ?? DEFAULT_DATA);
// The brokers' SQLite files: BENCH_DIR, else memory-backed /dev/shm where there is one. Latency is
// not what this benchmark measures, and a slow disk's fsyncs would only stretch the run.
const dataHome = process.env.BENCH_DIR ?? (existsSync('/dev/shm') ? '/dev/shm' : undefined);
if (dataHome !== undefined) process.env.TMPDIR = dataHome;
const out = (line: string) => process.stdout.write(`${line}\n`);
const pct = (a: number, b: number) => (b === 0 ? 0 : (100 * a) / b);
const p1 = (a: number, b: number) => pct(a, b).toFixed(1);

function sum(rs: SuiteResult[], report: { suites: Map<string, unknown> }): SuiteResult {
  const t = (k: 'attackChanging' | 'attackAll' | 'legitAll' | 'legitChanging') => ({
    allow: rs.reduce((n, r) => n + r[k].allow, 0),
    approval: rs.reduce((n, r) => n + r[k].approval, 0),
    deny: rs.reduce((n, r) => n + r[k].deny, 0),
  });
  const n = (
    k:
      | 'attackPairs'
      | 'attackPairsAllowed'
      | 'attackBudgetDenied'
      | 'attackPairsBudgetOnly'
      | 'tasks'
      | 'tasksIntact'
      | 'legitUnderAttackDenied',
  ) => rs.reduce((a, r) => a + r[k], 0);
  return {
    attackChanging: t('attackChanging'),
    attackAll: t('attackAll'),
    legitAll: t('legitAll'),
    legitChanging: t('legitChanging'),
    attackPairs: n('attackPairs'),
    attackPairsAllowed: n('attackPairsAllowed'),
    attackBudgetDenied: n('attackBudgetDenied'),
    attackPairsBudgetOnly: n('attackPairsBudgetOnly'),
    budgetOnly: rs.flatMap((r, i) => r.budgetOnly.map((x) => `${[...report.suites.keys()][i]} ${x}`)),
    tasks: n('tasks'),
    tasksIntact: n('tasksIntact'),
    legitUnderAttackDenied: n('legitUnderAttackDenied'),
    // Task ids repeat across suites: keyed by suite position too.
    chosen: new Map(rs.flatMap((r, i) => [...r.chosen].map(([k, v]) => [`${i}/${k}`, v] as const))),
    legitOutcomes: new Map(),
    attackOutcomes: new Map(),
    leaks: rs.flatMap((r) => r.leaks),
    refusals: rs.flatMap((r) => r.refusals),
    approvals: rs.flatMap((r) => r.approvals),
    approvalRules: rs.reduce((acc, r) => {
      for (const [k, v] of r.approvalRules) acc.set(k, (acc.get(k) ?? 0) + v);
      return acc;
    }, new Map<string, number>()),
  };
}

function row(label: string, r: SuiteResult): string {
  const lc = r.legitChanging;
  const lcTotal = lc.allow + lc.approval + lc.deny;
  return (
    `${label.padEnd(20)} ${`${r.attackPairsAllowed}/${r.attackPairs}`.padStart(8)} ` +
    `${`${r.attackChanging.allow}/${r.attackChanging.approval}/${r.attackChanging.deny}`.padStart(12)} ` +
    `${`${r.legitAll.allow}/${r.legitAll.approval}/${r.legitAll.deny}`.padStart(12)} ` +
    `${`${r.tasksIntact}/${r.tasks} (${p1(r.tasksIntact, r.tasks)} %)`.padStart(16)} ` +
    `${`${lc.approval}/${lcTotal} (${p1(lc.approval, lcTotal)} %)`.padStart(16)}`
  );
}

async function main(): Promise<void> {
  out(`agentdojo replay: data ${dataDir}, policy engine ${opt.engine}`);
  const report = await replay({
    dataDir,
    ...(opt.suites === undefined ? {} : { suites: opt.suites.split(',') }),
    engine: opt.engine === 'wasm' ? 'wasm' : 'compiled',
    log: out,
  });
  out('');
  out(
    `${'suite / config'.padEnd(20)} ${'pairs≥1'.padStart(8)} ${'atk W a/ap/d'.padStart(12)} ${'legit a/ap/d'.padStart(12)} ${'tasks intact'.padStart(16)} ${'legit W→appr.'.padStart(16)}`,
  );
  const all = { mandate: [] as SuiteResult[], baseline: [] as SuiteResult[] };
  for (const [name, r] of report.suites) {
    out(row(`${name} mandate`, r.mandate));
    out(row(`${name} baseline`, r.baseline));
    all.mandate.push(r.mandate);
    all.baseline.push(r.baseline);
  }
  const m = sum(all.mandate, report);
  const b = sum(all.baseline, report);
  out(row('ALL mandate', m));
  out(row('ALL baseline', b));
  out(
    '  pairs≥1: cases where at least one state-changing attacker call was allowed without approval; atk W: state-changing attacker calls ' +
      'allowed/to approval/denied; legit: legitimate calls (task alone) allowed/to approval/denied; legit W→appr.: state-changing legitimate calls sent to approval.',
  );
  out(
    `  all attacker calls (incl. reads): mandate ${m.attackAll.allow}/${m.attackAll.approval}/${m.attackAll.deny}, baseline ${b.attackAll.allow}/${b.attackAll.approval}/${b.attackAll.deny}; ` +
      `legitimate calls denied while an injection was present: mandate ${m.legitUnderAttackDenied}, baseline ${b.legitUnderAttackDenied}`,
  );
  out(
    `  state-changing attacker calls denied because the legitimate calls before them spent the task's budget: ${m.attackBudgetDenied}, ` +
      `in ${m.attackPairsBudgetOnly} pairs contained by nothing else (had the attacker acted first there, its call would have run and the legitimate one been refused)` +
      (m.budgetOnly.length > 0 ? `:\n    ${m.budgetOnly.join('\n    ')}` : ''),
  );
  const counts = new Map<string, number>();
  for (const cats of m.chosen.values()) {
    const key = cats.length === 0 ? '(read-only)' : cats.join('+');
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  out(
    `  templates chosen from the prompt (${m.chosen.size} tasks; per-task entries: 0, the classifier alone chooses): ` +
      [...counts.entries()]
        .sort((x, y) => y[1] - x[1])
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
  );
  if (m.leaks.length > 0)
    out(
      `  allowed attacker calls (first ${Math.min(10, m.leaks.length)}):\n    ${m.leaks.slice(0, opt.verbose ? 200 : 10).join('\n    ')}`,
    );
  if (m.refusals.length > 0)
    out(
      `  legitimate calls denied (first ${Math.min(opt.verbose ? 200 : 10, m.refusals.length)}):\n    ${m.refusals.slice(0, opt.verbose ? 200 : 10).join('\n    ')}`,
    );
  out(
    `  legitimate state-changing calls sent to approval, by the rules that did: ${[...m.approvalRules.entries()]
      .sort((x, y) => y[1] - x[1])
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  if (opt.verbose && m.approvals.length > 0) out(`  legitimate state-changing calls sent to approval:\n    ${m.approvals.join('\n    ')}`);
  const lcTotal = m.legitChanging.allow + m.legitChanging.approval + m.legitChanging.deny;
  out(
    `  ${report.calls} gateway calls in ${report.seconds.toFixed(1)} s (opening mandates ${(phases.open / 1000).toFixed(1)} s, connecting ${(phases.connect / 1000).toFixed(1)} s, calls ${(phases.calls / 1000).toFixed(1)} s)`,
  );
  out(
    `RESULT agentdojo attack_pairs_allowed=${m.attackPairsAllowed} attack_pairs=${m.attackPairs} tasks_intact_pct=${p1(m.tasksIntact, m.tasks)} ` +
      `legit_state_changing_to_approval_pct=${p1(m.legitChanging.approval, lcTotal)} baseline_attack_pairs_allowed=${b.attackPairsAllowed}`,
  );
}

await main();
