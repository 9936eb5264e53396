// Intent binding (DESIGN §2): the entities a human named in a mandate's request text, the values
// tool results brought in, and per call which argument values are which. Deterministic, no model.
export {
  type ArgIntent,
  bindIntent,
  type IntentContext,
  type IntentIndex,
  intentIndex,
  MAX_REQUEST_CHARS,
  type ProvenanceView,
} from './binding.js';
export { type Entity, type EntityKind, entityKey, entityKinds, extractEntities, MAX_SCAN_CHARS } from './entities.js';
export { DEFAULT_PROVENANCE_LIMITS, Provenance, type ProvenanceLimits, resultText } from './provenance.js';
export { isTargetName, TARGET_WORDS } from './targets.js';
export { valueKeys } from './values.js';

import type { IntentContext } from './binding.js';

/**
 * `context.intent` as Cedar reads it (policies/mandate.cedarschema `Intent`): sets as JSON arrays.
 * Arguments the schema does not declare under `IntentArgs` are dropped by the projection.
 */
export function cedarIntent(intent: IntentContext): Record<string, unknown> {
  return {
    hasRequest: intent.hasRequest,
    args: intent.args,
    unnamedTargets: intent.unnamedTargets,
    toolOutputTargets: intent.toolOutputTargets,
  };
}
