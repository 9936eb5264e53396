// The gateway's call path, independent of the MCP transport: filter tools/list to what the
// mandate chain grants, and run every tools/call through
//   limits → catalog → decide → audit decision (durable) → approval → forward → audit result.
// Nothing reaches an upstream unless its allow decision is durably in the audit log.
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import canonicalize from 'canonicalize';
import type { Approval, ApprovalContext, UsableApproval } from '../approvals/approval.js';
import { callHash } from '../approvals/call-hash.js';
import type { ApprovalService } from '../approvals/service.js';
import type { AuditActor, AuditLog } from '../audit/types.js';
import { MandateError } from '../errors/index.js';
import type { ErrorCode } from '../errors/registry.js';
import { type IntentContext, isTargetName, Provenance, resultText } from '../intent/index.js';
import { type CredentialInjector, leaseFailureCode } from '../leases/injection.js';
import type { Clock } from '../lib/clock.js';
import { sha256Hex } from '../lib/hash.js';
import type { VerifiedCaller } from '../oauth/caller.js';
import type { Logger } from '../observability/log.js';
import { type DecisionReason, type Metrics, secondsSince, type UpstreamOutcome } from '../observability/metrics.js';
import { SPANS, SpanKind, SpanStatusCode, type Tracing } from '../observability/tracing.js';
import type { Decision } from '../policy/types.js';
import type { RiskEngine, RiskPath } from '../risk/engine.js';
import type { TaskService } from '../tasks/index.js';
import { taskError } from '../tasks/task.js';
import type { Catalog, CatalogEntry } from '../upstreams/catalog.js';
import { UpstreamCallError } from '../upstreams/mcp-client/index.js';
import { META } from './protocol.js';
import type { Decider } from './types.js';
import type { UpstreamPool } from './upstream-pool.js';

/** `_meta` key of Mandate's structured error on tool error results. */
export const ERROR_META_KEY = 'mandate/error';

export interface GatewayLimits {
  readonly maxArgumentsBytes: number;
  readonly maxResultBytes: number;
  readonly upstreamTimeoutMs: number;
  readonly maxConcurrentCallsPerMandate: number;
  readonly forbidOnBehalfOfApprover: boolean;
}

export interface GatewayOptions {
  readonly catalog: Catalog;
  readonly pool: UpstreamPool;
  readonly decisions: Decider;
  readonly audit: AuditLog;
  readonly approvals: ApprovalService;
  /** Durable MCP tasks of approval-required calls (Tasks extension). */
  readonly tasks: TaskService;
  /**
   * The credential-injection seam for forwards that do not go through the session pool (HTTP API
   * upstreams): ask it per call, after the allow decision is durable, and inject what it returns.
   */
  readonly credentials?: CredentialInjector;
  readonly clock: Clock;
  readonly limits: GatewayLimits;
  /** Every refused call is logged here (code, reason, decision, mandate, tool; never argument values). */
  readonly log?: Logger;
  /** Decisions and upstream calls are counted and timed here (pre-bound children: no label objects per call). */
  readonly metrics?: Metrics;
  /** Spans of decide and upstream call, when tracing is on (undefined: no span work at all). */
  readonly tracing?: Tracing;
  /**
   * Values seen in the tool results this gateway relays, per mandate tree (intent binding,
   * src/intent/provenance.ts); default: a bounded in-memory record of its own.
   */
  readonly provenance?: Provenance;
  /** Runs before the first tools/list or tools/call (lazy discovery of demo upstreams). */
  readonly beforeFirstUse?: () => Promise<void>;
  /**
   * Every call is reported to the risk engine (src/risk/): its scores reach policy as
   * `context.risk`, and a `require_approval` response in force sends allowed calls to a human.
   */
  readonly risk?: RiskEngine;
  /** Who may approve a call the risk engine sent to approval. */
  readonly riskApproverRoles?: readonly string[];
}

/** Placeholder of a masked sensitive argument in approval contexts and audit events. */
export const MASKED = '[masked]';

/** A JSON-RPC error for the agent; the one serializer (toJsonRpcError) puts `data` next to `data.code`. */
export function rpcError(code: ErrorCode, message?: string, data: Record<string, unknown> = {}): MandateError {
  return new MandateError(code, message, { details: data });
}

/** Longest tool name echoed back in a refusal (grants name at most 256 characters). */
const MAX_ECHOED_NAME = 256;

/** A tool error result (the call was accepted but did not produce a usable result). */
function toolError(code: ErrorCode, text: string, data: Record<string, unknown> = {}): CallToolResult {
  return { content: [{ type: 'text', text }], isError: true, _meta: { [ERROR_META_KEY]: { code, ...data } } };
}

/**
 * A refused call as the model sees it (SEP-1303: input-validation and policy refusals are tool
 * results, not protocol errors): what was refused, then what would be allowed, in plain text; the
 * registry code, decision id and reasons in `_meta` for programs. Nothing was forwarded.
 */
function refusal(code: ErrorCode, refused: string, allowed: string, data: Record<string, unknown> = {}): CallToolResult {
  return toolError(code, `Refused: ${refused}. ${allowed}`.trim(), data);
}

/** How long a task outlives its approval's expiry, so a client polling late still reads the outcome. */
const TASK_RESULT_GRACE_MS = 15 * 60_000;

