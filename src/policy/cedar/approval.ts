// Load-time analysis of how a policy set reads `context.approval`, from the policies' structure
// (Cedar's JSON form, the EST), never their text; and the "approval probe": one derived policy set
// that tells, in a single evaluation, which approver roles would let a denied call through.
//
// Why one evaluation suffices. A policy whose conditions read the approver role only by comparing it
// with string literals (`context.approval.approverRole == "finance"`, `!=`, `["a", "b"].contains(…)`)
// behaves the same for every role outside its literals. So the roles fall into classes: one per
// literal found anywhere in the set, plus "any other role". The probe set holds every policy once,
// except that each role-reading policy is copied once per class with its role comparisons replaced
// by the constants they take for that class (a hypothetical approval is present, so those
// comparisons cannot error: the substitution changes no error either). Every copy is turned into a
// `permit` with the same scope and conditions, so Cedar's answer lists every satisfied policy (its
// determining policies on allow) and every erroring one; from those the decision for each class is
// Cedar's own rule: allowed when no forbid of the class is satisfied, some permit is, and none errs.
// A set that reads the role any other way (`like`, compared with an attribute, the whole approval
// record or the whole context) has no probe: callers then evaluate once per role (see decisions.ts).
import type { ApprovalUse } from '../engine.js';

// biome-ignore lint/suspicious/noExplicitAny: the EST is untyped JSON, checked node by node.
type Json = any;

const isObj = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);
const only = (n: Json, key: string): Json => (isObj(n) && Object.keys(n).length === 1 && key in n ? n[key] : undefined);

const isContext = (n: Json) => only(n, 'Var') === 'context';
const isApproval = (n: Json) => {
  const dot = only(n, '.');
  return isObj(dot) && dot.attr === 'approval' && isContext(dot.left);
};
const isRole = (n: Json) => {
  const dot = only(n, '.');
  return isObj(dot) && dot.attr === 'approverRole' && isApproval(dot.left);
};
/** A string literal node's value, else undefined. */
const stringLiteral = (n: Json): string | undefined => {
  const v = only(n, 'Value');
  return typeof v === 'string' ? v : undefined;
};

/** A comparison of the approver role with string literals: what it compares with, and how. */
interface RoleTest {
  readonly op: '==' | '!=' | 'in-set';
  readonly literals: readonly string[];
}

/** `node` as a role-literal comparison, or undefined when it is not one. */
function roleTest(node: Json): RoleTest | undefined {
  if (!isObj(node) || Object.keys(node).length !== 1) return undefined;
  for (const op of ['==', '!='] as const) {
    const b = only(node, op);
    if (!isObj(b)) continue;
    const lit = isRole(b.left) ? stringLiteral(b.right) : isRole(b.right) ? stringLiteral(b.left) : undefined;
    if (lit !== undefined) return { op, literals: [lit] };
  }
  const c = only(node, 'contains');
  if (isObj(c) && isRole(c.right)) {
    const items = only(c.left, 'Set');
    if (Array.isArray(items)) {
      const literals = items.map(stringLiteral);
      if (literals.every((l): l is string => l !== undefined)) return { op: 'in-set', literals };
    }
  }
  return undefined;
}

/**
 * How one policy (its EST) reads `context.approval`: whether it reads it at all (`has`, any
 * attribute, or the whole context), which approver-role literals it compares with, and whether it
 * reads the role any other way (`opaque`: no class of roles can be told apart without evaluating).
 */
export function analyzeApproval(est: Json): ApprovalUse {
  let reads = false;
  let opaque = false;
  const roles = new Set<string>();
  const visit = (n: Json): void => {
    if (Array.isArray(n)) {
      for (const x of n) visit(x);
      return;
    }
    if (!isObj(n)) return;
    const test = roleTest(n);
    if (test !== undefined) {
      reads = true;
      for (const l of test.literals) roles.add(l);
      return;
    }
    if (isRole(n)) {
      reads = true;
      opaque = true;
      return;
    }
    if (isContext(n)) {
      // The whole context (compared, or read some way not modelled below) includes the approval.
      reads = true;
      opaque = true;
      return;
    }
    if (isApproval(n)) {
      // The whole approval record as a value: it includes the role.
      reads = true;
      opaque = true;
      return;
    }
    const dot = only(n, '.');
    if (isObj(dot) && Object.keys(n).length === 1) {
      if (isContext(dot.left)) return; // context.<attr other than approval>: no approval read
      if (isApproval(dot.left)) {
        reads = true; // context.approval.<id|approverId|approver>: the same for every role
        return;
      }
    }
    const has = only(n, 'has');
    if (isObj(has) && Object.keys(n).length === 1) {
      const first = Array.isArray(has.attr) ? has.attr[0] : has.attr;
      if (isContext(has.left)) {
        if (first === 'approval') reads = true; // existence only: every hypothetical approval has it
        return;
      }
      if (isApproval(has.left)) {
        reads = true;
        return;
      }
    }
    for (const v of Object.values(n)) visit(v);
  };
  // A policy without a JSON form cannot be analyzed: assume the worst.
  if (!isObj(est)) return { reads: true, roles: [], opaque: true };
  visit(est.conditions);
  return { reads, roles: [...roles].sort(), opaque };
}

