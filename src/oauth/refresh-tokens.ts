// Refresh tokens (RFC 6749 §6) for one mandate across many access tokens, with the rules of the
// OAuth 2.0 Security BCP (RFC 9700 §4.14.2): sender-constrained (bound to the DPoP key of the
// mandate's first token, or to the workload identity of the agent, which must then authenticate
// with a client assertion), rotated on every use, and a reused refresh token ends the mandate and
// its descendants (both the thief and the holder lose it; the holder opens a new one with its
// identity). Only the SHA-256 of a refresh token is stored; none outlives its mandate.
//
// Each mandate has one family: at most one `active` token at a time (a partial unique index), the
// ones exchanged for a successor `used`, the ones replaced by a new grant of the same mandate
// (client credentials or a re-exchange naming it) `superseded`. Consuming is one conditional
// UPDATE, so two replicas presenting the same token concurrently cannot both succeed: the loser
// sees `used` and ends the mandate.
import { createHash } from 'node:crypto';
import { OAuthError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { randomBase64url } from '../lib/random-pool.js';
import type { SqlExecutor, Store } from '../store/index.js';
import type { WriteStatement } from '../store/write-batch.js';

/** What a refresh token is bound to: `jkt:<RFC 7638 thumbprint>` or `identity:<identity key>` (src/identity/proofs.ts). */
export type RefreshBinding = `jkt:${string}` | `identity:${string}`;

export const bindingOf = {
  jkt: (jkt: string): RefreshBinding => `jkt:${jkt}`,
  identity: (key: string): RefreshBinding => `identity:${key}`,
};

/** Opaque, 256 bits of randomness; the prefix lets secret scanners recognise one. */
const PREFIX = 'mrt_';
const FORMAT = /^mrt_[A-Za-z0-9_-]{43}$/;

interface Row {
  [key: string]: unknown;
  token_hash: string;
  mandate_id: string;
  binding: string;
  generation: number;
  status: 'active' | 'used' | 'superseded';
  expires_at: number;
}

/** A presented refresh token that exists, is unexpired and not yet consumed or replaced (or was consumed: `reused`). */
export interface PresentedRefreshToken {
  readonly hash: string;
  readonly mandateId: string;
  readonly binding: RefreshBinding;
  readonly generation: number;
  readonly status: Row['status'];
}

const invalidGrant = (message: string) => new OAuthError('OAUTH_INVALID_GRANT', message);

export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

export class RefreshTokens {
  #lastSweep = 0;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /**
   * The first refresh token of a new mandate and the row that records it, for the caller to write
   * in the mandate's own write batch (MandateService.commitOpen / commitDelegation): every opened
   * mandate starts a family, on the token endpoint's busiest path, and a commit of its own cost
   * about a third of an exchange's CPU.
   */
  start(mandateId: string, binding: RefreshBinding, expiresAt: number): { readonly token: string; readonly write: WriteStatement } {
    const token = newToken();
    const createdAt = this.clock.now();
    void this.#sweep();
    return {
      token,
      write: {
        sql: "INSERT INTO refresh_tokens (token_hash, mandate_id, binding, generation, status, expires_at, created_at) VALUES (?, ?, ?, 0, 'active', ?, ?)",
        params: [hashRefreshToken(token), mandateId, binding, expiresAt, createdAt],
      },
    };
  }

  /**
   * Starts (or restarts) the family of `mandateId`: the active token, if any, is superseded and a
   * new one bound to `binding` is issued, expiring with the mandate (`expiresAt`, ms).
   */
  async issue(mandateId: string, binding: RefreshBinding, expiresAt: number): Promise<string> {
    const token = newToken();
    await this.store.transaction(async (tx) => {
      const [last] = await tx.query<{ generation: number }>(
        'SELECT generation FROM refresh_tokens WHERE mandate_id = ? ORDER BY generation DESC LIMIT 1',
        [mandateId],
      );
      await tx.run("UPDATE refresh_tokens SET status = 'superseded', used_at = ? WHERE mandate_id = ? AND status = 'active'", [
        this.clock.now(),
        mandateId,
      ]);
      await this.#insert(tx, token, mandateId, binding, last === undefined ? 0 : Number(last.generation) + 1, expiresAt);
    });
    void this.#sweep();
    return token;
  }

  /** The binding the family of `mandateId` was started with (undefined: the mandate has no refresh family). */
  async bindingOf(mandateId: string): Promise<RefreshBinding | undefined> {
    const [row] = await this.store.query<{ binding: string }>(
      'SELECT binding FROM refresh_tokens WHERE mandate_id = ? ORDER BY generation LIMIT 1',
      [mandateId],
    );
    return row?.binding as RefreshBinding | undefined;
  }

  /**
   * Looks a presented token up. Unknown, malformed, expired and superseded tokens are refused
   * (`invalid_grant`); a consumed one is returned with status `used` so the caller can check the
   * binding before treating it as reuse (a thief without the key cannot end the mandate).
   */
  async find(token: string): Promise<PresentedRefreshToken> {
    if (!FORMAT.test(token)) throw invalidGrant('the refresh token is not one this server issued');
    const hash = hashRefreshToken(token);
    const [row] = await this.store.query<Row>(
      'SELECT token_hash, mandate_id, binding, generation, status, expires_at FROM refresh_tokens WHERE token_hash = ?',
      [hash],
    );
    if (row === undefined) throw invalidGrant('the refresh token is unknown');
    if (Number(row.expires_at) <= this.clock.now()) throw invalidGrant('the refresh token has expired with its mandate');
    if (row.status === 'superseded') throw invalidGrant('the refresh token was replaced by a newer grant of its mandate');
    return {
      hash,
      mandateId: row.mandate_id,
      binding: row.binding as RefreshBinding,
      generation: Number(row.generation),
      status: row.status,
    };
  }

  /**
   * Consumes `presented` and issues its successor (same binding and expiry) in one transaction.
   * Returns undefined when the token had already been consumed — reuse: the caller ends the mandate.
   */
  async rotate(presented: PresentedRefreshToken, expiresAt: number): Promise<string | undefined> {
    if (presented.status !== 'active') return undefined;
    const token = newToken();
    const ok = await this.store.transaction(async (tx) => {
      const { changes } = await tx.run(
        "UPDATE refresh_tokens SET status = 'used', used_at = ? WHERE token_hash = ? AND status = 'active'",
        [this.clock.now(), presented.hash],
      );
      if (changes === 0) return false;
      await this.#insert(tx, token, presented.mandateId, presented.binding, presented.generation + 1, expiresAt);
      return true;
    });
    return ok ? token : undefined;
  }

  /**
   * RFC 7009: revokes a refresh token, which must then be refused like a replaced one (never as
   * reuse: revoking must not end the mandate). Only the family's active token has anything left to
   * revoke; an unknown, consumed or replaced one is a no-op. Returns the mandate id when revoked.
   */
  async revoke(token: string): Promise<string | undefined> {
    if (!FORMAT.test(token)) return undefined;
    const hash = hashRefreshToken(token);
    const [row] = await this.store.query<{ mandate_id: string }>(
      "SELECT mandate_id FROM refresh_tokens WHERE token_hash = ? AND status = 'active'",
      [hash],
    );
    if (row === undefined) return undefined;
    const { changes } = await this.store.run(
      "UPDATE refresh_tokens SET status = 'superseded', used_at = ? WHERE token_hash = ? AND status = 'active'",
      [this.clock.now(), hash],
    );
    return changes === 0 ? undefined : row.mandate_id;
  }

  async #insert(tx: SqlExecutor, token: string, mandateId: string, binding: RefreshBinding, generation: number, expiresAt: number) {
    await tx.run(
      "INSERT INTO refresh_tokens (token_hash, mandate_id, binding, generation, status, expires_at, created_at) VALUES (?, ?, ?, ?, 'active', ?, ?)",
      [hashRefreshToken(token), mandateId, binding, generation, expiresAt, this.clock.now()],
    );
  }

  /** Drops families whose mandate has expired (at most once a minute per replica; best effort). */
  async #sweep(): Promise<void> {
    const now = this.clock.now();
    if (now - this.#lastSweep < 60_000) return;
    this.#lastSweep = now;
    await this.store.run('DELETE FROM refresh_tokens WHERE expires_at < ?', [now]).catch(() => {});
    await this.store.run('DELETE FROM client_grants WHERE expires_at < ?', [now]).catch(() => {});
  }
}

function newToken(): string {
  return `${PREFIX}${randomBase64url(32)}`;
}
