// Typed errors of the agent SDK. A refusal by the broker carries the registry code the broker sent
// (src/errors/registry.ts, `_meta['mandate/error'].code` on a tool result, `data.code` on a
// JSON-RPC error); a refusal at the token endpoint carries the OAuth `error`. Nothing here invents
// codes of its own: the SDK only sorts what the broker said into classes an agent can catch.

/**
 * What the broker said about a refused call (`_meta['mandate/error']`).
 *
 * @example
 * ```ts
 * catch (err) { if (err instanceof MandateRefusal) console.log(err.details.code, err.details.reasons); }
 * ```
 */
export interface RefusalDetails {
  /** Registry code, e.g. `RPC_CALL_DENIED`, `RPC_APPROVAL_DENIED`. */
  readonly code: string;
  /** Id of the audited decision, to look it up in the console or `mandate audit`. */
  readonly decisionId?: string;
  /** Why, one line each (the mandate's limit, the org policy that forbade it). */
  readonly reasons?: readonly string[];
  /** The approval the refusal is about, if any. */
  readonly approvalId?: string;
  /** The console page of that approval. */
  readonly url?: string;
  /** When that approval expires (epoch milliseconds). */
  readonly expiresAt?: number;
  /** Everything else the broker put in `_meta['mandate/error']`. */
  readonly [key: string]: unknown;
}

/**
 * A call the broker refused: denied by the mandate or org policy, an approval that did not come, a
 * limit. `code` is the broker's registry code; `result` is the tool result as the broker sent it
 * (its text is written for an LLM: what was refused and what would be allowed).
 *
 * @example
 * ```ts
 * try {
 *   await m.call('helpdesk.delete_customer', { customerId: 'C-1009' });
 * } catch (err) {
 *   if (err instanceof MandateRefusal) console.log(err.code, err.decisionId, err.reasons);
 *   else throw err;
 * }
 * ```
 */
export class MandateRefusal extends Error {
  override readonly name: string = 'MandateRefusal';
  readonly code: string;
  readonly decisionId: string | undefined;
  readonly reasons: readonly string[];
  readonly approvalId: string | undefined;
  readonly details: RefusalDetails;
  readonly result: unknown;

  constructor(message: string, details: RefusalDetails, result?: unknown) {
    super(message);
    this.code = details.code;
    this.decisionId = details.decisionId;
    this.reasons = details.reasons ?? [];
    this.approvalId = details.approvalId;
    this.details = details;
    this.result = result;
  }
}

/**
 * The call needs a human approval and the caller did not wait (`waitForApproval: false`), or gave
 * up waiting (`timeoutMs`). Retry the exact same call later, or wait with `waitForApproval`.
 *
 * @example
 * ```ts
 * try {
 *   await m.call('helpdesk.execute_refund', refund, { waitForApproval: false });
 * } catch (err) {
 *   if (err instanceof ApprovalRequired) console.log(`approve at ${err.details.url}`);
 * }
 * ```
 */
export class ApprovalRequired extends MandateRefusal {
  override readonly name: string = 'ApprovalRequired';
}

/**
 * A human denied this exact call (`RPC_APPROVAL_DENIED`). Do not retry it unchanged.
 *
 * @example
 * ```ts
 * try {
 *   await m.call('helpdesk.execute_refund', refund);
 * } catch (err) {
 *   if (err instanceof ApprovalDenied) console.log(`denied: ${err.reasons.join('; ')}`);
 * }
 * ```
 */
export class ApprovalDenied extends MandateRefusal {
  override readonly name: string = 'ApprovalDenied';
}

/**
 * Nobody decided before the approval (or its task) expired; the call did not run.
 *
 * @example
 * ```ts
 * try {
 *   await m.call('helpdesk.execute_refund', refund);
 * } catch (err) {
 *   if (err instanceof ApprovalExpired) console.log('ask again later');
 * }
 * ```
 */
export class ApprovalExpired extends MandateRefusal {
  override readonly name: string = 'ApprovalExpired';
}

/**
 * The token endpoint or the agent API refused (an OAuth error: `invalid_client` for an identity
 * proof it does not accept, `invalid_grant` for a mandate that has ended, `invalid_scope` for an
 * unknown task template, `invalid_authorization_details` for a scope beyond the agent's ceiling).
 *
 * @example
 * ```ts
 * try {
 *   await Mandate.open({ broker, identity, template: 'no-such-template' });
 * } catch (err) {
 *   if (err instanceof MandateAuthError) console.log(err.code, err.description);
 * }
 * ```
 */
export class MandateAuthError extends Error {
  override readonly name: string = 'MandateAuthError';
  /** The OAuth `error` (or `invalid_token` for a resource that refused the token). */
  readonly code: string;
  /** The broker's `error_description`. */
  readonly description: string;
  /** HTTP status of the refusal. */
  readonly status: number | undefined;

  constructor(code: string, description: string, status?: number, options?: ErrorOptions) {
    super(`${code}: ${description}`, options);
    this.code = code;
    this.description = description;
    this.status = status;
  }
}

/** Sorts a broker refusal (`_meta['mandate/error']` of an isError result) into its class (internal). */
export function refusalFrom(details: RefusalDetails, text: string, result: unknown): MandateRefusal {
  const message = text === '' ? details.code : text;
  switch (details.code) {
    case 'RPC_APPROVAL_REQUIRED':
      return new ApprovalRequired(message, details, result);
    case 'RPC_APPROVAL_DENIED':
      return new ApprovalDenied(message, details, result);
    case 'RPC_TASK_EXPIRED':
      return new ApprovalExpired(message, details, result);
    default:
      return new MandateRefusal(message, details, result);
  }
}
