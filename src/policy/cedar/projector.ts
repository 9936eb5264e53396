// A compiled form of shape.ts `project()` for the decision hot path: one closure per schema type,
// built once per policy set. It only ever answers what project() would: whenever a value does not
// fit (or a type is one it does not handle), project() itself runs, so results and errors match.
import type { CedarValueJson } from '../engine.js';
import { project, type SchemaShapes } from './shape.js';

type AnyType = { type: string; required?: boolean; [k: string]: unknown };
const MISS: unique symbol = Symbol('miss');
type Proj = (v: unknown) => CedarValueJson | typeof MISS;

// As shape.ts: project() refuses values nested deeper than this.
const MAX_DEPTH = 16;
const miss: Proj = () => MISS;
const cache = new WeakMap<SchemaShapes, WeakMap<object, Proj>>();

type ShapeType = Parameters<typeof project>[1];

/** Same as `project(shapes, type, value, path)`, faster on values that fit. */
export function projectFast(shapes: SchemaShapes, shapeType: ShapeType, value: unknown, path: string): CedarValueJson {
  const type = shapeType as AnyType | undefined;
  if (type === undefined) return project(shapes, shapeType, value, path);
  let byType = cache.get(shapes);
  if (byType === undefined) {
    byType = new WeakMap();
    cache.set(shapes, byType);
  }
  let p = byType.get(type);
  if (p === undefined) {
    p = compile(shapes, type, 0);
    byType.set(type, p);
  }
  const r = p(value);
  return r === MISS ? project(shapes, shapeType, value, path) : r;
}

function resolve(shapes: SchemaShapes, type: AnyType): AnyType | undefined {
  let t: AnyType = type;
  for (let i = 0; i < 8; i++) {
    const c = shapes.common.get(t.type) as AnyType | undefined;
    if (c === undefined) return t;
    t = { ...c, required: t.required };
  }
  return undefined;
}

function compile(shapes: SchemaShapes, type: AnyType, depth: number): Proj {
  if (depth > MAX_DEPTH) return miss;
  const t = resolve(shapes, type);
  if (t === undefined) return miss;
  switch (t.type) {
    case 'String':
      return (v) => (typeof v === 'string' ? v : MISS);
    case 'Long':
      return (v) => (typeof v === 'number' && Number.isSafeInteger(v) ? v : MISS);
    case 'Bool':
    case 'Boolean':
      return (v) => (typeof v === 'boolean' ? v : MISS);
    case 'Set': {
      const element = t.element as AnyType | undefined;
      if (element === undefined) return miss;
      const e = compile(shapes, element, depth + 1);
      return (v) => {
        if (!Array.isArray(v)) return MISS;
        const out: CedarValueJson[] = new Array(v.length);
        for (let i = 0; i < v.length; i++) {
          if (!(i in v)) return MISS;
          const x = e(v[i]);
          if (x === MISS) return MISS;
          out[i] = x;
        }
        return out;
      };
    }
    case 'Record': {
      const attributes = t.attributes;
      if (typeof attributes !== 'object' || attributes === null) return miss;
      const attrs = Object.entries(attributes as Record<string, AnyType>).map(([name, at]) => ({
        name,
        optional: at.required === false,
        p: compile(shapes, at, depth + 1),
      }));
      return (value) => {
        if (typeof value !== 'object' || value === null || Array.isArray(value)) return MISS;
        const out: Record<string, CedarValueJson> = {};
        for (const a of attrs) {
          const v = Object.hasOwn(value, a.name) ? (value as Record<string, unknown>)[a.name] : undefined;
          if (v === undefined || v === null) {
            if (!a.optional) return MISS;
            continue;
          }
          const x = a.p(v);
          if (x === MISS) return MISS;
          out[a.name] = x;
        }
        return out;
      };
    }
    case 'Entity': {
      const name = t.name;
      if (typeof name !== 'string') return miss;
      return (value) => {
        if (typeof value !== 'object' || value === null) return MISS;
        const ref = value as { __entity?: { type?: unknown; id?: unknown }; type?: unknown; id?: unknown };
        const inner = ref.__entity ?? ref;
        if (typeof inner !== 'object' || inner === null || inner.type !== name || typeof inner.id !== 'string') return MISS;
        return { __entity: { type: name, id: inner.id } };
      };
    }
  }
  // Extension types and anything else: project() decides.
  return miss;
}
