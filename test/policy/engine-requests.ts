// Generates Cedar requests (fast-check) for any schema and policy set, biased towards the values
// the policies mention, to compare engines request by request. Used by engine-compiled.test.ts
// and scripts/cedar-differential.ts.

import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import fc from 'fast-check';
import type { EngineAnswer, EngineRequest, LoadedPolicySet } from '../../src/policy/engine.js';

// biome-ignore lint/suspicious/noExplicitAny: schema JSON is walked generically.
type Json = any;

interface Pools {
  strings: string[];
  longs: number[];
  ids: Map<string, string[]>;
  /** Attribute name → literals it is compared with (`x.status == "active"`). */
  byAttr: Map<string, Set<string | number>>;
}

/** Strings, numbers and entity ids the policies mention (so generated requests hit them). */
function poolsOf(policies: readonly string[]): Pools {
  const strings = new Set(['', 'x', 'a*b', 'production', 'sandbox']);
  const longs = new Set([0, 1, -1, 2, 100, 2 ** 31, -(2 ** 53) + 1, 2 ** 53 - 1]);
  const ids = new Map<string, Set<string>>();
  const byAttr = new Map<string, Set<string | number>>();
  const walk = (n: Json): void => {
    if (Array.isArray(n)) {
      for (const x of n) walk(x);
      return;
    }
    if (typeof n !== 'object' || n === null) return;
    for (const op of ['==', '!=', '<', '<=', '>', '>=']) {
      const b = n[op];
      if (b === undefined) continue;
      for (const [x, y] of [
        [b.left, b.right],
        [b.right, b.left],
      ]) {
        const attr = x?.['.']?.attr;
        const v = y?.Value;
        if (typeof attr === 'string' && (typeof v === 'string' || typeof v === 'number')) {
          if (!byAttr.has(attr)) byAttr.set(attr, new Set());
          byAttr.get(attr)?.add(v);
          if (typeof v === 'number')
            byAttr
              .get(attr)
              ?.add(v + 1)
              .add(v - 1);
        }
      }
    }
    if (typeof n.type === 'string' && typeof n.id === 'string' && Object.keys(n).length === 2) {
      if (!ids.has(n.type)) ids.set(n.type, new Set());
      ids.get(n.type)?.add(n.id);
      strings.add(n.id);
    }
    if ('Value' in n) {
      const v = n.Value;
      if (typeof v === 'string') strings.add(v);
      if (typeof v === 'number') for (const d of [-1, 0, 1]) longs.add(v + d);
    }
    if (Array.isArray(n.pattern)) {
      strings.add(n.pattern.map((p: Json) => (p === 'Wildcard' ? 'zz' : p.Literal)).join(''));
    }
    for (const v of Object.values(n)) walk(v);
  };
  for (const text of policies) {
    const j = cedar.policyToJson(text);
    if (j.type === 'success') walk(j.json);
  }
  return { strings: [...strings], longs: [...longs], ids: new Map([...ids].map(([k, v]) => [k, [...v]])), byAttr };
}

