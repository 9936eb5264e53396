// The one decision function every enforcement point uses (DESIGN §2 "decision", §4 decision path):
// the call must fit the scope of its mandate and of every ancestor (tool, argument constraints,
// budgets), then org policy (Cedar) decides. Three outcomes: allow, deny, approval_required.
import { randomUUID } from 'node:crypto';
import { bindIntent, cedarIntent, type IntentContext, intentIndex } from '../intent/index.js';
import type { Clock } from '../lib/clock.js';
import type { CallerMandate } from '../oauth/caller.js';
import { matchCall } from '../scope/scope.js';
import { type BudgetCounter, type BudgetUse, budgetUses } from './budgets.js';
import { projectFast as project } from './cedar/projector.js';
import { ShapeError } from './cedar/shape.js';
import type { CedarValueJson, EngineAnswer, EngineRequest, EntityJson, LoadedPolicySet } from './engine.js';
import { authorizeAny, isAsyncSet } from './engine-async.js';
import type { PolicyStore } from './store.js';
import type { ChainGrant, Decision, DecisionApproval, DecisionInput } from './types.js';

const NS = 'Mandate';
const T = { agent: `${NS}::Agent`, tool: `${NS}::Tool`, mandate: `${NS}::Mandate`, human: `${NS}::Human`, action: `${NS}::Action` };
const CALL = { type: T.action, id: 'call' };
const CALL_KEY = `${T.action}::"call"`;
/** The approver a hypothetical approval is attributed to when computing `approvalRoles`. */
const PENDING_APPROVER = 'pending-approver';

export interface DecisionServiceOptions {
  readonly policies: PolicyStore;
  /** Budget counters (only `decide` touches them; `evaluate` never does). */
  readonly budgets: Pick<BudgetCounter, 'consume' | 'fits'>;
  readonly clock: Clock;
  /**
   * Approver roles offered, in this order, when an approval would allow a denied call. All are
   * answered by one evaluation of the set's approval probe (see `#approvalRoles`), not one each.
   */
  readonly approverRoles: readonly string[];
}

/** What `evaluate` found, before budgets are consumed. */
export interface Evaluation {
  readonly decision: Decision;
  /** Budget counters an allowed call must consume. */
  readonly uses: readonly BudgetUse[];
  /** The grant matched in each mandate of the chain, root first. */
  readonly grants: readonly ChainGrant[];
  /** The Cedar request sent (for explain). */
  readonly request?: EngineRequest;
}

export class DecisionService {
  readonly #o: DecisionServiceOptions;

  constructor(options: DecisionServiceOptions) {
    this.#o = options;
  }

