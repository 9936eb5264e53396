// The schema as the compiled engine uses it, and requests turned into Values under it. Cedar checks
// a request and its entities against the schema before evaluating; so does this module, and
// anything it cannot check exactly (or that Cedar would reject) goes to cedar-wasm instead.
import type { EntityData, Env } from './compile.js';
import { literal, Refusal } from './compile.js';
import { CONSTRUCTORS, EXTENSION_TYPES } from './extensions.js';
import { CedarError, CRecord, CSet, Uid, Unsupported, uidKey, type Value } from './values.js';

// biome-ignore lint/suspicious/noExplicitAny: schema and request JSON are checked field by field.
type Json = any;

interface EntityTypeDef {
  readonly shape: Json | undefined;
  readonly memberOf: ReadonlySet<string>;
  readonly tags: Json | undefined;
  /** For an enumerated entity type: its only valid ids. */
  readonly enum: ReadonlySet<string> | undefined;
  attrs: (v: Json) => CRecord;
  tagValue: ((v: Json) => Value) | undefined;
}

interface ActionDef {
  readonly uid: Uid;
  readonly principals: ReadonlySet<string>;
  readonly resources: ReadonlySet<string>;
  readonly context: Json | undefined;
  readonly parents: readonly string[];
  /** Keys of all ancestor action groups (transitive). */
  ancestors: ReadonlySet<string>;
  contextOf: (v: Json) => CRecord;
}

export interface Schema {
  readonly entities: ReadonlyMap<string, EntityTypeDef>;
  readonly actions: ReadonlyMap<string, ActionDef>;
  /** Entity types of actions (`Action`, `Ns::Action`). */
  readonly actionTypes: ReadonlySet<string>;
  readonly common: ReadonlyMap<string, Json>;
}

const unset = (): never => {
  throw new Error('schema not read');
};
const isObj = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);
const PRIMITIVES = new Set(['String', 'Long', 'Bool', 'Boolean', 'Set', 'Record', 'Entity', 'Extension']);

/** Indexes a resolved JSON schema (`schemaToJsonWithResolvedTypes`); refuses what it cannot model. */
export function readSchema(json: Json): Schema {
  const entities = new Map<string, EntityTypeDef>();
  const actions = new Map<string, ActionDef>();
  const common = new Map<string, Json>();
  const types: Json[] = [];
  for (const [ns, def] of Object.entries(json as Record<string, Json>)) {
    const q = (name: string) => (ns === '' ? name : `${ns}::${name}`);
    for (const [name, t] of Object.entries((def.commonTypes ?? {}) as Record<string, Json>)) {
      common.set(q(name), t);
      types.push(t);
    }
    for (const [name, t] of Object.entries((def.entityTypes ?? {}) as Record<string, Json>)) {
      const known = new Set(['shape', 'memberOfTypes', 'tags', 'annotations', 'enum']);
      for (const k of Object.keys(t)) if (!known.has(k)) throw new Refusal(`entity type field "${k}" is not compiled`);
      if (t.enum !== undefined && (!Array.isArray(t.enum) || t.shape !== undefined || t.tags !== undefined)) {
        throw new Refusal(`enumerated entity type ${q(name)} with attributes or tags is not compiled`);
      }
      entities.set(q(name), {
        shape: t.shape,
        memberOf: new Set((t.memberOfTypes ?? []) as string[]),
        tags: t.tags,
        enum: t.enum === undefined ? undefined : new Set(t.enum as string[]),
        attrs: unset,
        tagValue: undefined,
      });
      if (t.shape !== undefined) types.push(t.shape);
      if (t.tags !== undefined) types.push(t.tags);
    }
    for (const [name, a] of Object.entries((def.actions ?? {}) as Record<string, Json>)) {
      const known = new Set(['appliesTo', 'memberOf', 'annotations']);
      for (const k of Object.keys(a)) if (!known.has(k)) throw new Refusal(`action field "${k}" is not compiled`);
      if (a.attributes !== undefined) throw new Refusal('action attributes are not compiled');
      const uid = new Uid(q('Action'), name);
      const parents = ((a.memberOf ?? []) as Json[]).map((m) => uidKey(m.type ?? q('Action'), m.id));
      const to = a.appliesTo;
      actions.set(uid.key, {
        uid,
        principals: new Set((to?.principalTypes ?? []) as string[]),
        resources: new Set((to?.resourceTypes ?? []) as string[]),
        context: to?.context,
        parents,
        ancestors: new Set(),
        contextOf: unset,
      });
      if (to?.context !== undefined) types.push(to.context);
    }
  }
  const schema = { entities, actions, common, actionTypes: new Set([...actions.values()].map((a) => a.uid.type)) };
  for (const name of [...common.keys(), ...entities.keys()]) {
    if (PRIMITIVES.has(name) || EXTENSION_TYPES.has(name)) throw new Refusal(`a declared type shadows the built-in ${name}`);
  }
  for (const t of types) checkType(schema, t, 0);
  for (const a of actions.values()) {
    a.ancestors = closure(a.uid.key, (k) => actions.get(k)?.parents ?? []);
    a.contextOf = recordConverter(schema, a.context);
  }
  for (const e of entities.values()) {
    e.attrs = recordConverter(schema, e.shape);
    e.tagValue = e.tags === undefined ? undefined : converter(schema, e.tags);
  }
  return schema;
}

