// What the gateway needs from its neighbours, as small structural interfaces: the token verifier
// (src/oauth/verify.ts, whose VerifiedCaller is src/oauth/caller.ts), the decision service
// (src/policy) and the audit log (src/audit). The real services satisfy them as they are; tests
// may pass fakes they control.
import type { VerifiedCaller, VerifyRequest } from '../oauth/caller.js';
import type { Decision, DecisionInput } from '../policy/types.js';

/** `broker.verifier`: throws OAuthError OAUTH_INVALID_TOKEN on any failure. */
export interface CallerVerifier {
  verify(req: VerifyRequest): Promise<VerifiedCaller>;
}

/** `broker.decisions`: allow consumes budgets before it returns. */
export interface Decider {
  decide(input: DecisionInput): Promise<Decision>;
}
