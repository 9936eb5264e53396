// Runs the Cedar project's integration tests (../shared/vectors/cedar) through the compiled
// evaluator: for every test it accepts, decision, reasons and erroring policies must equal Cedar's.
// Used by test/policy/cedar-integration.test.ts and scripts/cedar-differential.ts.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { compileEvaluator } from '../../src/policy/compiled/engine.js';
import { Unsupported } from '../../src/policy/compiled/values.js';
import type { EngineRequest } from '../../src/policy/engine.js';

/** The repository root; CI mounts the shared folder at `../shared` beside it. */
export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const CEDAR_VECTORS = resolve(REPO_ROOT, '../shared/vectors/cedar');

export interface VectorReport {
  tests: number;
  /** Tests whose policy set the compiled evaluator compiled. */
  accepted: number;
  refused: Map<string, number>;
  requests: number;
  /** Requests of accepted tests evaluated by the compiled evaluator and compared. */
  compared: number;
  /** Requests it handed to cedar-wasm (not compared: cedar-wasm is the reference). */
  delegated: Map<string, number>;
  mismatches: string[];
}

export function emptyReport(): VectorReport {
  return { tests: 0, accepted: 0, refused: new Map(), requests: 0, compared: 0, delegated: new Map(), mismatches: [] };
}

const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);

interface TestFile {
  policies: string;
  entities: string;
  schema: string;
  shouldValidate: boolean;
  requests: (EngineRequest & { description: string; decision: string; reason: string[]; errors: string[] })[];
}

/** Runs one test JSON (`root` is where its relative file names start). */
/** Runs one test JSON; false when the compiled evaluator refused its policy set. */
export function runVectorFile(root: string, file: string, report: VectorReport): boolean {
  const t = JSON.parse(readFileSync(file, 'utf8')) as TestFile;
  report.tests += 1;
  report.requests += t.requests.length;
  const refuse = (why: string): false => {
    bump(report.refused, why);
    return false;
  };
  const parts = cedar.policySetTextToParts(readFileSync(join(root, t.policies), 'utf8'));
  if (parts.type === 'failure') return refuse('policies do not parse');
  if (parts.policy_templates.length > 0) return refuse('templates');
  const policies: { id: string; est: unknown }[] = [];
  for (const [i, text] of parts.policies.entries()) {
    const json = cedar.policyToJson(text);
    if (json.type === 'failure') return refuse('policy has no JSON form');
    policies.push({ id: `policy${i}`, est: json.json });
  }
  const schema = cedar.schemaToJsonWithResolvedTypes(readFileSync(join(root, t.schema), 'utf8'));
  if (schema.type === 'failure') return refuse('schema does not resolve');
  const built = compileEvaluator(schema.json, policies);
  if (!built.ok) return refuse(built.reason.replace(/^policy \S+: /, '').replace(/".*"|\d+/g, '…'));
  report.accepted += 1;
  const entities = JSON.parse(readFileSync(join(root, t.entities), 'utf8'));
  for (const r of t.requests) {
    let got: ReturnType<typeof built.evaluator.evaluate>;
    try {
      got = built.evaluator.evaluate({ principal: r.principal, action: r.action, resource: r.resource, context: r.context, entities });
    } catch (err) {
      if (err instanceof Unsupported) {
        const m = err.message;
        bump(
          report.delegated,
          /safe integer/.test(m) ? 'a Long beyond ±2^53' : /conform/.test(m) ? 'not valid under the schema' : m.slice(0, 60),
        );
        continue;
      }
      throw err;
    }
    report.compared += 1;
    const same =
      got.decision === r.decision.toLowerCase() &&
      JSON.stringify(got.reasons) === JSON.stringify([...r.reason].sort()) &&
      JSON.stringify(got.erroring) === JSON.stringify([...r.errors].sort());
    if (!same) {
      report.mismatches.push(
        `${file} "${r.description}": expected ${r.decision} ${JSON.stringify(r.reason)} errors ${JSON.stringify(r.errors)}, ` +
          `got ${got.decision} ${JSON.stringify(got.reasons)} errors ${JSON.stringify(got.erroring)} ${got.messages.join('; ')}`,
      );
    }
  }
  return true;
}

/** The handwritten tests (`tests/<group>/<n>.json`). */
export function handwrittenFiles(): string[] {
  const dir = join(CEDAR_VECTORS, 'tests');
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => join(dir, f));
}

/** Corpus test files in an unpacked `corpus-tests/` folder, sorted. */
export function corpusFiles(root: string): string[] {
  const dir = join(root, 'corpus-tests');
  return readdirSync(dir)
    .filter((f) => /^[0-9a-f]+\.json$/.test(f))
    .sort()
    .map((f) => join(dir, f));
}

export function vectorsPresent(): boolean {
  return existsSync(join(CEDAR_VECTORS, 'tests')) && existsSync(join(CEDAR_VECTORS, 'corpus-tests.tar.gz'));
}

export function summary(label: string, r: VectorReport): string {
  const top = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([k, v]) => `${v}× ${k}`)
      .join('; ');
  return (
    `${label}: ${r.tests} tests, compiled evaluator accepted ${r.accepted} (${((100 * r.accepted) / Math.max(1, r.tests)).toFixed(1)} %); ` +
    `${r.requests} requests, ${r.compared} compared, ${[...r.delegated.values()].reduce((a, b) => a + b, 0)} handed to cedar-wasm, ` +
    `${r.mismatches.length} mismatches\n  refused: ${top(r.refused) || 'none'}\n  handed over: ${top(r.delegated) || 'none'}`
  );
}