/** Refuses types this module does not model (unknown names, open records). */
function checkType(schema: Schema, t: Json, depth: number): void {
  if (depth > 32) throw new Refusal('schema types nest too deeply');
  if (!isObj(t) || typeof t.type !== 'string') throw new Refusal('malformed schema type');
  unqualify(t);
  if (t.additionalAttributes === true) throw new Refusal('records with additionalAttributes are not compiled');
  if (t.type === 'Set') {
    checkType(schema, t.element, depth + 1);
    return;
  }
  if (t.type === 'Record') {
    for (const a of Object.values((t.attributes ?? {}) as Record<string, Json>)) checkType(schema, a, depth + 1);
    return;
  }
  if (t.type === 'Entity' || t.type === 'EntityOrCommon') {
    if (!schema.entities.has(t.name) && !schema.common.has(t.name)) throw new Refusal(`unknown type ${String(t.name)}`);
    return;
  }
  if (t.type === 'Extension') {
    if (!EXTENSION_TYPES.has(t.name)) throw new Refusal(`extension type ${String(t.name)} is not compiled`);
    return;
  }
  if (PRIMITIVES.has(t.type) || EXTENSION_TYPES.has(t.type) || schema.common.has(t.type)) return;
  if (schema.entities.has(t.type)) return;
  throw new Refusal(`unknown schema type ${t.type}`);
}

// `__cedar::String` is the built-in String even where a namespace declares its own `String`.
function unqualify(t: Json): void {
  if (t.type.startsWith('__cedar::')) t.type = t.type.slice('__cedar::'.length);
  if (typeof t.name === 'string' && t.name.startsWith('__cedar::')) t.name = t.name.slice('__cedar::'.length);
}

function closure(start: string, parents: (k: string) => readonly string[]): Set<string> {
  const out = new Set<string>();
  const todo = [...parents(start)];
  while (todo.length > 0) {
    const k = todo.pop() as string;
    if (out.has(k)) continue;
    out.add(k);
    todo.push(...parents(k));
  }
  return out;
}

/** A request value that Cedar would reject under the schema (cedar-wasm answers it with its error). */
class Invalid extends Unsupported {
  /** Where, innermost last once unwound (attribute names, `[i]`). */
  readonly at: string[] = [];
  readonly why: string;
  constructor(why: string) {
    super(why);
    this.why = why;
  }
}

const invalid = (why: string) => new Invalid(why);

/** The number of own enumerable keys (plain JSON objects), without allocating. */
function keyCount(o: Record<string, Json>): number {
  let n = 0;
  for (const k in o) if (Object.hasOwn(o, k)) n++;
  return n;
}

