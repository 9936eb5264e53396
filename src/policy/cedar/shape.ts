// What the schema declares, used to send Cedar only what policies can read: tool arguments,
// AuthZEN properties and context are projected onto the declared types. Undeclared attributes are
// dropped; a declared attribute of the wrong type is an error (and so a deny), never silently lost.
import type { CedarValueJson, SchemaJson, Type } from '@cedar-policy/cedar-wasm/nodejs';

type AnyType = Type<string> & { required?: boolean };

export class ShapeError extends Error {}

export interface SchemaShapes {
  /** Fully qualified entity type → its attribute record type (undefined: no attributes). */
  readonly entities: ReadonlyMap<string, AnyType | undefined>;
  /** Fully qualified action uid `Ns::Action::"name"` → its context record type. */
  readonly actions: ReadonlyMap<string, { context: AnyType | undefined; principals: string[]; resources: string[] }>;
  /** Fully qualified common type name → type. */
  readonly common: ReadonlyMap<string, AnyType>;
}

/** Indexes a resolved JSON schema (from `schemaToJsonWithResolvedTypes`). */
export function indexSchema(json: SchemaJson<string>): SchemaShapes {
  const entities = new Map<string, AnyType | undefined>();
  const actions = new Map<string, { context: AnyType | undefined; principals: string[]; resources: string[] }>();
  const common = new Map<string, AnyType>();
  for (const [ns, def] of Object.entries(json)) {
    const q = (name: string) => (ns === '' ? name : `${ns}::${name}`);
    for (const [name, t] of Object.entries(def.commonTypes ?? {})) common.set(q(name), t as AnyType);
    for (const [name, t] of Object.entries(def.entityTypes)) {
      entities.set(q(name), 'shape' in t ? (t.shape as AnyType | undefined) : undefined);
    }
    for (const [name, a] of Object.entries(def.actions)) {
      actions.set(`${q('Action')}::${JSON.stringify(name)}`, {
        context: a.appliesTo?.context as AnyType | undefined,
        principals: a.appliesTo?.principalTypes ?? [],
        resources: a.appliesTo?.resourceTypes ?? [],
      });
    }
  }
  return { entities, actions, common };
}

const MAX_DEPTH = 16;

/**
 * `value` as Cedar JSON of type `type`. Throws ShapeError naming the path on a type mismatch.
 * Records keep only declared attributes; a missing required attribute is an error.
 */
export function project(shapes: SchemaShapes, type: AnyType | undefined, value: unknown, path: string, depth = 0): CedarValueJson {
  if (depth > MAX_DEPTH) throw new ShapeError(`${path} is nested too deeply`);
  const t = resolve(shapes, type);
  if (t === undefined) return {};
  switch (t.type) {
    case 'String':
      if (typeof value !== 'string') throw new ShapeError(`${path} must be a string, got ${kind(value)}`);
      return value;
    case 'Long':
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw new ShapeError(`${path} must be an integer, got ${kind(value)}`);
      return value;
    // cedar-wasm's resolved JSON spells the schema's `Bool` as "Bool"; the JSON schema format says "Boolean".
    case 'Bool':
    case 'Boolean':
      if (typeof value !== 'boolean') throw new ShapeError(`${path} must be a boolean, got ${kind(value)}`);
      return value;
    case 'Set': {
      if (!Array.isArray(value)) throw new ShapeError(`${path} must be an array, got ${kind(value)}`);
      const element = (t as { element: AnyType }).element;
      return value.map((v, i) => project(shapes, element, v, `${path}[${i}]`, depth + 1));
    }
    case 'Record': {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        throw new ShapeError(`${path} must be an object, got ${kind(value)}`);
      }
      const attrs = (t as { attributes: Record<string, AnyType> }).attributes;
      const out: Record<string, CedarValueJson> = {};
      for (const [name, at] of Object.entries(attrs)) {
        const v = Object.hasOwn(value, name) ? (value as Record<string, unknown>)[name] : undefined;
        if (v === undefined || v === null) {
          if (at.required !== false) throw new ShapeError(`${path}.${name} is required`);
          continue;
        }
        out[name] = project(shapes, at, v, `${path}.${name}`, depth + 1);
      }
      return out;
    }
    case 'Entity': {
      // Entity references are built by Mandate itself ({ type, id }) or given as Cedar JSON.
      const name = (t as { name: string }).name;
      const ref = value as { __entity?: { type?: unknown; id?: unknown }; type?: unknown; id?: unknown };
      const inner = typeof ref === 'object' && ref !== null ? (ref.__entity ?? ref) : undefined;
      if (inner === undefined || inner.type !== name || typeof inner.id !== 'string') {
        throw new ShapeError(`${path} must reference a ${name}`);
      }
      return { __entity: { type: name, id: inner.id } };
    }
    case 'decimal':
    case 'ipaddr':
    case 'datetime':
    case 'duration':
    case 'Extension':
      return extension(t.type === 'Extension' ? (t as { name: string }).name : t.type, value, path);
    default:
      throw new ShapeError(`${path} has a type (${t.type}) Mandate does not send to Cedar`);
  }
}

// Extension type → the Cedar function that constructs its values.
const CONSTRUCTORS: Readonly<Record<string, string>> = { decimal: 'decimal', ipaddr: 'ip', datetime: 'datetime', duration: 'duration' };

/**
 * An extension value: Cedar JSON (`{"__extn": {"fn": "ip", "arg": "10.0.0.1"}}`, as Mandate's
 * engines exchange them) or the literal string (`"10.0.0.1"`, as AuthZEN clients send it).
 * Cedar itself checks the literal; an invalid one is an error of the request, so a deny.
 */
function extension(name: string, value: unknown, path: string): CedarValueJson {
  const fn = CONSTRUCTORS[name];
  if (fn === undefined) throw new ShapeError(`${path} has a type (${name}) Mandate does not send to Cedar`);
  const inner = typeof value === 'object' && value !== null ? (value as { __extn?: { fn?: unknown; arg?: unknown } }).__extn : undefined;
  const arg = typeof value === 'string' ? value : inner?.fn === fn ? inner.arg : undefined;
  if (typeof arg !== 'string' || arg.length > 256) throw new ShapeError(`${path} must be a ${name} literal (a string), got ${kind(value)}`);
  return { __extn: { fn, arg } };
}

function resolve(shapes: SchemaShapes, type: AnyType | undefined): AnyType | undefined {
  let t = type;
  for (let i = 0; i < 8 && t !== undefined; i++) {
    const c = shapes.common.get(t.type);
    if (c === undefined) return t;
    t = { ...c, required: t.required };
  }
  return t;
}

function kind(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number' && !Number.isInteger(v)) return 'a fractional number';
  return typeof v;
}