/** What a policy denial leaves the agent to do, from how it was decided. */
function denialHint(decision: Decision): string {
  if (decision.errors !== undefined)
    return 'The org policy could not be evaluated; this is not your fault — tell your user. Nothing was run.';
  if (decision.grant === undefined)
    return 'Stay within the limits of your mandate for this tool (the reason names the limit). Nothing was run.';
  return 'Org policy does not allow this call for this task and environment; a different call may be allowed. Nothing was run.';
}

/** A task's final CallToolResult, as a 2026-07-28 result (every result carries `resultType`). */
function complete(result: CallToolResult): CallToolResult {
  return { resultType: 'complete', ...result };
}

/** Most tool names listed in a refusal's "what is allowed" text. */
const MAX_LISTED_TOOLS = 20;

export interface CallOptions {
  /** Aborted when the client cancels (closed its HTTP request, or sent notifications/cancelled). */
  readonly signal?: AbortSignal;
  /** The client declared the Tasks extension on this request: an approval-required call becomes a task. */
  readonly tasks?: boolean;
}

export class Gateway {
  readonly #o: GatewayOptions;
  readonly #inFlight = new Map<string, number>();
  readonly #provenance: Provenance;
  #ready: Promise<void> | undefined;

  constructor(options: GatewayOptions) {
    this.#o = options;
    this.#provenance = options.provenance ?? new Provenance();
  }

  /** Tools the calling mandate and every ancestor grant, as the catalog describes them. */
  async listTools(caller: VerifiedCaller): Promise<Tool[]> {
    await this.#beforeFirstUse();
    const tools: Tool[] = [];
    for (const entry of this.#o.catalog.list()) {
      if (!caller.chain.every((m) => m.scope.tools.some((g) => g.tool === entry.name))) continue;
      tools.push({
        name: entry.name,
        ...(entry.title === undefined ? {} : { title: entry.title }),
        ...(entry.description === undefined ? {} : { description: entry.description }),
        inputSchema: entry.inputSchema as Tool['inputSchema'],
        annotations: {
          ...entry.annotations,
          readOnlyHint: entry.actionClass === 'read',
          destructiveHint: entry.actionClass === 'destructive',
        },
      });
    }
    return tools;
  }