function uidOf(schema: Schema, v: Json, what: string): Uid {
  let inner = v;
  if (isObj(v) && v.__entity !== undefined) {
    if (keyCount(v) !== 1) throw invalid(`${what} is not an entity reference`);
    inner = v.__entity;
  }
  if (!isObj(inner) || typeof inner.type !== 'string' || typeof inner.id !== 'string' || keyCount(inner) !== 2) {
    throw invalid(`${what} is not an entity reference`);
  }
  const allowed = schema.entities.get(inner.type)?.enum;
  if (allowed !== undefined && !allowed.has(inner.id)) throw invalid(`${what} is not one of the enumerated ${inner.type} ids`);
  return new Uid(inner.type, inner.id);
}

type Conv = (v: Json) => Value;

/** A converter from Cedar JSON to a Value of schema type `t` (Cedar's schema-directed parsing), built once per type. */
function converter(schema: Schema, t: Json, depth = 0): Conv {
  if (depth > 64) throw new Refusal('schema types nest too deeply');
  let type = t;
  for (let i = 0; i < 16 && schema.common.has(type.type); i++) type = schema.common.get(type.type);
  if ((type.type === 'EntityOrCommon' || type.type === 'Entity') && schema.common.has(type.name)) type = schema.common.get(type.name);
  for (let i = 0; i < 16 && schema.common.has(type.type); i++) type = schema.common.get(type.type);
  let name: string = type.type;
  if (name === 'Entity' || name === 'EntityOrCommon') name = type.name;
  else if (name === 'Extension') name = type.name;
  if (schema.entities.has(name)) {
    const entityType = name;
    return (v) => {
      const u = uidOf(schema, v, 'the value');
      if (u.type !== entityType) throw invalid(`must be an entity of type ${entityType}`);
      return u;
    };
  }
  switch (name) {
    case 'String':
      return (v) => {
        if (typeof v !== 'string') throw invalid('must be a String');
        return v;
      };
    case 'Long':
      return (v) => {
        if (typeof v !== 'number' || !Number.isInteger(v)) throw invalid('must be a Long');
        if (!Number.isSafeInteger(v)) throw new Unsupported("a Long beyond JavaScript's safe integers");
        return v;
      };
    case 'Bool':
    case 'Boolean':
      return (v) => {
        if (typeof v !== 'boolean') throw invalid('must be a Bool');
        return v;
      };
    case 'Set': {
      const element = converter(schema, type.element, depth + 1);
      return (v) => {
        if (!Array.isArray(v)) throw invalid('must be a Set');
        const out: Value[] = new Array(v.length);
        for (let i = 0; i < v.length; i++) {
          try {
            out[i] = element(v[i]);
          } catch (err) {
            if (err instanceof Invalid) err.at.unshift(`[${i}]`);
            throw err;
          }
        }
        return new CSet(out);
      };
    }
    case 'Record':
      return recordConverter(schema, type, depth + 1);
  }
  const make = EXTENSION_TYPES.get(name);
  if (make === undefined) throw new Refusal(`type ${name} is not evaluated`);
  const extType = name;
  return (v) => {
    let arg: Json = v;
    if (isObj(v)) {
      const call = isObj(v.__extn) && keyCount(v) === 1 ? v.__extn : v;
      if (!isObj(call) || keyCount(call) !== 2 || typeof call.arg !== 'string' || CONSTRUCTORS.get(call.fn) !== extType) {
        throw new Unsupported(`an ${extType} written as ${JSON.stringify(v).slice(0, 40)} is not evaluated`);
      }
      arg = call.arg;
    }
    if (typeof arg !== 'string') throw invalid(`must be a ${extType}`);
    try {
      return make(arg);
    } catch (err) {
      if (err instanceof CedarError) throw invalid(err.message);
      throw err;
    }
  };
}

