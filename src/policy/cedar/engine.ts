// The reference policy engine: Cedar through the official @cedar-policy/cedar-wasm. Compiles a
// directory's policies into one strictly validated, pre-parsed set, and evaluates requests against
// it with statefulIsAuthorized.
import { createHash } from 'node:crypto';
import type { DetailedError } from '@cedar-policy/cedar-wasm/nodejs';
import './v8-wasm-inlining.js';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type {
  EngineAnswer,
  EngineRequest,
  LoadedPolicy,
  LoadedPolicySet,
  LoadResult,
  PolicyEngine,
  PolicyFile,
  PolicyProblem,
} from '../engine.js';
import { type ApprovalPlan, planApproval, rolesFromProbe } from './approval.js';
import { contextReads } from './context-reads.js';
import { indexSchema } from './shape.js';

export type { EngineAnswer, EngineRequest, PolicyFile, PolicyProblem } from '../engine.js';
export type CompiledPolicy = LoadedPolicy;

/** A set loaded into cedar-wasm: validated, and pre-parsed under these names. */
export interface CompiledPolicySet extends LoadedPolicySet {
  /** Names under which cedar-wasm caches the parsed schema and policy set. */
  readonly schemaName: string;
  readonly setId: string;
  /** The approval analysis and probe set (src/policy/cedar/approval.ts), for engines built on this one. */
  readonly approvalPlan: ApprovalPlan;
}

// cedar-wasm caches by name, per process; names must be unique across every broker in it.
let generation = 0;

export type CompileResult = { ok: true; set: CompiledPolicySet } | { ok: false; problems: PolicyProblem[] };

/**
 * Parses each file, gives every policy a stable id (its `@id` annotation, else `file:line`),
 * validates the whole set strictly against the schema and pre-parses it. All or nothing.
 */
export function compilePolicySet(schema: PolicyFile, files: readonly PolicyFile[]): CompileResult {
  const problems: PolicyProblem[] = [];
  const resolved = cedar.schemaToJsonWithResolvedTypes(schema.text);
  if (resolved.type === 'failure') {
    return { ok: false, problems: resolved.errors.map((e) => locate(schema, 0, e)) };
  }
  const policies: CompiledPolicy[] = [];
  const ests = new Map<CompiledPolicy, unknown>();
  const byId = new Map<string, CompiledPolicy>();
  for (const file of files) {
    const parsed = cedar.checkParsePolicySet({ staticPolicies: file.text });
    if (parsed.type === 'failure') {
      problems.push(...parsed.errors.map((e) => locate(file, 0, e)));
      continue;
    }
    const parts = cedar.policySetTextToParts(file.text);
    if (parts.type === 'failure') {
      problems.push(...parts.errors.map((e) => locate(file, 0, e)));
      continue;
    }
    if (parts.policy_templates.length > 0) {
      problems.push({ file: file.path, line: 1, column: 1, message: 'templates are not supported; write static policies' });
    }
    let from = 0;
    for (const text of parts.policies) {
      const offset = Math.max(0, file.text.indexOf(text, from));
      from = offset + text.length;
      const { line } = lineColumn(file.text, offset);
      const json = cedar.policyToJson(text);
      const annotated = json.type === 'success' ? json.json.annotations?.id : undefined;
      const id = annotated ?? `${file.path}:${line}`;
      const effect = json.type === 'success' ? json.json.effect : 'forbid';
      const previous = byId.get(id);
      if (previous !== undefined) {
        problems.push({ ...lineColumnOf(file, offset), message: `policy id "${id}" is already used in ${previous.file}:${previous.line}` });
        continue;
      }
      const policy: CompiledPolicy = { id, file: file.path, line, effect, text };
      byId.set(id, policy);
      policies.push(policy);
      if (json.type === 'success') ests.set(policy, json.json);
      offsets.set(policy, offset);
    }
  }
  if (problems.length > 0) return { ok: false, problems };

  const staticPolicies = Object.fromEntries(policies.map((p) => [p.id, p.text]));
  const validation = cedar.validate({ schema: schema.text, policies: { staticPolicies }, validationSettings: { mode: 'strict' } });
  if (validation.type === 'failure') {
    return { ok: false, problems: validation.errors.map((e) => locate(schema, 0, e)) };
  }
  for (const v of [...validation.validationErrors]) {
    const policy = byId.get(v.policyId);
    const file = policy === undefined ? schema : { path: policy.file, text: fileText(files, policy.file) };
    problems.push(locate(file, policy === undefined ? 0 : (offsets.get(policy) ?? 0), v.error));
  }
  if (problems.length > 0) return { ok: false, problems };

  const version = createHash('sha256')
    .update(schema.text)
    .update('\0')
    .update(JSON.stringify(policies.map((p) => [p.id, p.text])))
    .digest('hex');
  generation += 1;
  const schemaName = `mandate-schema-${generation}`;
  const setId = `mandate-set-${generation}`;
  const s = cedar.preparseSchema(schemaName, schema.text);
  if (s.type === 'failure') return { ok: false, problems: s.errors.map((e) => locate(schema, 0, e)) };
  const p = cedar.preparsePolicySet(setId, { staticPolicies });
  if (p.type === 'failure')
    return { ok: false, problems: p.errors.map((e) => ({ file: '(set)', line: 1, column: 1, message: e.message })) };
  const names = { schemaName, setId };
  const approvalPlan = planApproval(policies.map((q) => ({ id: q.id, effect: q.effect, est: ests.get(q) })));
  const reads = contextReads(policies.map((q) => ests.get(q)));
  const set: CompiledPolicySet = {
    engine: 'wasm',
    version,
    policies,
    shapes: indexSchema(resolved.json),
    schemaName,
    setId,
    approvalPlan,
    approval: { uses: approvalPlan.uses, ...probeIn(approvalPlan, schemaName, `mandate-approval-${generation}`) },
    contextReads: reads,
    authorize: (request) => authorize(names, request),
  };
  return { ok: true, set };
}

