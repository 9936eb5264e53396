// The broker's token signing keys: Ed25519, the private half sealed at rest by the SecretBox, the
// public half published as JWKS. Rotation creates a new key and keeps the previous ones published
// until every token they signed has expired, so verifiers never see an unknown `kid` mid-rotation.
import { createPrivateKey, type JsonWebKeyInput, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import { MandateError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { SecretBox } from '../secrets/index.js';
import type { Store } from '../store/index.js';

export const SIGNING_ALG = 'EdDSA' as const;

interface KeyRow {
  [key: string]: unknown;
  kid: string;
  public_jwk: string;
  private_sealed: string;
  created_at: number;
  retired_at: number | null;
}

export interface SigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  /** The same private key as a node:crypto KeyObject, for synchronous signing (src/oauth/jws.ts); imported once per reload. */
  readonly signingKey: KeyObject;
  readonly createdAt: number;
}

export interface SigningKeysOptions {
  readonly store: Store;
  readonly secrets: SecretBox;
  readonly clock: Clock;
  /** Age after which `ensureCurrent` rotates. */
  readonly rotateAfterMs: number;
  /** How long a retired key stays published (at least the longest token lifetime). */
  readonly publishRetiredMs: number;
}

/** Sealed private keys are bound to their kid, so one row's ciphertext cannot stand in for another. */
const sealContext = (kid: string) => `signing_key:${kid}`;

export class SigningKeys {
  readonly #o: SigningKeysOptions;
  #active: SigningKey | undefined;
  /** Public keys by kid (active and still-published retired ones). */
  #public = new Map<string, { jwk: JWK; key: CryptoKey; retiredAt: number | undefined }>();

  constructor(options: SigningKeysOptions) {
    this.#o = options;
  }

  /** Loads the keys, creating the first one (or rotating an old one). Call at start. */
  async ensureCurrent(): Promise<void> {
    await this.reload();
    const active = this.#active;
    if (active === undefined || this.#o.clock.now() - active.createdAt >= this.#o.rotateAfterMs) await this.rotate();
  }

  /** Creates a new active key; the previous active key is retired but stays published. */
  async rotate(): Promise<string> {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const priv = await exportJWK(privateKey);
    const kid = await calculateJwkThumbprint(priv);
    const { d: _d, ...pub } = priv;
    const now = this.#o.clock.now();
    await this.#o.store.transaction(async (tx) => {
      await tx.run('UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL AND alg = ?', [now, SIGNING_ALG]);
      await tx.run('INSERT INTO signing_keys (kid, alg, public_jwk, private_sealed, created_at, retired_at) VALUES (?, ?, ?, ?, ?, NULL)', [
        kid,
        SIGNING_ALG,
        JSON.stringify({ ...pub, kid, alg: SIGNING_ALG, use: 'sig' }),
        this.#o.secrets.seal(JSON.stringify(priv), sealContext(kid)),
        now,
      ]);
    });
    await this.reload();
    return kid;
  }

  /** Re-reads the key table (after a rotation on another replica, or an unknown kid). */
  async reload(): Promise<void> {
    const rows = await this.#o.store.query<KeyRow>(
      'SELECT kid, public_jwk, private_sealed, created_at, retired_at FROM signing_keys WHERE alg = ? AND (retired_at IS NULL OR retired_at > ?) ORDER BY created_at',
      [SIGNING_ALG, this.#o.clock.now() - this.#o.publishRetiredMs],
    );
    const next = new Map<string, { jwk: JWK; key: CryptoKey; retiredAt: number | undefined }>();
    let active: SigningKey | undefined;
    for (const row of rows) {
      const jwk = JSON.parse(row.public_jwk) as JWK;
      next.set(row.kid, {
        jwk,
        key: (await importJWK(jwk, SIGNING_ALG)) as CryptoKey,
        retiredAt: row.retired_at === null ? undefined : Number(row.retired_at),
      });
      if (row.retired_at === null) {
        const priv = JSON.parse(this.#o.secrets.open(row.private_sealed, sealContext(row.kid)).toString('utf8')) as JWK;
        active = {
          kid: row.kid,
          privateKey: (await importJWK(priv, SIGNING_ALG)) as CryptoKey,
          signingKey: createPrivateKey({ key: priv as JsonWebKeyInput['key'], format: 'jwk' }),
          createdAt: Number(row.created_at),
        };
      }
    }
    this.#public = next;
    this.#active = active;
  }

  /** The key new tokens are signed with. */
  active(): SigningKey {
    if (this.#active === undefined) throw new MandateError('ERR_INTERNAL', 'no active signing key; ensureCurrent() was not called');
    return this.#active;
  }

  /** Public key for `kid`, or undefined (callers fail closed). */
  publicKey(kid: string): CryptoKey | undefined {
    return this.#public.get(kid)?.key;
  }

  /** The published key set (RFC 7517), served at the JWKS URI. */
  jwks(): { keys: JWK[] } {
    return { keys: [...this.#public.values()].map((k) => k.jwk) };
  }
}
