// Where the targets of AgentDojo's legitimate state-changing calls come from, and whether an
// injection lands in the same place (issue 15; method and conclusion in docs/injection.md).
//
//   node --import tsx bench/agentdojo-sources.ts [data-dir] [--approvals <bench --verbose output>]
//
// Reads only the data folder (and, optionally, the list of approvals the replay printed with
// --verbose, to restrict the counts to the calls Mandate actually sent to a human). The data has
// traces, not environments, so a tool result's content is inferred from the traces themselves:
// - an injection vector lands in call C (same tool, same arguments) when every task seeing the
//   vector makes C and no task that makes C fails to see it (the environment is the same default
//   for every task, so the same read returns the same text); failing such a call, in a call of the
//   task no vector-blind task makes (reads first: a confirmation carries no data);
// - a target value the prompt does not contain came from a read before the first call that used it
//   (provenance records the first result a value appeared in); unless --no-pin, a value used in
//   several tasks is attributed to the tools that precede it in all of them.
// Classes: inseparable (some target's every possible source carries an injection), separable
// (every target's sources are injection-free), mixed (undetermined), prompt-only (sent to approval
// by another rule), no-source-in-trace (the trace starts after the value was read).
// A call is "named" when one of its argument values is in the prompt (the human named the document,
// the channel, …); a tool is a "directory" when it only lists principals (users, channels,
// contacts) — in practice an org would declare that of its own tools; here its name says so.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { isTargetName } from '../src/intent/index.js';
import { leaves, loadSuite, type Suite, suiteNames, type TraceCall, type UserTask } from './lib/agentdojo-data.js';

const args = process.argv.slice(2);
const ai = args.indexOf('--approvals');
const approvalsFile = ai >= 0 ? args[ai + 1] : undefined;
/** --no-pin: do not narrow a value's sources by the tools that yield it elsewhere (the looser inference). */
const pin = !args.includes('--no-pin');
const positional = args.filter((a, i) => i !== ai && i !== ai + 1 && a !== '--no-pin');
const dataDir = resolve(positional[0] ?? '../shared/benchmarks/agentdojo');

/**
 * `suite task tool` of each approval the replay printed (--verbose), with multiplicity. The lines
 * name no suite but come suite by suite in name order: a line belongs to the current suite while
 * that suite's task makes such a state-changing call, else to the next.
 */
const approvals = new Map<string, number>();
if (approvalsFile !== undefined) {
  const text = readFileSync(approvalsFile, 'utf8');
  const at = text.indexOf('legitimate state-changing calls sent to approval:\n');
  const suites = suiteNames(dataDir).map((n) => loadSuite(dataDir, n));
  let si = 0;
  for (const line of text.slice(at).split('\n').slice(1)) {
    const m = /^\s+(\S+) (\S+) .* — (.+)$/.exec(line);
    if (m === null) break;
    const has = (s: Suite) =>
      s.userTasks.some((t) => t.id === m[1] && t.ground_truth_calls.some((c) => c.changed_environment && c.function === m[2]));
    while (si < suites.length && !has(suites[si] as Suite)) si++;
    if (si >= suites.length) throw new Error(`approval line matches no suite: ${line}`);
    const key = `${(suites[si] as Suite).name} ${m[1]} ${m[2]}`;
    approvals.set(key, (approvals.get(key) ?? 0) + 1);
  }
}

const callKey = (c: TraceCall): string => `${c.function}(${JSON.stringify(c.args)})`;
const DIRECTORY = /^(get|list|search)_(users?|channels?|contacts?|members?)(_|$)/i;
const directory = (fn: string): boolean => DIRECTORY.test(fn) && !/message|email|file|event/i.test(fn);

function inPrompt(prompt: string, v: unknown): boolean {
  const s = String(v).toLowerCase();
  return s.length >= 2 && prompt.toLowerCase().includes(s);
}