  /**
   * One governed tools/call. Scope, policy and argument refusals are tool results with `isError`
   * (see `refusal`); only protocol-level refusals (an unknown tool, the concurrency limit) throw.
   */
  async callTool(
    caller: VerifiedCaller,
    name: string,
    rawArgs: Record<string, unknown> | undefined,
    options: CallOptions = {},
  ): Promise<CallToolResult> {
    await this.#beforeFirstUse();
    const { mandate } = caller;
    const args = rawArgs ?? {};
    const actors = actorsOf(caller);
    // JSON has no NaN or Infinity (`1e999` parses to Infinity): refuse before anything hashes or
    // canonicalizes the arguments, and audit it as the refused call it is.
    const nonFinite = nonFinitePath(args);
    if (nonFinite !== undefined) {
      const reason = `argument ${nonFinite} is not a finite number`;
      const decisionId = await this.#auditRefusal(caller, actors, name, reason);
      this.#refused(caller, name, 'RPC_NON_FINITE_NUMBER', 'non_finite_number', reason, decisionId);
      return refusal('RPC_NON_FINITE_NUMBER', `${reason} (NaN or Infinity; JSON cannot carry it)`, 'Send finite numbers only.', {
        decisionId,
        reasons: [reason],
      });
    }
    const canonicalArgs = canonicalize(args);
    if (canonicalArgs === undefined) throw rpcError('RPC_INVALID_PARAMS', 'the tool arguments are not representable as JSON');
    const argsBytes = Buffer.byteLength(canonicalArgs);
    if (argsBytes > this.#o.limits.maxArgumentsBytes) {
      const reason = `arguments are ${argsBytes} bytes, over the ${this.#o.limits.maxArgumentsBytes}-byte limit`;
      const decisionId = await this.#auditRefusal(caller, actors, name, reason);
      this.#refused(caller, name, 'RPC_ARGS_TOO_LARGE', 'args_too_large', reason, decisionId);
      return refusal('RPC_ARGS_TOO_LARGE', `the ${reason}`, `Arguments of up to ${this.#o.limits.maxArgumentsBytes} bytes are accepted.`, {
        decisionId,
        reasons: [reason],
        limitBytes: this.#o.limits.maxArgumentsBytes,
      });
    }
    // One answer for every tool the chain does not grant, whether the catalog has it or not, given
    // before the catalog is consulted: the answer, its audit event and its timing cannot tell an
    // agent which tools exist beyond its tools/list. (The audit event alone records `inCatalog`.)
    const ungranted = caller.chain.find((m) => !m.scope.tools.some((g) => g.tool === name));
    if (ungranted !== undefined) {
      const whose = ungranted.id === mandate.id ? `mandate ${ungranted.id}` : `ancestor mandate ${ungranted.id} (depth ${ungranted.depth})`;
      const reason = `${whose}: tool ${name.slice(0, MAX_ECHOED_NAME)} is not granted`;
      const decisionId = await this.#auditRefusal(caller, actors, name, reason, { inCatalog: this.#o.catalog.get(name) !== undefined });
      this.#refused(caller, name, 'RPC_CALL_DENIED', 'tool_not_granted', reason, decisionId);
      return refusal('RPC_CALL_DENIED', reason, this.#grantedHint(caller), { decisionId, reasons: [reason] });
    }
    const tool = this.#o.catalog.get(name);
    if (tool === undefined) {
      // Granted but offered by no upstream (removed, or not discovered yet): the agent knows the
      // name from its own grant, so saying so reveals nothing.
      const reason = `tool ${name} is granted but not in the catalog`;
      this.#refused(
        caller,
        name,
        'RPC_UNKNOWN_TOOL',
        'tool_not_in_catalog',
        reason,
        await this.#auditRefusal(caller, actors, name, reason, { inCatalog: false }),
      );
      throw rpcError('RPC_UNKNOWN_TOOL', `unknown tool: ${name}`);
    }

    // Counted before deciding, so a refused call never consumes budget.
    const inFlight = this.#inFlight.get(mandate.id) ?? 0;
    if (inFlight >= this.#o.limits.maxConcurrentCallsPerMandate) {
      this.#refused(caller, name, 'RPC_CONCURRENCY_LIMIT', 'concurrency_limit', `${inFlight} calls already in flight`);
      throw rpcError('RPC_CONCURRENCY_LIMIT', `mandate ${mandate.id} already has ${inFlight} calls in flight`);
    }
    this.#inFlight.set(mandate.id, inFlight + 1);
    try {
      return await this.#governedCall(caller, actors, tool, args, options);
    } finally {
      const n = (this.#inFlight.get(mandate.id) ?? 1) - 1;
      if (n <= 0) this.#inFlight.delete(mandate.id);
      else this.#inFlight.set(mandate.id, n);
    }
  }

  async #governedCall(
    caller: VerifiedCaller,
    actors: AuditActor[],
    tool: CatalogEntry,
    args: Record<string, unknown>,
    options: CallOptions,
  ): Promise<CallToolResult> {
    const { mandate, chain, agent } = caller;
    // What tool results relayed to this mandate tree contained: `context.intent.args.*.fromToolOutput`.
    const risk = this.#o.risk;
    const path = riskPathOf(caller);
    const scores = risk?.context(path);
    const input = {
      mandate,
      chain,
      agent,
      tool,
      args,
      provenance: this.#provenance.view(treeOf(caller)),
      ...(scores === undefined ? {} : { riskScore: Math.max(scores.mandate, scores.tree, scores.agent) }),
    };
    const started = performance.now();
    const tracing = this.#o.tracing;
    let decision = await (tracing === undefined
      ? this.#o.decisions.decide(input)
      : tracing.inSpan(SPANS.decide, { attributes: { 'gen_ai.tool.name': tool.name } }, async (span) => {
          const d = await this.#o.decisions.decide(input);
          span.setAttribute('mandate.decision.outcome', d.outcome);
          return d;
        }));
    this.#o.metrics?.decisionTimed(secondsSince(started));
    // A `require_approval` risk response in force: an allowed call waits for a human (a retry with
    // that human's approval is decided again below and goes through).
    const held = decision.outcome === 'allow' ? risk?.approvalRequired(path) : undefined;
    if (held !== undefined) decision = riskHeld(decision, held, this.#o.riskApproverRoles ?? []);
    // A plain object literal (no spreads): this runs on every call.
    risk?.observeCall({
      mandateId: path.mandateId,
      rootId: path.rootId,
      agentId: path.agentId,
      tool: tool.name,
      outcome: decision.outcome,
      // No grant matched: outside the mandate's scope or its argument constraints.
      refusal: decision.outcome !== 'deny' ? undefined : decision.grant === undefined ? 'scope' : 'other',
      action: tool.actionClass,
      sensitivity: tool.sensitivity,
      sendsOut: sendsOut(tool, args),
      client: caller.claims.cnf?.jkt,
    });
    let approval: UsableApproval | undefined;
    if (decision.outcome === 'approval_required') {
      // Only calls that need approval pay for the lookup; allowed calls never touch approvals.
      const hash = callHash({ mandateId: mandate.id, tool: tool.name, args });
      const earlier = await this.#o.approvals.findForCall(mandate.id, hash);
      // A retry while a human has not decided yet: the same answer, and nothing new in the audit log.
      if (earlier?.status === 'pending') {
        this.#o.metrics?.decided('approval_required', 'pending');
        return this.#pending(caller, tool, args, earlier, options);
      }
      if (earlier?.status === 'denied') return this.#deniedByHuman(caller, actors, tool, args, earlier);
      if (earlier?.status === 'approved' && earlier.decidedBy !== undefined && earlier.decidedRole !== undefined) {
        approval = { id: earlier.id, approverId: earlier.decidedBy, approverRole: earlier.decidedRole };
        const again = performance.now();
        decision = await this.#o.decisions.decide({ ...input, approval });
        this.#o.metrics?.decisionTimed(secondsSince(again));
      }
      if (decision.outcome === 'approval_required') {
        await this.#auditDecision(caller, actors, tool, args, decision, approval);
        if ((decision.approvalRoles ?? []).length > 0) this.#o.metrics?.decided('approval_required', 'policy');
        return this.#requestApproval(caller, actors, tool, args, hash, decision, options);
      }
    }
    // Durable before anything else happens; a rejected append rejects the call (fail closed).
    await this.#auditDecision(caller, actors, tool, args, decision, approval);
    if (decision.outcome === 'deny') {
      const reason = decision.reasons[decision.reasons.length - 1] ?? 'denied by policy';
      this.#refused(caller, tool.name, 'RPC_CALL_DENIED', denyReasonOf(decision), withoutValues(reason), decision.id);
      return refusal('RPC_CALL_DENIED', reason, denialHint(decision), {
        decisionId: decision.id,
        reasons: decision.reasons,
        ...(decision.policies.length === 0 ? {} : { policies: decision.policies }),
      });
    }
    if (
      approval !== undefined &&
      !(await this.#o.approvals.consume(approval.id, { actors, mandateId: mandate.id, decisionId: decision.id }))
    ) {
      // Another replica (or a concurrent retry) used it first: single use holds.
      this.#refused(caller, tool.name, 'RPC_CALL_DENIED', 'approval_used', `approval ${approval.id} was already used`, decision.id);
      return refusal(
        'RPC_CALL_DENIED',
        `approval ${approval.id} was already used for this exact call`,
        'Each approval allows one call; ask again if the call must run again.',
        {
          decisionId: decision.id,
          approvalId: approval.id,
        },
      );
    }
    this.#o.metrics?.decided('allow', approval === undefined ? 'policy' : 'approval');
    return this.#forward(caller, actors, tool, args, decision, options.signal);
  }

  async #auditDecision(
    caller: VerifiedCaller,
    actors: AuditActor[],
    tool: CatalogEntry,
    args: Record<string, unknown>,
    decision: Decision,
    approval: UsableApproval | undefined,
  ): Promise<void> {
    const { mandate } = caller;
    await this.#o.audit.append({
      type: 'decision',
      actors,
      mandateId: mandate.id,
      environment: mandate.environment,
      data: {
        decisionId: decision.id,
        outcome: decision.outcome,
        tool: tool.name,
        actionClass: tool.actionClass,
        sensitivity: tool.sensitivity,
        args: this.#auditArgs(tool, args),
        reasons: decision.reasons,
        policies: decision.policies,
        ...(decision.grant === undefined ? {} : { grant: decision.grant }),
        ...(decision.errors === undefined ? {} : { errors: decision.errors }),
        ...(decision.intent === undefined ? {} : { intent: auditIntent(decision.intent) }),
        ...(approval === undefined ? {} : { approvalId: approval.id }),
        ...(caller.chain.length > 1 ? { parentMandateId: mandate.parentId } : {}),
        tokenId: caller.tokenId,
      },
    });
  }

  async #forward(
    caller: VerifiedCaller,
    actors: AuditActor[],
    tool: CatalogEntry,
    args: Record<string, unknown>,
    decision: Decision,
    signal: AbortSignal | undefined,
  ): Promise<CallToolResult> {
    const started = this.#o.clock.now();
    // From memory (kept current by `catalog` changes): the call path reads nothing from the store.
    const upstream = this.#o.catalog.upstream(tool.upstream);
    let result: CallToolResult;
    let failure: ErrorCode | undefined;
    let upstreamSeconds: number | undefined;
    if (upstream === undefined) {
      failure = 'RPC_UPSTREAM_UNAVAILABLE';
      result = toolError(failure, `upstream ${tool.upstream} is no longer registered`, { decisionId: decision.id });
    } else {
      const timeout = upstream.timeoutMs ?? this.#o.limits.upstreamTimeoutMs;
      const called = performance.now();
      // Tracing on: the upstream call is a client span whose context the upstream receives as
      // `traceparent`, in `_meta` (MCP 2026-07-28, OpenTelemetry trace context) and as an HTTP header.
      const span = this.#o.tracing?.tracer.startSpan(SPANS.upstreamCall, {
        kind: SpanKind.CLIENT,
        attributes: { 'mcp.method.name': 'tools/call', 'gen_ai.tool.name': tool.upstreamTool, 'mandate.upstream': tool.upstream },
      });
      const trace = span === undefined ? undefined : this.#o.tracing?.carrierOf(span);
      try {
        // The client checks only that the result is an object with a `content` array; the limit is wall-clock.
        result = fromUpstream(
          await this.#o.pool.call(
            tool.upstream,
            upstream.isolation,
            caller.mandate.id,
            'tools/call',
            trace === undefined ? { name: tool.upstreamTool, arguments: args } : { name: tool.upstreamTool, arguments: args, _meta: trace },
            trace === undefined
              ? signal === undefined
                ? { timeoutMs: timeout }
                : { timeoutMs: timeout, signal }
              : { timeoutMs: timeout, traceContext: trace, ...(signal === undefined ? {} : { signal }) },
          ),
          tool.upstream,
        );
      } catch (err) {
        // A client that hung up (or sent notifications/cancelled) cancelled the upstream call too.
        failure = signal?.aborted === true ? 'RPC_REQUEST_CANCELLED' : upstreamFailure(err);
        const why =
          failure === 'RPC_REQUEST_CANCELLED'
            ? `the client cancelled the call; upstream ${tool.upstream} was told to stop`
            : failure === 'RPC_UPSTREAM_TIMEOUT'
              ? `upstream ${tool.upstream} did not answer within ${timeout} ms; the call was cancelled and will not be retried`
              : failure === 'RPC_UPSTREAM_ERROR'
                ? `upstream ${tool.upstream} refused the call: ${String((err as Error).message).slice(0, 300)}`
                : failure === 'RPC_LEASE_UNAVAILABLE'
                  ? `the credential for upstream ${tool.upstream} could not be obtained for this mandate; the call was not forwarded`
                  : `upstream ${tool.upstream} is unreachable; the call was not retried`;
        result = toolError(failure, why, { decisionId: decision.id });
        if (failure !== 'RPC_REQUEST_CANCELLED') {
          this.#o.log?.warn(
            { code: failure, reason: why, upstream: tool.upstream, decisionId: decision.id, mandateId: caller.mandate.id, tool: tool.name },
            'upstream call failed',
          );
        }
      } finally {
        upstreamSeconds = secondsSince(called);
        if (span !== undefined) {
          if (failure !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: failure });
          span.end();
        }
      }
    }
    const body = JSON.stringify(result);
    const bytes = Buffer.byteLength(body);
    const sha256 = sha256Hex(body);
    if (failure === undefined && bytes > this.#o.limits.maxResultBytes) {
      failure = 'RPC_RESULT_TOO_LARGE';
      result = toolError(
        failure,
        `the result of ${tool.name} is ${bytes} bytes, over the ${this.#o.limits.maxResultBytes}-byte limit; it was withheld`,
        {
          decisionId: decision.id,
        },
      );
    }
    if (upstreamSeconds !== undefined) this.#o.metrics?.upstreamCalled(tool.upstream, upstreamOutcome(failure, result), upstreamSeconds);
    // Untrusted data from here on: what it names is remembered for the mandate tree (bounded, in memory).
    if (failure === undefined) this.#provenance.record(treeOf(caller), resultText(result, PROVENANCE_SCAN_CHARS));
    this.#o.risk?.observeResult(riskPathOf(caller), bytes);
    // What the agent is about to see is in the log before it sees it (committed: a broker crash
    // cannot lose it); the fsync that follows its commit still runs. The decision that allowed the call
    // was durable before it was forwarded.
    await this.#o.audit.append(
      {
        type: 'tool.result',
        actors,
        mandateId: caller.mandate.id,
        environment: caller.mandate.environment,
        data: {
          decisionId: decision.id,
          tool: tool.name,
          bytes,
          sha256,
          isError: result.isError === true,
          ...(failure === undefined ? {} : { error: failure }),
          durationMs: this.#o.clock.now() - started,
        },
      },
      { wait: 'committed' },
    );
    return result;
  }

  async #requestApproval(
    caller: VerifiedCaller,
    actors: AuditActor[],
    tool: CatalogEntry,
    args: Record<string, unknown>,
    hash: string,
    decision: Decision,
    options: CallOptions,
  ): Promise<CallToolResult> {
    const { mandate, chain, agent } = caller;
    const roles = decision.approvalRoles ?? [];
    if (roles.length === 0) {
      this.#refused(
        caller,
        tool.name,
        'RPC_CALL_DENIED',
        'no_approver_role',
        'approval is required but no approver role can grant it',
        decision.id,
      );
      return refusal(
        'RPC_CALL_DENIED',
        'approval is required but no approver role can grant it',
        'Ask an operator to configure an approver role for this call.',
        {
          decisionId: decision.id,
          reasons: decision.reasons,
        },
      );
    }
    const forbidden = new Set(chain.map((m) => m.agentId));
    forbidden.add(agent.id);
    if (this.#o.limits.forbidOnBehalfOfApprover && caller.onBehalfOf !== undefined) forbidden.add(caller.onBehalfOf);
    const context: ApprovalContext = {
      agent: {
        id: agent.id,
        ...(agent.displayName === undefined ? {} : { displayName: agent.displayName }),
        ...(agent.owner === undefined ? {} : { owner: agent.owner }),
        ...(agent.environment === undefined ? {} : { environment: agent.environment }),
      },
      ...(caller.onBehalfOf === undefined ? {} : { onBehalfOf: caller.onBehalfOf }),
      purpose: mandate.purpose,
      taskType: mandate.taskType,
      environment: mandate.environment,
      chain: chain.map((m) => ({ mandateId: m.id, agentId: m.agentId, purpose: m.purpose })),
      tool: {
        name: tool.name,
        ...(tool.title === undefined ? {} : { title: tool.title }),
        ...(tool.description === undefined ? {} : { description: tool.description }),
        actionClass: tool.actionClass,
        sensitivity: tool.sensitivity,
      },
      args: maskArgs(tool, args),
      policies: decision.policies,
    };
    const { approval } = await this.#o.approvals.request({
      callHash: hash,
      mandateId: mandate.id,
      tool: tool.name,
      agentId: agent.id,
      onBehalfOf: caller.onBehalfOf,
      requiredRoles: roles,
      forbiddenApprovers: [...forbidden],
      decisionId: decision.id,
      reasons: decision.reasons,
      context,
      environment: mandate.environment,
      actors,
    });
    return this.#pending(caller, tool, args, approval, options);
  }

  /**
   * The answer while a human has not decided: a task for clients that declared the Tasks
   * extension (one per approval; it forwards the call once approved), else a tool result naming
   * the approval, for the agent to retry the exact same call.
   */
  async #pending(
    caller: VerifiedCaller,
    tool: CatalogEntry,
    args: Record<string, unknown>,
    approval: Approval,
    options: CallOptions,
  ): Promise<CallToolResult> {
    const url = this.#o.approvals.consoleUrl(approval.id);
    const roles = approval.requiredRoles.join(', ');
    const expires = new Date(approval.expiresAt).toISOString();
    if (options.tasks === true) {
      const task =
        (await this.#o.tasks.findByApproval(approval.id, caller.mandate.id)) ??
        (await this.#o.tasks.create({
          mandateId: caller.mandate.id,
          approvalId: approval.id,
          callHash: approval.callHash,
          tool: tool.name,
          args,
          statusMessage: `Waiting for a human approval of ${tool.name} (one of: ${roles}): ${url} . The call runs once it is approved; the approval expires at ${expires}.`,
          ttlMs: Math.max(0, approval.expiresAt - this.#o.clock.now()) + TASK_RESULT_GRACE_MS,
        }));
      return this.#o.tasks.toWire(task, 'task') as CallToolResult;
    }
    return toolError(
      'RPC_APPROVAL_REQUIRED',
      `Approval pending: ${tool.name} needs a human approval (one of: ${roles}). ` +
        `Approval ${approval.id}: ${url} . Retry the exact same call after it is approved; it expires at ${expires}.`,
      {
        approvalId: approval.id,
        url,
        decisionId: approval.decisionId,
        expiresAt: approval.expiresAt,
        requiredRoles: approval.requiredRoles,
      },
    );
  }

  /** A retry of a call a human denied: said plainly (audited as the refused call it is), no new approval request. */
  async #deniedByHuman(
    caller: VerifiedCaller,
    actors: AuditActor[],
    tool: CatalogEntry,
    args: Record<string, unknown>,
    approval: Approval,
  ): Promise<CallToolResult> {
    const by =
      approval.decidedBy === undefined
        ? 'a human'
        : `${approval.decidedBy}${approval.decidedRole === undefined ? '' : ` (${approval.decidedRole})`}`;
    const note = approval.decidedNote === undefined ? '' : `: "${approval.decidedNote.slice(0, 300)}"`;
    const reason = `approval ${approval.id} of this exact call was denied by ${by}${note}`;
    const decisionId = await this.#auditRefusal(caller, actors, tool.name, reason, {
      approvalId: approval.id,
      args: this.#auditArgs(tool, args),
    });
    this.#refused(caller, tool.name, 'RPC_APPROVAL_DENIED', 'approval_denied', reason, decisionId);
    return refusal('RPC_APPROVAL_DENIED', reason, 'Do not retry it unchanged; tell your user, or propose a different action.', {
      decisionId,
      approvalId: approval.id,
      reasons: [reason],
    });
  }

  /** tasks/get: the task's state; an approved task forwards its call here, exactly once across replicas. */
  async getTask(caller: VerifiedCaller, taskId: string): Promise<Record<string, unknown>> {
    const { tasks, approvals } = this.#o;
    const task = await tasks.get(taskId, caller.mandate.id);
    if (task === undefined) throw new MandateError('RPC_TASK_NOT_FOUND');
    if (task.status !== 'working') return tasks.toWire(task, 'complete');
    const approval = await approvals.get(task.approvalId);
    if (approval === undefined || approval.status === 'pending') return tasks.toWire(task, 'complete');
    // Whatever the outcome, one poller settles the task: the claim (working → forwarding, one
    // conditional update in the store) decides which, so concurrent polls on any replicas never
    // forward twice, nor record a refusal over a call another poll is forwarding.
    const timeout = this.#o.catalog.upstream(this.#o.catalog.get(task.tool)?.upstream ?? '')?.timeoutMs ?? this.#o.limits.upstreamTimeoutMs;
    const claim = await tasks.claim(taskId, caller.mandate.id, { forwardTimeoutMs: timeout });
    if (claim !== undefined && approval.status === 'approved') {
      // The full governed path, as a retry of the same call: decided again with the approval,
      // audited, the approval consumed (single use), forwarded, the result audited.
      try {
        const result = await this.callTool(caller, task.tool, claim.args, {});
        await tasks.complete(
          taskId,
          complete(result),
          result.isError === true ? 'Approved, but the call did not succeed.' : 'Approved and done.',
        );
      } catch (err) {
        const e = err instanceof MandateError ? err : new MandateError('ERR_INTERNAL', undefined, { cause: err });
        await tasks.fail(
          taskId,
          taskError(e.spec.expose ? e.code : 'RPC_INTERNAL_ERROR', e.spec.expose ? e.message : 'internal error'),
          'The approved call failed.',
        );
        if (!(err instanceof MandateError)) throw err;
      }
    } else if (claim !== undefined) {
      const why =
        approval.status === 'denied'
          ? `a human (${approval.decidedBy ?? 'unknown'}) denied this call${approval.decidedNote === undefined ? '' : `: "${approval.decidedNote.slice(0, 300)}"`}`
          : approval.status === 'consumed'
            ? 'its approval was already used by another request of this mandate'
            : `its approval is ${approval.status}`;
      const code =
        approval.status === 'denied' ? 'RPC_APPROVAL_DENIED' : approval.status === 'expired' ? 'RPC_APPROVAL_EXPIRED' : 'RPC_CALL_DENIED';
      const reasonCode =
        approval.status === 'denied' ? 'approval_denied' : approval.status === 'consumed' ? 'approval_used' : 'approval_not_usable';
      this.#refused(caller, task.tool, code, reasonCode, `task ${taskId}: ${why}`);
      await tasks.complete(
        taskId,
        complete(
          refusal(code, `${task.tool} was not run: ${why}`, 'Tell your user; do not retry it unchanged.', { approvalId: approval.id }),
        ),
        `Not run: ${why}.`,
      );
    }
    const now = await tasks.get(taskId, caller.mandate.id);
    if (now === undefined) throw new MandateError('RPC_TASK_NOT_FOUND');
    return tasks.toWire(now, 'complete');
  }

  /** tasks/cancel: a task still waiting is cancelled and its approval request withdrawn; an empty acknowledgement. */
  async cancelTask(caller: VerifiedCaller, taskId: string): Promise<Record<string, unknown>> {
    const task = await this.#o.tasks.cancel(taskId, caller.mandate.id);
    if (task === undefined) throw new MandateError('RPC_TASK_NOT_FOUND');
    if (task.cancelledNow) {
      await this.#o.approvals.withdraw(task.approvalId, { actors: actorsOf(caller), mandateId: caller.mandate.id, taskId });
    }
    return {};
  }

  /** tasks/update: approval tasks never ask the client for input; acknowledged for a known task. */
  async updateTask(caller: VerifiedCaller, taskId: string): Promise<Record<string, unknown>> {
    if ((await this.#o.tasks.get(taskId, caller.mandate.id)) === undefined) throw new MandateError('RPC_TASK_NOT_FOUND');
    return {};
  }

  /** The catalog entry of a tool (the endpoint checks its `x-mcp-header` parameters). */
  catalogEntry(name: string): CatalogEntry | undefined {
    return this.#o.catalog.get(name);
  }

  /** Counts and logs one refused call: registry code, reason, decision, mandate and tool; never argument values. */
  #refused(caller: VerifiedCaller, tool: string, code: ErrorCode, why: DecisionReason<'deny'>, reason: string, decisionId?: string): void {
    this.#o.metrics?.decided('deny', why);
    // Refusals before a decision (ungranted, unknown, malformed) are seen here; decided ones at the decision.
    if (decisionId === undefined || PRE_DECISION.has(why)) {
      const path = riskPathOf(caller);
      this.#o.risk?.observeCall({
        mandateId: path.mandateId,
        rootId: path.rootId,
        agentId: path.agentId,
        tool,
        outcome: 'deny',
        refusal: SCOPE_REFUSALS.has(why) ? 'scope' : 'other',
        action: 'read',
        sensitivity: 'internal',
        sendsOut: false,
      });
    }
    this.#o.log?.info(
      { code, reasonCode: why, reason, decisionId, mandateId: caller.mandate.id, tool: tool.slice(0, MAX_ECHOED_NAME) },
      'call refused',
    );
  }

  /** Audits a call refused before any decision (ungranted or unknown tool, bad or oversized arguments) as a deny. */
  async #auditRefusal(
    caller: VerifiedCaller,
    actors: AuditActor[],
    tool: string,
    reason: string,
    extra: Record<string, unknown> = {},
  ): Promise<string> {
    const decisionId = `gw_${crypto.randomUUID()}`;
    await this.#o.audit.append({
      type: 'decision',
      actors,
      mandateId: caller.mandate.id,
      environment: caller.mandate.environment,
      data: {
        decisionId,
        outcome: 'deny',
        tool: tool.slice(0, MAX_ECHOED_NAME),
        reasons: [reason],
        policies: [],
        ...extra,
        tokenId: caller.tokenId,
      },
    });
    return decisionId;
  }

  /** Arguments for the audit log: sensitive ones as salted HMACs (correlatable, not readable); large ones only hashed. */
  #auditArgs(tool: CatalogEntry, args: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(args)) {
      out[k] = tool.sensitiveArgs.includes(k) ? `hmac:${this.#o.audit.redact(canonicalize(v) ?? '')}` : v;
    }
    const text = canonicalize(out) ?? '';
    return text.length <= 4096 ? out : { sha256: sha256Hex(text), bytes: text.length };
  }

  /** "What is allowed" for an ungranted tool: the tools the whole chain grants (what tools/list shows). */
  #grantedHint(caller: VerifiedCaller): string {
    const names: string[] = [];
    for (const entry of this.#o.catalog.list()) {
      if (caller.chain.every((m) => m.scope.tools.some((g) => g.tool === entry.name))) names.push(entry.name);
    }
    if (names.length === 0) return 'This mandate grants no tool that is available now.';
    const shown = names.slice(0, MAX_LISTED_TOOLS).join(', ');
    return `Tools this mandate may call: ${shown}${names.length > MAX_LISTED_TOOLS ? ` and ${names.length - MAX_LISTED_TOOLS} more (see tools/list)` : ''}.`;
  }

  #beforeFirstUse(): Promise<void> {
    this.#ready ??= (this.#o.beforeFirstUse?.() ?? Promise.resolve()).catch(() => {});
    return this.#ready;
  }
}