function recordConverter(schema: Schema, t: Json | undefined, depth = 0): (v: Json) => CRecord {
  const attrs = Object.entries((t?.attributes ?? {}) as Record<string, Json>).map(([k, at]) => ({
    k,
    required: at.required !== false,
    conv: converter(schema, at, depth + 1),
  }));
  const names = new Set(attrs.map((a) => a.k));
  // Names Object.prototype also has (e.g. `constructor`) need an own-property check.
  const inherited = new Set(attrs.filter((a) => a.k in Object.prototype).map((a) => a.k));
  return (v) => {
    if (!isObj(v)) throw invalid('must be a Record');
    const out = new Map<string, Value>();
    let present = 0;
    for (const a of attrs) {
      const x = inherited.has(a.k) && !Object.hasOwn(v, a.k) ? undefined : v[a.k];
      if (x === undefined) {
        if (Object.hasOwn(v, a.k)) throw new Unsupported(`attribute ${a.k} is undefined`);
        if (a.required) throw invalid(`${a.k} is required`);
        continue;
      }
      present += 1;
      try {
        out.set(a.k, a.conv(x));
      } catch (err) {
        if (err instanceof Invalid) err.at.unshift(a.k);
        throw err;
      }
    }
    if (keyCount(v) !== present) {
      for (const k in v) {
        if (Object.hasOwn(v, k) && !names.has(k)) throw invalid(`has undeclared attribute ${k}`);
      }
      throw new Unsupported('a record with unusual keys');
    }
    return new CRecord(out);
  };
}

