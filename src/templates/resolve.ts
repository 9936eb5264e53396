// Opening a mandate from a task template: the request names a template (and optionally its
// version) with parameters; the parameters are validated against the template's declarations
// (unknown, missing or ill-typed ones refused), normalized, and substituted into the template's
// constraints and budgets. The result is an ordinary mandate request, checked like any other.
import { z } from 'zod';
import { templateNameSchema } from '../agents/template.js';
import { MandateError } from '../errors/index.js';
import { MAX_REQUEST_CHARS } from '../intent/binding.js';
import { normalizeDate, normalizeEmail, normalizeHost, normalizeIban, normalizeUrl } from '../intent/entities.js';
import { normalizePath } from '../scope/path.js';
import { type ToolGrant, toolGrantSchema } from '../scope/scope.js';
import { PARAM_REF, type ParamSpec, type TemplateFile, type TemplateRef } from './template.js';

/** The `authorization_details` entry (type `mandate`) that asks for a mandate from a template. */
export const templateRequestSchema = z.strictObject({
  type: z.literal('mandate'),
  template: templateNameSchema,
  /** Pin a version; default: the highest loaded. */
  version: z.number().int().min(1).optional(),
  params: z.record(z.string().max(64), z.unknown()).default({}),
  /** The human's request, as they wrote it: what intent binding compares arguments with. */
  request: z.string().min(1).max(MAX_REQUEST_CHARS).optional(),
  /** Default: the template's purpose. */
  purpose: z.string().min(1).max(2000).optional(),
  /** Default and maximum: the template's lifetime. */
  ttlSeconds: z.number().int().min(10).optional(),
  /** Default: the template's, else the agent's. */
  environment: z.string().min(1).max(64).optional(),
});
export type TemplateRequest = z.infer<typeof templateRequestSchema>;

/** What a template and its parameters resolve to (the fields of a mandate request). */
export interface ResolvedTemplate {
  readonly purpose: string;
  readonly taskType: string;
  readonly environment: string | undefined;
  readonly ttlSeconds: number;
  readonly tools: ToolGrant[];
  readonly delegable: boolean;
  readonly request: string | undefined;
  readonly template: TemplateRef;
}

const paramsError = (t: TemplateFile, message: string, param?: string) =>
  new MandateError('ERR_TEMPLATE_PARAMS', `template ${t.name} v${t.version}: ${message}`, {
    details: { template: t.name, version: t.version, ...(param === undefined ? {} : { param }) },
  });

/** The zod schema of one parameter value, normalizing as it validates. */
function valueSchema(spec: ParamSpec): z.ZodType<unknown> {
  const kind = (f: (s: string) => string | undefined, what: string) =>
    z
      .string()
      .max(spec.maxLength ?? 2048)
      .transform((s, ctx) => {
        const v = f(s);
        if (v === undefined) ctx.addIssue({ code: 'custom', message: `is not ${what}` });
        return v ?? s;
      });
  const bounded = (n: z.ZodNumber) => {
    let out = n;
    if (spec.min !== undefined) out = out.min(spec.min);
    if (spec.max !== undefined) out = out.max(spec.max);
    return out;
  };
  switch (spec.type) {
    case 'string':
      return z
        .string()
        .min(1)
        .max(spec.maxLength ?? 2048);
    case 'integer':
      return bounded(z.number().int());
    case 'number':
      return bounded(z.number()).refine(Number.isFinite, 'a finite number');
    case 'amount':
      return bounded(z.number().min(0)).refine(Number.isFinite, 'a finite number');
    case 'boolean':
      return z.boolean();
    case 'email':
      return kind(normalizeEmail, 'an e-mail address');
    case 'iban':
      return kind(normalizeIban, 'an IBAN with a valid checksum');
    case 'url':
      return kind((s) => normalizeUrl(s)?.url, 'an http(s) URL');
    case 'domain':
      return kind(normalizeHost, 'a domain name');
    case 'path':
      return kind((s) => {
        const p = normalizePath(s);
        return p.ok ? p.path.text : undefined;
      }, 'an acceptable path (no .., no encoded or control characters)');
    case 'date':
      return kind((s) => {
        const d = normalizeDate(s);
        return d?.startsWith('--') === false ? d : undefined;
      }, 'a date with a year (YYYY-MM-DD)');
    case 'enum':
      return z.enum((spec.values ?? []) as [string, ...string[]]);
  }
}

/**
 * Validates `params` against the template's declarations: unknown parameters, missing required
 * ones and values of the wrong type are refused (ERR_TEMPLATE_PARAMS, naming the parameter).
 * Returns the normalized values (IBANs compact and upper-case, e-mail addresses and hosts
 * lower-case, URLs and paths in normal form).
 */
