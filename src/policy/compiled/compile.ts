// Compiles Cedar policies in their JSON form (EST) into plain JavaScript closures. Anything it does
// not evaluate exactly (an unknown node, a template slot, an unimplemented function) is refused with
// a reason, so the set is served by cedar-wasm instead: this compiler never guesses.
import { CONSTRUCTORS, EXTENSION_FUNCTIONS } from './extensions.js';
import { CedarError, CRecord, CSet, DateTime, Duration, equal, long, typeName, Uid, uidKey, type Value } from './values.js';

/** An entity of the request, with its ancestors (transitive parents) computed on first use. */
export interface EntityData {
  readonly attrs: ReadonlyMap<string, Value>;
  readonly tags: ReadonlyMap<string, Value>;
  /** Keys (`Type::"id"`) of all ancestors. */
  ancestors(): ReadonlySet<string>;
}

/** What one request is evaluated against. */
export interface Env {
  readonly principal: Uid;
  readonly action: Uid;
  readonly resource: Uid;
  readonly context: CRecord;
  entity(uid: Uid): EntityData | undefined;
}

export type Expr = (env: Env) => Value;

/** A refusal: this policy (set) cannot be compiled exactly. */
export class Refusal extends Error {}

// biome-ignore lint/suspicious/noExplicitAny: the EST is untyped JSON, checked node by node.
type Json = any;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const asBool = (v: Value, what: string): boolean => {
  if (typeof v !== 'boolean') throw new CedarError(`${what}: expected Bool, got ${typeName(v)}`);
  return v;
};
const asLong = (v: Value, what: string): number => {
  if (typeof v !== 'number') throw new CedarError(`${what}: expected Long, got ${typeName(v)}`);
  return v;
};
const asEntity = (v: Value, what: string): Uid => {
  if (!(v instanceof Uid)) throw new CedarError(`${what}: expected an entity, got ${typeName(v)}`);
  return v;
};
const asSet = (v: Value, what: string): CSet => {
  if (!(v instanceof CSet)) throw new CedarError(`${what}: expected a Set, got ${typeName(v)}`);
  return v;
};
const asString = (v: Value, what: string): string => {
  if (typeof v !== 'string') throw new CedarError(`${what}: expected String, got ${typeName(v)}`);
  return v;
};

/** Cedar `in`: `a` equals or descends from `b`, or from any entity of the set `b`. */
export function entityIn(env: Env, a: Value, b: Value): boolean {
  const lhs = asEntity(a, 'in');
  let targets: Uid[];
  if (b instanceof Uid) targets = [b];
  else if (b instanceof CSet) targets = b.items.map((x) => asEntity(x, 'in'));
  else throw new CedarError(`in: expected an entity or a set, got ${typeName(b)}`);
  let ancestors: ReadonlySet<string> | undefined;
  for (const t of targets) {
    if (t.type === lhs.type && t.id === lhs.id) return true;
    ancestors ??= env.entity(lhs)?.ancestors() ?? new Set();
    if (ancestors.has(t.key)) return true;
  }
  return false;
}

function getAttr(env: Env, v: Value, attr: string): Value {
  if (v instanceof CRecord) {
    const x = v.attrs.get(attr);
    if (x === undefined) throw new CedarError(`record has no attribute ${attr}`);
    return x;
  }
  if (v instanceof Uid) {
    const e = env.entity(v);
    if (e === undefined) throw new CedarError(`entity ${v} does not exist`);
    const x = e.attrs.get(attr);
    if (x === undefined) throw new CedarError(`entity ${v} has no attribute ${attr}`);
    return x;
  }
  throw new CedarError(`.${attr}: expected a record or an entity, got ${typeName(v)}`);
}

function hasAttr(env: Env, v: Value, attr: string): boolean {
  if (v instanceof CRecord) return v.attrs.has(attr);
  if (v instanceof Uid) return env.entity(v)?.attrs.has(attr) === true;
  throw new CedarError(`has ${attr}: expected a record or an entity, got ${typeName(v)}`);
}

type PatternPart = { literal: number[] } | 'wildcard';

/** Cedar `like`: `*` matches any sequence of characters (code points); linear-space backtracking. */
export function matchLike(text: string, pattern: readonly PatternPart[]): boolean {
  const s = Array.from(text, (c) => c.codePointAt(0) as number);
  const p: (number | -1)[] = [];
  for (const part of pattern) {
    if (part === 'wildcard') p.push(-1);
    else p.push(...part.literal);
  }
  let i = 0;
  let j = 0;
  let star = -1;
  let mark = 0;
  while (i < s.length) {
    if (j < p.length && p[j] !== -1 && p[j] === s[i]) {
      i++;
      j++;
    } else if (j < p.length && p[j] === -1) {
      star = j++;
      mark = i;
    } else if (star >= 0) {
      j = star + 1;
      i = ++mark;
    } else return false;
  }
  while (j < p.length && p[j] === -1) j++;
  return j === p.length;
}

