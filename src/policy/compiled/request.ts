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
}

interface ActionDef {
  readonly uid: Uid;
  readonly principals: ReadonlySet<string>;
  readonly resources: ReadonlySet<string>;
  readonly context: Json | undefined;
  readonly parents: readonly string[];
  /** Keys of all ancestor action groups (transitive). */
  ancestors: ReadonlySet<string>;
}

export interface Schema {
  readonly entities: ReadonlyMap<string, EntityTypeDef>;
  readonly actions: ReadonlyMap<string, ActionDef>;
  readonly common: ReadonlyMap<string, Json>;
}

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
      });
      if (to?.context !== undefined) types.push(to.context);
    }
  }
  const schema = { entities, actions, common };
  for (const name of [...common.keys(), ...entities.keys()]) {
    if (PRIMITIVES.has(name) || EXTENSION_TYPES.has(name)) throw new Refusal(`a declared type shadows the built-in ${name}`);
  }
  for (const t of types) checkType(schema, t, 0);
  for (const a of actions.values()) a.ancestors = closure(a.uid.key, (k) => actions.get(k)?.parents ?? []);
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

const invalid = (why: string) => new Unsupported(`the request does not conform to the schema: ${why}`);

function uidOf(schema: Schema, v: Json, what: string): Uid {
  const inner = isObj(v) && isObj(v.__entity) && Object.keys(v).length === 1 ? v.__entity : v;
  if (!isObj(inner) || typeof inner.type !== 'string' || typeof inner.id !== 'string' || Object.keys(inner).length !== 2) {
    throw invalid(`${what} is not an entity reference`);
  }
  const allowed = schema.entities.get(inner.type)?.enum;
  if (allowed !== undefined && !allowed.has(inner.id)) throw invalid(`${what} is not one of the enumerated ${inner.type} ids`);
  return new Uid(inner.type, inner.id);
}

/** `v` as a Value of schema type `t` (Cedar's schema-directed JSON parsing). */
function typedValue(schema: Schema, t: Json, v: Json, path: string, depth = 0): Value {
  if (depth > 64) throw new Unsupported(`${path} nests too deeply`);
  let type = t;
  for (let i = 0; i < 16 && schema.common.has(type.type); i++) type = schema.common.get(type.type);
  if ((type.type === 'EntityOrCommon' || type.type === 'Entity') && schema.common.has(type.name)) type = schema.common.get(type.name);
  for (let i = 0; i < 16 && schema.common.has(type.type); i++) type = schema.common.get(type.type);
  let name: string = type.type;
  if (name === 'Entity' || name === 'EntityOrCommon') return entityValue(schema, type.name, v, path);
  if (name === 'Extension') name = type.name;
  if (schema.entities.has(name)) return entityValue(schema, name, v, path);
  switch (name) {
    case 'String':
      if (typeof v !== 'string') throw invalid(`${path} must be a String`);
      return v;
    case 'Long':
      if (typeof v !== 'number' || !Number.isInteger(v)) throw invalid(`${path} must be a Long`);
      if (!Number.isSafeInteger(v)) throw new Unsupported(`${path} is beyond JavaScript's safe integers`);
      return v;
    case 'Bool':
    case 'Boolean':
      if (typeof v !== 'boolean') throw invalid(`${path} must be a Bool`);
      return v;
    case 'Set':
      if (!Array.isArray(v)) throw invalid(`${path} must be a Set`);
      return new CSet(v.map((x, i) => typedValue(schema, type.element, x, `${path}[${i}]`, depth + 1)));
    case 'Record':
      return recordOf(schema, type, v, path, depth);
  }
  const make = EXTENSION_TYPES.get(name);
  if (make === undefined) throw new Unsupported(`${path}: type ${name} is not evaluated`);
  let arg: Json = v;
  if (isObj(v)) {
    const call = isObj(v.__extn) && Object.keys(v).length === 1 ? v.__extn : v;
    if (!isObj(call) || Object.keys(call).length !== 2 || typeof call.arg !== 'string' || CONSTRUCTORS.get(call.fn) !== name) {
      throw new Unsupported(`${path}: an ${name} written as ${JSON.stringify(v)} is not evaluated`);
    }
    arg = call.arg;
  }
  if (typeof arg !== 'string') throw invalid(`${path} must be a ${name}`);
  try {
    return make(arg);
  } catch (err) {
    if (err instanceof CedarError) throw invalid(`${path}: ${err.message}`);
    throw err;
  }
}

function entityValue(schema: Schema, type: string, v: Json, path: string): Uid {
  const u = uidOf(schema, v, path);
  if (u.type !== type) throw invalid(`${path} must be an entity of type ${type}`);
  return u;
}

function recordOf(schema: Schema, t: Json | undefined, v: Json, path: string, depth = 0): CRecord {
  if (!isObj(v)) throw invalid(`${path} must be a Record`);
  const attrs = (t?.attributes ?? {}) as Record<string, Json>;
  const out = new Map<string, Value>();
  for (const k of Object.keys(v)) if (!Object.hasOwn(attrs, k)) throw invalid(`${path} has undeclared attribute ${k}`);
  for (const [k, at] of Object.entries(attrs)) {
    if (!Object.hasOwn(v, k)) {
      if (at.required !== false) throw invalid(`${path}.${k} is required`);
      continue;
    }
    out.set(k, typedValue(schema, at, v[k], `${path}.${k}`, depth + 1));
  }
  return new CRecord(out);
}

