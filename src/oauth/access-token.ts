// Mandate access tokens: JWTs in the RFC 9068 profile (`typ: at+jwt`), signed with the active
// Ed25519 key. They carry the mandate id, the granted `authorization_details` (RFC 9396), the
// delegation chain as nested `act` claims (RFC 8693 §4.1) and, when DPoP-bound, `cnf.jkt` (RFC 9449 §6).
import type { KeyObject } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import { randomBase64url } from '../lib/random-pool.js';
import { type BrokerJwsHeader, ED25519_SIGNATURE_CHARS, jwsSigningInput, signJwsInput } from './jws.js';
import { SIGNING_ALG, type SigningKeys } from './signing-keys.js';

export const ACCESS_TOKEN_TYP = 'at+jwt';

/** RFC 8693 §4.1 actor claim: the current actor, with prior actors nested inside. */
export interface ActClaim {
  readonly sub: string;
  readonly act?: ActClaim;
}

export interface AccessTokenClaims {
  readonly iss: string;
  readonly aud: string;
  /** The subject: the on-behalf-of human, or the root agent when there is none. */
  readonly sub: string;
  /** The agent holding the token (RFC 9068 §2.2 `client_id`). */
  readonly client_id: string;
  readonly mandate: string;
  readonly authorization_details: readonly Record<string, unknown>[];
  readonly act?: ActClaim;
  readonly cnf?: { readonly jkt: string };
  readonly jti: string;
  readonly iat: number;
  readonly exp: number;
}

export interface MintInput {
  readonly sub: string;
  readonly clientId: string;
  readonly mandateId: string;
  readonly details: Record<string, unknown>;
  readonly act?: ActClaim;
  readonly jkt?: string;
  /** Seconds since the epoch; the caller has already capped it at the mandate expiry. */
  readonly exp: number;
}

export class AccessTokenIssuer {
  constructor(
    private readonly keys: SigningKeys,
    private readonly clock: Clock,
    readonly issuer: string,
    readonly audience: string,
  ) {}

  /**
   * Signs synchronously (src/oauth/jws.ts: node:crypto with the key held as a KeyObject): on the
   * token endpoint's path the WebCrypto job and its promise cost more than the signature itself.
   */
  mint(input: MintInput): { token: string; claims: AccessTokenClaims } {
    return this.sign(this.prepare(input));
  }

  /**
   * Everything but the signature: the claims (with a fresh jti), the serialized signing input and
   * the exact length of the token. The token endpoint checks the length before it records the
   * mandate and signs the same serialization afterwards (`sign`), so it is built once.
   */
  prepare(input: MintInput): PreparedToken {
    const key = this.keys.active();
    const claims = this.#claims(input, randomBase64url(16));
    const signingInput = jwsSigningInput(header(key.kid), claims);
    return { claims, signingInput, length: signingInput.length + 1 + ED25519_SIGNATURE_CHARS, key: key.signingKey };
  }

  /** Signs a prepared token (with the key it was prepared for, even if a rotation happened since). */
  sign(prepared: PreparedToken): { token: string; claims: AccessTokenClaims } {
    return { token: signJwsInput(prepared.signingInput, prepared.key), claims: prepared.claims };
  }

  /**
   * The exact length `mint(input)` will produce, without signing: JSON of the header and claims,
   * base64url, and a fixed-size Ed25519 signature. Lets the token endpoint refuse an oversized
   * token before it records the mandate.
   */
  measure(input: MintInput): number {
    const claims = this.#claims(input, 'x'.repeat(JTI_LENGTH));
    return b64Length(JSON.stringify(header(this.keys.active().kid))) + 1 + b64Length(JSON.stringify(claims)) + 1 + b64Length(64);
  }

  /** The claims in the token's serialization order; `act` and `cnf` only when the mandate has them. */
  #claims(input: MintInput, jti: string): AccessTokenClaims {
    return {
      iss: this.issuer,
      aud: this.audience,
      sub: input.sub,
      client_id: input.clientId,
      mandate: input.mandateId,
      authorization_details: [input.details],
      ...(input.act === undefined ? {} : { act: input.act }),
      ...(input.jkt === undefined ? {} : { cnf: { jkt: input.jkt } }),
      jti,
      iat: Math.floor(this.clock.now() / 1000),
      exp: input.exp,
    };
  }
}

/** An access token built but not yet signed (`AccessTokenIssuer.prepare`). */
export interface PreparedToken {
  readonly claims: AccessTokenClaims;
  readonly signingInput: string;
  /** The length of the signed token. */
  readonly length: number;
  readonly key: KeyObject;
}

/** base64url of 16 random bytes. */
const JTI_LENGTH = 22;

function header(kid: string): BrokerJwsHeader {
  return { alg: SIGNING_ALG, kid, typ: ACCESS_TOKEN_TYP };
}

/** Unpadded base64url length of a UTF-8 string, or of `n` bytes. */
function b64Length(value: string | number): number {
  const bytes = typeof value === 'number' ? value : Buffer.byteLength(value, 'utf8');
  return Math.ceil((bytes * 4) / 3);
}

/** The `act` chain for a token held by the last agent of `agents` (root first). */
export function actChain(agents: readonly string[], subject: string): ActClaim | undefined {
  // The subject itself is not an actor; actors are every agent after it, most recent outermost.
  const actors = agents[0] === subject ? agents.slice(1) : [...agents];
  let act: ActClaim | undefined;
  for (const id of actors) act = act === undefined ? { sub: id } : { sub: id, act };
  return act;
}