/** The target values of a call that the prompt does not contain. */
function unnamedTargets(prompt: string, c: TraceCall): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(c.args)) {
    if (!isTargetName(name)) continue;
    for (const v of leaves(value)) if (!inPrompt(prompt, v)) out.push(String(v));
  }
  return out;
}

/** Per task: the calls (keys) each vector it sees lands in. */
function vectorSources(suite: Suite): Map<string, Map<string, Set<string>>> {
  const seenBy = new Map<string, Set<string>>(); // call key -> tasks making it
  for (const t of suite.userTasks)
    for (const c of t.ground_truth_calls) {
      const k = callKey(c);
      if (!seenBy.has(k)) seenBy.set(k, new Set());
      seenBy.get(k)?.add(t.id);
    }
  const seen = new Map(suite.userTasks.map((t) => [t.id, new Set(t.injection_vectors_seen ?? [])]));
  // A vector's source when the data pins it: a call every task seeing it makes, and no task not
  // seeing it makes.
  const consistent = (k: string, v: string) => [...(seenBy.get(k) ?? [])].every((o) => seen.get(o)?.has(v) === true);
  const common = new Map<string, Set<string>>();
  for (const t of suite.userTasks)
    for (const v of t.injection_vectors_seen ?? []) {
      const keys = new Set(t.ground_truth_calls.map(callKey).filter((k) => consistent(k, v)));
      const prev = common.get(v);
      common.set(v, prev === undefined ? keys : new Set([...prev].filter((k) => keys.has(k))));
    }
  const out = new Map<string, Map<string, Set<string>>>();
  for (const t of suite.userTasks) {
    const perVector = new Map<string, Set<string>>();
    for (const v of t.injection_vectors_seen ?? []) {
      const pinned = common.get(v);
      if (pinned !== undefined && pinned.size > 0) {
        perVector.set(v, pinned);
        continue;
      }
      // Reads first: a call that changes the environment answers with a confirmation, not data,
      // unless no read of the task can be the source (get_webpage changes state in this data).
      const cands = new Set<string>();
      for (const reads of [true, false]) {
        for (const c of t.ground_truth_calls) {
          if (c.changed_environment === reads) continue;
          const k = callKey(c);
          const others = [...(seenBy.get(k) ?? [])];
          if (others.every((o) => seen.get(o)?.has(v) === true)) cands.add(k);
        }
        if (cands.size > 0) break;
      }
      // None consistent (output depends on state): every call of the task may carry it.
      if (cands.size === 0) for (const c of t.ground_truth_calls) cands.add(callKey(c));
      perVector.set(v, cands);
    }
    out.set(t.id, perVector);
  }
  return out;
}

interface Row {
  suite: string;
  task: string;
  fn: string;
  targets: string[];
  sources: string[];
  injected: string[];
  cls: 'prompt-only' | 'separable-named' | 'separable-directory' | 'separable-other' | 'inseparable' | 'mixed' | 'no-source-in-trace';
}

const rows: Row[] = [];
/** Per suite: the calls injections land in (over all tasks), for the safety check of a rule. */
const injectedCalls: { suite: string; task: string; call: string; fn: string; named: boolean; pairs: number }[] = [];

