// The compiled policy engine: validates a set exactly as cedar-wasm does (it is the same code), then
// compiles every policy into JavaScript closures indexed by action. A set it cannot compile exactly
// is served by cedar-wasm (with a notice); a request it cannot evaluate exactly is too.
import '../cedar/v8-wasm-inlining.js';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { rolesFromProbe } from '../cedar/approval.js';
import { type CompiledPolicySet as WasmPolicySet, wasmEngine } from '../cedar/engine.js';
import type { ApprovalAnalysis, EngineAnswer, EngineRequest, LoadedPolicySet, LoadResult, PolicyEngine, PolicyFile } from '../engine.js';
import { type CompiledPolicy, compilePolicy, type EntityData, Refusal } from './compile.js';
import { actionEntities, buildEnv, readSchema, type Schema } from './request.js';
import { CedarError, Unsupported } from './values.js';

/** A set compiled to closures; evaluates requests without crossing into WebAssembly. */
export interface CompiledEngineSet extends LoadedPolicySet {
  readonly engine: 'compiled';
  /** The same set in cedar-wasm, which answers requests this engine does not evaluate exactly. */
  readonly fallback: LoadedPolicySet;
  /** How many requests were handed to cedar-wasm (and the last reason), since load. */
  readonly delegated: { count: number; last: string | undefined };
}

/** Cedar's own answer for a request (before Mandate fails closed on errors). */
export interface CedarAnswer {
  readonly decision: 'allow' | 'deny';
  readonly reasons: string[];
  readonly erroring: string[];
  readonly messages: string[];
}

/** An evaluator over compiled policies: Cedar's authorization algorithm. */
export interface Evaluator {
  /** Throws Unsupported when the request must go to cedar-wasm. */
  evaluate(request: EngineRequest): CedarAnswer;
}

/**
 * Compiles policies (ids and ESTs) under a resolved JSON schema. Returns a refusal reason instead
 * when any part is not evaluated exactly.
 */
export function compileEvaluator(
  schemaJson: unknown,
  policies: readonly { id: string; est: unknown }[],
): { ok: true; evaluator: Evaluator } | { ok: false; reason: string } {
  let schema: Schema;
  let compiled: CompiledPolicy[];
  try {
    schema = readSchema(schemaJson);
    compiled = policies.map((p) => {
      try {
        return compilePolicy(p.id, p.est);
      } catch (err) {
        if (err instanceof Refusal) throw new Refusal(`policy ${p.id}: ${err.message}`);
        throw err;
      }
    });
  } catch (err) {
    if (err instanceof Refusal) return { ok: false, reason: err.message };
    throw err;
  }
  const actions = actionEntities(schema);
  // Per action declared in the schema: only the policies whose action scope can admit it.
  const byAction = new Map<string, CompiledPolicy[]>();
  for (const [key, a] of schema.actions) {
    const admits = (p: CompiledPolicy) => {
      if (p.actions === undefined) return true;
      if (Array.isArray(p.actions)) return p.actions.some((u) => u.key === key);
      return (p.actions as { readonly in: readonly { key: string }[] }).in.some((u) => u.key === key || a.ancestors.has(u.key));
    };
    byAction.set(key, compiled.filter(admits));
  }
  const evaluator: Evaluator = {
    evaluate(request) {
      const env = buildEnv(schema, request, actions);
      // buildEnv refuses actions the schema does not declare, so the index is complete.
      const policies = byAction.get(env.action.key) ?? compiled;
      const permits: string[] = [];
      const forbids: string[] = [];
      const erroring: string[] = [];
      const messages: string[] = [];
      for (const p of policies) {
        try {
          if (p.test(env)) (p.forbid ? forbids : permits).push(p.id);
        } catch (err) {
          if (!(err instanceof CedarError)) throw err;
          erroring.push(p.id);
          messages.push(`policy ${p.id}: ${err.message}`);
        }
      }
      if (forbids.length > 0) return { decision: 'deny', reasons: forbids.sort(), erroring: erroring.sort(), messages };
      return { decision: permits.length > 0 ? 'allow' : 'deny', reasons: permits.sort(), erroring: erroring.sort(), messages };
    },
  };
  return { ok: true, evaluator };
}

