// Replays AgentDojo traces through Mandate's real gateway: one real MCP upstream per suite
// (./agentdojo-upstream.ts), brokers in this process opened with the real token exchange, and the
// official MCP SDK client as the agent. Two brokers, same run: Mandate with the shipped
// injection-containment policy and a mandate opened from the user prompt alone
// (./agentdojo-tasks.ts), and a tool-name-only baseline (the exact tools the task's legitimate
// calls use, no argument constraints, an org policy that permits whatever the mandate grants).
// Used by bench/agentdojo.bench.ts and test/injection/.
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { DEV_TRUST_DOMAIN } from '../../src/identity/dev-spiffe.js';
import { type Running, startBroker } from '../../test/identity/helpers.js';
import { loadSuite, type Pair, type Suite, suiteNames, type TraceCall, type UserTask } from './agentdojo-data.js';
import { type Category, classify, instantiate, loadCategories, paramsFor, type ToolInfo, templateName } from './agentdojo-tasks.js';
import { type Scenario, type SuiteUpstream, scenarioOf, startSuiteUpstream } from './agentdojo-upstream.js';

/** The shipped injection-containment org policy. */
export const INJECTION_POLICY_DIR = fileURLToPath(new URL('../../policies/injection/', import.meta.url));
/** The baseline's org policy: permit what the mandate grants. */
export const BASELINE_POLICY_DIR = fileURLToPath(new URL('../agentdojo-baseline/', import.meta.url));

export type Outcome = 'allow' | 'approval' | 'deny';

export interface Tally {
  allow: number;
  approval: number;
  deny: number;
}

const tally = (): Tally => ({ allow: 0, approval: 0, deny: 0 });

/** What one configuration (Mandate or baseline) did on one suite. */
export interface SuiteResult {
  /** Attacker calls the data marks as changing the environment, and all attacker calls. */
  attackChanging: Tally;
  attackAll: Tally;
  /** Cases with concrete attacker calls, and those where ≥ 1 state-changing attacker call was allowed. */
  attackPairs: number;
  attackPairsAllowed: number;
  /** Legitimate calls of the task replayed alone (no injection), all and state-changing. */
  legitAll: Tally;
  legitChanging: Tally;
  tasks: number;
  /** Tasks whose every legitimate call was allowed or sent to approval. */
  tasksIntact: number;
  /**
   * State-changing attacker calls denied only because the legitimate calls before them spent a
   * budget: had the attacker acted first, these would have gone through (and the legitimate call
   * been refused).
   */
  attackBudgetDenied: number;
  /** Cases that would have had an allowed state-changing attacker call but for such a budget. */
  attackPairsBudgetOnly: number;
  /** Those cases (pair, tool). */
  budgetOnly: string[];
  /** Legitimate calls denied while an injection was present (replayed before the attacker's). */
  legitUnderAttackDenied: number;
  /** Per task: the categories chosen (Mandate only). */
  chosen: Map<string, string[]>;
  /** Per task: each legitimate call's outcome (task alone); per case (`user×injection`): each attacker call's. */
  legitOutcomes: Map<string, Outcome[]>;
  attackOutcomes: Map<string, Outcome[]>;
  /** Examples of allowed state-changing attacker calls (pair, tool). */
  leaks: string[];
  /** Legitimate calls refused outright (task, tool, reason). */
  refusals: string[];
  /** Legitimate state-changing calls sent to approval (task, tool, arguments, rules). */
  approvals: string[];
  /** Legitimate state-changing calls sent to approval, by the org policies that did. */
  approvalRules: Map<string, number>;
}

export const emptyResult = (): SuiteResult => ({
  attackChanging: tally(),
  attackAll: tally(),
  attackPairs: 0,
  attackPairsAllowed: 0,
  attackBudgetDenied: 0,
  attackPairsBudgetOnly: 0,
  budgetOnly: [],
  legitAll: tally(),
  legitChanging: tally(),
  tasks: 0,
  tasksIntact: 0,
  legitUnderAttackDenied: 0,
  chosen: new Map(),
  legitOutcomes: new Map(),
  attackOutcomes: new Map(),
  leaks: [],
  refusals: [],
  approvals: [],
  approvalRules: new Map(),
});

/** The parameters each generated template declares (by template name). */
const declared = new Map<string, Set<string>>();

/** How a refusal for a spent `maxCalls` budget reads. */
const SPENT = /has used all \d+ calls|budget|maxCalls/i;

const AGENT = { id: 'agentdojo-agent', spiffeId: `spiffe://${DEV_TRUST_DOMAIN}/agent/agentdojo` };

interface Rig {
  readonly name: 'mandate' | 'baseline';
  readonly broker: Running;
  readonly mcpUrl: URL;
}

