// The scope model of a mandate: tool grants with decidable argument constraints and budgets.
// Decidable on purpose: `isSubset(child, parent)` is exact, and `matchCall` fails closed on any
// argument that is missing or of the wrong type for its constraint.
import { z } from 'zod';

/** A JSON scalar an `eq`/`in` constraint can compare with (strict equality, no coercion). */
const scalar = z.union([z.string(), z.number().refine(Number.isFinite, 'a finite number'), z.boolean()]);
type Scalar = z.infer<typeof scalar>;

/**
 * Constraints on one argument; every op present must hold (a conjunction).
 * `prefix` and `maxLength` apply to strings, `min` and `max` to numbers (inclusive);
 * a value of another type fails the constraint.
 */
export const argConstraintSchema = z
  .strictObject({
    eq: scalar.optional(),
    in: z.array(scalar).min(1).max(1000).optional(),
    prefix: z.string().optional(),
    min: z.number().refine(Number.isFinite, 'a finite number').optional(),
    max: z.number().refine(Number.isFinite, 'a finite number').optional(),
    maxLength: z.number().int().min(0).optional(),
  })
  .refine((c) => Object.values(c).some((v) => v !== undefined), 'at least one of eq, in, prefix, min, max, maxLength');

export type ArgConstraint = z.infer<typeof argConstraintSchema>;

/** Argument names and tool names: no empty strings, no surprises in paths and Cedar records. */
const argName = z.string().min(1).max(128);

export const toolGrantSchema = z.strictObject({
  tool: z.string().min(1).max(256),
  args: z.record(argName, argConstraintSchema).optional(),
  maxCalls: z.number().int().min(0).optional(),
  sum: z.strictObject({ arg: argName, max: z.number().refine(Number.isFinite, 'a finite number').min(0) }).optional(),
});

export type ToolGrant = z.infer<typeof toolGrantSchema>;

export const scopeSchema = z.strictObject({
  tools: z.array(toolGrantSchema).max(500),
  delegable: z.boolean().default(false),
});

export type Scope = z.infer<typeof scopeSchema>;

export type SubsetResult = { ok: true } | { ok: false; reason: string; path: string };
export type MatchResult = { ok: true; grant: ToolGrant; index: number } | { ok: false; reason: string };

/**
 * Why `value` fails `constraint`, or undefined when it satisfies it.
 * Fails closed: a missing value or a value of the wrong type never satisfies anything.
 */
export function violation(constraint: ArgConstraint, value: unknown): string | undefined {
  if (value === undefined) return 'is missing';
  if (constraint.eq !== undefined && value !== constraint.eq) return `must equal ${show(constraint.eq)}`;
  if (constraint.in !== undefined && !constraint.in.some((v) => v === value)) {
    return `must be one of ${constraint.in.map(show).join(', ')}`;
  }
  if (constraint.prefix !== undefined || constraint.maxLength !== undefined) {
    if (typeof value !== 'string') return `must be a string, got ${typeName(value)}`;
    if (constraint.prefix !== undefined && !value.startsWith(constraint.prefix)) {
      return `must start with ${show(constraint.prefix)}`;
    }
    if (constraint.maxLength !== undefined && value.length > constraint.maxLength) {
      return `must be at most ${constraint.maxLength} characters, got ${value.length}`;
    }
  }
  if (constraint.min !== undefined || constraint.max !== undefined) {
    if (typeof value !== 'number' || !Number.isFinite(value)) return `must be a number, got ${typeName(value)}`;
    if (constraint.min !== undefined && value < constraint.min) return `must be >= ${constraint.min}, got ${value}`;
    if (constraint.max !== undefined && value > constraint.max) return `must be <= ${constraint.max}, got ${value}`;
  }
  return undefined;
}

/**
 * The first grant of `scope` that allows calling `tool` with `args` (argument constraints only;
 * budgets are counted by the policy module).
 *
 * @example
 * matchCall(scope, 'helpdesk.get_customer', { customerId: 'C-1009' }) // { ok: true, grant, index: 1 }
 */
export function matchCall(scope: Scope, tool: string, args: Record<string, unknown>): MatchResult {
  const failures: string[] = [];
  for (const [index, grant] of scope.tools.entries()) {
    if (grant.tool !== tool) continue;
    const why = grantViolation(grant, args);
    if (why === undefined) return { ok: true, grant, index };
    failures.push(why);
  }
  if (failures.length === 0) return { ok: false, reason: `tool ${tool} is not granted` };
  return { ok: false, reason: `tool ${tool}: ${failures.join('; ')}` };
}

function grantViolation(grant: ToolGrant, args: Record<string, unknown>): string | undefined {
  for (const [name, constraint] of Object.entries(grant.args ?? {})) {
    // Own properties only: an inherited `toString` is not an argument the caller sent.
    const value = Object.hasOwn(args, name) ? args[name] : undefined;
    const why = violation(constraint, value);
    if (why !== undefined) return `argument ${name} ${why}`;
  }
  return undefined;
}

/**
 * Whether `child` grants nothing `parent` does not: every child grant fits inside one parent grant
 * of the same tool (each parent constraint implied, budgets present and no larger), and the child
 * is delegable only if the parent is. Exact for the constraint language above.
 *
 * @example
 * isSubset({ tools: [{ tool: 'a', args: { n: { max: 5 } } }], delegable: false },
 *          { tools: [{ tool: 'a', args: { n: { max: 10 } } }], delegable: true }) // { ok: true }
 */