/** Sensitive arguments replaced for human eyes. */
export function maskArgs(tool: Pick<CatalogEntry, 'sensitiveArgs'>, args: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(args)) out[k] = tool.sensitiveArgs.includes(k) ? MASKED : v;
  return out;
}

/** The mandate tree a call belongs to (its root mandate): tool output read by one delegate is known to all. */
/** Where a call sits for the risk engine: its mandate, the delegation root, the agent. */
function riskPathOf(caller: VerifiedCaller): RiskPath {
  return { mandateId: caller.mandate.id, rootId: treeOf(caller), agentId: caller.agent.id };
}

/** Refusals given before any decision (the decided ones are reported with their decision). */
const PRE_DECISION: ReadonlySet<string> = new Set(['non_finite_number', 'args_too_large', 'tool_not_granted', 'tool_not_in_catalog']);
/** Refusals that mean the agent asked for more than its mandate: the risk engine's scope probing. */
const SCOPE_REFUSALS: ReadonlySet<string> = new Set(['tool_not_granted', 'tool_not_in_catalog']);

/** A call that can carry data out: not a read, and it names a target (recipient, url, path …). */
function sendsOut(tool: CatalogEntry, args: Record<string, unknown>): boolean {
  if (tool.actionClass === 'read') return false;
  for (const name in args) if (isTargetName(name)) return true;
  return false;
}

