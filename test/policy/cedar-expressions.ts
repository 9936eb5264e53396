// Evaluates Cedar expressions in both cedar-wasm and the compiled evaluator, to compare them: each
// expression becomes `permit (principal, action, resource) when { <expr> };`, and the answer says
// which were true and which errored. Used by test/policy/engine-compiled.test.ts.
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { compileEvaluator } from '../../src/policy/compiled/engine.js';
import { Unsupported } from '../../src/policy/compiled/values.js';

const SCHEMA = 'entity U; action a appliesTo { principal: [U], resource: [U] };';
const UID = { type: 'U', id: 'u' };

export interface Outcome {
  readonly satisfied: string[];
  readonly erroring: string[];
}

/** cedar-wasm's answer, or undefined when it cannot parse the expressions. */
export function wasmOutcome(exprs: readonly string[]): Outcome | undefined {
  const staticPolicies = Object.fromEntries(exprs.map((e, i) => [`e${i}`, `permit (principal, action, resource) when { ${e} };`]));
  const r = cedar.isAuthorized({
    principal: UID,
    action: { type: 'Action', id: 'a' },
    resource: UID,
    context: {},
    schema: SCHEMA,
    validateRequest: true,
    policies: { staticPolicies },
    entities: [],
  });
  if (r.type === 'failure') return undefined;
  return { satisfied: [...r.response.diagnostics.reason].sort(), erroring: r.response.diagnostics.errors.map((e) => e.policyId).sort() };
}

/** The compiled evaluator's answer, or a refusal reason. */
export function compiledOutcome(exprs: readonly string[]): Outcome | string {
  const schema = cedar.schemaToJsonWithResolvedTypes(SCHEMA);
  if (schema.type === 'failure') throw new Error('schema');
  const policies = exprs.map((e, i) => {
    const j = cedar.policyToJson(`permit (principal, action, resource) when { ${e} };`);
    if (j.type === 'failure') throw new Error(`does not parse: ${e}`);
    return { id: `e${i}`, est: j.json };
  });
  const built = compileEvaluator(schema.json, policies);
  if (!built.ok) return built.reason;
  try {
    const a = built.evaluator.evaluate({ principal: UID, action: { type: 'Action', id: 'a' }, resource: UID, context: {}, entities: [] });
    return { satisfied: a.reasons, erroring: a.erroring };
  } catch (err) {
    if (err instanceof Unsupported) return `handed to cedar-wasm: ${err.message}`;
    throw err;
  }
}

/** Cedar source for a string literal (Cedar's escapes for `"`, `\` and control characters). */
export function str(s: string): string {
  return `"${[...s].map((c) => (c === '"' ? '\\"' : c === '\\' ? '\\\\' : c.charCodeAt(0) < 32 || c.charCodeAt(0) > 126 ? `\\u{${c.codePointAt(0)?.toString(16)}}` : c)).join('')}"`;
}