let legitChanging = 0;
for (const name of suiteNames(dataDir)) {
  const suite = loadSuite(dataDir, name);
  for (const t of suite.userTasks) legitChanging += t.ground_truth_calls.filter((c) => c.changed_environment).length;
  const vs = vectorSources(suite);
  const pairsOf = new Map<string, number>();
  for (const p of suite.pairs) if (p.attack_calls.length > 0) pairsOf.set(p.user_task_id, (pairsOf.get(p.user_task_id) ?? 0) + 1);
  // Per unnamed target value: the tools that can have yielded it in every task that uses it.
  const valueTools = new Map<string, Set<string>>();
  for (const t of suite.userTasks) {
    const calls = t.ground_truth_calls;
    for (const [i, c] of calls.entries()) {
      if (!c.changed_environment) continue;
      for (const x of unnamedTargets(t.prompt, c)) {
        const lx = x.toLowerCase();
        const first = calls.findIndex((b) => Object.values(b.args).some((v) => leaves(v).some((l) => String(l).toLowerCase() === lx)));
        const fns = new Set(calls.slice(0, Math.min(i, first < 0 ? i : first)).map((b) => b.function));
        if (fns.size === 0) continue;
        const prev = valueTools.get(lx);
        const next = prev === undefined ? fns : new Set([...prev].filter((f) => fns.has(f)));
        valueTools.set(lx, next.size === 0 ? (prev ?? fns) : next);
      }
    }
  }
  for (const t of suite.userTasks as UserTask[]) {
    const injected = new Set<string>();
    for (const cands of vs.get(t.id)?.values() ?? []) for (const k of cands) injected.add(k);
    // Calls that change the environment but return data (get_webpage here): some injection lands in them.
    const readers = new Set<string>();
    for (const per of vs.values()) for (const cands of per.values()) for (const k of cands) readers.add(k);
    for (const c of t.ground_truth_calls) {
      const k = callKey(c);
      if (injected.has(k) && !injectedCalls.some((x) => x.suite === name && x.task === t.id && x.call === k))
        injectedCalls.push({
          suite: name,
          task: t.id,
          call: k,
          fn: c.function,
          named: Object.values(c.args).some((v) => leaves(v).some((l) => inPrompt(t.prompt, l))),
          pairs: pairsOf.get(t.id) ?? 0,
        });
    }
    const counted = new Map<string, number>();
    for (const [i, c] of t.ground_truth_calls.entries()) {
      if (!c.changed_environment) continue;
      const key = `${name} ${t.id} ${c.function}`;
      if (approvalsFile !== undefined) {
        const left = (approvals.get(key) ?? 0) - (counted.get(key) ?? 0);
        if (left <= 0) continue;
        counted.set(key, (counted.get(key) ?? 0) + 1);
      }
      const targets = unnamedTargets(t.prompt, c);
      const calls = t.ground_truth_calls;
      const isRead = (b: TraceCall) => !b.changed_environment || readers.has(callKey(b));
      const named = (b: TraceCall) => Object.values(b.args).some((v) => leaves(v).some((l) => inPrompt(t.prompt, l)));
      // Per target value: its possible sources are the reads before this call — or before the first
      // earlier call that already used the value as an argument (it was known by then; provenance
      // records the first result a value appeared in). Reads first, as for the vectors: a
      // confirmation carries no value to act on.
      const allSources = new Set<string>();
      const allInjected = new Set<string>();
      let anyAllInjected = false;
      let anyMixed = false;
      let noSource = false;
      const clean: TraceCall[] = [];
      for (const x of targets) {
        const lx = x.toLowerCase();
        let upTo = i;
        for (let j = 0; j < i; j++) {
          const used = Object.values((calls[j] as TraceCall).args).some((v) => leaves(v).some((l) => String(l).toLowerCase() === lx));
          if (used) {
            upTo = j;
            break;
          }
        }
        const before = calls.slice(0, upTo);
        const reads = before.filter(isRead);
        let cands = reads.length > 0 ? reads : before;
        // The same value used elsewhere in the suite pins the tool that yields it: keep the
        // candidates whose tool could be its source in every task that uses it unnamed.
        const tools = valueTools.get(lx);
        if (pin && tools !== undefined && cands.some((b) => tools.has(b.function))) cands = cands.filter((b) => tools.has(b.function));
        const inj = cands.filter((b) => injected.has(callKey(b)));
        for (const b of cands) allSources.add(callKey(b));
        for (const b of inj) allInjected.add(callKey(b));
        if (cands.length === 0) noSource = true;
        else if (inj.length === cands.length) anyAllInjected = true;
        else if (inj.length > 0) anyMixed = true;
        else clean.push(...cands);
      }
      const sources = [...allSources];
      const inj = [...allInjected];
      let cls: Row['cls'];
      if (targets.length === 0) cls = 'prompt-only';
      else if (anyAllInjected) cls = 'inseparable';
      else if (noSource) cls = 'no-source-in-trace';
      else if (anyMixed) cls = 'mixed';
      else
        cls = clean.some(named) ? 'separable-named' : clean.some((b) => directory(b.function)) ? 'separable-directory' : 'separable-other';
      rows.push({ suite: name, task: t.id, fn: c.function, targets, sources, injected: inj, cls });
    }
  }
}

