// Authorization requests of interactive clients (OAuth 2.1 authorization code + PKCE), from the
// request at /oauth/authorize to the redeemed code. One row per request, moving through
//   pending → signed_in (the human signed in) → approved (consent given; a code exists)
//           → redeemed (the code was exchanged once) → replayed (it was presented again)
// or → denied. Every step is a conditional UPDATE on the expected status, so two replicas cannot
// both advance the same request, and a code is redeemed at most once (RFC 6749 §4.1.2). When a
// redeemed code comes back, the mandate opened from it is revoked (§4.1.2: "SHOULD revoke all
// tokens previously issued based on that authorization code").
//
// Stored: the browser binding and the code only as SHA-256; the PKCE challenge as sent; the
// mandate request the human approved (validated again when the code is redeemed).
import { createHash, randomBytes } from 'node:crypto';
import { OAuthError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { MandateRequest } from '../mandates/mandate.js';
import type { Store } from '../store/index.js';

export type AuthorizationStatus = 'pending' | 'signed_in' | 'approved' | 'denied' | 'redeemed' | 'replayed';

export interface AuthorizationRequest {
  readonly id: string;
  readonly clientId: string;
  readonly redirectUri: string;
  /** BASE64URL(SHA-256(code_verifier)) (RFC 7636 S256). */
  readonly codeChallenge: string;
  readonly state: string | undefined;
  /** RFC 8707 resource the tokens are for. */
  readonly resource: string;
  readonly scope: string | undefined;
  readonly browserHash: string;
  /** PKCE verifier of the broker's own sign-in at the operator issuer. */
  readonly signInVerifier: string;
  readonly status: AuthorizationStatus;
  readonly human: string | undefined;
  readonly agentId: string | undefined;
  readonly request: MandateRequest | undefined;
  readonly mandateId: string | undefined;
  readonly expiresAt: number;
}

export interface NewAuthorization {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly codeChallenge: string;
  readonly state: string | undefined;
  readonly resource: string;
  readonly scope: string | undefined;
  /** The secret the browser holds in a cookie (only its hash is stored). */
  readonly browserSecret: string;
}

interface Row {
  [key: string]: unknown;
  id: string;
  client_id: string;
  redirect_uri: string;
  code_challenge: string;
  state: string | null;
  resource: string;
  scope: string | null;
  browser_hash: string;
  signin_verifier: string;
  status: AuthorizationStatus;
  human: string | null;
  agent_id: string | null;
  request: string | null;
  mandate_id: string | null;
  expires_at: number | string;
}

export const sha256 = (value: string): string => createHash('sha256').update(value).digest('base64url');
export const randomSecret = (): string => randomBytes(32).toString('base64url');

/** RFC 7636 §4.1: 43..128 characters of the unreserved set; §4.2: the S256 challenge is 43 base64url characters. */
export const CODE_VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;
export const CODE_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
const CODE = /^mac_[A-Za-z0-9_-]{43}$/;

export interface AuthorizationRequestOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly codeTtlSeconds: number;
  readonly consentTtlSeconds: number;
}

/** The outcome of presenting a code: the request it was issued for, or a replay of an already redeemed one. */
export type Redemption =
  | { readonly kind: 'redeemed'; readonly authorization: AuthorizationRequest }
  | { readonly kind: 'replayed'; readonly authorization: AuthorizationRequest };

export class AuthorizationRequests {
  #lastSweep = 0;

  constructor(private readonly o: AuthorizationRequestOptions) {}

  async create(input: NewAuthorization): Promise<AuthorizationRequest> {
    const now = this.o.clock.now();
    const id = randomSecret();
    const signInVerifier = randomSecret();
    await this.o.store.run(
      `INSERT INTO oauth_authorizations (id, client_id, redirect_uri, code_challenge, state, resource, scope, browser_hash, signin_verifier, status, expires_at, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)`,
      [
        id,
        input.clientId,
        input.redirectUri,
        input.codeChallenge,
        input.state ?? null,
        input.resource,
        input.scope ?? null,
        sha256(input.browserSecret),
        signInVerifier,
        now + this.o.consentTtlSeconds * 1000,
        now,
      ],
    );
    void this.#sweep();
    return (await this.get(id)) as AuthorizationRequest;
  }