/** `est` with every role-literal comparison replaced by its value for a role of class `role` (null: any other role). */
export function specializeRole(est: Json, role: string | null): Json {
  const rewrite = (n: Json): Json => {
    if (Array.isArray(n)) return n.map(rewrite);
    if (!isObj(n)) return n;
    const test = roleTest(n);
    if (test !== undefined) {
      const member = role !== null && test.literals.includes(role);
      return { Value: test.op === '!=' ? !member : member };
    }
    // Value nodes are data: never rewritten.
    if ('Value' in n && Object.keys(n).length === 1) return n;
    return Object.fromEntries(Object.entries(n).map(([k, v]) => [k, rewrite(v)]));
  };
  return rewrite(est);
}

/** One policy of the probe set: which original it comes from and for which role class. */
interface ProbeMember {
  readonly forbid: boolean;
  /** Index into `classes`; -1: shared by every class (it does not compare the role). */
  readonly cls: number;
}

/** The probe: a derived policy set (ids and ESTs, all permits) and how to read its answer. */
export interface ApprovalPlan {
  readonly uses: ReadonlyMap<string, ApprovalUse>;
  /** Undefined when no policy reads the approval, or some policy reads the role opaquely. */
  readonly probe?: {
    readonly policies: readonly { readonly id: string; readonly est: Json }[];
    /** Role classes: the literals, then null for "any other role". */
    readonly classes: readonly (string | null)[];
    readonly members: ReadonlyMap<string, ProbeMember>;
  };
}

/** Analyzes every policy and, when the role is read only through literals, builds the probe set. */
export function planApproval(
  policies: readonly { readonly id: string; readonly effect: 'permit' | 'forbid'; readonly est: Json }[],
): ApprovalPlan {
  const uses = new Map<string, ApprovalUse>(policies.map((p) => [p.id, analyzeApproval(p.est)]));
  const all = [...uses.values()];
  if (!all.some((u) => u.reads) || all.some((u) => u.opaque)) return { uses };
  const literals = [...new Set(all.flatMap((u) => u.roles))].sort();
  const classes: (string | null)[] = [...literals, null];
  const derived: { id: string; est: Json }[] = [];
  const members = new Map<string, ProbeMember>();
  const asPermit = (est: Json): Json => {
    const { annotations: _dropped, ...rest } = est as Record<string, Json>;
    return { ...rest, effect: 'permit' };
  };
  policies.forEach((p, i) => {
    const forbid = p.effect === 'forbid';
    if ((uses.get(p.id) as ApprovalUse).roles.length === 0) {
      const id = `p${i}`;
      derived.push({ id, est: asPermit(p.est) });
      members.set(id, { forbid, cls: -1 });
      return;
    }
    classes.forEach((role, k) => {
      const id = `p${i}r${k}`;
      derived.push({ id, est: asPermit(specializeRole(p.est, role)) });
      members.set(id, { forbid, cls: k });
    });
  });
  return { uses, probe: { policies: derived, classes, members } };
}

/** What the probe set answered: satisfied policies, erroring ones, and any errors. */
export interface ProbeAnswer {
  readonly policies: readonly string[];
  readonly erroring: readonly string[];
  readonly errors: readonly string[];
}

/** The roles of `roles` (in their order) whose class the probe answer allows. */
export function rolesFromProbe(probe: NonNullable<ApprovalPlan['probe']>, answer: ProbeAnswer, roles: readonly string[]): string[] {
  // An error no policy owns (the request, the engine): nothing is known, so no role is offered.
  if (answer.errors.length > 0 && answer.erroring.length === 0) return [];
  const n = probe.classes.length;
  const permit = new Array<boolean>(n + 1).fill(false);
  const forbid = new Array<boolean>(n + 1).fill(false);
  const error = new Array<boolean>(n + 1).fill(false);
  // Slot n holds the shared policies (cls -1).
  const slot = (m: ProbeMember) => (m.cls < 0 ? n : m.cls);
  for (const id of answer.policies) {
    const m = probe.members.get(id);
    if (m === undefined) return []; // not ours: refuse to guess
    (m.forbid ? forbid : permit)[slot(m)] = true;
  }
  for (const id of answer.erroring) {
    const m = probe.members.get(id);
    if (m === undefined) return [];
    error[slot(m)] = true;
  }
  const allowed = (k: number) => !error[n] && !error[k] && !forbid[n] && !forbid[k] && (permit[n] || permit[k]);
  // A role that is no literal of the set belongs to the last class, "any other role".
  return roles.filter((r) => {
    const k = probe.classes.indexOf(r);
    return allowed(k < 0 ? n - 1 : k);
  });
}
