// DEVELOPMENT ONLY. A local SPIFFE trust domain for the demo and tests: its JWT-SVID signing key
// (ES256, one of the algorithms the JWT-SVID spec allows) lives in the data folder, and `mint`
// does what `spire-server jwt mint` does. Anyone with the data folder can impersonate any agent
// of this domain, so production mode never trusts it.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from 'jose';
import { MandateError } from '../errors/index.js';
import { type Clock, epochSeconds, systemClock } from '../lib/clock.js';
import { parseSpiffeId } from './spiffe-id.js';
import type { SpiffeBundleDocument } from './trust.js';

export const DEV_TRUST_DOMAIN = 'demo.mandate.local';
const KEY_FILE = 'dev-spiffe.jwk.json';

export interface MintSvidOptions {
  readonly spiffeId: string;
  readonly audience: string | readonly string[];
  readonly ttlSeconds?: number;
}

export class DevSpiffeAuthority {
  #signingKey: Promise<CryptoKey> | undefined;

  private constructor(
    readonly trustDomain: string,
    private readonly privateJwk: JWK,
    readonly publicJwk: JWK,
    private readonly clock: Clock,
  ) {}

  /** Loads the key from `dataDir`, generating it on first use. */
  static async open(dataDir: string, clock: Clock = systemClock): Promise<DevSpiffeAuthority> {
    const file = join(dataDir, KEY_FILE);
    let priv: JWK;
    if (existsSync(file)) {
      priv = JSON.parse(readFileSync(file, 'utf8')) as JWK;
    } else {
      const { privateKey } = await generateKeyPair('ES256', { extractable: true });
      priv = await exportJWK(privateKey);
      priv.kid = await calculateJwkThumbprint(priv);
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(file, JSON.stringify(priv), { mode: 0o600 });
    }
    const { d: _d, ...pub } = priv;
    return new DevSpiffeAuthority(DEV_TRUST_DOMAIN, priv, pub, clock);
  }

  /** The trust bundle (SPIFFE bundle format: JWKS with `use`). */
  bundle(): SpiffeBundleDocument {
    return { keys: [{ ...this.publicJwk, use: 'jwt-svid' }], spiffe_sequence: 1, spiffe_refresh_hint: 300 };
  }

  #key(): Promise<CryptoKey> {
    this.#signingKey ??= importJWK(this.privateJwk, 'ES256') as Promise<CryptoKey>;
    return this.#signingKey;
  }

  /** Mints a JWT-SVID for an ID of this trust domain. */
  async mint(options: MintSvidOptions): Promise<string> {
    const parsed = parseSpiffeId(options.spiffeId);
    if (!parsed.ok) throw new MandateError('ERR_VALIDATION', `invalid SPIFFE ID: ${parsed.reason}`);
    if (parsed.id.trustDomain !== this.trustDomain) {
      throw new MandateError('ERR_VALIDATION', `the development authority only mints IDs of ${this.trustDomain}`);
    }
    const now = epochSeconds(this.clock);
    return (
      new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: this.publicJwk.kid ?? '', typ: 'JWT' })
        .setSubject(options.spiffeId)
        .setAudience(typeof options.audience === 'string' ? options.audience : [...options.audience])
        .setIssuedAt(now)
        // A distinct id per SVID, so each can serve once as an RFC 7523 client assertion.
        .setJti(randomUUID())
        .setExpirationTime(now + (options.ttlSeconds ?? 300))
        .sign(await this.#key())
    );
  }
}