/** A Cedar JSON value (EST `Value` node, entity data) as a Value, without a schema. */
export function literal(v: Json): Value {
  if (typeof v === 'boolean' || typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new Refusal(`the number ${v} is not a safe integer`);
    return v;
  }
  if (Array.isArray(v)) return new CSet(v.map(literal));
  if (isObj(v)) {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === '__entity') {
      const e = v.__entity as Json;
      if (!isObj(e) || typeof e.type !== 'string' || typeof e.id !== 'string') throw new Refusal('malformed __entity');
      return new Uid(e.type, e.id);
    }
    if (keys.includes('__entity') || keys.includes('__extn')) throw new Refusal('an __extn or unusual __entity literal');
    return new CRecord(new Map(keys.map((k) => [k, literal(v[k])])));
  }
  throw new Refusal(`unsupported literal ${JSON.stringify(v)}`);
}

const BINARY_LONG: Record<string, (a: bigint, b: bigint) => bigint> = {
  '+': (a, b) => a + b,
  '-': (a, b) => a - b,
  '*': (a, b) => a * b,
};

const COMPARE: Record<string, (a: number | bigint, b: number | bigint) => boolean> = {
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
};

/** Compiles one EST expression node. Throws Refusal for anything not evaluated exactly. */
export function compileExpr(node: Json): Expr {
  if (!isObj(node)) throw new Refusal(`malformed expression ${JSON.stringify(node)}`);
  const keys = Object.keys(node);
  if (keys.length !== 1) throw new Refusal(`malformed expression with keys ${keys.join(', ')}`);
  const kind = keys[0] as string;
  const body = node[kind] as Json;
  switch (kind) {
    case 'Value': {
      const v = literal(body);
      return () => v;
    }
    case 'Var':
      switch (body) {
        case 'principal':
          return (env) => env.principal;
        case 'action':
          return (env) => env.action;
        case 'resource':
          return (env) => env.resource;
        case 'context':
          return (env) => env.context;
      }
      throw new Refusal(`unknown variable ${String(body)}`);
    case 'Slot':
      throw new Refusal('template slots (template-linked policies) are not compiled');
    case 'Unknown':
      throw new Refusal('partial-evaluation unknowns are not compiled');
    case '!': {
      const a = compileExpr(body.arg);
      return (env) => !asBool(a(env), '!');
    }
    case 'neg': {
      const a = compileExpr(body.arg);
      return (env) => long(-BigInt(asLong(a(env), 'neg')), 'negation');
    }
    case '==':
    case '!=': {
      const l = compileExpr(body.left);
      const r = compileExpr(body.right);
      return kind === '==' ? (env) => equal(l(env), r(env)) : (env) => !equal(l(env), r(env));
    }
    case '<':
    case '<=':
    case '>':
    case '>=': {
      const l = compileExpr(body.left);
      const r = compileExpr(body.right);
      const cmp = COMPARE[kind] as (a: number | bigint, b: number | bigint) => boolean;
      return (env) => {
        const a = l(env);
        const b = r(env);
        if (typeof a === 'number' && typeof b === 'number') return cmp(a, b);
        if ((a instanceof DateTime && b instanceof DateTime) || (a instanceof Duration && b instanceof Duration)) return cmp(a.ms, b.ms);
        throw new CedarError(`${kind}: cannot compare ${typeName(a)} with ${typeName(b)}`);
      };
    }
    case '+':
    case '-':
    case '*': {
      const l = compileExpr(body.left);
      const r = compileExpr(body.right);
      const op = BINARY_LONG[kind] as (a: bigint, b: bigint) => bigint;
      return (env) => {
        const a = asLong(l(env), kind);
        const b = asLong(r(env), kind);
        const n = kind === '+' ? a + b : kind === '-' ? a - b : a * b;
        return Number.isSafeInteger(n) ? n : long(op(BigInt(a), BigInt(b)), kind);
      };
    }
    case '&&': {
      const l = compileExpr(body.left);
      const r = compileExpr(body.right);
      return (env) => asBool(l(env), '&&') && asBool(r(env), '&&');
    }
    case '||': {
      const l = compileExpr(body.left);
      const r = compileExpr(body.right);
      return (env) => asBool(l(env), '||') || asBool(r(env), '||');
    }
    case 'if-then-else': {
      const c = compileExpr(body.if);
      const t = compileExpr(body.then);
      const e = compileExpr(body.else);
      return (env) => (asBool(c(env), 'if') ? t(env) : e(env));
    }
    case 'in': {
      const l = compileExpr(body.left);
      const r = compileExpr(body.right);
      return (env) => entityIn(env, l(env), r(env));
    }
    case 'contains': {
      const l = compileExpr(body.left);
      const r = compileExpr(body.right);
      return (env) => {
        const s = asSet(l(env), 'contains');
        return s.has(r(env));
      };
    }
    case 'containsAll':
    case 'containsAny': {
      const l = compileExpr(body.left);
      const r = compileExpr(body.right);
      const all = kind === 'containsAll';
      return (env) => {
        const a = asSet(l(env), kind);
        const b = asSet(r(env), kind);
        return all ? b.items.every((x) => a.has(x)) : b.items.some((x) => a.has(x));
      };
    }
    case 'isEmpty': {
      const a = compileExpr(body.arg);
      return (env) => asSet(a(env), 'isEmpty').items.length === 0;
    }
    case 'hasTag':
    case 'getTag': {
      const l = compileExpr(body.left);
      const r = compileExpr(body.right);
      const get = kind === 'getTag';
      return (env) => {
        const e = asEntity(l(env), kind);
        const tag = asString(r(env), kind);
        const data = env.entity(e);
        if (!get) return data?.tags.has(tag) === true;
        if (data === undefined) throw new CedarError(`entity ${e} does not exist`);
        const v = data.tags.get(tag);
        if (v === undefined) throw new CedarError(`entity ${e} has no tag ${tag}`);
        return v;
      };
    }
    case '.': {
      const l = compileExpr(body.left);
      const attr = body.attr;
      if (typeof attr !== 'string') throw new Refusal('malformed attribute access');
      return (env) => getAttr(env, l(env), attr);
    }
    case 'has': {
      const l = compileExpr(body.left);
      const path: unknown = body.attr;
      const attrs = typeof path === 'string' ? [path] : path;
      if (!Array.isArray(attrs) || attrs.length === 0 || attrs.some((a) => typeof a !== 'string')) {
        throw new Refusal('malformed has');
      }
      // `e has a.b` is `e has a && e.a has b`.
      return (env) => {
        let v = l(env);
        for (let i = 0; i < attrs.length; i++) {
          if (!hasAttr(env, v, attrs[i])) return false;
          if (i < attrs.length - 1) v = getAttr(env, v, attrs[i]);
        }
        return true;
      };
    }
    case 'like': {
      const l = compileExpr(body.left);
      const pattern: PatternPart[] = [];
      if (!Array.isArray(body.pattern)) throw new Refusal('malformed like pattern');
      for (const part of body.pattern as Json[]) {
        if (part === 'Wildcard') pattern.push('wildcard');
        else if (isObj(part) && typeof part.Literal === 'string' && Object.keys(part).length === 1) {
          pattern.push({ literal: Array.from(part.Literal as string, (c) => c.codePointAt(0) as number) });
        } else throw new Refusal(`unknown like pattern element ${JSON.stringify(part)}`);
      }
      return (env) => matchLike(asString(l(env), 'like'), pattern);
    }
    case 'is': {
      const l = compileExpr(body.left);
      const type = body.entity_type;
      if (typeof type !== 'string') throw new Refusal('malformed is');
      if (body.in === undefined) return (env) => asEntity(l(env), 'is').type === type;
      const r = compileExpr(body.in);
      return (env) => {
        const v = l(env);
        return asEntity(v, 'is').type === type && entityIn(env, v, r(env));
      };
    }
    case 'Set': {
      if (!Array.isArray(body)) throw new Refusal('malformed set');
      const items = (body as Json[]).map(compileExpr);
      return (env) => new CSet(items.map((i) => i(env)));
    }
    case 'Record': {
      if (!isObj(body)) throw new Refusal('malformed record');
      const entries = Object.entries(body).map(([k, v]) => [k, compileExpr(v)] as const);
      return (env) => new CRecord(new Map(entries.map(([k, e]) => [k, e(env)])));
    }
  }
  const ext = EXTENSION_FUNCTIONS.get(kind);
  if (ext !== undefined) {
    if (!Array.isArray(body) || body.length !== ext.arity) throw new Refusal(`${kind} takes ${ext.arity} argument(s)`);
    const args = (body as Json[]).map(compileExpr);
    const fn = ext.fn;
    // A constructor over a string literal is evaluated once (its error, if any, at every use).
    if (CONSTRUCTORS.has(kind) && isObj(body[0]) && typeof body[0].Value === 'string') {
      try {
        const v = fn([body[0].Value]);
        return () => v;
      } catch (err) {
        if (!(err instanceof CedarError)) throw err;
        return () => {
          throw err;
        };
      }
    }
    return (env) => fn(args.map((a) => a(env)));
  }
  throw new Refusal(`the expression kind "${kind}" is not compiled`);
}

