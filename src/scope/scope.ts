// The scope model of a mandate: tool grants with decidable argument constraints and budgets.
// Decidable on purpose: `isSubset(child, parent)` is exact, and `matchCall` fails closed on any
// argument that is missing or of the wrong type for its constraint.
import { z } from 'zod';
import { isWithin, type NormalPath, normalizePath, withinViolation } from './path.js';

/** A JSON scalar an `eq`/`in` constraint can compare with (strict equality, no coercion). */
const scalar = z.union([z.string(), z.number().refine(Number.isFinite, 'a finite number'), z.boolean()]);
type Scalar = z.infer<typeof scalar>;

/** An absolute path with nothing to normalize away but `//` and a trailing `/` (see ./path.ts). */
const withinRoot = z.string().superRefine((v, ctx) => {
  const p = normalizePath(v);
  if (!p.ok) ctx.addIssue({ code: 'custom', message: `within ${p.reason}` });
  else if (!p.path.absolute) ctx.addIssue({ code: 'custom', message: 'within must be an absolute path' });
});

/**
 * Constraints on one argument; every op present must hold (a conjunction).
 * `prefix` and `maxLength` apply to strings, `min` and `max` to numbers (inclusive);
 * `within` to a path (a string, or a non-empty array of strings each of which must hold);
 * a value of another type fails the constraint. On an argument the catalog marks as a path,
 * `prefix` is path-aware: the value must pass `normalizePath` and its normal form must start with it.
 */
export const argConstraintSchema = z
  .strictObject({
    eq: scalar.optional(),
    in: z.array(scalar).min(1).max(1000).optional(),
    prefix: z.string().optional(),
    min: z.number().refine(Number.isFinite, 'a finite number').optional(),
    max: z.number().refine(Number.isFinite, 'a finite number').optional(),
    maxLength: z.number().int().min(0).optional(),
    within: withinRoot.optional(),
  })
  .refine((c) => Object.values(c).some((v) => v !== undefined), 'at least one of eq, in, prefix, min, max, maxLength, within');

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

/** How `prefix` reads a value: as a plain string, or as a path (normalized first, see ./path.ts). */
export type PrefixMode = 'plain' | 'path';

/** Which arguments of a tool are paths (from the catalog, `CatalogTool.pathArgs`). */
export interface MatchOptions {
  readonly pathArgs?: readonly string[] | undefined;
}

export interface SubsetOptions {
  /**
   * The path arguments of a tool, or undefined when unknown. When unknown (or the option is
   * absent) a `prefix` must narrow under both readings, plain and path-aware: refuse when unsure.
   */
  readonly pathArgs?: (tool: string) => readonly string[] | undefined;
}

/** `within` of a constraint, normalized (the schema guarantees it normalizes; fail closed if not). */
function rootOf(c: ArgConstraint): NormalPath | undefined {
  if (c.within === undefined) return undefined;
  const p = normalizePath(c.within);
  return p.ok && p.path.absolute ? p.path : undefined;
}

function withinCheck(c: ArgConstraint, value: unknown): string | undefined {
  const root = rootOf(c);
  if (root === undefined) return 'has an invalid within constraint';
  if (typeof value === 'string') return withinViolation(root, value);
  if (!Array.isArray(value)) return `must be a path or a list of paths, got ${typeName(value)}`;
  if (value.length === 0) return 'must list at least one path';
  for (const [i, item] of value.entries()) {
    if (typeof item !== 'string') return `[${i}] must be a path, got ${typeName(item)}`;
    const why = withinViolation(root, item);
    if (why !== undefined) return `[${i}] ${why}`;
  }
  return undefined;
}

/**
 * Why `value` fails `constraint`, or undefined when it satisfies it.
 * Fails closed: a missing value or a value of the wrong type never satisfies anything.
 * `mode` says how `prefix` reads the value (path-aware on arguments the catalog marks as paths).
 */
export function violation(constraint: ArgConstraint, value: unknown, mode: PrefixMode = 'plain'): string | undefined {
  if (value === undefined) return 'is missing';
  if (constraint.eq !== undefined && value !== constraint.eq) return `must equal ${show(constraint.eq)}`;
  if (constraint.in !== undefined && !constraint.in.some((v) => v === value)) {
    return `must be one of ${constraint.in.map(show).join(', ')}`;
  }
  if (constraint.prefix !== undefined || constraint.maxLength !== undefined) {
    if (typeof value !== 'string') return `must be a string, got ${typeName(value)}`;
    if (constraint.prefix !== undefined) {
      const why = prefixViolation(constraint.prefix, value, mode);
      if (why !== undefined) return why;
    }
    if (constraint.maxLength !== undefined && value.length > constraint.maxLength) {
      return `must be at most ${constraint.maxLength} characters, got ${value.length}`;
    }
  }
  if (constraint.within !== undefined) {
    const why = withinCheck(constraint, value);
    if (why !== undefined) return why;
  }
  if (constraint.min !== undefined || constraint.max !== undefined) {
    if (typeof value !== 'number' || !Number.isFinite(value)) return `must be a number, got ${typeName(value)}`;
    if (constraint.min !== undefined && value < constraint.min) return `must be >= ${constraint.min}, got ${value}`;
    if (constraint.max !== undefined && value > constraint.max) return `must be <= ${constraint.max}, got ${value}`;
  }
  return undefined;
}

