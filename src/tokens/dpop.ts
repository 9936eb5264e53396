// DPoP proof verification exactly per RFC 9449 §4.3 (checks 1–12), with a replay cache that holds
// across replicas (a store row per proof, an in-memory set in front) and optional server nonces
// (§8, §9) derived from a shared secret so any replica accepts a nonce another one issued.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, type JWK, errors as joseErrors, jwtVerify } from 'jose';
import { OAuthError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { SecretBox } from '../secrets/index.js';
import { GroupCommit } from '../store/group-commit.js';
import type { SqlExecutor, Store } from '../store/index.js';

/** Asymmetric JWS algorithms accepted in DPoP proofs (§4.2: `none` and MAC algorithms are never allowed). */
export const DPOP_ALGORITHMS = ['EdDSA', 'ES256', 'ES384', 'ES512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const;

export interface DpopCheck {
  readonly proof: string;
  readonly method: string;
  /** The request URL as the client addressed it (query and fragment are ignored). */
  readonly url: string;
  /** Present at resource servers: the proof must carry `ath` = base64url(SHA-256(token)). */
  readonly accessToken?: string;
  /** When the token is bound: the thumbprint the proof key must have. */
  readonly expectedJkt?: string;
  /**
   * Where the proof is checked, for the nonce challenge: at a resource server (default when
   * `accessToken` is set; `invalid_token`) or at the token endpoint (`use_dpop_nonce`).
   */
  readonly at?: 'resource' | 'token-endpoint';
}

export interface VerifiedDpop {
  /** RFC 7638 thumbprint of the proof key (the `cnf.jkt` to bind to). */
  readonly jkt: string;
  readonly jti: string;
}

export interface DpopVerifierOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly maxAgeSeconds: number;
  readonly leewaySeconds: number;
  /** Require server nonces; the secret is shared through the store. */
  readonly requireNonce: boolean;
  readonly secrets: SecretBox;
}

const NONCE_WINDOW_MS = 5 * 60_000;

export class DpopVerifier {
  readonly #o: DpopVerifierOptions;
  readonly #seen = new Map<string, number>();
  /** Proof ids are group-committed: one fsync for all calls in flight, not one per call. */
  readonly #replay: GroupCommit<{ key: string; expiresAt: number }, boolean>;
  #nonceKey: Buffer | undefined;

  constructor(options: DpopVerifierOptions) {
    this.#o = options;
    this.#replay = new GroupCommit(options.store, recordProofIds);
  }

  get requireNonce(): boolean {
    return this.#o.requireNonce;
  }

  /** Loads (or creates) the nonce secret shared by all replicas. */
  async start(): Promise<void> {
    if (!this.#o.requireNonce) return;
    const context = 'dpop_nonce_key';
    const [row] = await this.#o.store.query<{ private_sealed: string }>("SELECT private_sealed FROM signing_keys WHERE kid = 'dpop-nonce'");
    if (row !== undefined) {
      this.#nonceKey = this.#o.secrets.open(row.private_sealed, context);
      return;
    }
    const key = randomBytes(32);
    await this.#o.store
      .run(
        "INSERT INTO signing_keys (kid, alg, public_jwk, private_sealed, created_at, retired_at) VALUES ('dpop-nonce', 'HMAC', '{}', ?, ?, NULL)",
        [this.#o.secrets.seal(key, context), this.#o.clock.now()],
      )
      .catch(() => {});
    const [again] = await this.#o.store.query<{ private_sealed: string }>(
      "SELECT private_sealed FROM signing_keys WHERE kid = 'dpop-nonce'",
    );
    this.#nonceKey = this.#o.secrets.open(again?.private_sealed ?? '', context);
  }

  /** A fresh server nonce (DPoP-Nonce header value). */
  nonce(): string {
    const bucket = Math.floor(this.#o.clock.now() / NONCE_WINDOW_MS);
    return `${bucket.toString(36)}.${this.#mac(bucket)}`;
  }

  #nonceValid(nonce: unknown): boolean {
    if (typeof nonce !== 'string') return false;
    const [b, mac] = nonce.split('.');
    const bucket = Number.parseInt(b ?? '', 36);
    const current = Math.floor(this.#o.clock.now() / NONCE_WINDOW_MS);
    if (!Number.isSafeInteger(bucket) || (bucket !== current && bucket !== current - 1) || mac === undefined) return false;
    const expected = Buffer.from(this.#mac(bucket));
    const given = Buffer.from(mac);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  #mac(bucket: number): string {
    if (this.#nonceKey === undefined) throw new OAuthError('OAUTH_INVALID_DPOP_PROOF', 'DPoP nonces are not initialised');
    return createHmac('sha256', this.#nonceKey).update(String(bucket)).digest('base64url').slice(0, 22);
  }

  /**
   * Verifies one proof. `fail` builds the error to throw (the token endpoint and resource servers
   * use different codes). Consumes the proof's `jti` (replay protection) only when everything else holds.
   */
  async verify(check: DpopCheck, fail: (message: string) => OAuthError): Promise<VerifiedDpop> {
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(check.proof);
    } catch {
      throw fail('the DPoP proof is not a JWT');
    }
    if (header.typ !== 'dpop+jwt') throw fail('DPoP proof typ must be dpop+jwt');
    if (typeof header.alg !== 'string' || !(DPOP_ALGORITHMS as readonly string[]).includes(header.alg)) {
      throw fail(`DPoP proof alg "${String(header.alg)}" is not an allowed asymmetric algorithm`);
    }
    const jwk = header.jwk as JWK | undefined;
    if (jwk === undefined || jwk === null || typeof jwk !== 'object' || Array.isArray(jwk))
      throw fail('DPoP proof header must carry the public key as jwk');
    if ('d' in jwk || 'p' in jwk || 'k' in jwk) throw fail('DPoP proof jwk must be a public key');
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(check.proof, EmbeddedJWK, {
        typ: 'dpop+jwt',
        algorithms: [...DPOP_ALGORITHMS],
        currentDate: new Date(this.#o.clock.now()),
        clockTolerance: this.#o.leewaySeconds,
      }));
    } catch (err) {
      if (err instanceof joseErrors.JWSSignatureVerificationFailed) throw fail('DPoP proof signature is invalid');
      throw fail('DPoP proof is invalid');
    }
    const { jti, htm, htu, iat } = payload;
    if (typeof jti !== 'string' || jti.length < 8 || jti.length > 256) throw fail('DPoP proof jti is missing or malformed');
    if (typeof htm !== 'string' || typeof htu !== 'string' || typeof iat !== 'number') throw fail('DPoP proof must carry htm, htu and iat');
    if (htm !== check.method.toUpperCase()) throw fail('DPoP proof htm does not match the request method');
    if (normalizeHtu(htu) !== normalizeHtu(check.url)) throw fail('DPoP proof htu does not match the request URL');
    const nowS = this.#o.clock.now() / 1000;
    if (iat > nowS + this.#o.leewaySeconds) throw fail('DPoP proof iat is in the future');
    if (iat < nowS - this.#o.maxAgeSeconds - this.#o.leewaySeconds) throw fail('DPoP proof is too old');
    if (this.#o.requireNonce && !this.#nonceValid(payload.nonce)) {
      throw new OAuthError(
        (check.at ?? (check.accessToken === undefined ? 'token-endpoint' : 'resource')) === 'token-endpoint'
          ? 'OAUTH_USE_DPOP_NONCE'
          : 'OAUTH_INVALID_TOKEN',
        'a fresh DPoP nonce is required',
        {
          details: { dpopNonce: this.nonce() },
        },
      );
    }
    if (check.accessToken !== undefined) {
      const ath = createHash('sha256').update(check.accessToken).digest('base64url');
      if (payload.ath !== ath) throw fail('DPoP proof ath does not match the access token');
    }
    const jkt = await calculateJwkThumbprint(jwk);
    if (check.expectedJkt !== undefined && jkt !== check.expectedJkt)
      throw fail('DPoP proof key does not match the token binding (cnf.jkt)');
    await this.#consume(jkt, jti, iat, fail);
    return { jkt, jti };
  }

  /** Replay check: in memory first, then a unique row in the store so every replica agrees. */
  async #consume(jkt: string, jti: string, iat: number, fail: (message: string) => OAuthError): Promise<void> {
    const key = createHash('sha256').update(`${jkt}\n${jti}`).digest('base64url');
    const now = this.#o.clock.now();
    if ((this.#seen.get(key) ?? 0) > now) throw fail('DPoP proof has already been used');
    const expiresAt = (iat + this.#o.maxAgeSeconds + 2 * this.#o.leewaySeconds) * 1000;
    if (this.#seen.size > 100_000) for (const [k, exp] of this.#seen) if (exp <= now) this.#seen.delete(k);
    // Seen here before the commit, so a concurrent copy on this replica is refused at once.
    this.#seen.set(key, expiresAt);
    if (!(await this.#replay.submit({ key, expiresAt }))) throw fail('DPoP proof has already been used');
  }
}

/** Inserts proof ids; true for each one that was new (false: another replica or call had it). */
async function recordProofIds(tx: SqlExecutor, rows: readonly { key: string; expiresAt: number }[]): Promise<boolean[]> {
  const fresh: boolean[] = [];
  for (const { key, expiresAt } of rows) {
    const { changes } = await tx.run('INSERT INTO dpop_proofs (proof_key, expires_at) VALUES (?, ?) ON CONFLICT (proof_key) DO NOTHING', [
      key,
      expiresAt,
    ]);
    fresh.push(changes > 0);
  }
  return fresh;
}

/** RFC 9449 §4.3 check 9: compare without query and fragment, after URI normalisation (RFC 3986 §6). */
export function normalizeHtu(value: string): string {
  try {
    const u = new URL(value);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return `invalid:${value}`;
  }
}