class Entity implements EntityData {
  readonly attrs: ReadonlyMap<string, Value>;
  readonly tags: ReadonlyMap<string, Value>;
  readonly parents: readonly string[];
  readonly #all: Entities;
  #ancestors: ReadonlySet<string> | undefined;
  constructor(attrs: ReadonlyMap<string, Value>, tags: ReadonlyMap<string, Value>, parents: readonly string[], all: Entities) {
    this.attrs = attrs;
    this.tags = tags;
    this.parents = parents;
    this.#all = all;
  }
  ancestors(): ReadonlySet<string> {
    this.#ancestors ??=
      this.parents.length === 0 ? EMPTY : closure('', (k) => (k === '' ? this.parents : (this.#all.byKey(k)?.parents ?? [])));
    return this.#ancestors;
  }
}

/** The request's entities by type, then id (no key strings built on the hot path). */
class Entities {
  readonly #byType = new Map<string, Map<string, Entity>>();
  get(type: string, id: string): Entity | undefined {
    return this.#byType.get(type)?.get(id);
  }
  set(type: string, id: string, e: Entity): void {
    let m = this.#byType.get(type);
    if (m === undefined) {
      m = new Map();
      this.#byType.set(type, m);
    }
    m.set(id, e);
  }
  /** By `uidKey(type, id)` (ancestor walks). */
  byKey(key: string): Entity | undefined {
    const cut = key.indexOf('\u0000');
    return this.get(key.slice(0, cut), key.slice(cut + 1));
  }
}

const EMPTY: ReadonlySet<string> = new Set();
const NO_VALUES: ReadonlyMap<string, Value> = new Map();

/** The request Cedar would evaluate, as an Env; throws Unsupported where cedar-wasm must decide. */
export function buildEnv(
  schema: Schema,
  req: { principal: Json; action: Json; resource: Json; context: Json; entities: Json },
  actionEntities: ReadonlyMap<string, EntityData>,
): Env {
  const where: Where = { at: 'request' };
  try {
    return build(schema, req, actionEntities, where);
  } catch (err) {
    if (!(err instanceof Invalid)) throw err;
    const at = err.at.length === 0 ? '' : `.${err.at.join('.')}`;
    throw new Unsupported(`the request does not conform to the schema: ${String(where.at)}${at} ${err.why}`);
  }
}

/** What part of the request is being read (for the message when it does not conform). */
interface Where {
  at: string | Uid;
}

function build(
  schema: Schema,
  req: { principal: Json; action: Json; resource: Json; context: Json; entities: Json },
  actionEntities: ReadonlyMap<string, EntityData>,
  where: Where,
): Env {
  const principal = uidOf(schema, req.principal, 'principal');
  const action = uidOf(schema, req.action, 'action');
  const resource = uidOf(schema, req.resource, 'resource');
  const def = schema.actions.get(action.key);
  if (def === undefined) throw invalid(`action ${action} is not declared`);
  if (!def.principals.has(principal.type)) throw invalid(`principal type ${principal.type} does not apply to ${action}`);
  if (!def.resources.has(resource.type)) throw invalid(`resource type ${resource.type} does not apply to ${action}`);
  where.at = 'context';
  const context = def.contextOf(req.context ?? {});
  const all = new Entities();
  if (!Array.isArray(req.entities)) throw invalid('entities must be a list');
  let dataActions: Map<string, string[]> | undefined;
  for (const e of req.entities as Json[]) {
    where.at = 'entities';
    if (!isObj(e)) throw invalid('an entity is not an object');
    for (const k in e) if (k !== 'uid' && k !== 'attrs' && k !== 'parents' && k !== 'tags') throw invalid(`entity field ${k}`);
    const uid = uidOf(schema, e.uid, 'entity uid');
    where.at = uid;
    if (all.get(uid.type, uid.id) !== undefined) throw invalid('appears twice');
    const rawParents = e.parents ?? [];
    if (!Array.isArray(rawParents)) throw invalid('parents must be a list');
    const parents: string[] = [];
    const parentTypes: string[] = [];
    for (const p of rawParents) {
      const u = uidOf(schema, p, 'parent');
      parents.push(u.key);
      parentTypes.push(u.type);
    }
    const hasAttrs = isObj(e.attrs) && keyCount(e.attrs) > 0;
    const hasTags = isObj(e.tags) && keyCount(e.tags) > 0;
    const key = schema.actionTypes.has(uid.type) ? uid.key : undefined;
    if (key !== undefined && schema.actions.has(key)) {
      // Action entities come from the schema; data may repeat them only as declared.
      if (hasAttrs || hasTags) throw new Unsupported(`action entity ${uid} in the request has attributes or tags`);
      dataActions ??= new Map();
      if (dataActions.has(key)) throw invalid('appears twice');
      dataActions.set(key, parents);
      continue;
    }
    const type = schema.entities.get(uid.type);
    if (type === undefined) throw invalid(`entity type ${uid.type} is not declared`);
    for (const pt of parentTypes) if (!type.memberOf.has(pt)) throw invalid(`cannot be a member of ${pt}`);
    const attrs = type.attrs(e.attrs ?? {}).attrs;
    let tags = NO_VALUES;
    if (e.tags !== undefined && !(isObj(e.tags) && !hasTags)) {
      if (type.tagValue === undefined || !isObj(e.tags)) throw invalid('may not have tags');
      const t = new Map<string, Value>();
      for (const [k, v] of Object.entries(e.tags)) {
        try {
          t.set(k, type.tagValue(v));
        } catch (err) {
          if (err instanceof Invalid) err.at.unshift(`tag ${k}`);
          throw err;
        }
      }
      tags = t;
    }
    all.set(uid.type, uid.id, new Entity(attrs, tags, parents, all));
  }
  // Action entities in the data must describe the schema's hierarchy (same ancestors).
  for (const key of dataActions?.keys() ?? []) {
    const got = closure(key, (k) => dataActions?.get(k) ?? schema.actions.get(k)?.parents ?? []);
    const want = (schema.actions.get(key) as ActionDef).ancestors;
    if (got.size !== want.size || [...got].some((k) => !want.has(k))) {
      throw new Unsupported(`action entity ${key} in the request differs from the schema`);
    }
  }
  return {
    principal,
    action,
    resource,
    context,
    entity: (u) => all.get(u.type, u.id) ?? (schema.actionTypes.has(u.type) ? actionEntities.get(u.key) : undefined),
  };
}

/** Action entities from the schema (no attributes; ancestors from `memberOf`). */
export function actionEntities(schema: Schema): Map<string, EntityData> {
  const out = new Map<string, EntityData>();
  for (const [key, a] of schema.actions) out.set(key, { attrs: NO_VALUES, tags: NO_VALUES, ancestors: () => a.ancestors });
  return out;
}

export { literal };