function prefixViolation(prefix: string, value: string, mode: PrefixMode): string | undefined {
  if (mode === 'plain') return value.startsWith(prefix) ? undefined : `must start with ${show(prefix)}`;
  const p = normalizePath(value);
  if (!p.ok) return `is not an acceptable path: it ${p.reason}`;
  if (prefix.startsWith('/') && !p.path.absolute) return `is a relative path, the prefix ${show(prefix)} an absolute one`;
  if (!p.path.text.startsWith(prefix)) return `must start with ${show(prefix)} (as a normalized path, ${show(p.path.text)})`;
  return undefined;
}

/**
 * The first grant of `scope` that allows calling `tool` with `args` (argument constraints only;
 * budgets are counted by the policy module).
 *
 * @example
 * matchCall(scope, 'helpdesk.get_customer', { customerId: 'C-1009' }) // { ok: true, grant, index: 1 }
 */
export function matchCall(scope: Scope, tool: string, args: Record<string, unknown>, options: MatchOptions = {}): MatchResult {
  const failures: string[] = [];
  const pathArgs = options.pathArgs ?? [];
  for (const [index, grant] of scope.tools.entries()) {
    if (grant.tool !== tool) continue;
    const why = grantViolation(grant, args, pathArgs);
    if (why === undefined) return { ok: true, grant, index };
    failures.push(why);
  }
  if (failures.length === 0) return { ok: false, reason: `tool ${tool} is not granted` };
  return { ok: false, reason: `tool ${tool}: ${failures.join('; ')}` };
}

