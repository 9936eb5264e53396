// What the gateway needs from its neighbours, as small structural interfaces: the token verifier
// (src/oauth/verify.ts), the decision service (src/policy) and the audit log (src/audit). The real
// services satisfy them as they are; tests may pass fakes they control.
import type { Decision, DecisionInput, DecisionMandate } from '../policy/types.js';

export interface VerifyRequest {
  readonly token: string;
  readonly scheme: 'Bearer' | 'DPoP';
  readonly dpop?: string;
  readonly method: string;
  readonly url: string;
}

/** The calling agent, as the verifier resolved it. */
export interface CallerAgent {
  readonly id: string;
  readonly actorType: string;
  readonly displayName?: string;
  readonly owner: string | undefined;
  readonly environment: string | undefined;
  readonly status: string;
}

/** A verified mandate token: who calls, under which mandate, through which delegation chain. */
export interface VerifiedCaller {
  readonly tokenId: string;
  readonly mandate: DecisionMandate;
  /** Root first, ending with `mandate`. */
  readonly chain: readonly DecisionMandate[];
  readonly agent: CallerAgent;
  readonly onBehalfOf?: string | undefined;
}

/** `broker.verifier`: throws OAuthError OAUTH_INVALID_TOKEN on any failure. */
export interface CallerVerifier {
  verify(req: VerifyRequest): Promise<VerifiedCaller>;
}

/** `broker.decisions`: allow consumes budgets before it returns. */
export interface Decider {
  decide(input: DecisionInput): Promise<Decision>;
}