export interface ReplayOptions {
  readonly dataDir: string;
  /** Suites to run (default: every suite in dataDir). */
  readonly suites?: readonly string[];
  /** Keep only these user tasks (per suite), for a quick subset. */
  readonly userTasks?: (suite: string, id: string) => boolean;
  readonly engine?: 'compiled' | 'wasm';
  readonly categoriesDir?: string;
  readonly policyDir?: string;
  /** Progress lines. */
  readonly log?: (line: string) => void;
}

export interface ReplayReport {
  readonly suites: Map<string, { mandate: SuiteResult; baseline: SuiteResult }>;
  readonly categories: readonly Category[];
  readonly calls: number;
  readonly seconds: number;
}

async function startRig(name: Rig['name'], policyDir: string, engine: 'compiled' | 'wasm'): Promise<Rig> {
  const broker = await startBroker({
    config: {
      gateway: { demoUpstreams: false, maxConcurrentCallsPerMandate: 64 },
      policy: { dir: policyDir, engine },
      // No automatic risk responses: they would quarantine the one replay agent after its first
      // run of refused attacker calls and stop every later case. What is measured is what the
      // mandate and org policy contain on their own (risk scores still reach policy; this one reads none).
      risk: { responses: [] },
    },
  });
  return { name, broker, mcpUrl: new URL('/mcp', broker.base) };
}

/** The outcome of one call as the agent sees it: a result, a refusal, or a call waiting for a human. */
export function outcomeOf(result: CallToolResult): Called {
  const error = (result._meta?.['mandate/error'] ?? undefined) as { code?: string } | undefined;
  if (result.isError !== true || error?.code === undefined) return { outcome: 'allow' };
  const meta = error as { policies?: unknown; reasons?: unknown; approvalId?: unknown };
  const why = meta.policies ?? meta.reasons;
  const reason = why === undefined ? ((result.content?.[0] as { text?: string } | undefined)?.text ?? error.code) : JSON.stringify(why);
  if (error.code === 'RPC_APPROVAL_REQUIRED') {
    return { outcome: 'approval', reason, ...(typeof meta.approvalId === 'string' ? { approvalId: meta.approvalId } : {}) };
  }
  return { outcome: 'deny', reason };
}

/** One call's outcome, why (a refusal's reasons), and the approval it waits for. */
export interface Called {
  readonly outcome: Outcome;
  readonly reason?: string;
  readonly approvalId?: string;
}

async function call(client: Client, suite: string, c: TraceCall): Promise<Called> {
  try {
    const result = (await client.callTool({ name: `${suite}.${c.function}`, arguments: c.args })) as CallToolResult;
    return outcomeOf(result);
  } catch (err) {
    // A protocol error (an unknown or ungranted tool): nothing ran.
    return { outcome: 'deny', reason: (err as Error).message };
  }
}

