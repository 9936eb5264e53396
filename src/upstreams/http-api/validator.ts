// Validators of HTTP API tool arguments (JSON Schema 2020-12, ajv), compiled once per distinct
// schema for the whole process: registration compiles every tool's schema (so an unusable one is
// refused there), and every mandate's forwarder then finds it compiled. Compiling is the costly
// part (about 2 ms a schema); bounded, least recently used first.
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { LRUCache } from 'lru-cache';

// Not strict: OpenAPI schemas carry keywords JSON Schema does not know (vendor extensions); they
// are ignored, never fatal. Formats are annotations here, not checked.
const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: false });

const compiled = new LRUCache<string, { readonly schema: object; readonly validate: ValidateFunction }>({
  max: 5000,
  // ajv keeps every schema it compiled: forget it with its validator.
  dispose: (entry) => ajv.removeSchema(entry.schema),
});

/** The validator of `schema` (compiled on first use); throws what ajv throws for a schema it cannot use. */
export function validatorFor(schema: Readonly<Record<string, unknown>>): ValidateFunction {
  const key = JSON.stringify(schema);
  let entry = compiled.get(key);
  if (entry === undefined) {
    // A private copy: the cache must not depend on an object its caller might change.
    const own = JSON.parse(key) as object;
    entry = { schema: own, validate: ajv.compile(own) };
    compiled.set(key, entry);
  }
  return entry.validate;
}