/** An allowed decision held for a human by a risk response. */
function riskHeld(decision: Decision, held: { subject: string; id: string }, roles: readonly string[]): Decision {
  return {
    ...decision,
    outcome: 'approval_required',
    reasons: [...decision.reasons, `risk: approvals are required while the risk score of ${held.subject} ${held.id} stays high`],
    approvalRoles: [...roles],
  };
}

function treeOf(caller: VerifiedCaller): string {
  return caller.chain[0]?.id ?? caller.mandate.id;
}

/**
 * Characters of one tool result whose entities are remembered (src/intent/provenance.ts): about
 * 5 ms of CPU at most per result. Values beyond it are not marked `fromToolOutput`, but stay
 * unnamed unless the human named them, so a policy on `unnamedTargets` still holds them.
 */
const PROVENANCE_SCAN_CHARS = 32 * 1024;

/** The intent of a decision as audited: per argument, named / from tool output / target (never values). */
function auditIntent(intent: IntentContext): Record<string, unknown> {
  return {
    hasRequest: intent.hasRequest,
    args: intent.args,
    unnamedTargets: intent.unnamedTargets,
    toolOutputTargets: intent.toolOutputTargets,
  };
}

/** Audit actors of a call, outermost first: the on-behalf-of human, then the agents of the chain. */
export function actorsOf(caller: VerifiedCaller): AuditActor[] {
  const actors: AuditActor[] = [];
  if (caller.onBehalfOf !== undefined) actors.push({ type: 'human', id: caller.onBehalfOf });
  for (const m of caller.chain) actors.push({ type: 'agent', id: m.agentId });
  return actors;
}