/** A compiled scope constraint on principal or resource, or on action. */
function compileScope(which: 'principal' | 'resource', c: Json): ((env: Env) => boolean) | undefined {
  if (!isObj(c)) throw new Refusal(`malformed ${which} scope`);
  const get = which === 'principal' ? (env: Env) => env.principal : (env: Env) => env.resource;
  if ('slot' in c) throw new Refusal('template slots (template-linked policies) are not compiled');
  const uid = (e: Json): Uid => {
    const v = literal({ __entity: e });
    return v as Uid;
  };
  switch (c.op) {
    case 'All':
      return undefined;
    case '==': {
      const u = uid(c.entity);
      return (env) => equal(get(env), u);
    }
    case 'in': {
      const u = uid(c.entity);
      return (env) => entityIn(env, get(env), u);
    }
    case 'is': {
      const type = c.entity_type;
      if (typeof type !== 'string') throw new Refusal('malformed is scope');
      if (c.in === undefined) return (env) => get(env).type === type;
      if (!isObj(c.in) || 'slot' in c.in) throw new Refusal('template slots (template-linked policies) are not compiled');
      const u = uid(c.in.entity);
      return (env) => get(env).type === type && entityIn(env, get(env), u);
    }
  }
  throw new Refusal(`unknown ${which} scope operator ${String(c.op)}`);
}

