// DPoP proof verification exactly per RFC 9449 §4.3 (checks 1–12), with server nonces (§8, §9)
// bound to the replica that issued them, so replay is checked in that replica's memory alone.
//
// A nonce is `<time bucket>.<HMAC(bucket)>` under a key each replica draws at random when it
// starts and never shares: only the issuing replica can verify it, and a restarted replica (whose
// proof-id cache is empty) no longer accepts nonces it issued before. A proof carrying a nonce
// this replica issued was necessarily made for this replica, so remembering its `jti` here until
// the proof is too old is enough: no store round trip. A proof with another replica's nonce (the
// load balancer moved the client) is answered `use_dpop_nonce` with a nonce of this replica: one
// extra round trip for the client. Where nonces are optional (the token endpoint unless
// identity.dpopNonce; resources when identity.dpopResourceNonce is false), a proof without one is
// recorded in the store (group-committed) so every replica refuses its replay.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, type JWK, errors as joseErrors, jwtVerify } from 'jose';
import { OAuthError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { GroupCommit, inTransaction } from '../store/group-commit.js';
import type { SqlExecutor, Store } from '../store/index.js';

/**
 * Asymmetric JWS algorithms accepted in DPoP proofs (§4.2: `none` and MAC algorithms are never allowed).
 * `Ed25519` is the fully-specified name (RFC 9864) oauth4webapi and openid-client send for Ed25519
 * keys, beside the polymorphic `EdDSA`; either way the key's thumbprint, hence the binding, is the same.
 */
export const DPOP_ALGORITHMS = [
  'EdDSA',
  'Ed25519',
  'ES256',
  'ES384',
  'ES512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
] as const;

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
  /**
   * A fresh nonce to send in `DPoP-Nonce` (RFC 9449 §8.2) when the proof's nonce is from the
   * previous time bucket, so the client switches before it expires.
   */
  readonly nextNonce?: string;
}

export interface DpopVerifierOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly maxAgeSeconds: number;
  readonly leewaySeconds: number;
  /** Require a server nonce at the token endpoint (identity.dpopNonce). */
  readonly requireNonce: boolean;
  /** Require a server nonce at resources (identity.dpopResourceNonce; default true). */
  readonly requireResourceNonce?: boolean;
}

const NONCE_WINDOW_MS = 5 * 60_000;
/** Above this many remembered proof ids, expired ones are swept (amortised: at most once per doubling). */
const SWEEP_FLOOR = 10_000;

export class DpopVerifier {
  readonly #o: DpopVerifierOptions;
  /** Proof ids seen here (key → when the proof stops being acceptable, ms). */
  readonly #seen = new Map<string, number>();
  #sweepAt = SWEEP_FLOOR;
  /** Proof ids without a nonce of ours are group-committed to the store: one fsync for all calls in flight. */
  readonly #replay: GroupCommit<{ key: string; expiresAt: number }, boolean>;
  /** This replica's nonce key: random per process, never stored or shared. */
  readonly #nonceKey = randomBytes(32);

  constructor(options: DpopVerifierOptions) {
    this.#o = options;
    this.#replay = new GroupCommit(inTransaction(options.store, recordProofIds));
  }

  /** Whether the token endpoint demands a nonce. */
  get requireNonce(): boolean {
    return this.#o.requireNonce;
  }

  /** Whether resources demand a nonce. */
  get requireResourceNonce(): boolean {
    return this.#o.requireResourceNonce ?? true;
  }

  /** Proof ids remembered in memory (for tests and metrics). */
  get rememberedProofs(): number {
    return this.#seen.size;
  }

