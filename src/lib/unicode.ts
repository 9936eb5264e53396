// Lone UTF-16 surrogates ("\ud800" in JSON) are valid JSON but not Unicode: canonical JSON
// (RFC 8785), Cedar and the upstreams cannot all read them alike, so the boundary refuses them.

/** ES2024's String.prototype.isWellFormed, which Node 20 has but the ES2023 lib does not declare. */
export const isWellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed();

/**
 * The path of the first string or key in `value` that is not well-formed Unicode, if any.
 * Iterative, so hostile nesting depth cannot exhaust the call stack.
 */
export function firstIllFormed(value: unknown): string | undefined {
  const stack: [unknown, string][] = [[value, '']];
  while (stack.length > 0) {
    const [node, path] = stack.pop() as [unknown, string];
    if (typeof node === 'string') {
      if (!isWellFormed(node)) return (path || '(value)').slice(0, 128);
      continue;
    }
    if (node === null || typeof node !== 'object') continue;
    for (const [key, child] of Array.isArray(node) ? node.entries() : Object.entries(node)) {
      const at = path === '' ? String(key) : `${path.slice(0, 128)}.${String(key).slice(0, 64)}`;
      if (typeof key === 'string' && !isWellFormed(key)) return at.slice(0, 128);
      stack.push([child, at]);
    }
  }
  return undefined;
}