/** Path of the first NaN or ±Infinity in the arguments (iterative: arguments are agent input). */
function nonFinitePath(args: Record<string, unknown>): string | undefined {
  const stack: [unknown, string][] = Object.entries(args).map(([k, v]) => [v, k]);
  while (stack.length > 0) {
    const [value, path] = stack.pop() as [unknown, string];
    if (typeof value === 'number' && !Number.isFinite(value)) return path.slice(0, MAX_ECHOED_NAME);
    if (value !== null && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) stack.push([v, `${path}.${k.slice(0, 64)}`]);
    }
  }
  return undefined;
}

/**
 * An upstream's tools/call result as the gateway's own: the protocol fields are the gateway's to
 * set (`resultType`, its `serverInfo`), so an upstream cannot make a result read as a task or an
 * input request to the agent. A result that is not complete (MRTR input requests, a task the
 * upstream created) cannot be relayed: it is a protocol error of the upstream.
 */
function fromUpstream(raw: Record<string, unknown>, upstream: string): CallToolResult {
  const { resultType, ...result } = raw;
  if (resultType !== undefined && resultType !== 'complete') {
    throw new UpstreamCallError(
      'rpc',
      `upstream ${upstream} answered with resultType "${String(resultType).slice(0, 32)}", which the gateway does not relay`,
    );
  }
  const meta = result._meta;
  if (meta !== null && typeof meta === 'object' && SERVER_INFO_KEY in meta) {
    const { [SERVER_INFO_KEY]: _, ...rest } = meta as Record<string, unknown>;
    result._meta = rest;
  }
  return result as CallToolResult;
}

