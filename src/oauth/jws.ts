// Compact JWS *signing* of the broker's own tokens (RFC 7515 §7.1, alg EdDSA / Ed25519, RFC 8037),
// written by hand on purpose: jose has no synchronous signing API, and its WebCrypto `sign` costs
// a job set-up and a promise round trip per token on the token endpoint's busiest path. node:crypto
// `sign()` with a KeyObject held in memory (imported once per key, never per token) is synchronous.
// Only what the broker itself produced is signed here; everything presented to the broker
// (identity proofs, DPoP proofs, client assertions, tokens) is still verified with jose.
// test/oauth/jws.test.ts checks that jose's jwtVerify accepts the output and refuses a tampered one.
import { type KeyObject, sign } from 'node:crypto';

/** The protected header of a broker token: the algorithm is fixed by the key (Ed25519). */
export interface BrokerJwsHeader {
  readonly alg: 'EdDSA';
  readonly kid: string;
  readonly typ: string;
}

/**
 * `header` and `payload` are serialized with JSON.stringify as given (callers build plain
 * literals); the signature is Ed25519 over `base64url(header).base64url(payload)`.
 */
export function signCompactEdDSA(header: BrokerJwsHeader, payload: object, key: KeyObject): string {
  return signJwsInput(jwsSigningInput(header, payload), key);
}

/** The JWS signing input, `base64url(header).base64url(payload)` (RFC 7515 §5.1 steps 1–6). */
export function jwsSigningInput(header: BrokerJwsHeader, payload: object): string {
  return `${Buffer.from(JSON.stringify(header), 'utf8').toString('base64url')}.${Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url')}`;
}

/** Length of an Ed25519 signature in base64url (64 bytes). */
export const ED25519_SIGNATURE_CHARS = 86;

/** Completes a compact JWS from its signing input (`jwsSigningInput`). */
export function signJwsInput(input: string, key: KeyObject): string {
  if (key.type !== 'private' || key.asymmetricKeyType !== 'ed25519') throw new TypeError('an Ed25519 private KeyObject is required');
  // Ed25519 takes no digest (null): the algorithm is the key's.
  return `${input}.${sign(null, Buffer.from(input, 'ascii'), key).toString('base64url')}`;
}
