// The policy engine interface: how Mandate loads an org policy set and evaluates Cedar requests
// against it, whatever evaluates them (cedar-wasm, the compiled evaluator, an external PDP).
import type { CedarValueJson, EntityJson, EntityUidJson } from '@cedar-policy/cedar-wasm/nodejs';
import type { SchemaShapes } from './cedar/shape.js';

// Cedar's JSON value and entity formats (https://docs.cedarpolicy.com/auth/entities-syntax.html):
// the wire format of every engine, re-exported so callers need not import cedar-wasm.
export type { CedarValueJson, EntityJson, EntityUidJson };

/** One policy source file. `path` is what problems name (relative to the policy directory). */
export interface PolicyFile {
  readonly path: string;
  readonly text: string;
}

/** A problem with a policy or the schema, located in its file (1-based line and column). */
export interface PolicyProblem {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

/** One static policy of a loaded set. */
export interface LoadedPolicy {
  /** Its `@id("…")` annotation, else `file:line` of its first line. Unique in the set. */
  readonly id: string;
  readonly file: string;
  readonly line: number;
  readonly effect: 'permit' | 'forbid';
  /** The policy's Cedar source text. */
  readonly text: string;
}

/**
 * How one policy reads `context.approval`, found from its structure (Cedar's JSON form) at load time.
 * What decides whether an approval can matter for a denied call (src/policy/decisions.ts).
 */
export interface ApprovalUse {
  /** It reads the approval: `context has approval`, any of its attributes, or the whole context. */
  readonly reads: boolean;
  /** The string literals it compares `context.approval.approverRole` with (`==`, `!=`, set `contains`), sorted. */
  readonly roles: readonly string[];
  /** It reads the role some other way (`like`, against an attribute, the whole record or context). */
  readonly opaque: boolean;
}

/**
 * What an engine knows about approvals in a loaded set. Engines that cannot analyze the policies
 * (an external PDP) leave `LoadedPolicySet.approval` undefined: their denials are never
 * `approval_required`.
 */
export interface ApprovalAnalysis {
  /** Per policy id (every policy of the set). */
  readonly uses: ReadonlyMap<string, ApprovalUse>;
  /**
   * The roles of `roles` (in their order) with which `request` — the call carrying a hypothetical
   * approval — would be allowed, in ONE evaluation for all roles (src/policy/cedar/approval.ts).
   * Undefined when some policy reads the role opaquely: callers then evaluate once per role.
   * Never throws: a failure allows no role.
   */
  readonly rolesAllowing?: (request: EngineRequest, roles: readonly string[]) => string[];
}

/** A Cedar authorization request, in Cedar's JSON formats. */
export interface EngineRequest {
  readonly principal: EntityUidJson;
  readonly action: EntityUidJson;
  readonly resource: EntityUidJson;
  readonly context: Record<string, CedarValueJson>;
  /** Every entity the policies may read (attributes and parents); others do not exist. */
  readonly entities: EntityJson[];
}

/** What an engine answered for one request. */
export interface EngineAnswer {
  readonly decision: 'allow' | 'deny';
  /** Determining policies: satisfied permits on allow, satisfied forbids on deny (ids, sorted). */
  readonly policies: string[];
  /** Policies whose condition raised an error (ids, sorted): Cedar skips them. */
  readonly erroring: string[];
  /**
   * Every error as a message (one per erroring policy, or a request/engine failure). Mandate fails
   * closed: a non-empty list always comes with `deny`, even where Cedar alone would allow.
   */
  readonly errors: string[];
}

/**
 * A validated policy set, ready to evaluate. Immutable once loaded. Every engine validates the
 * same way (strictly, against the schema, all or nothing), so a set one engine accepts, all accept.
 */
export interface LoadedPolicySet {
  /** The engine that evaluates this set (`wasm`, `compiled`, …): what the broker reports. */
  readonly engine: string;
  /** SHA-256 over schema and policy texts: equal sets have equal versions, whatever the engine. */
  readonly version: string;
  readonly policies: readonly LoadedPolicy[];
  /** The schema's declared shapes (requests are projected onto them before evaluation). */
  readonly shapes: SchemaShapes;
  /** How the policies read `context.approval`; undefined when the engine cannot analyze them. */
  readonly approval?: ApprovalAnalysis;
  /**
   * The `context` attributes some policy reads (`all`: one reads the whole record); undefined when
   * the engine cannot tell. Costly context (the intent binding) is computed only when read.
   */
  readonly contextReads?: ReadonlySet<string> | 'all';
  /**
   * Evaluates one request. Synchronous (in-process engines answer in micro- to milliseconds).
   * Never throws: any failure is `deny` with the failure in `errors`.
   */
  authorize(request: EngineRequest): EngineAnswer;
}

/** The outcome of loading: a set (and notices, e.g. an engine fell back), or located problems. */
export type LoadResult =
  | { readonly ok: true; readonly set: LoadedPolicySet; readonly notices: readonly string[] }
  | { readonly ok: false; readonly problems: PolicyProblem[] };

/**
 * A policy engine. Implementations: `wasmEngine` (src/policy/cedar/engine.ts, the reference) and
 * `compiledEngine` (src/policy/compiled/engine.ts). All pass test/policy/engine-conformance.test.ts.
 *
 * @example
 * const r = wasmEngine.load(schema, files);
 * if (!r.ok) console.error(formatProblems(r.problems));
 * else r.set.authorize({ principal, action, resource, context: {}, entities: [] }).decision;
 */
export interface PolicyEngine {
  /** Short stable name, as in configuration `policy.engine`. */
  readonly name: string;
  /**
   * Parses every file, gives each policy its id (`@id` annotation, else `file:line`), validates the
   * whole set strictly against the schema (Cedar schema syntax). All or nothing: any problem in any
   * file refuses the set. Templates are refused.
   */
  load(schema: PolicyFile, files: readonly PolicyFile[]): LoadResult;
}