const total = rows.length;
const by = (cls: Row['cls']) => rows.filter((r) => r.cls === cls);
console.log(
  `agentdojo sources: data ${dataDir}${approvalsFile === undefined ? ' (every legitimate state-changing call)' : ` (approvals from ${approvalsFile})`}`,
);
for (const r of rows)
  console.log(
    `  ${r.cls.padEnd(20)} ${r.suite}/${r.task} ${r.fn} targets=${JSON.stringify(r.targets).slice(0, 60)} sources=${r.sources.length} injected=${r.injected.map((k) => k.slice(0, 50)).join(' | ')}`,
  );
console.log('');
for (const c of [
  'prompt-only',
  'separable-named',
  'separable-directory',
  'separable-other',
  'mixed',
  'inseparable',
  'no-source-in-trace',
] as const)
  console.log(`  ${c.padEnd(20)} ${by(c).length}`);
// Rule safety: a rule trusting values from a named source (or a directory tool) trusts an injected
// value in every case whose injection lands in such a source.
const namedInjected = injectedCalls.filter((x) => x.named);
const dirInjected = injectedCalls.filter((x) => directory(x.fn));
console.log(
  `  calls an injection lands in: ${injectedCalls.length}; of them named by the human: ${namedInjected.length} ` +
    `(tasks ${new Set(namedInjected.map((x) => `${x.suite}/${x.task}`)).size}); directory tools: ${dirInjected.length}`,
);
for (const x of namedInjected) console.log(`    named+injected ${x.suite}/${x.task} ${x.call.slice(0, 90)}`);
for (const x of dirInjected) console.log(`    directory+injected ${x.suite}/${x.task} ${x.call.slice(0, 90)}`);
const namedTasks = new Set(namedInjected.map((x) => `${x.suite}/${x.task}`));
const unsafePairs = [...namedTasks].reduce((n, k) => n + (injectedCalls.find((x) => `${x.suite}/${x.task}` === k)?.pairs ?? 0), 0);
const sepNamed = by('separable-named').length;
const sepDir = by('separable-directory').length;
const floor = by('inseparable').length + by('no-source-in-trace').length;
const best = total - sepNamed - sepDir - by('separable-other').length - by('mixed').length;
const pct = (n: number) => ((100 * n) / Math.max(1, legitChanging)).toFixed(1);
console.log(
  `  of ${legitChanging} legitimate state-changing calls, ${total} considered: trusting every separable call leaves ${total - sepNamed - sepDir - by('separable-other').length} (${pct(total - sepNamed - sepDir - by('separable-other').length)} %); ` +
    `also every mixed one ${best} (${pct(best)} %); inseparable or sourced outside the trace (never trustable without trusting an injected value): ${floor} (${pct(floor)} %)`,
);
console.log(
  `RESULT agentdojo-sources approvals=${total} separable_named=${sepNamed} separable_directory=${sepDir} separable_other=${by('separable-other').length} ` +
    `mixed=${by('mixed').length} inseparable=${by('inseparable').length} no_source_in_trace=${by('no-source-in-trace').length} prompt_only=${by('prompt-only').length} ` +
    `attack_pairs_exposed_by_named_rule=${unsafePairs} directory_calls_injected=${dirInjected.length} legit_changing=${legitChanging} floor_pct=${pct(floor)}`,
);
