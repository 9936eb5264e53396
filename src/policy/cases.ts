// Policy test cases as data (like OPA's YAML cases): each case is a request and the expected
// outcome. Two kinds: a tool call under a mandate (decided by the full decision function, minus
// budget counting), or an AuthZEN request (decided by the PDP). Used by `mandate policy test`
// and `mandate policy explain`.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { MandateError } from '../errors/index.js';
import { Provenance, type ProvenanceView } from '../intent/index.js';
import { scopeSchema } from '../scope/scope.js';
import { AuthzenPdp, evaluationRequestSchema } from './authzen.js';
import { DecisionService, type Evaluation } from './decisions.js';
import type { PolicyStore } from './store.js';
import { actionClasses, type DecisionInput, sensitivities } from './types.js';

const callSchema = z.strictObject({
  tool: z.strictObject({
    name: z.string().min(1),
    upstream: z.string().optional(),
    actionClass: z.enum(actionClasses).default('read'),
    sensitivity: z.enum(sensitivities).default('internal'),
  }),
  args: z.record(z.string(), z.unknown()).default({}),
  mandate: z
    .strictObject({
      id: z.string().default('m-case'),
      purpose: z.string().default('policy test'),
      taskType: z.string().default('test'),
      environment: z.string().default('production'),
      depth: z.number().int().min(0).default(0),
      onBehalfOf: z.string().optional(),
      /** Default: a grant of exactly this tool with no constraints, so the case tests org policy. */
      scope: scopeSchema.optional(),
      /** The human's request text (intent binding: `context.intent`). */
      request: z.string().max(8192).optional(),
      /** The task template the mandate was opened from (`context.template`). */
      template: z
        .strictObject({
          name: z.string().min(1),
          version: z.number().int().min(1).default(1),
          approval: z.strictObject({ tools: z.array(z.string()).default([]), unnamedTargets: z.boolean().default(false) }).prefault({}),
        })
        .optional(),
    })
    .prefault({}),
  agent: z
    .strictObject({
      id: z.string().default('agent-case'),
      actorType: z.string().default('agent'),
      owner: z.string().default('owner-case'),
      environment: z.string().optional(),
      status: z.string().default('active'),
    })
    .prefault({}),
  risk: z.number().min(0).max(100).optional(),
  /** Text of tool results relayed to the mandate before this call (`context.intent.*.fromToolOutput`). */
  toolOutput: z.string().max(65_536).optional(),
  approval: z.strictObject({ id: z.string().default('approval-case'), approverId: z.string(), approverRole: z.string() }).optional(),
});

const expectSchema = z.strictObject({
  outcome: z.enum(['allow', 'deny', 'approval_required']).optional(),
  decision: z.boolean().optional(),
  policies: z.array(z.string()).optional(),
  approvalRoles: z.array(z.string()).optional(),
  reason: z.string().optional().describe('a substring of one of the reasons'),
});

const caseSchema = z
  .strictObject({
    name: z.string().min(1),
    call: callSchema.optional(),
    authzen: evaluationRequestSchema.optional(),
    expect: expectSchema,
  })
  .refine((c) => (c.call === undefined) !== (c.authzen === undefined), 'a case has exactly one of `call` or `authzen`');

const fileSchema = z.strictObject({ cases: z.array(caseSchema).min(1) });

export type PolicyCase = z.infer<typeof caseSchema>;
export type PolicyCall = z.infer<typeof callSchema>;

export interface CaseResult {
  readonly file: string;
  readonly name: string;
  readonly ok: boolean;
  readonly failures: string[];
  readonly got: Record<string, unknown>;
}

/** Reads case files (a file, or every .yaml/.yml/.json file in a directory). */
export async function readCases(path: string): Promise<{ file: string; cases: PolicyCase[] }[]> {
  const files = (await stat(path)).isDirectory()
    ? (await readdir(path))
        .filter((f) => /\.(ya?ml|json)$/.test(f))
        .sort()
        .map((f) => join(path, f))
    : [path];
  const out: { file: string; cases: PolicyCase[] }[] = [];
  for (const file of files) {
    let raw: unknown;
    try {
      raw = parseYaml(await readFile(file, 'utf8'), { uniqueKeys: true });
    } catch (err) {
      throw new MandateError('ERR_VALIDATION', `${file}: ${(err as Error).message.split('\n')[0]}`);
    }
    out.push({ file, cases: parseCases(raw, file) });
  }
  return out;
}