  /**
   * Decides one tool call. On `allow`, the budgets of the matched grants (this mandate and every
   * ancestor) are consumed atomically before it returns; if they are exhausted meanwhile, the
   * outcome is `deny`. Never throws for a bad request: malformed input is a deny with reasons.
   *
   * @example
   * const d = await broker.decisions.decide({ mandate, chain, agent, tool, args: { amountCents: 500 } });
   * if (d.outcome === 'approval_required') askOneOf(d.approvalRoles);
   */
  async decide(input: DecisionInput): Promise<Decision> {
    // An external PDP answers over the network; in-process engines keep the synchronous path.
    const { decision, uses } = isAsyncSet(this.#o.policies.current?.set) ? await this.evaluateAsync(input) : this.evaluate(input);
    if (decision.outcome === 'allow' && uses.length > 0) {
      const consumed = await this.#o.budgets.consume(uses);
      if (!consumed.ok) return deny(decision.id, [...decision.reasons, consumed.reason], [], decision.grant);
    }
    if (decision.outcome === 'approval_required' && uses.length > 0) {
      // An approval is pointless when the budget is already spent: say so now.
      const fits = await this.#o.budgets.fits(uses);
      if (!fits.ok) return deny(decision.id, [...decision.reasons, fits.reason], decision.policies, decision.grant);
    }
    return decision;
  }

  /** Everything `decide` does except touching budget counters (for explain and dry runs). */
  evaluate(input: DecisionInput): Evaluation {
    const p = this.#prepare(input);
    return 'decision' in p ? p : this.#conclude(input, p, p.set.authorize(p.request));
  }

  /** `evaluate`, awaiting an engine that answers over the network (see src/policy/engine-async.ts). */
  async evaluateAsync(input: DecisionInput): Promise<Evaluation> {
    const p = this.#prepare(input);
    return 'decision' in p ? p : this.#conclude(input, p, await authorizeAny(p.set, p.request));
  }

  /** Chain, scope and budgets checked, and the org-policy request built; or the decision already. */
  #prepare(input: DecisionInput): Evaluation | Prepared {
    const id = randomUUID();
    const reasons: string[] = [];
    const structural = checkChain(input, input.now ?? this.#o.clock.now());
    if (structural !== undefined) return { decision: deny(id, [structural]), uses: [], grants: [] };

    const grants: ChainGrant[] = [];
    for (const m of input.chain) {
      const match = matchCall(m.scope, input.tool.name, input.args ?? {}, { pathArgs: input.tool.pathArgs });
      if (!match.ok) {
        const whose = m.id === input.mandate.id ? `mandate ${m.id}` : `ancestor mandate ${m.id} (depth ${m.depth})`;
        return { decision: deny(id, [...reasons, `${whose}: ${match.reason}`]), uses: [], grants };
      }
      grants.push({ mandateId: m.id, index: match.index, grant: match.grant });
      reasons.push(`${m.id === input.mandate.id ? 'mandate' : 'ancestor mandate'} ${m.id} grant #${match.index} allows ${input.tool.name}`);
    }
    const own = grants[grants.length - 1];
    const grant = own === undefined ? undefined : { mandateId: own.mandateId, index: own.index, tool: own.grant.tool };
    const uses = budgetUses(grants, input.args);
    if (typeof uses === 'string') return { decision: deny(id, [...reasons, uses], [], grant), uses: [], grants };

    const bundle = this.#o.policies.current;
    if (bundle === undefined) {
      return { decision: deny(id, [...reasons, 'no org policy is loaded'], [], grant, ['no org policy is loaded']), uses, grants };
    }
    const set = bundle.set;
    let request: EngineRequest;
    let intent: IntentContext | undefined;
    try {
      intent = intentOf(set, input);
      request = cedarRequest(set, input, input.approval, intent);
    } catch (err) {
      const message = err instanceof ShapeError ? err.message : `cannot build the policy request: ${String(err)}`;
      return { decision: deny(id, [...reasons, message], [], grant, [message]), uses, grants };
    }
    return { id, reasons, uses, grants, grant, set, request, intent };
  }

  /** The decision from the org-policy answer. */
  #conclude(input: DecisionInput, p: Prepared, answer: EngineAnswer): Evaluation {
    const { id, reasons, uses, grants, grant, set, request } = p;
    const intent = p.intent === undefined ? {} : { intent: p.intent };
    if (answer.errors.length > 0) {
      return {
        decision: { ...deny(id, [...reasons, 'org policy could not be evaluated'], answer.policies, grant, answer.errors), ...intent },
        uses,
        grants,
        request,
      };
    }
    if (answer.decision === 'allow') {
      reasons.push(`org policy permits (${answer.policies.join(', ')})`);
      return { decision: { id, outcome: 'allow', reasons, policies: answer.policies, grant, ...intent }, uses, grants, request };
    }
    reasons.push(answer.policies.length > 0 ? `org policy forbids (${answer.policies.join(', ')})` : 'no org policy permits this call');
    const roles = this.#approvalRoles(set, input, answer, p.intent);
    if (roles.length > 0) {
      reasons.push(`an approval by one of: ${roles.join(', ')} would allow it`);
      return {
        decision: { id, outcome: 'approval_required', reasons, policies: answer.policies, grant, approvalRoles: roles, ...intent },
        uses,
        grants,
        request,
      };
    }
    return { decision: { ...deny(id, reasons, answer.policies, grant), ...intent }, uses, grants, request };
  }

