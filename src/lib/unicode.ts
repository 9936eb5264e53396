// Lone UTF-16 surrogates ("\ud800" in JSON) are valid JSON but not Unicode: canonical JSON
// (RFC 8785), Cedar and the upstreams cannot all read them alike, so the boundary refuses them.

/** ES2024's String.prototype.isWellFormed, which Node 20 has but the ES2023 lib does not declare. */
const isWellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed();

/** The path of the first string or key in `value` that is not well-formed Unicode, if any. */
export function firstIllFormed(value: unknown, path = ''): string | undefined {
  if (typeof value === 'string') return isWellFormed(value) ? undefined : path || '(value)';
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, child] of Array.isArray(value) ? value.entries() : Object.entries(value)) {
    const at = path === '' ? String(key) : `${path}.${String(key)}`;
    if (typeof key === 'string' && !isWellFormed(key)) return at.slice(0, 128);
    const found = firstIllFormed(child, at);
    if (found !== undefined) return found.slice(0, 128);
  }
  return undefined;
}
