// The policy sets Mandate ships (policies/ and the examples), and a differential run comparing
// the compiled engine with cedar-wasm on generated requests. Used by engine-compiled.test.ts (a
// sample) and scripts/cedar-differential.ts (≥ 100,000 requests).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { wasmEngine } from '../../src/policy/cedar/engine.js';
import { type CompiledEngineSet, compiledEngine } from '../../src/policy/compiled/engine.js';
import type { PolicyFile } from '../../src/policy/engine.js';
import { REPO_ROOT } from './cedar-vectors.js';
import { comparable, requestArbitrary } from './engine-requests.js';

/** Ten realistic ceilings on top of the demo policies (as bench/decision.bench.ts uses). */
export const CEILINGS = Array.from(
  { length: 10 },
  (_, i) => `@id("ceiling-${i}")
forbid (principal is Mandate::Agent, action == Mandate::Action::"call", resource)
when { resource.upstream == "legacy-${i}" && (context.taskType like "batch.*" || principal.owner == "team-${i}") };`,
).join('\n\n');

function dir(path: string): PolicyFile[] {
  const abs = join(REPO_ROOT, path);
  return readdirSync(abs)
    .filter((f) => f.endsWith('.cedar'))
    .sort()
    .map((f) => ({ path: f, text: readFileSync(join(abs, f), 'utf8') }));
}
const file = (path: string): PolicyFile => ({ path, text: readFileSync(join(REPO_ROOT, path), 'utf8') });

/** Every shipped set: name, schema, policy files. */
export function shippedSets(): { name: string; schema: PolicyFile; files: PolicyFile[] }[] {
  return [
    {
      name: 'policies/demo + ceilings',
      schema: file('policies/mandate.cedarschema'),
      files: [...dir('policies/demo'), { path: 'ceilings.cedar', text: CEILINGS }],
    },
    { name: 'examples/authzen-todo', schema: file('examples/authzen-todo/todo.cedarschema'), files: dir('examples/authzen-todo/policies') },
    {
      name: 'examples/authzen-gateway',
      schema: file('examples/authzen-gateway/gateway.cedarschema'),
      files: dir('examples/authzen-gateway/policies'),
    },
    {
      name: 'examples/authzen-certification',
      schema: file('examples/authzen-certification/records.cedarschema'),
      files: dir('examples/authzen-certification/policies'),
    },
  ];
}

export interface DifferentialResult {
  readonly requests: number;
  readonly allows: number;
  readonly withErrors: number;
  readonly delegated: number;
  readonly engine: string;
}

/** Compares the compiled engine with cedar-wasm on `runs` generated requests; throws on the first disagreement. */
export function differential(set: { schema: PolicyFile; files: PolicyFile[] }, runs: number, seed: number): DifferentialResult {
  const w = wasmEngine.load(set.schema, set.files);
  const c = compiledEngine.load(set.schema, set.files);
  if (!w.ok || !c.ok) throw new Error('a shipped set does not load');
  let allows = 0;
  let withErrors = 0;
  fc.assert(
    fc.property(requestArbitrary(set.schema.text, w.set), (req) => {
      const expected = comparable(w.set.authorize(req));
      const got = comparable(c.set.authorize(req));
      if (expected.decision === 'allow') allows += 1;
      if (expected.erroring.length > 0) withErrors += 1;
      if (JSON.stringify(got) !== JSON.stringify(expected)) {
        throw new Error(`disagreement on ${JSON.stringify(req)}: wasm ${JSON.stringify(expected)}, compiled ${JSON.stringify(got)}`);
      }
    }),
    { numRuns: runs, seed },
  );
  const delegated = c.set.engine === 'compiled' ? (c.set as CompiledEngineSet).delegated.count : runs;
  return { requests: runs, allows, withErrors, delegated, engine: c.set.engine };
}
