// The gateway's call path, independent of the MCP transport: filter tools/list to what the
// mandate chain grants, and run every tools/call through
//   limits → catalog → decide → audit decision (durable) → approval → forward → audit result.
// Nothing reaches an upstream unless its allow decision is durably in the audit log.
import type { CallToolResult, Tool } from '@modelcontextprotocol/sdk/types.js';
import canonicalize from 'canonicalize';
import type { ApprovalContext, UsableApproval } from '../approvals/approval.js';
import { callHash } from '../approvals/call-hash.js';
import type { ApprovalService } from '../approvals/service.js';
import type { AuditActor, AuditLog } from '../audit/types.js';
import { MandateError } from '../errors/index.js';
import type { ErrorCode } from '../errors/registry.js';
import type { Clock } from '../lib/clock.js';
import { sha256Hex } from '../lib/hash.js';
import type { Decision } from '../policy/types.js';
import type { Catalog, CatalogEntry } from '../upstreams/catalog.js';
import { UpstreamCallError } from '../upstreams/mcp-client/index.js';
import type { Decider, VerifiedCaller } from './types.js';
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
  readonly clock: Clock;
  readonly limits: GatewayLimits;
  /** Runs before the first tools/list or tools/call (lazy discovery of demo upstreams). */
  readonly beforeFirstUse?: () => Promise<void>;
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

export class Gateway {
  readonly #o: GatewayOptions;
  readonly #inFlight = new Map<string, number>();
  #ready: Promise<void> | undefined;

