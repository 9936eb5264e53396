// Which `context` attributes a policy set reads, from the policies' structure (Cedar's JSON form,
// the EST) at load time: what the decision path computes only when some policy can read it (the
// intent binding costs tens of microseconds a call).

// biome-ignore lint/suspicious/noExplicitAny: the EST is untyped JSON, walked node by node.
type Json = any;

const isObj = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isContext = (n: Json) => isObj(n) && Object.keys(n).length === 1 && n.Var === 'context';

/** The attributes of `context` the policies read, or `all` when one reads the whole record. */
export function contextReads(ests: readonly Json[]): ReadonlySet<string> | 'all' {
  const attrs = new Set<string>();
  let all = false;
  const visit = (n: Json): void => {
    if (all) return;
    if (Array.isArray(n)) {
      for (const x of n) visit(x);
      return;
    }
    if (!isObj(n)) return;
    for (const op of ['.', 'has'] as const) {
      const access = n[op];
      if (Object.keys(n).length === 1 && isObj(access) && isContext(access.left) && typeof access.attr === 'string') {
        attrs.add(access.attr);
        return;
      }
    }
    if (isContext(n)) {
      all = true;
      return;
    }
    for (const v of Object.values(n)) visit(v);
  };
  for (const est of ests) visit(est);
  return all ? 'all' : attrs;
}
