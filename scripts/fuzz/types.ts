// Shapes shared by the fuzzer's modules: what the broker process reports, one generated input,
// and what the fuzzer remembers about each answer.
import type { JWK } from 'jose';

export interface BrokerInfo {
  readonly base: string;
  readonly pid: number;
  readonly dataDir: string;
  readonly creds: {
    /** JWT-SVID of the seeded agent (subject_token of a valid exchange). */
    readonly svid: string;
    readonly bearerToken: string;
    /** DPoP-bound access token; proofs are signed with dpopPrivateJwk. */
    readonly dpopToken: string;
    readonly dpopPrivateJwk: JWK;
    /** Development operator token of alice (admin). */
    readonly operatorToken: string;
    readonly bootstrapToken: string;
    readonly authorizationDetails: string;
  };
  /** Strings that must never appear in any response: master key, private keys, bootstrap token. */
  readonly secrets: readonly string[];
}

export type Target = 'token' | 'authzen' | 'mcp' | 'admin';

/** One HTTP request as bytes on the wire would carry it; anything may be malformed. */
export interface FuzzRequest {
  readonly target: Target;
  readonly method: string;
  /** The request target exactly as sent (origin-form, absolute-form, broken encodings…). */
  readonly path: string;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Buffer | undefined;
  /** The valid DPoP proof the generator made for this request (before any mutation). */
  readonly validProof?: string;
  /** Which valid credential the generator left intact (informative; answers are judged on the bytes sent). */
  readonly kept?: string;
  /** The whole request as raw bytes (byte-level mutation of the wire form); sent on its own connection. */
  readonly raw?: Buffer;
  /** Short description of how the input was made (for examples). */
  readonly how: string;
}

export interface FuzzResponse {
  readonly status: number;
  readonly headers: string;
  readonly body: string;
}