/** The action scope as the set of action uids it admits (`undefined`: any action). */
function actionScope(c: Json): Uid[] | { in: Uid[] } | undefined {
  if (!isObj(c)) throw new Refusal('malformed action scope');
  const uid = (e: Json) => literal({ __entity: e }) as Uid;
  switch (c.op) {
    case 'All':
      return undefined;
    case '==':
      return [uid(c.entity)];
    case 'in':
      if (Array.isArray(c.entities)) return { in: (c.entities as Json[]).map(uid) };
      return { in: [uid(c.entity)] };
  }
  throw new Refusal(`unknown action scope operator ${String(c.op)}`);
}

export interface CompiledPolicy {
  readonly id: string;
  readonly forbid: boolean;
  /** The action uids (keys) the scope admits, for indexing; undefined: every action. */
  readonly actions: readonly Uid[] | { readonly in: readonly Uid[] } | undefined;
  /** True when the policy is satisfied; throws CedarError when it errors. */
  readonly test: (env: Env) => boolean;
}

/** Compiles one static policy from its EST. */
export function compilePolicy(id: string, est: Json): CompiledPolicy {
  if (!isObj(est)) throw new Refusal('malformed policy');
  if (est.effect !== 'permit' && est.effect !== 'forbid') throw new Refusal(`unknown effect ${String(est.effect)}`);
  const known = new Set(['effect', 'principal', 'action', 'resource', 'conditions', 'annotations']);
  for (const k of Object.keys(est)) if (!known.has(k)) throw new Refusal(`unknown policy field "${k}"`);
  const principal = compileScope('principal', est.principal);
  const resource = compileScope('resource', est.resource);
  const actions = actionScope(est.action);
  const actionTest = actions === undefined ? undefined : actionPredicate(actions);
  const conditions = (Array.isArray(est.conditions) ? est.conditions : []).map((c: Json) => {
    if (!isObj(c) || (c.kind !== 'when' && c.kind !== 'unless')) throw new Refusal('malformed condition');
    const e = compileExpr(c.body);
    const when = c.kind === 'when';
    return (env: Env) => asBool(e(env), c.kind as string) === when;
  }) as ((env: Env) => boolean)[];
  const checks = [principal, actionTest, resource, ...conditions].filter((x): x is (env: Env) => boolean => x !== undefined);
  const test =
    checks.length === 0
      ? () => true
      : (env: Env) => {
          for (const c of checks) if (!c(env)) return false;
          return true;
        };
  return { id, forbid: est.effect === 'forbid', actions, test };
}

function actionPredicate(a: Uid[] | { in: Uid[] }): (env: Env) => boolean {
  if (Array.isArray(a)) {
    const u = a[0] as Uid;
    return (env) => env.action.type === u.type && env.action.id === u.id;
  }
  const set = new CSet(a.in);
  return (env) => entityIn(env, env.action, set);
}

export { uidKey };
