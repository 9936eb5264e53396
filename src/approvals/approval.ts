// The approval model: a human's yes/no for one exact call, with everything the human needs to see.

/** `withdrawn`: the agent took its request back (tasks/cancel) before the approval was used. */
export const approvalStatuses = ['pending', 'approved', 'denied', 'consumed', 'expired', 'withdrawn'] as const;
export type ApprovalStatus = (typeof approvalStatuses)[number];

/** What the approver sees: who asks, for whom, why, through which chain, with which arguments. */
export interface ApprovalContext {
  readonly agent: { readonly id: string; readonly displayName?: string; readonly owner?: string; readonly environment?: string };
  readonly onBehalfOf?: string;
  readonly purpose: string;
  readonly taskType: string;
  readonly environment: string;
  /** Root first, ending with the calling mandate. */
  readonly chain: readonly { readonly mandateId: string; readonly agentId: string; readonly purpose: string }[];
  readonly tool: {
    readonly name: string;
    readonly title?: string;
    readonly description?: string;
    readonly actionClass: string;
    readonly sensitivity: string;
  };
  /** The call's arguments; sensitive ones are replaced by `"[masked]"`. */
  readonly args: Readonly<Record<string, unknown>>;
  /** Determining policies of the decision that asked for approval. */
  readonly policies: readonly string[];
}

export interface Approval {
  readonly id: string;
  /** Hex SHA-256 of the RFC 8785 canonical { mandateId, tool, args }. */
  readonly callHash: string;
  readonly mandateId: string;
  readonly tool: string;
  readonly agentId: string;
  readonly onBehalfOf: string | undefined;
  /** Effective status: a pending or approved approval past its expiry reads as `expired`. */
  readonly status: ApprovalStatus;
  /** Any one of these roles may decide. */
  readonly requiredRoles: readonly string[];
  /** Principals who may never decide this approval (the agents of the chain, and the on-behalf-of human when configured). */
  readonly forbiddenApprovers: readonly string[];
  readonly decisionId: string;
  readonly reasons: readonly string[];
  readonly context: ApprovalContext;
  readonly decidedBy: string | undefined;
  readonly decidedRole: string | undefined;
  readonly decidedNote: string | undefined;
  readonly createdAt: number;
  readonly expiresAt: number;
  readonly decidedAt: number | undefined;
  readonly consumedAt: number | undefined;
}

/** The approval a decision may use: a human with this role approved exactly this call. */
export interface UsableApproval {
  readonly id: string;
  readonly approverId: string;
  readonly approverRole: string;
}
