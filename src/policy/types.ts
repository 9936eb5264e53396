// The decision contract shared by every enforcement point (gateway, AuthZEN PDP, CLI explain).
import type { IntentContext, ProvenanceView } from '../intent/binding.js';
import type { CallerAgent, CallerMandate } from '../oauth/caller.js';
import type { ToolGrant } from '../scope/scope.js';

export const actionClasses = ['read', 'propose', 'execute', 'destructive'] as const;
export const sensitivities = ['public', 'internal', 'confidential', 'restricted'] as const;

/** A tool as the gateway's catalog describes it. */
export interface CatalogTool {
  /** `upstream.tool`, e.g. `helpdesk.execute_refund`. */
  readonly name: string;
  readonly upstream: string;
  readonly actionClass: (typeof actionClasses)[number];
  readonly sensitivity: (typeof sensitivities)[number];
  /** Arguments whose values are redacted in audit events. */
  readonly sensitiveArgs: readonly string[];
  /** Arguments that are file system paths: `prefix` on them is path-aware (src/scope/path.ts). */
  readonly pathArgs?: readonly string[];
}

export interface DecisionApproval {
  readonly id: string;
  readonly approverId: string;
  readonly approverRole: string;
}

/** A call to decide: the caller's parts (src/oauth/caller.ts `VerifiedCaller`), the tool and its arguments. */
export interface DecisionInput {
  readonly mandate: CallerMandate;
  /** Root first, ending with `mandate`. A chain that does not end with it is refused. */
  readonly chain: readonly CallerMandate[];
  readonly agent: CallerAgent;
  readonly tool: CatalogTool;
  readonly args: Record<string, unknown>;
  /** 0..100; absent means 0. */
  readonly riskScore?: number;
  /** A valid, already verified approval of exactly this call. */
  readonly approval?: DecisionApproval;
  /** Epoch milliseconds; defaults to the broker's clock. */
  readonly now?: number;
  /**
   * What tool results relayed to this mandate tree contained (src/intent/provenance.ts), for
   * `context.intent.args.*.fromToolOutput`. Absent: nothing came from tool output.
   */
  readonly provenance?: ProvenanceView;
}

export type Outcome = 'allow' | 'deny' | 'approval_required';

export interface Decision {
  readonly id: string;
  readonly outcome: Outcome;
  /** Human-readable, in order of evaluation. */
  readonly reasons: string[];
  /** Determining Cedar policy ids (the permits that allowed, or the forbids that denied). */
  readonly policies: string[];
  /** The grant of the calling mandate's scope that matched. */
  readonly grant?: { readonly mandateId: string; readonly index: number; readonly tool: string };
  /** For `approval_required`: approver roles any one of which would make the call allowed. */
  readonly approvalRoles?: string[];
  /** Engine or budget errors that made the outcome a deny. */
  readonly errors?: string[];
  /**
   * Which argument values the human named and which came from tool output (`context.intent`), when
   * org policy was consulted and the schema declares it. Audited with the decision, shown by explain.
   */
  readonly intent?: IntentContext;
}

/** A grant matched in one mandate of the chain; budgets are counted against each. */
export interface ChainGrant {
  readonly mandateId: string;
  readonly index: number;
  readonly grant: ToolGrant;
}
