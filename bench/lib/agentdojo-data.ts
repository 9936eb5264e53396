// AgentDojo tool-call traces as the benchmark reads them (../shared/benchmarks/agentdojo, README
// and manifest.json there): every `<suite>.json` that has a `<suite>.pairs.jsonl` beside it is a
// suite, so a folder with suites this code has never seen runs unchanged.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One tool call of a trace. `changed_environment` was observed by replaying it (not a label). */
export interface TraceCall {
  readonly function: string;
  readonly args: Record<string, unknown>;
  readonly changed_environment: boolean;
}

export interface SuiteTool {
  readonly name: string;
  readonly description?: string;
  /** The JSON schema of the arguments, as the agent sees it (none: no arguments). */
  readonly parameters?: Record<string, unknown>;
}

export interface InjectionVector {
  readonly id: string;
  readonly description?: string;
  /** The benign text at the place where an attacker's text is put. */
  readonly default: string;
}

export interface UserTask {
  readonly id: string;
  readonly prompt: string;
  readonly ground_truth_calls: readonly TraceCall[];
  readonly injection_vectors_seen?: readonly string[];
}

export interface InjectionTask {
  readonly id: string;
  readonly goal: string;
  readonly ground_truth_calls: readonly TraceCall[];
}

/** One security case: a user task with one injection task's goal planted in what it reads. */
export interface Pair {
  readonly user_task_id: string;
  readonly injection_task_id: string;
  readonly injection_vectors: readonly string[];
  readonly user_prompt: string;
  readonly injection_goal: string;
  readonly legitimate_calls: readonly TraceCall[];
  readonly attack_calls: readonly TraceCall[];
}

export interface Suite {
  readonly name: string;
  readonly tools: readonly SuiteTool[];
  readonly vectors: readonly InjectionVector[];
  readonly userTasks: readonly UserTask[];
  readonly injectionTasks: readonly InjectionTask[];
  readonly pairs: readonly Pair[];
  /** Tools some ground-truth call (user or injection task) was observed to change the environment with. */
  readonly changing: ReadonlySet<string>;
}

/** Suite names in `dir`, sorted: `<name>.json` with `<name>.pairs.jsonl` beside it. */
export function suiteNames(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && existsSync(join(dir, f.replace(/\.json$/, '.pairs.jsonl'))))
    .map((f) => f.replace(/\.json$/, ''))
    .sort();
}

export function loadSuite(dir: string, name: string): Suite {
  const raw = JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8')) as {
    tools?: SuiteTool[];
    injection_vectors?: InjectionVector[];
    user_tasks?: UserTask[];
    injection_tasks?: InjectionTask[];
  };
  const pairs = readFileSync(join(dir, `${name}.pairs.jsonl`), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Pair);
  const userTasks = raw.user_tasks ?? [];
  const injectionTasks = raw.injection_tasks ?? [];
  const changing = new Set<string>();
  for (const t of [...userTasks, ...injectionTasks]) {
    for (const c of t.ground_truth_calls) if (c.changed_environment) changing.add(c.function);
  }
  for (const p of pairs) for (const c of [...p.legitimate_calls, ...p.attack_calls]) if (c.changed_environment) changing.add(c.function);
  return {
    name,
    tools: raw.tools ?? [],
    vectors: raw.injection_vectors ?? [],
    userTasks,
    injectionTasks,
    pairs,
    changing,
  };
}

/** Every string and number inside an argument value (arrays and objects flattened). */
export function leaves(value: unknown): (string | number)[] {
  if (typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))) return [value];
  if (Array.isArray(value)) return value.flatMap(leaves);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(leaves);
  return [];
}