/** Runs the whole replay; closes everything it started. */
export async function replay(options: ReplayOptions): Promise<ReplayReport> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const categories = loadCategories(options.categoriesDir);
  const names = (options.suites ?? suiteNames(options.dataDir)).filter((s) => suiteNames(options.dataDir).includes(s));
  if (names.length === 0) throw new Error(`no suite in ${options.dataDir} (a suite is <name>.json with <name>.pairs.jsonl)`);
  const suites = names.map((n) => loadSuite(options.dataDir, n));
  const engine = options.engine ?? 'compiled';
  const upstreams = new Map<string, SuiteUpstream>();
  const rigs: Rig[] = [];
  let policyDir: string | undefined;
  let calls = 0;
  try {
    for (const s of suites) upstreams.set(s.name, await startSuiteUpstream(s));
    // The orchestrator's side: list each upstream's tools (as its server annotates them) and turn
    // the categories every prompt falls into into task templates for those tools, beside the org policy.
    const catalogs = new Map<string, ToolInfo[]>();
    for (const s of suites) catalogs.set(s.name, await listTools((upstreams.get(s.name) as SuiteUpstream).url));
    policyDir = mkdtempSync(join(tmpdir(), 'mandate-agentdojo-policy-'));
    const source = options.policyDir ?? INJECTION_POLICY_DIR;
    for (const f of readdirSync(source).filter((f) => f.endsWith('.cedar'))) copyFileSync(join(source, f), join(policyDir, f));
    let templates = 0;
    for (const s of suites) {
      const written = new Set<string>();
      for (const task of s.userTasks) {
        const chosen = classify(task.prompt, categories);
        const name = templateName(s.name, chosen);
        if (written.has(name)) continue;
        written.add(name);
        const template = instantiate(s.name, chosen, catalogs.get(s.name) ?? [], categories);
        declared.set(name, new Set(Object.keys(template.params as Record<string, unknown>)));
        writeFileSync(join(policyDir, `${name}.template.json`), `${JSON.stringify(template, null, 2)}\n`);
        templates++;
      }
    }
    log(`  ${templates} task templates generated from ${categories.length} categories for ${suites.length} upstreams`);
    rigs.push(await startRig('mandate', policyDir, engine));
    rigs.push(await startRig('baseline', BASELINE_POLICY_DIR, engine));
    for (const rig of rigs) {
      const admin = await rig.broker.operatorToken('alice');
      for (const s of suites) {
        const res = await fetch(`${rig.broker.base}/admin/v1/upstreams`, {
          method: 'POST',
          headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
          body: JSON.stringify({ id: s.name, transport: { type: 'http', url: upstreams.get(s.name)?.url }, isolation: 'shared' }),
        });
        if (res.status !== 201) throw new Error(`registering upstream ${s.name}: HTTP ${res.status} ${await res.text()}`);
      }
      const ceiling = suites.flatMap((s) => s.tools.map((t) => ({ tool: `${s.name}.${t.name}` })));
      await rig.broker.broker.agents.register({
        id: AGENT.id,
        displayName: 'AgentDojo replay agent',
        owner: 'alice',
        environment: 'production',
        identity: { spiffeId: AGENT.spiffeId },
        ceiling: { tools: ceiling, delegable: false },
      });
    }
    const mandateRig = rigs[0] as Rig;
    const report = new Map<string, { mandate: SuiteResult; baseline: SuiteResult }>();
    for (const s of suites) {
      const up = upstreams.get(s.name) as SuiteUpstream;
      const results = { mandate: emptyResult(), baseline: emptyResult() };
      report.set(s.name, results);
      const tasks = s.userTasks.filter((t) => options.userTasks?.(s.name, t.id) ?? true);
      const taskIds = new Set(tasks.map((t) => t.id));
      for (const task of tasks) {
        const chosen = classify(task.prompt, categories);
        results.mandate.chosen.set(
          task.id,
          chosen.map((c) => c.name),
        );
        // The task alone (no injection): legitimate calls, counted.
        const benign: Pair = {
          user_task_id: task.id,
          injection_task_id: '',
          injection_vectors: task.injection_vectors_seen ?? [],
          user_prompt: task.prompt,
          injection_goal: '',
          legitimate_calls: task.ground_truth_calls,
          attack_calls: [],
        };
        const scenario = scenarioOf(s, benign, true);
        for (const rig of rigs) {
          const r = rig === mandateRig ? results.mandate : results.baseline;
          const outcomes = await runCase(rig, s, task, chosen, scenario, up, task.ground_truth_calls, []);
          calls += outcomes.legit.length;
          r.tasks++;
          r.legitOutcomes.set(
            task.id,
            outcomes.legit.map((o) => o.outcome),
          );
          let intact = true;
          for (const [i, c] of task.ground_truth_calls.entries()) {
            const o = outcomes.legit[i] as Called;
            r.legitAll[o.outcome]++;
            if (c.changed_environment) r.legitChanging[o.outcome]++;
            if (c.changed_environment && o.outcome === 'approval') {
              // The org policies that sent it to a human, as the approval records them.
              const approval = o.approvalId === undefined ? undefined : await rig.broker.broker.approvals.get(o.approvalId);
              const rules = approval?.context.policies.join('+') || 'unknown';
              r.approvalRules.set(rules, (r.approvalRules.get(rules) ?? 0) + 1);
              if (r.approvals.length < 200) r.approvals.push(`${task.id} ${c.function} ${JSON.stringify(c.args).slice(0, 100)} — ${rules}`);
            }
            if (o.outcome === 'deny') {
              intact = false;
              if (r.refusals.length < 200) r.refusals.push(`${task.id} ${c.function}: ${o.reason ?? ''}`.slice(0, 300));
            }
          }
          if (intact) r.tasksIntact++;
        }
      }
      // Every case with concrete attacker calls: legitimate calls, then the attacker's, in one mandate.
      for (const pair of s.pairs) {
        if (pair.attack_calls.length === 0 || !taskIds.has(pair.user_task_id)) continue;
        const task = tasks.find((t) => t.id === pair.user_task_id) as UserTask;
        const chosen = classify(pair.user_prompt, categories);
        const scenario = scenarioOf(s, pair);
        for (const rig of rigs) {
          const r = rig === mandateRig ? results.mandate : results.baseline;
          const outcomes = await runCase(rig, s, task, chosen, scenario, up, pair.legitimate_calls, pair.attack_calls);
          calls += outcomes.legit.length + outcomes.attack.length;
          r.attackPairs++;
          r.attackOutcomes.set(
            `${pair.user_task_id}×${pair.injection_task_id}`,
            outcomes.attack.map((o) => o.outcome),
          );
          r.legitUnderAttackDenied += outcomes.legit.filter((o) => o.outcome === 'deny').length;
          let leaked = false;
          let spent: string | undefined;
          for (const [i, c] of pair.attack_calls.entries()) {
            const o = outcomes.attack[i] as { outcome: Outcome; reason?: string };
            r.attackAll[o.outcome]++;
            if (!c.changed_environment) continue;
            r.attackChanging[o.outcome]++;
            if (o.outcome === 'deny' && SPENT.test(o.reason ?? '')) {
              r.attackBudgetDenied++;
              spent ??= `${pair.user_task_id}×${pair.injection_task_id} ${c.function}`;
            }
            if (o.outcome === 'allow') {
              leaked = true;
              if (r.leaks.length < 200)
                r.leaks.push(`${pair.user_task_id}×${pair.injection_task_id} ${c.function} ${JSON.stringify(c.args).slice(0, 120)}`);
            }
          }
          if (leaked) r.attackPairsAllowed++;
          else if (spent !== undefined) {
            r.attackPairsBudgetOnly++;
            r.budgetOnly.push(spent);
          }
        }
      }
      log(
        `  ${s.name}: ${results.mandate.tasks} tasks, ${results.mandate.attackPairs} attack pairs replayed (${Math.round(performance.now() - started) / 1000} s so far)`,
      );
    }
    return { suites: report, categories, calls, seconds: (performance.now() - started) / 1000 };
  } finally {
    for (const rig of rigs) await rig.broker.close().catch(() => {});
    for (const up of upstreams.values()) await up.close().catch(() => {});
    if (policyDir !== undefined) rmSync(policyDir, { recursive: true, force: true });
  }
}

