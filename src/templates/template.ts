// Task templates as files (DESIGN §2 "task template"): a reviewed, versioned shape for a kind of
// task, kept beside the org policy (`*.template.yaml` / `.yml` / `.json` under `policy.dir`) and
// validated when the policy set loads. A template names the tools the task may use, argument
// constraints that may refer to typed task parameters (`recipient: { eq: $params.iban }`), budgets,
// lifetime and approval defaults. A mandate is opened from a template plus parameters
// (src/templates/resolve.ts); docs/mandates.md "Task templates" is the user's reference.
import { z } from 'zod';
import { templateNameSchema } from '../agents/template.js';
import { ARG_CONSTRAINT_OPS } from '../scope/scope.js';

/** Parameter types: JSON scalars, and strings of a kind checked (and normalized) when a mandate is opened. */
export const paramTypes = [
  'string',
  'integer',
  'number',
  'amount',
  'boolean',
  'email',
  'iban',
  'url',
  'domain',
  'path',
  'date',
  'enum',
] as const;
export type ParamType = (typeof paramTypes)[number];

/** Parameter types whose values are numbers (usable in `min`, `max`, `maxLength`, `maxCalls`, `sum.max`). */
export const NUMERIC_PARAM_TYPES: ReadonlySet<ParamType> = new Set(['integer', 'number', 'amount']);

/** One declared parameter. */
export const paramSpecSchema = z
  .strictObject({
    type: z.enum(paramTypes),
    description: z.string().max(500).optional(),
    /** Default true: a request that omits it is refused. */
    required: z.boolean().default(true),
    /** A non-empty list of values of `type` (at most 100), usable only as a whole `in` list. */
    list: z.boolean().default(false),
    /** Strings: the longest value accepted. */
    maxLength: z.number().int().min(1).max(8192).optional(),
    /** Numbers: inclusive bounds. */
    min: z.number().refine(Number.isFinite).optional(),
    max: z.number().refine(Number.isFinite).optional(),
    /** `enum`: the accepted values. */
    values: z.array(z.string().min(1).max(256)).min(1).max(100).optional(),
  })
  .refine((p) => (p.type === 'enum') === (p.values !== undefined), 'type enum takes values (and only enum does)');
export type ParamSpec = z.infer<typeof paramSpecSchema>;

/** `$params.<name>`: a reference to a parameter, as a whole value. */
export const PARAM_REF = /^\$params\.([A-Za-z_][A-Za-z0-9_]{0,63})$/u;
const paramName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/u, 'letters, digits and _ (not first)');

const ref = z.string().regex(PARAM_REF, 'a parameter reference ($params.<name>)');
const scalar = z.union([z.string(), z.number().refine(Number.isFinite, 'a finite number'), z.boolean()]);
const num = z.union([z.number().refine(Number.isFinite, 'a finite number'), ref]);
const str = z.string();

/** An argument constraint of src/scope/scope.ts whose operands may be `$params.<name>`. */
export const templateConstraintSchema = z
  .strictObject({
    eq: scalar.optional(),
    in: z.union([z.array(scalar).min(1).max(1000), ref]).optional(),
    prefix: str.optional(),
    min: num.optional(),
    max: num.optional(),
    maxLength: z.union([z.number().int().min(0), ref]).optional(),
    within: str.optional(),
  })
  .refine((c) => Object.values(c).some((v) => v !== undefined), `at least one of ${ARG_CONSTRAINT_OPS.join(', ')}`);
export type TemplateConstraint = z.infer<typeof templateConstraintSchema>;

export const templateGrantSchema = z.strictObject({
  tool: z.string().min(1).max(256),
  args: z.record(z.string().min(1).max(128), templateConstraintSchema).optional(),
  maxCalls: z.union([z.number().int().min(0), ref]).optional(),
  sum: z.strictObject({ arg: z.string().min(1).max(128), max: num }).optional(),
});
export type TemplateGrant = z.infer<typeof templateGrantSchema>;

/**
 * Approval defaults: what the template says needs a human, handed to org policy as
 * `context.template.requiresApproval` (a policy decides; the template only informs it).
 */
export const approvalDefaultsSchema = z.strictObject({
  /** These tools always need an approval under this template. */
  tools: z.array(z.string().min(1).max(256)).max(500).default([]),
  /** A call with a target argument the human did not name needs an approval. */
  unnamedTargets: z.boolean().default(false),
});
export type ApprovalDefaults = z.infer<typeof approvalDefaultsSchema>;