/** Compiles a set cedar-wasm has loaded and validated; a refusal says why it cannot. */
export function compileSet(set: WasmPolicySet, schemaText: string): { ok: true; set: CompiledEngineSet } | { ok: false; reason: string } {
  const resolved = cedar.schemaToJsonWithResolvedTypes(schemaText);
  if (resolved.type === 'failure') return { ok: false, reason: 'the schema cannot be resolved' };
  const policies: { id: string; est: unknown }[] = [];
  for (const p of set.policies) {
    const json = cedar.policyToJson(p.text);
    if (json.type === 'failure') return { ok: false, reason: `policy ${p.id} has no JSON form` };
    policies.push({ id: p.id, est: json.json });
  }
  const built = compileEvaluator(resolved.json, policies);
  if (!built.ok) return built;
  const { evaluator } = built;
  const delegated = { count: 0, last: undefined as string | undefined };
  const authorize = (request: EngineRequest): EngineAnswer => {
    let a: CedarAnswer;
    try {
      a = evaluator.evaluate(request);
    } catch (err) {
      if (!(err instanceof Unsupported)) {
        const message = `policy engine failed: ${err instanceof Error ? err.message : String(err)}`;
        return { decision: 'deny', policies: [], erroring: [], errors: [message] };
      }
      delegated.count += 1;
      delegated.last = err.message;
      return set.authorize(request);
    }
    // An error inside a policy makes Cedar skip it; that could skip a forbid. Fail closed.
    if (a.erroring.length > 0) return { decision: 'deny', policies: a.reasons, erroring: a.erroring, errors: a.messages };
    return { decision: a.decision, policies: a.reasons, erroring: [], errors: [] };
  };
  const compiled: CompiledEngineSet = {
    engine: 'compiled',
    version: set.version,
    policies: set.policies,
    shapes: set.shapes,
    fallback: set,
    delegated,
    approval: compiledApproval(set, resolved.json, delegated),
    ...(set.contextReads === undefined ? {} : { contextReads: set.contextReads }),
    authorize,
  };
  return { ok: true, set: compiled };
}

/**
 * The approval probe (src/policy/cedar/approval.ts) compiled too, so the approval path stays out of
 * WebAssembly; a probe set it cannot compile, or a request it cannot evaluate, goes to cedar-wasm's.
 */
function compiledApproval(
  set: WasmPolicySet,
  schemaJson: unknown,
  delegated: CompiledEngineSet['delegated'],
): ApprovalAnalysis | undefined {
  const wasm = set.approval;
  const probe = set.approvalPlan.probe;
  const viaWasm = wasm?.rolesAllowing;
  if (wasm === undefined || probe === undefined || viaWasm === undefined) return wasm;
  const built = compileEvaluator(schemaJson, probe.policies);
  if (!built.ok) return wasm;
  const { evaluator } = built;
  return {
    uses: wasm.uses,
    rolesAllowing: (request, roles) => {
      let a: CedarAnswer;
      try {
        a = evaluator.evaluate(request);
      } catch (err) {
        if (err instanceof Unsupported) {
          delegated.count += 1;
          delegated.last = err.message;
          return viaWasm(request, roles);
        }
        return []; // fail closed: no role is offered
      }
      return rolesFromProbe(probe, { policies: a.reasons, erroring: a.erroring, errors: a.messages }, roles);
    },
  };
}

/**
 * The compiled engine. Loading validates with cedar-wasm (identical problems and ids), then
 * compiles; a set it refuses is served by cedar-wasm, with the reason as a notice.
 */
export const compiledEngine: PolicyEngine = {
  name: 'compiled',
  load(schema: PolicyFile, files: readonly PolicyFile[]): LoadResult {
    const base = wasmEngine.load(schema, files);
    if (!base.ok) return base;
    const compiled = compileSet(base.set as WasmPolicySet, schema.text);
    if (!compiled.ok) {
      return { ok: true, set: base.set, notices: [`the compiled engine refused this set (${compiled.reason}); cedar-wasm serves it`] };
    }
    return { ok: true, set: compiled.set, notices: [] };
  },
};

export type { EntityData };