  /**
   * Approver roles with which the same call would be allowed: evaluated, not guessed, and decided
   * from the set's structure (its load-time approval analysis), never its text.
   *
   * Only a denial without errors gets here. An approval can change it only if
   * - some forbid determined it and every determining forbid reads `context.approval` (a forbid that
   *   does not read it stays satisfied whatever the approval), or
   * - nothing determined it (no permit was satisfied) and some permit reads the approval (forbids
   *   can only add denials).
   * Otherwise the answer is a plain deny after its one evaluation. When approval can matter, ONE
   * more evaluation (the set's approval probe, src/policy/cedar/approval.ts) answers for every
   * configured role at once. Only a set that reads the role opaquely (no probe) is evaluated once
   * per role. An engine without analysis (an external PDP) never yields approval_required.
   */
  #approvalRoles(set: LoadedPolicySet, input: DecisionInput, denied: EngineAnswer, intent: IntentContext | undefined): string[] {
    const analysis = set.approval;
    const roles = this.#o.approverRoles;
    if (analysis === undefined || roles.length === 0) return [];
    const reads = (id: string) => analysis.uses.get(id)?.reads === true;
    const matters =
      denied.policies.length > 0 ? denied.policies.every(reads) : set.policies.some((p) => p.effect === 'permit' && reads(p.id));
    if (!matters) return [];
    const hypothetical = (role: string): EngineRequest | undefined => {
      try {
        return cedarRequest(set, input, { id: 'pending', approverId: PENDING_APPROVER, approverRole: role }, intent);
      } catch {
        // A request that cannot be built with an approval cannot be allowed with one either.
        return undefined;
      }
    };
    if (analysis.rolesAllowing !== undefined) {
      // The probe never reads the role's value (its comparisons are constants per role class).
      const request = hypothetical(roles[0] as string);
      return request === undefined ? [] : analysis.rolesAllowing(request, roles);
    }
    const allowed: string[] = [];
    for (const role of roles) {
      const request = hypothetical(role);
      if (request === undefined) continue;
      const a = set.authorize(request);
      if (a.decision === 'allow' && a.errors.length === 0) allowed.push(role);
    }
    return allowed;
  }
}

interface Prepared {
  readonly id: string;
  readonly reasons: string[];
  readonly uses: readonly BudgetUse[];
  readonly grants: readonly ChainGrant[];
  readonly grant: Decision['grant'];
  readonly set: LoadedPolicySet;
  readonly request: EngineRequest;
  readonly intent: IntentContext | undefined;
}

function deny(id: string, reasons: string[], policies: string[] = [], grant?: Decision['grant'], errors?: string[]): Decision {
  return { id, outcome: 'deny', reasons, policies, ...(grant ? { grant } : {}), ...(errors?.length ? { errors } : {}) };
}

/** Why the mandate chain cannot be decided on at all, or undefined. */
function checkChain(input: DecisionInput, now: number): string | undefined {
  const { chain, mandate, agent } = input;
  if (!Array.isArray(chain) || chain.length === 0) return 'the mandate chain is empty';
  if (chain[chain.length - 1]?.id !== mandate.id) return 'the mandate chain does not end with the calling mandate';
  if (chain[0]?.parentId !== undefined && chain[0]?.parentId !== null) return 'the mandate chain does not start at a root mandate';
  for (let i = 1; i < chain.length; i++) {
    if (chain[i]?.parentId !== chain[i - 1]?.id) return `mandate ${chain[i]?.id} is not a child of ${chain[i - 1]?.id}`;
  }
  if (mandate.agentId !== agent.id) return `mandate ${mandate.id} belongs to another agent`;
  for (const m of chain) {
    if (m.status !== 'active') return `mandate ${m.id} is ${m.status}`;
    const expires = expiry(m);
    if (expires !== undefined && !(now < expires)) return `mandate ${m.id} has expired`;
  }
  if (typeof input.tool?.name !== 'string') return 'the tool is unknown';
  if (typeof input.args !== 'object' || input.args === null || Array.isArray(input.args)) return 'the arguments are not an object';
  return undefined;
}

function expiry(m: CallerMandate): number | undefined {
  const e = m.expiresAt;
  if (e === undefined || e === null) return undefined;
  const t = e instanceof Date ? e.getTime() : typeof e === 'string' ? Date.parse(e) : e;
  // An unparseable expiry is treated as expired: fail closed.
  return Number.isFinite(t) ? t : Number.NEGATIVE_INFINITY;
}

/** Context attributes the schema may declare (and only then are they computed). */
const declared = new WeakMap<object, { intent: boolean; template: boolean }>();

function contextDeclares(set: LoadedPolicySet): { intent: boolean; template: boolean } {
  const action = set.shapes.actions.get(CALL_KEY);
  if (action === undefined) return { intent: false, template: false };
  let d = declared.get(action);
  if (d === undefined) {
    type Rec = { type?: string; attributes?: Record<string, unknown> } | undefined;
    let ctx = action.context as Rec;
    // A context given as a common type's name (`context: MyContext`).
    if (ctx?.attributes === undefined && typeof ctx?.type === 'string') ctx = set.shapes.common.get(ctx.type) as Rec;
    const attrs = ctx?.attributes ?? {};
    d = { intent: Object.hasOwn(attrs, 'intent'), template: Object.hasOwn(attrs, 'template') };
    declared.set(action, d);
  }
  return d;
}