/** The approval probe set pre-parsed into cedar-wasm: one call answers for every approver role. */
function probeIn(plan: ApprovalPlan, schemaName: string, setId: string): Pick<LoadedPolicySet['approval'] & object, 'rolesAllowing'> {
  const probe = plan.probe;
  if (probe === undefined) return {};
  const parsed = cedar.preparsePolicySet(setId, {
    staticPolicies: Object.fromEntries(probe.policies.map((p) => [p.id, p.est])) as Record<string, cedar.PolicyJson>,
  });
  // Not expected (the probe is the validated set, rewritten); without it callers evaluate per role.
  if (parsed.type === 'failure') return {};
  const names = { schemaName, setId };
  return { rolesAllowing: (request, roles) => rolesFromProbe(probe, authorize(names, request), roles) };
}

/** The reference engine: every decision is a call into cedar-wasm. */
export const wasmEngine: PolicyEngine = {
  name: 'wasm',
  load(schema: PolicyFile, files: readonly PolicyFile[]): LoadResult {
    const r = compilePolicySet(schema, files);
    return r.ok ? { ok: true, set: r.set, notices: [] } : r;
  },
};

const offsets = new WeakMap<CompiledPolicy, number>();

/**
 * Evaluates one request against a set pre-parsed into cedar-wasm. Never throws: any engine error
 * or exception is a deny carrying the error.
 */
export function authorize(set: { schemaName: string; setId: string }, req: EngineRequest): EngineAnswer {
  try {
    const answer = cedar.statefulIsAuthorized({
      principal: req.principal,
      action: req.action,
      resource: req.resource,
      context: req.context,
      entities: req.entities,
      preparsedSchemaName: set.schemaName,
      preparsedPolicySetId: set.setId,
      validateRequest: true,
    });
    if (answer.type === 'failure') return { decision: 'deny', policies: [], erroring: [], errors: answer.errors.map((e) => e.message) };
    const { decision, diagnostics } = answer.response;
    const policies = [...diagnostics.reason].sort();
    const erroring = [...new Set(diagnostics.errors.map((e) => e.policyId))].sort();
    const errors = diagnostics.errors.map((e) => `policy ${e.policyId}: ${e.error.message}`);
    // An error inside a policy makes Cedar skip it; that could skip a forbid. Fail closed.
    if (errors.length > 0) return { decision: 'deny', policies, erroring, errors };
    return { decision, policies, erroring: [], errors: [] };
  } catch (err) {
    return {
      decision: 'deny',
      policies: [],
      erroring: [],
      errors: [`policy engine failed: ${err instanceof Error ? err.message : String(err)}`],
    };
  }
}

/** The Cedar SDK version, for /health and the CLI. */
export function cedarVersion(): string {
  return cedar.getCedarVersion();
}

function fileText(files: readonly PolicyFile[], path: string): string {
  return files.find((f) => f.path === path)?.text ?? '';
}

function locate(file: PolicyFile, base: number, error: DetailedError): PolicyProblem {
  const at = error.sourceLocations?.[0];
  const offset = base + (at?.start ?? 0);
  const where = lineColumnOf(file, offset);
  const label = at?.label ? ` (${at.label})` : '';
  const help = error.help ? `; ${error.help}` : '';
  return { ...where, message: `${error.message}${label}${help}` };
}

function lineColumnOf(file: PolicyFile, offset: number): { file: string; line: number; column: number } {
  return { file: file.path, ...lineColumn(file.text, offset) };
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  // Cedar reports byte offsets into UTF-8; convert to a character index first.
  const chars = Buffer.from(text).subarray(0, offset).toString('utf8').length;
  const before = text.slice(0, chars);
  const line = before.split('\n').length;
  return { line, column: chars - before.lastIndexOf('\n') };
}
