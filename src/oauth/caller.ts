// Who is calling: the one caller type resource-server verification (./verify.ts) produces, the
// gateway serves and policy decides on. Structural, so the stored models (`Mandate`, `Principal`)
// fit as they are and the AuthZEN PDP, policy cases and tests can describe a caller without them.
import type { Scope } from '../scope/scope.js';
import type { AccessTokenClaims } from './access-token.js';

/** One request presenting an access token to a resource server (the gateway, the agent API). */
export interface VerifyRequest {
  readonly token: string;
  readonly scheme: 'Bearer' | 'DPoP';
  readonly dpop?: string;
  readonly method: string;
  /** The URI the request was received at: public origin + the path the router matched (src/http/request-uri.ts). */
  readonly url: string;
}

/** The parts of a mandate a caller carries and a decision reads (src/mandates `Mandate` fits). */
export interface CallerMandate {
  readonly id: string;
  readonly agentId: string;
  readonly parentId?: string | undefined;
  readonly onBehalfOf?: string | undefined;
  readonly purpose: string;
  readonly taskType: string;
  readonly environment: string;
  readonly scope: Scope;
  readonly depth: number;
  readonly status: string;
  /** Epoch milliseconds or a Date or an ISO string; a mandate past it is denied. */
  readonly expiresAt?: number | string | Date | undefined;
  /** The human's request text (intent binding, src/intent/); absent: nothing is named. */
  readonly requestText?: string | undefined;
  /** The task template it was opened from, with its approval defaults (src/templates/). */
  readonly template?: CallerTemplate | undefined;
}

/** The parts of a mandate's task template a decision reads. */
export interface CallerTemplate {
  readonly name: string;
  readonly version: number;
  readonly approval: { readonly tools: readonly string[]; readonly unnamedTargets: boolean };
}

/** The calling agent (src/principals `Principal` fits). */
export interface CallerAgent {
  readonly id: string;
  readonly actorType: string;
  readonly displayName?: string;
  readonly owner: string | undefined;
  readonly environment: string | undefined;
  readonly status: string;
}

/**
 * A verified mandate access token: who calls, under which mandate, through which delegation chain.
 * The verifier fills it with the stored `Mandate` and `Principal`; readers that need no more than
 * the structural parts use the defaults.
 */
export interface VerifiedCaller<M extends CallerMandate = CallerMandate, A extends CallerAgent = CallerAgent> {
  readonly tokenId: string;
  readonly mandate: M;
  /** Root first, ending with `mandate`. */
  readonly chain: readonly M[];
  readonly agent: A;
  readonly onBehalfOf?: string | undefined;
  readonly claims: AccessTokenClaims;
  /** A fresh DPoP nonce the response should carry (RFC 9449 §8.2), when the proof's is about to expire. */
  readonly dpopNonce?: string;
}