export function isSubset(child: Scope, parent: Scope): SubsetResult {
  if (child.delegable && !parent.delegable) {
    return { ok: false, reason: 'the parent scope is not delegable', path: 'delegable' };
  }
  for (const [i, grant] of child.tools.entries()) {
    const candidates = parent.tools.filter((p) => p.tool === grant.tool);
    if (candidates.length === 0) {
      return { ok: false, reason: `tool ${grant.tool} is not in the parent scope`, path: `tools[${i}].tool` };
    }
    let first: { reason: string; path: string } | undefined;
    for (const p of candidates) {
      const r = grantSubset(grant, p);
      if (r === undefined) {
        first = undefined;
        break;
      }
      first ??= { reason: r.reason, path: `tools[${i}]${r.path}` };
    }
    if (first !== undefined) return { ok: false, ...first };
  }
  return { ok: true };
}

function grantSubset(child: ToolGrant, parent: ToolGrant): { reason: string; path: string } | undefined {
  for (const [name, pc] of Object.entries(parent.args ?? {})) {
    const cc = child.args !== undefined && Object.hasOwn(child.args, name) ? child.args[name] : undefined;
    if (cc === undefined) {
      return { reason: `argument ${name} drops the parent's constraint`, path: `.args.${name}` };
    }
    const why = constraintSubset(cc, pc);
    if (why !== undefined) return { reason: `argument ${name} ${why}`, path: `.args.${name}` };
  }
  if (parent.maxCalls !== undefined) {
    if (child.maxCalls === undefined) return { reason: `drops the parent's maxCalls ${parent.maxCalls}`, path: '.maxCalls' };
    if (child.maxCalls > parent.maxCalls) {
      return { reason: `maxCalls ${child.maxCalls} exceeds the parent's ${parent.maxCalls}`, path: '.maxCalls' };
    }
  }
  if (parent.sum !== undefined) {
    if (child.sum === undefined || child.sum.arg !== parent.sum.arg) {
      return { reason: `drops the parent's budget on the sum of ${parent.sum.arg}`, path: '.sum' };
    }
    if (child.sum.max > parent.sum.max) {
      return { reason: `sum of ${child.sum.arg} ${child.sum.max} exceeds the parent's ${parent.sum.max}`, path: '.sum.max' };
    }
  }
  return undefined;
}

/**
 * The values a constraint accepts, in a form that makes inclusion decidable:
 * a finite list, an interval of numbers, a set of strings (prefix + maximum length), or nothing.
 */
type ValueSet =
  | { kind: 'empty' }
  | { kind: 'finite'; values: Scalar[] }
  | { kind: 'numbers'; min?: number; max?: number }
  | { kind: 'strings'; prefix: string; maxLength?: number };

function valueSet(c: ArgConstraint): ValueSet {
  if (c.eq !== undefined || c.in !== undefined) {
    const base: Scalar[] = c.eq !== undefined ? [c.eq] : [...(c.in ?? [])];
    return { kind: 'finite', values: base.filter((v) => violation(c, v) === undefined) };
  }
  const stringy = c.prefix !== undefined || c.maxLength !== undefined;
  const numeric = c.min !== undefined || c.max !== undefined;
  if (stringy && numeric) return { kind: 'empty' };
  if (numeric) {
    if (c.min !== undefined && c.max !== undefined) {
      if (c.min > c.max) return { kind: 'empty' };
      if (c.min === c.max) return { kind: 'finite', values: [c.min] };
    }
    return { kind: 'numbers', min: c.min, max: c.max };
  }
  const prefix = c.prefix ?? '';
  if (c.maxLength !== undefined) {
    if (c.maxLength < prefix.length) return { kind: 'empty' };
    if (c.maxLength === prefix.length) return { kind: 'finite', values: [prefix] };
  }
  return { kind: 'strings', prefix, maxLength: c.maxLength };
}

/** Why `child` accepts a value `parent` refuses, or undefined when child ⊆ parent. */
function constraintSubset(child: ArgConstraint, parent: ArgConstraint): string | undefined {
  const cs = valueSet(child);
  if (cs.kind === 'empty') return undefined;
  if (cs.kind === 'finite') {
    for (const v of cs.values) {
      const why = violation(parent, v);
      if (why !== undefined) return `allows ${show(v)}, but the parent's constraint says it ${why}`;
    }
    return undefined;
  }
  const ps = valueSet(parent);
  if (ps.kind === 'empty' || ps.kind === 'finite') return "allows values outside the parent's finite set";
  if (cs.kind === 'numbers') {
    if (ps.kind !== 'numbers') return 'allows numbers, the parent only strings';
    if (ps.min !== undefined && (cs.min === undefined || cs.min < ps.min)) {
      return `lowers min below the parent's ${ps.min}`;
    }
    if (ps.max !== undefined && (cs.max === undefined || cs.max > ps.max)) {
      return `raises max above the parent's ${ps.max}`;
    }
    return undefined;
  }
  if (ps.kind !== 'strings') return 'allows strings, the parent only numbers';
  if (!cs.prefix.startsWith(ps.prefix)) return `prefix ${show(cs.prefix)} does not narrow the parent's ${show(ps.prefix)}`;
  if (ps.maxLength !== undefined && (cs.maxLength === undefined || cs.maxLength > ps.maxLength)) {
    return `raises maxLength above the parent's ${ps.maxLength}`;
  }
  return undefined;
}

function show(v: Scalar): string {
  return JSON.stringify(v);
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** The constraint ops, for documentation and error messages. */
export const ARG_CONSTRAINT_OPS = ['eq', 'in', 'prefix', 'min', 'max', 'maxLength'] as const;