/**
 * The call's intent binding (src/intent/), when the schema's context declares `intent` and some
 * policy reads `context.intent` or `context.template` (tens of microseconds a call otherwise spent
 * for nothing): the request's entities come from a per-text cache, so per call only the arguments
 * are looked up.
 */
export function intentOf(set: LoadedPolicySet, input: DecisionInput): IntentContext | undefined {
  const d = contextDeclares(set);
  if (!d.intent && !d.template) return undefined;
  const reads = set.contextReads;
  if (reads !== undefined && reads !== 'all' && !reads.has('intent') && !reads.has('template')) return undefined;
  return bindIntent(input.args ?? {}, intentIndex(input.mandate.requestText), input.provenance);
}

let unread: Record<string, unknown> | undefined;
/** The Cedar form of an intent with nothing in it (what a set that never reads `context.intent` gets). */
function unreadIntent(): Record<string, unknown> {
  unread ??= cedarIntent(bindIntent({}, intentIndex(undefined)));
  return unread;
}

/** The Cedar request for a tool call: 4–6 entities, only what policies can read. */
export function cedarRequest(
  set: LoadedPolicySet,
  input: DecisionInput,
  approval: DecisionApproval | undefined,
  intent: IntentContext | undefined = intentOf(set, input),
): EngineRequest {
  const { shapes } = set;
  const { agent, tool, mandate } = input;
  const agentUid = { type: T.agent, id: agent.id };
  const toolUid = { type: T.tool, id: tool.name };
  const mandateUid = { type: T.mandate, id: mandate.id };
  const entity = (uid: { type: string; id: string }, attrs: Record<string, unknown>): EntityJson => ({
    uid,
    attrs: project(shapes, shapes.entities.get(uid.type), attrs, uid.type) as Record<string, CedarValueJson>,
    parents: [],
  });
  const entities: EntityJson[] = [
    entity(agentUid, { owner: agent.owner ?? '', actorType: agent.actorType, environment: agent.environment ?? '', status: agent.status }),
    entity(toolUid, { actionClass: tool.actionClass, sensitivity: tool.sensitivity, upstream: tool.upstream }),
    entity(mandateUid, { purpose: mandate.purpose, taskType: mandate.taskType, depth: mandate.depth }),
  ];
  const context: Record<string, unknown> = {
    args: input.args,
    environment: mandate.environment,
    risk: Math.max(0, Math.min(100, Math.round(input.riskScore ?? 0))),
    delegationDepth: mandate.depth,
    purpose: mandate.purpose,
    taskType: mandate.taskType,
    mandate: mandateUid,
  };
  if (intent !== undefined) context.intent = cedarIntent(intent);
  // Declared but read by no policy (so not computed): an empty record keeps the request valid.
  else if (contextDeclares(set).intent) context.intent = unreadIntent();
  const template = mandate.template;
  if (template !== undefined && template !== null) {
    const approvalDefaults = template.approval;
    context.template = {
      name: template.name,
      version: template.version,
      requiresApproval:
        approvalDefaults.tools.includes(tool.name) || (approvalDefaults.unnamedTargets && (intent?.unnamedTargets.length ?? 0) > 0),
    };
  }
  const humans = new Set<string>();
  if (mandate.onBehalfOf !== undefined && mandate.onBehalfOf !== null) {
    context.onBehalfOf = { type: T.human, id: mandate.onBehalfOf };
    humans.add(mandate.onBehalfOf);
  }
  if (approval !== undefined) {
    context.approval = { ...approval, approver: { type: T.human, id: approval.approverId } };
    humans.add(approval.approverId);
  }
  for (const h of humans) entities.push({ uid: { type: T.human, id: h }, attrs: {}, parents: [] });
  const action = shapes.actions.get(CALL_KEY);
  if (action === undefined) throw new ShapeError(`the schema declares no action ${CALL_KEY}`);
  return {
    principal: agentUid,
    action: CALL,
    resource: toolUid,
    context: project(shapes, action.context, context, 'context') as Record<string, CedarValueJson>,
    entities,
  };
}