  /** A fresh server nonce of this replica (DPoP-Nonce header value). */
  nonce(): string {
    const bucket = Math.floor(this.#o.clock.now() / NONCE_WINDOW_MS);
    return `${bucket.toString(36)}.${this.#mac(bucket)}`;
  }

  /** The bucket of a nonce this replica issued that is still valid, or undefined. */
  #nonceBucket(nonce: string): number | undefined {
    const [b, mac, extra] = nonce.split('.');
    if (extra !== undefined || b === undefined || mac === undefined || !/^[0-9a-z]{1,12}$/.test(b)) return undefined;
    const bucket = Number.parseInt(b, 36);
    const current = Math.floor(this.#o.clock.now() / NONCE_WINDOW_MS);
    if (!Number.isSafeInteger(bucket) || (bucket !== current && bucket !== current - 1)) return undefined;
    const expected = Buffer.from(this.#mac(bucket));
    const given = Buffer.from(mac);
    return expected.length === given.length && timingSafeEqual(expected, given) ? bucket : undefined;
  }

  #mac(bucket: number): string {
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
    const at = check.at ?? (check.accessToken === undefined ? 'token-endpoint' : 'resource');
    const required = at === 'token-endpoint' ? this.#o.requireNonce : this.requireResourceNonce;
    // A nonce, when present, must be one of ours even where nonces are optional: a proof made for
    // another replica was never recorded anywhere this replica could see.
    const bucket = typeof payload.nonce === 'string' ? this.#nonceBucket(payload.nonce) : undefined;
    if (bucket === undefined && (required || payload.nonce !== undefined)) {
      throw new OAuthError(
        at === 'token-endpoint' ? 'OAUTH_USE_DPOP_NONCE' : 'OAUTH_RESOURCE_USE_DPOP_NONCE',
        payload.nonce === undefined ? 'a fresh DPoP nonce is required' : 'the DPoP nonce is unknown or expired here; use this one',
        { details: { dpopNonce: this.nonce() } },
      );
    }
    if (check.accessToken !== undefined) {
      const ath = createHash('sha256').update(check.accessToken).digest('base64url');
      if (payload.ath !== ath) throw fail('DPoP proof ath does not match the access token');
    }
    const jkt = await calculateJwkThumbprint(jwk);
    if (check.expectedJkt !== undefined && jkt !== check.expectedJkt)
      throw fail('DPoP proof key does not match the token binding (cnf.jkt)');
    await this.#consume(jkt, jti, iat, bucket === undefined, fail);
    const current = Math.floor(this.#o.clock.now() / NONCE_WINDOW_MS);
    return { jkt, jti, ...(bucket !== undefined && bucket !== current ? { nextNonce: this.nonce() } : {}) };
  }

  /**
   * Replay check: in memory, and in the store too for a proof that carries no nonce of ours (any
   * replica could have seen it). Entries live until the proof is too old to be accepted anyway.
   */
  async #consume(jkt: string, jti: string, iat: number, shared: boolean, fail: (message: string) => OAuthError): Promise<void> {
    const key = createHash('sha256').update(`${jkt}\n${jti}`).digest('base64url');
    const now = this.#o.clock.now();
    if ((this.#seen.get(key) ?? 0) > now) throw fail('DPoP proof has already been used');
    const expiresAt = (iat + this.#o.maxAgeSeconds + 2 * this.#o.leewaySeconds) * 1000;
    if (this.#seen.size >= this.#sweepAt) {
      // Never drops a live entry (that would reopen a replay): memory is bounded by the proof rate
      // times the proof lifetime (maxAge + 2 × leeway).
      for (const [k, exp] of this.#seen) if (exp <= now) this.#seen.delete(k);
      this.#sweepAt = Math.max(SWEEP_FLOOR, 2 * this.#seen.size);
    }
    // Seen here before any commit, so a concurrent copy on this replica is refused at once.
    this.#seen.set(key, expiresAt);
    if (shared && !(await this.#replay.submit({ key, expiresAt }))) throw fail('DPoP proof has already been used');
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

/**
 * RFC 9449 §4.3 check 9: the `htu` as compared, i.e. scheme, host and path after RFC 3986 §6.2.2
 * normalisation (case, default port, percent-encoded unreserved characters decoded, other
 * escapes in upper case), without query and fragment. A path that still holds a dot segment
 * (`.`/`..`, also percent-encoded) or an encoded separator (`%2F`, `%5C`) is not in normal form and
 * never matches: which resource it names depends on who resolves it. Hand-written: WHATWG `URL`
 * resolves `%2e%2e` as `..` and keeps `%6D` encoded, which is neither what RFC 3986 nor a router does.
 */
export function normalizeHtu(value: string): string {
  const invalid = `invalid:${value}`;
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)/.exec(value);
  if (m === null) return invalid;
  let origin: URL;
  try {
    origin = new URL(`${m[1]}://${m[2]}`);
  } catch {
    return invalid;
  }
  if (origin.username !== '' || origin.password !== '' || (origin.protocol !== 'https:' && origin.protocol !== 'http:')) return invalid;
  const path = normalizePath(m[3] === '' ? '/' : (m[3] as string));
  return path === undefined ? invalid : `${origin.protocol}//${origin.host}${path}`;
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * An absolute path in RFC 3986 normal form, or undefined when it is malformed, holds a dot
 * segment, or an encoded `/` or `\\` (see normalizeHtu).
 */
export function normalizePath(path: string): string | undefined {
  if (!path.startsWith('/') || path.startsWith('//')) return undefined;
  let out = '';
  for (let i = 0; i < path.length; i++) {
    const c = path[i] as string;
    if (c === '%') {
      const hex = path.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
      const decoded = String.fromCharCode(Number.parseInt(hex, 16));
      out += UNRESERVED.test(decoded) ? decoded : `%${hex.toUpperCase()}`;
      i += 2;
    } else if (c === '\\' || c.charCodeAt(0) <= 0x20 || c.charCodeAt(0) >= 0x7f) {
      return undefined;
    } else out += c;
  }
  for (const segment of out.split('/')) if (segment === '.' || segment === '..') return undefined;
  if (/%2F|%5C/.test(out)) return undefined;
  return out;
}