const SERVER_INFO_KEY = META.serverInfo;

/** The bounded reason code of a denial by the decision function (metrics and logs; the agent gets the reasons). */
function denyReasonOf(decision: Decision): DecisionReason<'deny'> {
  if (decision.errors !== undefined) return 'policy_error';
  if (decision.grant === undefined) return 'scope';
  if (decision.policies.length > 0) return 'policy_forbid';
  // Allowed by scope, no determining policy: either nothing permitted it, or a budget ran out.
  return decision.reasons.includes('no org policy permits this call') ? 'policy_no_permit' : 'budget';
}

/**
 * A reason for the log without the argument values it may quote (scope reasons say what was
 * sent: "got 50000", "as a normalized path, …"); the audit event keeps them, redacted where sensitive.
 */
function withoutValues(reason: string): string {
  return reason.replace(/, got [^;]*/g, ', got [withheld]').replace(/ \(as a normalized path, [^)]*\)/g, '');
}

function upstreamOutcome(failure: ErrorCode | undefined, result: CallToolResult): UpstreamOutcome {
  switch (failure) {
    case undefined:
      return result.isError === true ? 'tool_error' : 'ok';
    case 'RPC_UPSTREAM_TIMEOUT':
      return 'timeout';
    case 'RPC_UPSTREAM_ERROR':
      return 'rpc_error';
    case 'RPC_REQUEST_CANCELLED':
      return 'cancelled';
    case 'RPC_RESULT_TOO_LARGE':
      return 'result_too_large';
    default:
      return 'unavailable';
  }
}

function upstreamFailure(err: unknown): ErrorCode {
  // The mandate's credential for this upstream could not be obtained (src/leases): nothing was sent.
  const lease = leaseFailureCode(err);
  if (lease !== undefined) return lease;
  if (err instanceof UpstreamCallError) {
    if (err.kind === 'timeout') return 'RPC_UPSTREAM_TIMEOUT';
    if (err.kind === 'rpc') return 'RPC_UPSTREAM_ERROR';
  }
  // Unavailable, or the upstream could not even be resolved (registry errors, allow-list refusals).
  return 'RPC_UPSTREAM_UNAVAILABLE';
}
