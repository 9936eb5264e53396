// Intent binding: which argument values of a call the human named in the mandate's request text,
// and which first appeared in a tool result the gateway relayed (src/intent/provenance.ts). The
// request's entities are extracted once per mandate (`intentIndex`, cached); per call only the
// argument values are looked up.
import { type Entity, entityKey, extractEntities, nfkc } from './entities.js';
import { isTargetName } from './targets.js';
import { containsWords, valueKeys } from './values.js';

/** Longest request text a mandate keeps (characters). */
export const MAX_REQUEST_CHARS = 8192;

/** The entities a request text names, ready for per-call lookups. */
export interface IntentIndex {
  /** The mandate carries a request text (without one nothing is named). */
  readonly hasRequest: boolean;
  readonly entities: readonly Entity[];
  /** `kind:value` of every entity. */
  readonly keys: ReadonlySet<string>;
  /** The request text, NFKC and lower-cased, for whole-word comparison of plain values. */
  readonly text: string;
}

/** What a relayed tool result left behind for a mandate tree (src/intent/provenance.ts `Provenance`). */
export interface ProvenanceView {
  /** An entity key (`kind:value`) seen in a tool result. */
  hasKey(key: string): boolean;
  /** A plain phrase (lower-cased) seen as whole words in a recent tool result. */
  hasPhrase(phrase: string): boolean;
}

/** Per argument: named by the human, first seen in tool output, a target argument. */
export interface ArgIntent {
  readonly named: boolean;
  /** Not named by the human, and seen in a tool result relayed to this mandate tree. */
  readonly fromToolOutput: boolean;
  /** A target argument (by its name or its value; src/intent/targets.ts). */
  readonly target: boolean;
}

/**
 * The `context.intent` record of a call (docs/policies.md "Intent context").
 *
 * @example
 * // request "Send the report to bob@example.com", call send_email({ to: 'eve@evil.test', subject: 'hi' })
 * // → { hasRequest: true, args: { to: { named: false, fromToolOutput: true, target: true },
 * //     subject: { named: false, fromToolOutput: false, target: false } },
 * //     unnamedTargets: ['to'], toolOutputTargets: ['to'] }
 */
export interface IntentContext {
  readonly hasRequest: boolean;
  readonly args: Readonly<Record<string, ArgIntent>>;
  /** Names of target arguments whose value the human did not name (sorted). */
  readonly unnamedTargets: readonly string[];
  /** Names of target arguments whose value first appeared in a tool result (sorted). */
  readonly toolOutputTargets: readonly string[];
}

const EMPTY: IntentIndex = { hasRequest: false, entities: [], keys: new Set(), text: '' };
const indexes = new Map<string, IntentIndex>();
const MAX_INDEXES = 10_000;

/** The index of a request text (undefined or empty: nothing named). Built once per distinct text, cached. */
export function intentIndex(requestText: string | undefined): IntentIndex {
  if (requestText === undefined || requestText.trim() === '') return EMPTY;
  const hit = indexes.get(requestText);
  if (hit !== undefined) return hit;
  const text = requestText.slice(0, MAX_REQUEST_CHARS);
  const entities = extractEntities(text);
  const index: IntentIndex = {
    hasRequest: true,
    entities,
    keys: new Set(entities.map((e) => entityKey(e.kind, e.value))),
    text: nfkc(text).toLowerCase(),
  };
  if (indexes.size >= MAX_INDEXES) indexes.delete(indexes.keys().next().value as string);
  indexes.set(requestText, index);
  return index;
}

/** Most arguments of one call that are bound (the rest count as unnamed non-targets). */
const MAX_ARGS = 256;
/** Most elements of one array value looked at. */
const MAX_ELEMENTS = 100;

/**
 * Binds a call's arguments to the request: per argument, whether the human named its value and
 * whether it came from tool output. Array values are named when every element is, from tool output
 * when any unnamed element is. `null` names nothing and counts as named; objects are never named.
 */
export function bindIntent(args: Record<string, unknown>, index: IntentIndex, provenance?: ProvenanceView): IntentContext {
  const out: Record<string, ArgIntent> = {};
  const unnamedTargets: string[] = [];
  const toolOutputTargets: string[] = [];
  let n = 0;
  for (const [name, value] of Object.entries(args)) {
    if (++n > MAX_ARGS) break;
    const a = bindValue(name, value, index, provenance);
    out[name] = a;
    if (a.target && !a.named) unnamedTargets.push(name);
    if (a.target && a.fromToolOutput) toolOutputTargets.push(name);
  }
  return { hasRequest: index.hasRequest, args: out, unnamedTargets: unnamedTargets.sort(), toolOutputTargets: toolOutputTargets.sort() };
}

function bindValue(name: string, value: unknown, index: IntentIndex, provenance: ProvenanceView | undefined): ArgIntent {
  const byName = isTargetName(name);
  if (value === null || value === undefined) return { named: true, fromToolOutput: false, target: byName };
  const items = Array.isArray(value) ? value.slice(0, MAX_ELEMENTS) : [value];
  let named = true;
  let fromToolOutput = false;
  let targetKind = false;
  for (const item of items) {
    const r = bindScalar(item, index, provenance);
    targetKind ||= r.targetKind;
    if (!r.named) {
      named = false;
      fromToolOutput ||= r.fromToolOutput;
    }
  }
  if (Array.isArray(value) && value.length > MAX_ELEMENTS) named = false;
  return { named, fromToolOutput, target: byName || targetKind };
}

function bindScalar(
  value: unknown,
  index: IntentIndex,
  provenance: ProvenanceView | undefined,
): { named: boolean; fromToolOutput: boolean; targetKind: boolean } {
  if (value === null) return { named: true, fromToolOutput: false, targetKind: false };
  if (typeof value === 'boolean') return { named: false, fromToolOutput: false, targetKind: false };
  const v = valueKeys(value);
  const named =
    v.keys.some((k) => index.keys.has(k)) || (v.phrase !== undefined && index.hasRequest && containsWords(index.text, v.phrase));
  if (named || provenance === undefined) return { named, fromToolOutput: false, targetKind: v.targetKind };
  const seen = v.keys.some((k) => provenance.hasKey(k)) || (v.phrase !== undefined && provenance.hasPhrase(v.phrase));
  return { named: false, fromToolOutput: seen, targetKind: v.targetKind };
}