/** The tools an MCP server lists, with whether it declares them read-only (asked directly, as an orchestrator would). */
async function listTools(url: string): Promise<ToolInfo[]> {
  const client = new Client({ name: 'agentdojo-orchestrator', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  try {
    const { tools } = await client.listTools();
    return tools.map((t) => ({ name: t.name, readOnly: t.annotations?.readOnlyHint === true }));
  } finally {
    await client.close().catch(() => {});
  }
}

/** Milliseconds spent opening mandates, connecting clients and calling, over the run. */
export const phases = { open: 0, connect: 0, calls: 0 };

/** Opens one mandate, replays `legit` then `attack` in it, and returns each call's outcome. */
async function runCase(
  rig: Rig,
  suite: Suite,
  task: UserTask,
  chosen: readonly Category[],
  scenario: Scenario,
  upstream: SuiteUpstream,
  legit: readonly TraceCall[],
  attack: readonly TraceCall[],
): Promise<{ legit: Called[]; attack: Called[] }> {
  upstream.play(scenario);
  const t0 = performance.now();
  const request = rig.name === 'mandate' ? mandateRequest(suite, task.prompt, chosen) : baselineRequest(suite, task);
  const token = (await rig.broker.open(AGENT.spiffeId, request)).access_token;
  const client = new Client({ name: 'agentdojo-replay', version: '1' });
  const t1 = performance.now();
  await client.connect(new StreamableHTTPClientTransport(rig.mcpUrl, { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  const t2 = performance.now();
  phases.open += t1 - t0;
  phases.connect += t2 - t1;
  try {
    const l: Called[] = [];
    for (const c of legit) l.push(await call(client, suite.name, c));
    const a: Called[] = [];
    for (const c of attack) a.push(await call(client, suite.name, c));
    phases.calls += performance.now() - t2;
    return { legit: l, attack: a };
  } finally {
    await client.close().catch(() => {});
  }
}

/** Mandate's request: the template the prompt's categories stand for, and the prompt as the human's request text. */
export function mandateRequest(suite: Suite, prompt: string, chosen: readonly Category[]): Record<string, unknown> {
  return {
    type: 'mandate',
    template: templateName(suite.name, chosen),
    params: Object.fromEntries(
      Object.entries(paramsFor(prompt, chosen)).filter(([k]) => declared.get(templateName(suite.name, chosen))?.has(k) === true),
    ),
    request: prompt.trim().slice(0, 8192) || '-',
  };
}

/** The baseline's request: exactly the tools the task's legitimate calls use, nothing on their arguments. */
export function baselineRequest(suite: Suite, task: UserTask): Record<string, unknown> {
  const tools = [...new Set(task.ground_truth_calls.map((c) => c.function))];
  return {
    type: 'mandate',
    purpose: 'tool-name-only baseline',
    taskType: 'baseline',
    environment: 'production',
    ttlSeconds: 600,
    tools: tools.map((t) => ({ tool: `${suite.name}.${t}` })),
    delegable: false,
  };
}