  /** A live (unexpired) request by id. */
  async get(id: string): Promise<AuthorizationRequest | undefined> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const [row] = await this.o.store.query<Row>('SELECT * FROM oauth_authorizations WHERE id = ?', [id]);
    if (row === undefined || Number(row.expires_at) <= this.o.clock.now()) return undefined;
    return fromRow(row);
  }

  /** True when `browserSecret` is the one the request was started with. */
  static boundTo(a: AuthorizationRequest, browserSecret: string | undefined): boolean {
    return browserSecret !== undefined && browserSecret !== '' && sha256(browserSecret) === a.browserHash;
  }

  /** The consent form's anti-CSRF token: derived from the browser secret, so only that browser's page has it. */
  static csrfToken(a: AuthorizationRequest, browserSecret: string): string {
    return sha256(`csrf ${a.id} ${browserSecret}`);
  }

  /** Records the human who signed in (once). */
  async signedIn(id: string, human: string): Promise<boolean> {
    const { changes } = await this.o.store.run(
      "UPDATE oauth_authorizations SET status = 'signed_in', human = ? WHERE id = ? AND status = 'pending' AND expires_at > ?",
      [human, id, this.o.clock.now()],
    );
    return changes === 1;
  }

  /** The human approved `request` for `agentId`: returns the one-time code (valid `codeTtlSeconds`). */
  async approve(id: string, agentId: string, request: MandateRequest): Promise<string | undefined> {
    const code = `mac_${randomSecret()}`;
    const now = this.o.clock.now();
    const { changes } = await this.o.store.run(
      `UPDATE oauth_authorizations SET status = 'approved', agent_id = ?, request = ?, code_hash = ?, expires_at = ?
       WHERE id = ? AND status = 'signed_in' AND expires_at > ?`,
      [agentId, JSON.stringify(request), sha256(code), now + this.o.codeTtlSeconds * 1000, id, now],
    );
    return changes === 1 ? code : undefined;
  }

  async deny(id: string): Promise<boolean> {
    const { changes } = await this.o.store.run(
      "UPDATE oauth_authorizations SET status = 'denied' WHERE id = ? AND status IN ('pending', 'signed_in') AND expires_at > ?",
      [id, this.o.clock.now()],
    );
    return changes === 1;
  }

  /**
   * Consumes a code: exactly one presentation of an approved, unexpired code is `redeemed` (even
   * if the caller then refuses it for a wrong verifier: a code is never tried twice); a code
   * presented again is `replayed` (and stays so). Anything else is `invalid_grant`.
   */
  async redeem(code: string): Promise<Redemption> {
    const unknown = () => new OAuthError('OAUTH_INVALID_GRANT', 'the authorization code is unknown or expired');
    if (!CODE.test(code)) throw unknown();
    const hash = sha256(code);
    const now = this.o.clock.now();
    const { changes } = await this.o.store.run(
      "UPDATE oauth_authorizations SET status = 'redeemed' WHERE code_hash = ? AND status = 'approved' AND expires_at > ?",
      [hash, now],
    );
    const [row] = await this.o.store.query<Row>('SELECT * FROM oauth_authorizations WHERE code_hash = ?', [hash]);
    if (row === undefined) throw unknown();
    if (changes === 1) return { kind: 'redeemed', authorization: fromRow(row) };
    if (row.status === 'redeemed' || row.status === 'replayed') {
      await this.o.store.run("UPDATE oauth_authorizations SET status = 'replayed' WHERE id = ?", [row.id]);
      return { kind: 'replayed', authorization: fromRow(row) };
    }
    throw unknown();
  }

  /**
   * Records the mandate opened from a redeemed code. False when the code was replayed meanwhile
   * (the caller then revokes the mandate it just opened).
   */
  async attach(id: string, mandateId: string): Promise<boolean> {
    const { changes } = await this.o.store.run("UPDATE oauth_authorizations SET mandate_id = ? WHERE id = ? AND status = 'redeemed'", [
      mandateId,
      id,
    ]);
    return changes === 1;
  }

  /** The mandate a code opened, read after a replay (it may have been attached since). */
  async mandateOf(id: string): Promise<string | undefined> {
    const [row] = await this.o.store.query<{ mandate_id: string | null }>('SELECT mandate_id FROM oauth_authorizations WHERE id = ?', [id]);
    return row?.mandate_id ?? undefined;
  }

  /** Deletes requests that expired a day ago (replays of their codes are refused as unknown by then). */
  async #sweep(): Promise<void> {
    const now = this.o.clock.now();
    if (now - this.#lastSweep < 60_000) return;
    this.#lastSweep = now;
    await this.o.store.run('DELETE FROM oauth_authorizations WHERE expires_at < ?', [now - 86_400_000]).catch(() => {});
  }
}

function fromRow(r: Row): AuthorizationRequest {
  return {
    id: r.id,
    clientId: r.client_id,
    redirectUri: r.redirect_uri,
    codeChallenge: r.code_challenge,
    state: r.state ?? undefined,
    resource: r.resource,
    scope: r.scope ?? undefined,
    browserHash: r.browser_hash,
    signInVerifier: r.signin_verifier,
    status: r.status,
    human: r.human ?? undefined,
    agentId: r.agent_id ?? undefined,
    request: r.request === null ? undefined : (JSON.parse(r.request) as MandateRequest),
    mandateId: r.mandate_id ?? undefined,
    expiresAt: Number(r.expires_at),
  };
}