/** An arbitrary of requests valid (mostly) under `schemaText`, for the policies of `set`. */
export function requestArbitrary(schemaText: string, set: LoadedPolicySet): fc.Arbitrary<EngineRequest> {
  const resolved = cedar.schemaToJsonWithResolvedTypes(schemaText);
  if (resolved.type === 'failure') throw new Error('schema');
  const json = resolved.json as Json;
  const entityTypes = new Map<string, Json>();
  const common = new Map<string, Json>();
  const actions: { uid: { type: string; id: string }; principals: string[]; resources: string[]; context: Json }[] = [];
  for (const [ns, def] of Object.entries(json as Record<string, Json>)) {
    const q = (n: string) => (ns === '' ? n : `${ns}::${n}`);
    for (const [n, t] of Object.entries((def.commonTypes ?? {}) as Record<string, Json>)) common.set(q(n), t);
    for (const [n, t] of Object.entries((def.entityTypes ?? {}) as Record<string, Json>)) entityTypes.set(q(n), t);
    for (const [n, a] of Object.entries((def.actions ?? {}) as Record<string, Json>)) {
      actions.push({
        uid: { type: q('Action'), id: n },
        principals: a.appliesTo?.principalTypes ?? [],
        resources: a.appliesTo?.resourceTypes ?? [],
        context: a.appliesTo?.context,
      });
    }
  }
  const pools = poolsOf(set.policies.map((p) => p.text));
  const idOf = (type: string) => fc.constantFrom(...(pools.ids.get(type) ?? []), 'e1', 'e2', 'e3');
  const str = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...pools.strings) }, { weight: 1, arbitrary: fc.string({ maxLength: 6 }) });
  const lng = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...pools.longs) }, { weight: 1, arbitrary: fc.integer() });

  const hot = (name: string | undefined, kind: 'string' | 'number', general: fc.Arbitrary<unknown>) => {
    const pool = [...(pools.byAttr.get(name ?? '') ?? [])].filter((v) => typeof v === kind);
    return pool.length === 0 ? general : fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...pool) }, { weight: 1, arbitrary: general });
  };
  const arbitraryOf = (t: Json, depth: number, name?: string): fc.Arbitrary<unknown> => {
    let type = t;
    for (let i = 0; i < 8 && common.has(type.type); i++) type = common.get(type.type);
    switch (type.type) {
      case 'String':
        return hot(name, 'string', str);
      case 'Long':
        return hot(name, 'number', lng);
      case 'Bool':
      case 'Boolean':
        return fc.boolean();
      case 'Set':
        return fc.array(arbitraryOf(type.element, depth + 1), { maxLength: depth > 2 ? 0 : 3 });
      case 'Record':
        return recordOf(type, depth + 1);
      case 'Entity':
        return idOf(type.name).map((id) => ({ __entity: { type: type.name, id } }));
    }
    if (entityTypes.has(type.type)) return idOf(type.type).map((id) => ({ __entity: { type: type.type, id } }));
    throw new Error(`no generator for type ${JSON.stringify(type)}`);
  };
  const recordOf = (t: Json | undefined, depth: number): fc.Arbitrary<Record<string, unknown>> => {
    const attrs = Object.entries((t?.attributes ?? {}) as Record<string, Json>);
    const parts: Record<string, fc.Arbitrary<unknown>> = {};
    const optional: string[] = [];
    for (const [k, at] of attrs) {
      parts[k] = arbitraryOf(at, depth, k);
      if (at.required === false) optional.push(k);
    }
    const required = attrs.map(([k]) => k).filter((k) => !optional.includes(k));
    return fc.record(parts, { requiredKeys: required }) as fc.Arbitrary<Record<string, unknown>>;
  };
  const entityOf = (type: string, id: string) => {
    const def = entityTypes.get(type) ?? {};
    const parentTypes: string[] = def.memberOfTypes ?? [];
    const parents =
      parentTypes.length === 0
        ? fc.constant([])
        : fc.array(
            fc.constantFrom(...parentTypes).chain((pt) => idOf(pt).map((pid) => ({ type: pt, id: pid }))),
            { maxLength: 2 },
          );
    return fc.record({ uid: fc.constant({ type, id }), attrs: recordOf(def.shape, 0), parents });
  };

  return fc
    .constantFrom(...actions)
    .chain((a) =>
      fc.record({
        action: fc.constant(a.uid),
        principal: fc.constantFrom(...a.principals).chain((t) => idOf(t).map((id) => ({ type: t, id }))),
        resource: fc.constantFrom(...a.resources).chain((t) => idOf(t).map((id) => ({ type: t, id }))),
        context: recordOf(a.context, 0),
      }),
    )
    .chain((r) => {
      // Entities: principal and resource (each sometimes missing), plus any entity the context names.
      const named = new Map<string, { type: string; id: string }>();
      const collect = (v: unknown): void => {
        if (Array.isArray(v)) {
          for (const x of v) collect(x);
          return;
        }
        if (typeof v !== 'object' || v === null) return;
        const e = (v as { __entity?: { type: string; id: string } }).__entity;
        if (e !== undefined) named.set(`${e.type}::${e.id}`, e);
        else Object.values(v).forEach(collect);
      };
      collect(r.context);
      named.set(`${r.principal.type}::${r.principal.id}`, r.principal);
      named.set(`${r.resource.type}::${r.resource.id}`, r.resource);
      const picks = [...named.values()].map((u) =>
        fc.oneof({ weight: 9, arbitrary: entityOf(u.type, u.id).map((e) => [e]) }, { weight: 1, arbitrary: fc.constant([]) }),
      );
      return fc.tuple(...picks).map((lists) => ({ ...r, entities: lists.flat() }) as unknown as EngineRequest);
    });
}

/** What two engines must agree on. */
export function comparable(a: EngineAnswer): { decision: string; policies: string[]; erroring: string[] } {
  return { decision: a.decision, policies: a.policies, erroring: a.erroring };
}