function grantViolation(grant: ToolGrant, args: Record<string, unknown>, pathArgs: readonly string[]): string | undefined {
  for (const [name, constraint] of Object.entries(grant.args ?? {})) {
    // Own properties only: an inherited `toString` is not an argument the caller sent.
    const value = Object.hasOwn(args, name) ? args[name] : undefined;
    const why = violation(constraint, value, pathArgs.includes(name) ? 'path' : 'plain');
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
export function isSubset(child: Scope, parent: Scope, options: SubsetOptions = {}): SubsetResult {
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
      const r = grantSubset(grant, p, options.pathArgs?.(grant.tool));
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

function grantSubset(
  child: ToolGrant,
  parent: ToolGrant,
  pathArgs: readonly string[] | undefined,
): { reason: string; path: string } | undefined {
  for (const [name, pc] of Object.entries(parent.args ?? {})) {
    const cc = child.args !== undefined && Object.hasOwn(child.args, name) ? child.args[name] : undefined;
    if (cc === undefined) {
      return { reason: `argument ${name} drops the parent's constraint`, path: `.args.${name}` };
    }
    // The same tool and argument, so child and parent read `prefix` the same way; when we do not
    // know which way, the child must narrow under both.
    const modes: PrefixMode[] = pathArgs === undefined ? ['plain', 'path'] : [pathArgs.includes(name) ? 'path' : 'plain'];
    for (const mode of modes) {
      const why = constraintSubset(cc, pc, mode);
      if (why !== undefined) return { reason: `argument ${name} ${why}`, path: `.args.${name}` };
    }
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
 * The values a constraint accepts, in a form that makes inclusion decidable: a finite list, an
 * interval of numbers, a set of strings (prefix + maximum length + containing directory), or
 * nothing. Strings are over-approximated where `prefix` and `within` meet (sound for the child
 * side: a larger child set only makes `isSubset` refuse more).
 */
type ValueSet =
  | { kind: 'empty' }
  | { kind: 'finite'; values: Scalar[] }
  | { kind: 'numbers'; min?: number; max?: number }
  | {
      kind: 'strings';
      prefix: string;
      maxLength?: number;
      /** Every value (or every element of an array value) is a path within this root. */
      within?: NormalPath;
      /** Whether arrays of paths are accepted too (`within` without string-only ops). */
      arrays: boolean;
    };

function valueSet(c: ArgConstraint, mode: PrefixMode): ValueSet {
  if (c.eq !== undefined || c.in !== undefined) {
    const base: Scalar[] = c.eq !== undefined ? [c.eq] : [...(c.in ?? [])];
    return { kind: 'finite', values: base.filter((v) => violation(c, v, mode) === undefined) };
  }
  const stringOnly = c.prefix !== undefined || c.maxLength !== undefined;
  const stringy = stringOnly || c.within !== undefined;
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
    // Path-aware too: normalizing only removes characters, so the raw value is at least as long.
    if (c.maxLength < prefix.length) return { kind: 'empty' };
    if (c.maxLength === prefix.length) {
      return { kind: 'finite', values: [prefix].filter((v) => violation(c, v, mode) === undefined) };
    }
  }
  const within = c.within === undefined ? undefined : rootOf(c);
  if (c.within !== undefined && within === undefined) return { kind: 'empty' };
  return {
    kind: 'strings',
    prefix,
    ...(c.maxLength === undefined ? {} : { maxLength: c.maxLength }),
    ...(within === undefined ? {} : { within }),
    arrays: within !== undefined && !stringOnly,
  };
}

/** Why `child` accepts a value `parent` refuses, or undefined when child ⊆ parent. */
function constraintSubset(child: ArgConstraint, parent: ArgConstraint, mode: PrefixMode): string | undefined {
  const cs = valueSet(child, mode);
  if (cs.kind === 'empty') return undefined;
  if (cs.kind === 'finite') {
    for (const v of cs.values) {
      const why = violation(parent, v, mode);
      if (why !== undefined) return `allows ${show(v)}, but the parent's constraint says it ${why}`;
    }
    return undefined;
  }
  const ps = valueSet(parent, mode);
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
  // The parent is a conjunction of prefix, maxLength and within: the child must fit each.
  if (parent.prefix !== undefined || parent.maxLength !== undefined) {
    if (cs.arrays) return 'allows lists of paths, the parent only a string';
  }
  if (parent.prefix !== undefined) {
    const why = prefixSubset(child, cs, ps.prefix, mode);
    if (why !== undefined) return why;
  }
  if (ps.maxLength !== undefined && (cs.maxLength === undefined || cs.maxLength > ps.maxLength)) {
    return `raises maxLength above the parent's ${ps.maxLength}`;
  }
  if (ps.within !== undefined) {
    const why = withinSubset(child, cs, ps.within, mode);
    if (why !== undefined) return why;
  }
  return undefined;
}

type StringSet = Extract<ValueSet, { kind: 'strings' }>;

/** Whether every value of the child set passes the parent's `prefix` (read per `mode`). */
function prefixSubset(child: ArgConstraint, cs: StringSet, pp: string, mode: PrefixMode): string | undefined {
  if (child.prefix !== undefined) {
    // Same reading on both sides: the normal form (or the raw value) starts with cp, so with pp.
    return cs.prefix.startsWith(pp) ? undefined : `prefix ${show(cs.prefix)} does not narrow the parent's ${show(pp)}`;
  }
  if (cs.within !== undefined && mode === 'path') {
    // Every value normalizes to the root or below it, whose text starts with the root's text.
    return cs.within.text.startsWith(pp) ? undefined : `within ${show(cs.within.text)} does not narrow the parent's prefix ${show(pp)}`;
  }
  if (cs.within !== undefined) {
    return `within ${show(cs.within.text)} does not imply the parent's prefix ${show(pp)} unless the argument is known to be a path`;
  }
  return `drops the parent's prefix ${show(pp)}`;
}

/** Whether every value of the child set is a path within the parent's root. */
function withinSubset(child: ArgConstraint, cs: StringSet, root: NormalPath, mode: PrefixMode): string | undefined {
  if (cs.within !== undefined) {
    return isWithin(cs.within, root) ? undefined : `within ${show(cs.within.text)} is not inside the parent's ${show(root.text)}`;
  }
  if (child.prefix !== undefined && mode === 'path') {
    // A normalized path starting with `<root>/` is below the root by whole segments.
    const dir = root.segments.length === 0 ? '/' : `${root.text}/`;
    return cs.prefix.startsWith(dir) ? undefined : `prefix ${show(cs.prefix)} is not inside the parent's within ${show(root.text)}`;
  }
  if (child.prefix !== undefined) {
    return `prefix ${show(cs.prefix)} does not confine a path to the parent's within ${show(root.text)} ('..' passes a plain prefix)`;
  }
  return `drops the parent's within ${show(root.text)}`;
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
export const ARG_CONSTRAINT_OPS = ['eq', 'in', 'prefix', 'min', 'max', 'maxLength', 'within'] as const;
