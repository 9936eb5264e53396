// DEVELOPMENT ONLY. A local OIDC issuer that signs operator tokens for seeded humans in demo mode,
// so the console and CLI work without a real identity provider. Its Ed25519 key lives in the data
// folder. Never enable it for real operators: anyone with the data folder can mint admin tokens.

import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from 'jose';
import { type Clock, epochSeconds, systemClock } from '../lib/clock.js';

export const DEV_ISSUER_PATH = '/dev/oidc';
export const DEV_OPERATOR_AUDIENCE = 'mandate-admin';

export interface DevOperatorClaims {
  readonly sub: string;
  readonly roles: readonly string[];
  readonly name?: string;
  readonly ttlSeconds?: number;
}

export class DevIssuer {
  private constructor(
    readonly issuer: string,
    private readonly privateJwk: JWK,
    readonly publicJwk: JWK,
    private readonly clock: Clock,
  ) {}

  /** Loads the issuer key from `dataDir`, generating it on first use. */
  static async open(dataDir: string, issuer: string, clock: Clock = systemClock): Promise<DevIssuer> {
    const file = join(dataDir, 'dev-issuer.jwk.json');
    let priv: JWK;
    if (existsSync(file)) {
      priv = JSON.parse(readFileSync(file, 'utf8')) as JWK;
    } else {
      const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
      priv = await exportJWK(privateKey);
      priv.kid = await calculateJwkThumbprint(priv);
      mkdirSync(dataDir, { recursive: true });
      writeFileSync(file, JSON.stringify(priv), { mode: 0o600 });
    }
    const { d: _d, ...pub } = priv;
    return new DevIssuer(issuer, priv, { ...pub, alg: 'EdDSA', use: 'sig' }, clock);
  }

  get jwks(): { keys: JWK[] } {
    return { keys: [this.publicJwk] };
  }

  async mint(claims: DevOperatorClaims): Promise<string> {
    const key = await importJWK(this.privateJwk, 'EdDSA');
    const now = epochSeconds(this.clock);
    return new SignJWT({ roles: [...claims.roles], name: claims.name ?? claims.sub })
      .setProtectedHeader({ alg: 'EdDSA', kid: this.publicJwk.kid ?? '', typ: 'JWT' })
      .setIssuer(this.issuer)
      .setAudience(DEV_OPERATOR_AUDIENCE)
      .setSubject(claims.sub)
      .setIssuedAt(now)
      .setExpirationTime(now + (claims.ttlSeconds ?? 3600))
      .setJti(randomUUID())
      .sign(key);
  }
}