/** Validates a parsed case file (`{ cases: [...] }`), filling in defaults. */
export function parseCases(raw: unknown, file = '(cases)'): PolicyCase[] {
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new MandateError('ERR_VALIDATION', `${file}: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
  }
  return parsed.data.cases;
}

/** Parses one request (a `call` or an `authzen` object, with or without `expect`) for explain. */
export function parseRequest(raw: unknown): Pick<PolicyCase, 'call' | 'authzen'> {
  const r = caseSchema.safeParse({ name: 'explain', expect: {}, ...(raw as object) });
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new MandateError('ERR_VALIDATION', `${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
  }
  return r.data;
}

/** The decision input of a `call` case: defaults fill in everything the case does not state. */
export function callInput(call: PolicyCall, now: number): DecisionInput {
  const scope = call.mandate.scope ?? { tools: [{ tool: call.tool.name }], delegable: false };
  const { request, ...rest } = call.mandate;
  const mandate = {
    ...rest,
    agentId: call.agent.id,
    scope,
    status: 'active',
    expiresAt: now + 3_600_000,
    ...(request === undefined ? {} : { requestText: request }),
  };
  let provenance: ProvenanceView | undefined;
  if (call.toolOutput !== undefined) {
    const record = new Provenance();
    record.record(mandate.id, call.toolOutput);
    provenance = record.view(mandate.id);
  }
  return {
    mandate,
    chain: [mandate],
    agent: { ...call.agent, environment: call.agent.environment ?? call.mandate.environment },
    tool: { ...call.tool, upstream: call.tool.upstream ?? call.tool.name.split('.')[0] ?? call.tool.name, sensitiveArgs: [] },
    args: call.args,
    riskScore: call.risk,
    approval: call.approval,
    now,
    ...(provenance === undefined ? {} : { provenance }),
  };
}

export interface CaseRunnerOptions {
  readonly policies: PolicyStore;
  readonly approverRoles: readonly string[];
  readonly namespace: string;
  readonly types: Readonly<Record<string, string>>;
  readonly now: number;
}

/** Evaluates cases against the loaded set; budgets are not counted (evaluate, not decide). */
export class CaseRunner {
  readonly #decisions: DecisionService;
  readonly #pdp: AuthzenPdp;
  readonly #now: number;

  constructor(o: CaseRunnerOptions) {
    this.#now = o.now;
    const noBudgets = {
      consume: () => Promise.reject(new Error('budgets are not counted in policy tests')),
      fits: () => Promise.reject(new Error('budgets are not counted in policy tests')),
    };
    this.#decisions = new DecisionService({
      policies: o.policies,
      budgets: noBudgets,
      clock: { now: () => o.now },
      approverRoles: o.approverRoles,
    });
    this.#pdp = new AuthzenPdp({ policies: o.policies, namespace: o.namespace, types: o.types, maxBatch: 1, pageSize: 1 });
  }

  explainCall(call: PolicyCall): Evaluation {
    return this.#decisions.evaluate(callInput(call, this.#now));
  }

  explainAuthzen(req: z.infer<typeof evaluationRequestSchema>): ReturnType<AuthzenPdp['evaluate']> {
    return this.#pdp.evaluate(req);
  }

  run(file: string, c: PolicyCase): CaseResult {
    const failures: string[] = [];
    const e = c.expect;
    let got: Record<string, unknown>;
    if (c.call !== undefined) {
      const { decision } = this.explainCall(c.call);
      got = { outcome: decision.outcome, policies: decision.policies, approvalRoles: decision.approvalRoles, reasons: decision.reasons };
      if (decision.errors !== undefined) got.errors = decision.errors;
      if (e.outcome !== undefined && decision.outcome !== e.outcome)
        failures.push(`outcome: expected ${e.outcome}, got ${decision.outcome}`);
      if (e.decision !== undefined && (decision.outcome === 'allow') !== e.decision) {
        failures.push(`decision: expected ${e.decision}, got ${decision.outcome}`);
      }
      if (e.policies !== undefined && !sameSet(e.policies, decision.policies)) {
        failures.push(`policies: expected [${e.policies.join(', ')}], got [${decision.policies.join(', ')}]`);
      }
      if (e.approvalRoles !== undefined && !sameSet(e.approvalRoles, decision.approvalRoles ?? [])) {
        failures.push(`approvalRoles: expected [${e.approvalRoles.join(', ')}], got [${(decision.approvalRoles ?? []).join(', ')}]`);
      }
      if (e.reason !== undefined && !decision.reasons.some((r) => r.includes(e.reason as string))) {
        failures.push(`reason: no reason contains "${e.reason}"`);
      }
    } else {
      const d = this.explainAuthzen(c.authzen as z.infer<typeof evaluationRequestSchema>);
      got = { decision: d.decision, reason: d.context?.reason_admin?.en };
      const expected = e.decision ?? (e.outcome === undefined ? undefined : e.outcome === 'allow');
      if (expected !== undefined && d.decision !== expected) failures.push(`decision: expected ${expected}, got ${d.decision}`);
      if (e.reason !== undefined && !(d.context?.reason_admin?.en ?? '').includes(e.reason))
        failures.push(`reason: does not contain "${e.reason}"`);
    }
    return { file, name: c.name, ok: failures.length === 0, failures, got };
  }
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().every((v, i) => v === [...b].sort()[i]);
}