/** A template file. */
export const templateFileSchema = z.strictObject({
  name: templateNameSchema,
  /** A positive integer; a request may pin it, else the highest loaded version serves. */
  version: z.number().int().min(1).max(1_000_000),
  description: z.string().max(2000).optional(),
  purpose: z.string().min(1).max(2000),
  taskType: z.string().min(1).max(128),
  /** Default: the agent's own environment. */
  environment: z.string().min(1).max(64).optional(),
  /** The lifetime of a mandate opened from it; a request may ask for less, never more. */
  ttlSeconds: z.number().int().min(10),
  params: z.record(paramName, paramSpecSchema).default({}),
  tools: z.array(templateGrantSchema).min(1).max(500),
  delegable: z.boolean().default(false),
  approval: approvalDefaultsSchema.default({ tools: [], unnamedTargets: false }),
});
export type TemplateFile = z.infer<typeof templateFileSchema>;

/** What a mandate opened from a template records of it (the mandate's `template` field). */
export interface TemplateRef {
  readonly name: string;
  readonly version: number;
  /** The parameters as validated and normalized. */
  readonly params: Readonly<Record<string, unknown>>;
  readonly approval: ApprovalDefaults;
}

/** Every `$params.<name>` a template refers to, with where (for load-time checks). */
export function paramRefs(t: TemplateFile): { name: string; path: string; use: 'number' | 'string' | 'scalar' | 'list' }[] {
  const out: { name: string; path: string; use: 'number' | 'string' | 'scalar' | 'list' }[] = [];
  const see = (v: unknown, path: string, use: 'number' | 'string' | 'scalar' | 'list') => {
    if (typeof v !== 'string') return;
    const m = PARAM_REF.exec(v);
    if (m !== null) out.push({ name: m[1] as string, path, use });
  };
  t.tools.forEach((g, i) => {
    const at = `tools[${i}]`;
    see(g.maxCalls, `${at}.maxCalls`, 'number');
    see(g.sum?.max, `${at}.sum.max`, 'number');
    for (const [arg, c] of Object.entries(g.args ?? {})) {
      const p = `${at}.args.${arg}`;
      see(c.eq, `${p}.eq`, 'scalar');
      if (typeof c.in === 'string') see(c.in, `${p}.in`, 'list');
      else for (const [j, v] of (c.in ?? []).entries()) see(v, `${p}.in[${j}]`, 'scalar');
      see(c.prefix, `${p}.prefix`, 'string');
      see(c.within, `${p}.within`, 'string');
      see(c.min, `${p}.min`, 'number');
      see(c.max, `${p}.max`, 'number');
      see(c.maxLength, `${p}.maxLength`, 'number');
    }
  });
  return out;
}

/**
 * Why a parsed template is inconsistent, or undefined: every reference names a declared parameter
 * of a type that fits where it is used (numbers for bounds and budgets, single values for `eq`,
 * lists only as a whole `in`), and the approval defaults name only the template's tools.
 */
export function templateProblem(t: TemplateFile): { path: string; message: string } | undefined {
  for (const r of paramRefs(t)) {
    const spec = t.params[r.name];
    if (spec === undefined) return { path: r.path, message: `refers to $params.${r.name}, which the template does not declare` };
    if (r.use === 'list' && !spec.list) return { path: r.path, message: `in: $params.${r.name} needs a list parameter (list: true)` };
    if (r.use !== 'list' && spec.list) return { path: r.path, message: `$params.${r.name} is a list; use it as a whole in list` };
    if (r.use === 'number' && !NUMERIC_PARAM_TYPES.has(spec.type)) {
      return { path: r.path, message: `$params.${r.name} is of type ${spec.type}; a bound or budget needs integer, number or amount` };
    }
    if (r.use === 'string' && (NUMERIC_PARAM_TYPES.has(spec.type) || spec.type === 'boolean')) {
      return { path: r.path, message: `$params.${r.name} is of type ${spec.type}; prefix and within need a string parameter` };
    }
  }
  const tools = new Set(t.tools.map((g) => g.tool));
  const stray = t.approval.tools.find((name) => !tools.has(name));
  if (stray !== undefined) return { path: 'approval.tools', message: `names ${stray}, which the template does not grant` };
  return undefined;
}