class Entity implements EntityData {
  readonly attrs: ReadonlyMap<string, Value>;
  readonly tags: ReadonlyMap<string, Value>;
  readonly parents: readonly string[];
  readonly #all: ReadonlyMap<string, Entity>;
  #ancestors: ReadonlySet<string> | undefined;
  constructor(
    attrs: ReadonlyMap<string, Value>,
    tags: ReadonlyMap<string, Value>,
    parents: readonly string[],
    all: ReadonlyMap<string, Entity>,
  ) {
    this.attrs = attrs;
    this.tags = tags;
    this.parents = parents;
    this.#all = all;
  }
  ancestors(): ReadonlySet<string> {
    this.#ancestors ??=
      this.parents.length === 0 ? EMPTY : closure('', (k) => (k === '' ? this.parents : (this.#all.get(k)?.parents ?? [])));
    return this.#ancestors;
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
  const principal = uidOf(schema, req.principal, 'principal');
  const action = uidOf(schema, req.action, 'action');
  const resource = uidOf(schema, req.resource, 'resource');
  const def = schema.actions.get(action.key);
  if (def === undefined) throw invalid(`action ${action.key} is not declared`);
  if (!def.principals.has(principal.type)) throw invalid(`principal type ${principal.type} does not apply to ${action.key}`);
  if (!def.resources.has(resource.type)) throw invalid(`resource type ${resource.type} does not apply to ${action.key}`);
  const context = recordOf(schema, def.context, req.context ?? {}, 'context');
  const all = new Map<string, Entity>();
  if (!Array.isArray(req.entities)) throw invalid('entities must be a list');
  const dataActions = new Map<string, string[]>();
  for (const e of req.entities as Json[]) {
    if (!isObj(e)) throw invalid('an entity is not an object');
    for (const k of Object.keys(e)) if (k !== 'uid' && k !== 'attrs' && k !== 'parents' && k !== 'tags') throw invalid(`entity field ${k}`);
    const uid = uidOf(schema, e.uid, 'entity uid');
    const key = uid.key;
    if (all.has(key)) throw invalid(`entity ${key} appears twice`);
    const parents = ((e.parents ?? []) as Json[]).map((p) => uidOf(schema, p, `parent of ${key}`));
    if (schema.actions.has(key)) {
      // Action entities come from the schema; data may repeat them only exactly as declared.
      if ((isObj(e.attrs) && Object.keys(e.attrs).length > 0) || (isObj(e.tags) && Object.keys(e.tags).length > 0)) {
        throw new Unsupported(`action entity ${key} in the request has attributes or tags`);
      }
      if (dataActions.has(key)) throw invalid(`entity ${key} appears twice`);
      dataActions.set(
        key,
        parents.map((p) => p.key),
      );
      continue;
    }
    const type = schema.entities.get(uid.type);
    if (type === undefined) throw invalid(`entity type ${uid.type} is not declared`);
    for (const p of parents) if (!type.memberOf.has(p.type)) throw invalid(`${key} cannot be a member of ${p.type}`);
    const attrs = recordOf(schema, type.shape, e.attrs ?? {}, key).attrs;
    let tags = NO_VALUES;
    if (e.tags !== undefined && !(isObj(e.tags) && Object.keys(e.tags).length === 0)) {
      if (type.tags === undefined || !isObj(e.tags)) throw invalid(`${key} may not have tags`);
      const t = new Map<string, Value>();
      for (const [k, v] of Object.entries(e.tags)) t.set(k, typedValue(schema, type.tags, v, `${key} tag ${k}`));
      tags = t;
    }
    all.set(
      key,
      new Entity(
        attrs,
        tags,
        parents.map((p) => p.key),
        all,
      ),
    );
  }
  // Action entities in the data must describe the schema's hierarchy (same ancestors).
  for (const key of dataActions.keys()) {
    const got = closure(key, (k) => dataActions.get(k) ?? schema.actions.get(k)?.parents ?? []);
    const want = (schema.actions.get(key) as ActionDef).ancestors;
    if (got.size !== want.size || [...got].some((k) => !want.has(k))) {
      throw new Unsupported(`action entity ${key} in the request differs from the schema`);
    }
  }
  const ctx = context;
  return {
    principal,
    action,
    resource,
    context: ctx,
    entity: (key) => all.get(key) ?? actionEntities.get(key),
  };
}

/** Action entities from the schema (no attributes; ancestors from `memberOf`). */
export function actionEntities(schema: Schema): Map<string, EntityData> {
  const out = new Map<string, EntityData>();
  for (const [key, a] of schema.actions) out.set(key, { attrs: NO_VALUES, tags: NO_VALUES, ancestors: () => a.ancestors });
  return out;
}

export { literal };