export function validateParams(t: TemplateFile, params: Readonly<Record<string, unknown>>): Record<string, unknown> {
  for (const name of Object.keys(params)) {
    if (!Object.hasOwn(t.params, name)) throw paramsError(t, `unknown parameter "${name.slice(0, 64)}"`, name.slice(0, 64));
  }
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(t.params)) {
    const value = params[name];
    if (value === undefined || value === null) {
      if (spec.required) throw paramsError(t, `parameter "${name}" (${spec.type}${spec.list ? ' list' : ''}) is required`, name);
      continue;
    }
    const schema = spec.list ? z.array(valueSchema(spec)).min(1).max(100) : valueSchema(spec);
    const r = schema.safeParse(value);
    if (!r.success) {
      const issue = r.error.issues[0];
      const at = issue?.path.length ? `[${issue.path.join('.')}]` : '';
      throw paramsError(t, `parameter "${name}"${at} ${issue?.message ?? 'is invalid'}`, name);
    }
    out[name] = r.data;
  }
  return out;
}

/** A marker for "this grant refers to an optional parameter that was not given". */
const ABSENT: unique symbol = Symbol('absent');

function sub(v: unknown, params: Readonly<Record<string, unknown>>): unknown {
  if (typeof v !== 'string') return v;
  const m = PARAM_REF.exec(v);
  if (m === null) return v;
  const name = m[1] as string;
  return Object.hasOwn(params, name) ? params[name] : ABSENT;
}

/**
 * The template's grants with parameters substituted. A grant that refers to an optional parameter
 * the request did not give is left out (the mandate grants less, never more).
 */
export function substituteGrants(t: TemplateFile, params: Readonly<Record<string, unknown>>): ToolGrant[] {
  const out: ToolGrant[] = [];
  for (const [i, g] of t.tools.entries()) {
    const grant: Record<string, unknown> = { tool: g.tool };
    const values: unknown[] = [];
    const put = (obj: Record<string, unknown>, key: string, v: unknown) => {
      if (v === undefined) return;
      values.push(v);
      obj[key] = v;
    };
    if (g.args !== undefined) {
      const args: Record<string, unknown> = {};
      for (const [arg, c] of Object.entries(g.args)) {
        const constraint: Record<string, unknown> = {};
        put(constraint, 'eq', sub(c.eq, params));
        if (typeof c.in === 'string') put(constraint, 'in', sub(c.in, params));
        else if (c.in !== undefined) put(constraint, 'in', substituteList(c.in, params));
        put(constraint, 'prefix', sub(c.prefix, params));
        put(constraint, 'within', sub(c.within, params));
        put(constraint, 'min', sub(c.min, params));
        put(constraint, 'max', sub(c.max, params));
        put(constraint, 'maxLength', sub(c.maxLength, params));
        args[arg] = constraint;
      }
      grant.args = args;
    }
    put(grant, 'maxCalls', sub(g.maxCalls, params));
    if (g.sum !== undefined) {
      const max = sub(g.sum.max, params);
      values.push(max);
      grant.sum = { arg: g.sum.arg, max };
    }
    if (values.includes(ABSENT)) continue;
    const parsed = toolGrantSchema.safeParse(grant);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw paramsError(
        t,
        `tools[${i}].${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'} once the parameters are substituted`,
      );
    }
    out.push(parsed.data);
  }
  return out;
}

function substituteList(list: readonly unknown[], params: Readonly<Record<string, unknown>>): unknown {
  const out: unknown[] = [];
  for (const v of list) {
    const s = sub(v, params);
    if (s === ABSENT) continue; // an optional element not given: the list allows less
    out.push(s);
  }
  return out.length === 0 ? ABSENT : out;
}

/**
 * Resolves a template request against a loaded template: parameters validated and substituted,
 * lifetime at most the template's, the request text kept.
 *
 * @example
 * resolveTemplate(file, { type: 'mandate', template: 'payments.transfer', params: { iban: 'DE89 3704 0044 0532 0130 00', amount: 120 },
 *                         request: 'Pay my electricity bill, DE89 3704 0044 0532 0130 00, 120 EUR' })
 * // { tools: [{ tool: 'bank.send_money', args: { recipient: { eq: 'DE89370400440532013000' }, amount: { max: 120 } }, maxCalls: 1 }], … }
 */
export function resolveTemplate(t: TemplateFile, req: Omit<TemplateRequest, 'type' | 'template'>): ResolvedTemplate {
  if (req.version !== undefined && req.version !== t.version) {
    throw new MandateError('ERR_TEMPLATE_UNKNOWN', `template ${t.name} has no version ${req.version} loaded (loaded: ${t.version})`, {
      details: { template: t.name, version: req.version },
    });
  }
  if (req.ttlSeconds !== undefined && req.ttlSeconds > t.ttlSeconds) {
    throw paramsError(t, `ttlSeconds ${req.ttlSeconds} exceeds the template's ${t.ttlSeconds}`);
  }
  const params = validateParams(t, req.params ?? {});
  return {
    purpose: req.purpose ?? t.purpose,
    taskType: t.taskType,
    environment: req.environment ?? t.environment,
    ttlSeconds: req.ttlSeconds ?? t.ttlSeconds,
    tools: substituteGrants(t, params),
    delegable: t.delegable,
    request: req.request,
    template: { name: t.name, version: t.version, params, approval: t.approval },
  };
}
