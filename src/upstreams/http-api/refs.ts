// Local `$ref` resolution for OpenAPI descriptions. Hand-written rather than a dereferencing
// library on purpose: only same-document JSON Pointers are followed (a remote or relative URL is
// refused, never fetched), a cycle is an error rather than a shared object graph, and every
// expansion is counted, so a description whose refs fan out (a "billion laughs" of schemas) is
// refused instead of exhausting memory when its tools' schemas are serialized.
import { MandateError } from '../../errors/index.js';

/** Bounds on one description's expansion. */
export interface RefBudget {
  /** Nodes (objects, arrays, scalars) produced across every resolution; decremented as it goes. */
  nodes: number;
  /** Deepest nesting of one resolved value. */
  readonly maxDepth: number;
}

const invalid = (message: string): MandateError => new MandateError('ERR_HTTP_API_DESCRIPTION', message);

/** The value a `#/a/b~1c` JSON Pointer (RFC 6901, in a URI fragment) names in `doc`. */
export function pointerTarget(doc: unknown, ref: string): unknown {
  if (!ref.startsWith('#')) throw invalid(`$ref "${ref.slice(0, 200)}" is not in this document; remote references are refused`);
  let fragment: string;
  try {
    fragment = decodeURIComponent(ref.slice(1));
  } catch {
    throw invalid(`$ref "${ref.slice(0, 200)}" is not a valid URI fragment`);
  }
  if (fragment === '') return doc;
  if (!fragment.startsWith('/')) throw invalid(`$ref "${ref.slice(0, 200)}" is not a JSON Pointer (anchors are not supported)`);
  let node = doc;
  for (const raw of fragment.slice(1).split('/')) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) {
      throw invalid(`$ref "${ref.slice(0, 200)}" points at nothing in this document`);
    }
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

/**
 * `value` with every `$ref` replaced by a copy of what it points at (siblings of a `$ref` are kept
 * beside the referenced members, overriding them). Throws ERR_HTTP_API_DESCRIPTION for a remote
 * or dangling ref, a cycle, or an expansion over `budget`.
 */
export function resolveRefs(doc: unknown, value: unknown, budget: RefBudget): unknown {
  return resolve(doc, value, budget, [], 0);
}

function resolve(doc: unknown, value: unknown, budget: RefBudget, chain: readonly string[], depth: number): unknown {
  if (--budget.nodes < 0) throw invalid('the description expands to too many nodes once its $refs are resolved');
  if (depth > budget.maxDepth) throw invalid(`the description nests deeper than ${budget.maxDepth} levels once its $refs are resolved`);
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => resolve(doc, v, budget, chain, depth + 1));
  const obj = value as Record<string, unknown>;
  if (typeof obj.$ref === 'string') {
    const ref = obj.$ref;
    if (chain.includes(ref))
      throw invalid(`$ref "${ref.slice(0, 200)}" refers to itself (cycle: ${[...chain, ref].join(' → ').slice(0, 400)})`);
    const target = resolve(doc, pointerTarget(doc, ref), budget, [...chain, ref], depth + 1);
    const { $ref: _, ...siblings } = obj;
    if (Object.keys(siblings).length === 0) return target;
    const rest = resolve(doc, siblings, budget, chain, depth + 1) as Record<string, unknown>;
    return target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...target, ...rest } : target;
  }
  // fromEntries defines own properties, so a `__proto__` key stays data and never sets a prototype.
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, resolve(doc, v, budget, chain, depth + 1)]));
}