  constructor(options: GatewayOptions) {
    this.#o = options;
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

  /** One governed tools/call. Throws McpError for protocol-level refusals; returns tool errors otherwise. */
  async callTool(
    caller: VerifiedCaller,
    name: string,
    rawArgs: Record<string, unknown> | undefined,
    signal?: AbortSignal,
  ): Promise<CallToolResult> {
    await this.#beforeFirstUse();
    const { mandate } = caller;
    const args = rawArgs ?? {};
    const actors = actorsOf(caller);
    // JSON has no NaN or Infinity (`1e999` parses to Infinity): refuse before anything hashes or
    // canonicalizes the arguments, and audit it as the refused call it is.
    const nonFinite = nonFinitePath(args);
    if (nonFinite !== undefined) {
      await this.#auditRefusal(caller, actors, name, `argument ${nonFinite} is not a finite number`);
      throw rpcError('RPC_NON_FINITE_NUMBER', `argument ${nonFinite} is not a finite number (NaN or Infinity); JSON cannot carry it`);
    }
    const canonicalArgs = canonicalize(args);
    if (canonicalArgs === undefined) throw rpcError('RPC_INVALID_PARAMS', 'the tool arguments are not representable as JSON');
    const argsBytes = Buffer.byteLength(canonicalArgs);
    if (argsBytes > this.#o.limits.maxArgumentsBytes) {
      await this.#auditRefusal(
        caller,
        actors,
        name,
        `arguments are ${argsBytes} bytes, over the ${this.#o.limits.maxArgumentsBytes}-byte limit`,
      );
      throw rpcError('RPC_ARGS_TOO_LARGE', `the arguments are ${argsBytes} bytes; the limit is ${this.#o.limits.maxArgumentsBytes}`);
    }
    // One answer for every tool the chain does not grant, whether the catalog has it or not, given
    // before the catalog is consulted: the answer, its audit event and its timing cannot tell an
    // agent which tools exist beyond its tools/list. (The audit event alone records `inCatalog`.)
    const ungranted = caller.chain.find((m) => !m.scope.tools.some((g) => g.tool === name));
    if (ungranted !== undefined) {
      const whose = ungranted.id === mandate.id ? `mandate ${ungranted.id}` : `ancestor mandate ${ungranted.id} (depth ${ungranted.depth})`;
      const reason = `${whose}: tool ${name.slice(0, MAX_ECHOED_NAME)} is not granted`;
      const decisionId = await this.#auditRefusal(caller, actors, name, reason, { inCatalog: this.#o.catalog.get(name) !== undefined });
      throw rpcError('RPC_CALL_DENIED', `denied: ${reason}`, { decisionId, reasons: [reason] });
    }
    const tool = this.#o.catalog.get(name);
    if (tool === undefined) {
      // Granted but offered by no upstream (removed, or not discovered yet): the agent knows the
      // name from its own grant, so saying so reveals nothing.
      await this.#auditRefusal(caller, actors, name, `tool ${name} is granted but not in the catalog`, { inCatalog: false });
      throw rpcError('RPC_UNKNOWN_TOOL', `unknown tool: ${name}`);
    }

    // Counted before deciding, so a refused call never consumes budget.
    const inFlight = this.#inFlight.get(mandate.id) ?? 0;
    if (inFlight >= this.#o.limits.maxConcurrentCallsPerMandate) {
      throw rpcError('RPC_CONCURRENCY_LIMIT', `mandate ${mandate.id} already has ${inFlight} calls in flight`);
    }
    this.#inFlight.set(mandate.id, inFlight + 1);
    try {
      return await this.#governedCall(caller, actors, tool, args, signal);
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
    signal: AbortSignal | undefined,
  ): Promise<CallToolResult> {
    const { mandate, chain, agent } = caller;
    const input = { mandate, chain, agent, tool, args };
    let decision = await this.#o.decisions.decide(input);
    let hash: string | undefined;
    let approval: UsableApproval | undefined;
    if (decision.outcome === 'approval_required') {
      // Only calls that need approval pay for the lookup; allowed calls never touch approvals.
      hash = callHash({ mandateId: mandate.id, tool: tool.name, args });
      approval = await this.#o.approvals.findUsable(mandate.id, hash);
      if (approval !== undefined) decision = await this.#o.decisions.decide({ ...input, approval });
    }
    // Durable before anything else happens; a rejected append rejects the call (fail closed).
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
        ...(approval === undefined ? {} : { approvalId: approval.id }),
        ...(caller.chain.length > 1 ? { parentMandateId: mandate.parentId } : {}),
        tokenId: caller.tokenId,
      },
    });

    if (decision.outcome === 'deny') {
      throw rpcError('RPC_CALL_DENIED', `denied: ${decision.reasons[decision.reasons.length - 1] ?? 'by policy'}`, {
        decisionId: decision.id,
        reasons: decision.reasons,
      });
    }
    if (decision.outcome === 'approval_required') {
      return this.#requestApproval(
        caller,
        actors,
        tool,
        args,
        hash ?? callHash({ mandateId: mandate.id, tool: tool.name, args }),
        decision,
      );
    }
    if (
      approval !== undefined &&
      !(await this.#o.approvals.consume(approval.id, { actors, mandateId: mandate.id, decisionId: decision.id }))
    ) {
      // Another replica (or a concurrent retry) used it first: single use holds.
      throw rpcError('RPC_CALL_DENIED', `approval ${approval.id} was already used`, { decisionId: decision.id, approvalId: approval.id });
    }
    return this.#forward(caller, actors, tool, args, decision, signal);
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
    if (upstream === undefined) {
      failure = 'RPC_UPSTREAM_UNAVAILABLE';
      result = toolError(failure, `upstream ${tool.upstream} is no longer registered`, { decisionId: decision.id });
    } else {
      const timeout = upstream.timeoutMs ?? this.#o.limits.upstreamTimeoutMs;
      try {
        // The client checks only that the result is an object with a `content` array; the limit is wall-clock.
        result = (await this.#o.pool.call(
          tool.upstream,
          upstream.isolation,
          caller.mandate.id,
          'tools/call',
          { name: tool.upstreamTool, arguments: args },
          signal === undefined ? { timeoutMs: timeout } : { timeoutMs: timeout, signal },
        )) as CallToolResult;
      } catch (err) {
        failure = upstreamFailure(err);
        const why =
          failure === 'RPC_UPSTREAM_TIMEOUT'
            ? `upstream ${tool.upstream} did not answer within ${timeout} ms; the call was cancelled and will not be retried`
            : failure === 'RPC_UPSTREAM_ERROR'
              ? `upstream ${tool.upstream} refused the call: ${String((err as Error).message).slice(0, 300)}`
              : `upstream ${tool.upstream} is unreachable; the call was not retried`;
        result = toolError(failure, why, { decisionId: decision.id });
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
    await this.#o.audit.append({
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
    });
    return result;
  }

  async #requestApproval(
    caller: VerifiedCaller,
    actors: AuditActor[],
    tool: CatalogEntry,
    args: Record<string, unknown>,
    hash: string,
    decision: Decision,
  ): Promise<CallToolResult> {
    const { mandate, chain, agent } = caller;
    const roles = decision.approvalRoles ?? [];
    if (roles.length === 0)
      throw rpcError('RPC_CALL_DENIED', 'approval is required but no approver role can grant it', { decisionId: decision.id });
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
    const url = this.#o.approvals.consoleUrl(approval.id);
    return toolError(
      'RPC_APPROVAL_REQUIRED',
      `Approval pending: ${tool.name} needs a human approval (one of: ${roles.join(', ')}). ` +
        `Approval ${approval.id}: ${url} . Retry the exact same call after it is approved; it expires at ${new Date(approval.expiresAt).toISOString()}.`,
      { approvalId: approval.id, url, decisionId: decision.id, expiresAt: approval.expiresAt, requiredRoles: roles },
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

function upstreamFailure(err: unknown): ErrorCode {
  if (err instanceof UpstreamCallError) {
    if (err.kind === 'timeout') return 'RPC_UPSTREAM_TIMEOUT';
    if (err.kind === 'rpc') return 'RPC_UPSTREAM_ERROR';
  }
  // Unavailable, or the upstream could not even be resolved (registry errors, allow-list refusals).
  return 'RPC_UPSTREAM_UNAVAILABLE';
}
