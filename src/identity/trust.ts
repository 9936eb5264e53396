// Trust anchors for identity proofs: SPIFFE trust bundles (JWKS with `use`, from a file or a bundle
// endpoint, refreshed in the background per `spiffe_refresh_hint`) and OIDC workload issuers
// (discovery + JWKS). Each trust domain is kept apart: a key of one domain never verifies another's SVID.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { createLocalJWKSet, createRemoteJWKSet, importJWK, type JWK } from 'jose';
import { MandateError } from '../errors/index.js';
import { checkTrustDomain } from './spiffe-id.js';

/** A SPIFFE bundle document (SPIFFE Trust Domain and Bundle spec §4): a JWKS plus SPIFFE parameters. */
export interface SpiffeBundleDocument {
  readonly keys: readonly (JWK & { use?: string })[];
  readonly spiffe_sequence?: number;
  readonly spiffe_refresh_hint?: number;
}

export type BundleSource = { kind: 'file'; path: string } | { kind: 'url'; url: string } | { kind: 'static'; bundle: SpiffeBundleDocument };

export interface TrustDomainSettings {
  readonly name: string;
  readonly source: BundleSource;
  readonly algorithms: readonly string[];
  readonly singleAudience: boolean;
  readonly refreshSeconds: number;
}

const MIN_REFRESH_MS = 5000;

/** The JWT-SVID algorithms (SPIFFE JWT-SVID spec §3: RS/PS/ES only) a bundle key can verify. */
const RSA_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'] as const;

/**
 * A bundle's JWT-SVID key. A WebCrypto key is bound to one algorithm, and an RSA key serves six,
 * so the key is imported once per algorithm a JWT-SVID asks for (only those `algorithms` lists).
 */
interface BundleKey {
  readonly jwk: JWK;
  readonly algorithms: readonly string[];
  readonly imported: Map<string, Promise<CryptoKey | undefined>>;
}

/** What a key may verify: by its type (and curve), narrowed to its own `alg` when it names one (RFC 7517 §4.4). */
function algorithmsOf(jwk: JWK): readonly string[] {
  const byType: readonly string[] =
    jwk.kty === 'RSA' ? RSA_ALGORITHMS : jwk.kty === 'EC' ? [ecAlg(jwk.crv)].filter((a) => a !== undefined) : [];
  return jwk.alg === undefined ? byType : byType.filter((a) => a === jwk.alg);
}

/** One SPIFFE trust domain and its current JWT-SVID keys. */
export class TrustDomain {
  readonly name: string;
  readonly settings: TrustDomainSettings;
  #keys = new Map<string, BundleKey>();
  #authorities: X509Certificate[] = [];
  #sequence: number | undefined;
  #loaded = false;
  #timer: NodeJS.Timeout | undefined;
  #lastError: string | undefined;

  constructor(settings: TrustDomainSettings) {
    const bad = checkTrustDomain(settings.name);
    if (bad !== undefined) throw new MandateError('ERR_CONFIG_INVALID', `trust domain "${settings.name}": ${bad}`);
    this.name = settings.name;
    this.settings = settings;
  }

  get sequence(): number | undefined {
    return this.#sequence;
  }

  get loaded(): boolean {
    return this.#loaded;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Fetches the bundle now; on failure keeps the previous keys (if any) and reports why. */
  async refresh(): Promise<number> {
    try {
      const doc = await this.#read();
      // A bundle endpoint may serve an older bundle from a lagging replica; never go backwards.
      if (doc.spiffe_sequence !== undefined && this.#sequence !== undefined && doc.spiffe_sequence < this.#sequence) {
        return this.#nextRefreshMs(doc);
      }
      const keys = new Map<string, BundleKey>();
      const authorities: X509Certificate[] = [];
      for (const jwk of doc.keys) {
        // §4.2.2: x509-svid keys carry exactly one CA certificate in x5c; they anchor X.509-SVID chains.
        if (jwk.use === 'x509-svid') {
          const [der, ...extra] = jwk.x5c ?? [];
          if (der !== undefined && extra.length === 0) {
            try {
              authorities.push(new X509Certificate(Buffer.from(der, 'base64')));
            } catch {
              // ignored like any malformed key
            }
          }
          continue;
        }
        // §4.2.1: only keys whose `use` is `jwt-svid` may verify JWT-SVIDs; x509-svid keys are CA certs.
        if (jwk.use !== 'jwt-svid' || typeof jwk.kid !== 'string' || jwk.kid === '') continue;
        const algorithms = algorithmsOf(jwk);
        const first = algorithms[0];
        if (first === undefined) continue;
        try {
          // Imported once now so a malformed key is skipped (the spec says to ignore it), not the whole bundle.
          const key = (await importJWK(jwk, first)) as CryptoKey;
          keys.set(jwk.kid, { jwk, algorithms, imported: new Map([[first, Promise.resolve(key)]]) });
        } catch {
          // skipped
        }
      }
      this.#keys = keys;
      this.#authorities = authorities;
      this.#sequence = doc.spiffe_sequence;
      this.#loaded = true;
      this.#lastError = undefined;
      return this.#nextRefreshMs(doc);
    } catch (err) {
      this.#lastError = (err as Error).message;
      return this.settings.refreshSeconds * 1000;
    }
  }

  /** Starts background refresh (unref'd timer). */
  startRefresh(): void {
    if (this.settings.source.kind === 'static') return;
    const loop = (delay: number) => {
      this.#timer = setTimeout(() => void this.refresh().then(loop), delay);
      this.#timer.unref();
    };
    loop(this.settings.refreshSeconds * 1000);
  }

  stopRefresh(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }

  /** The public JWK for `kid`; undefined when unknown. Throws when the bundle was never loaded (fail closed). */
  key(kid: string): JWK | undefined {
    return this.#entry(kid)?.jwk;
  }

  /**
   * The key for `kid` imported for `alg` (the JWT's own, already checked against this domain's
   * allow-list); undefined when `kid` is unknown or its key cannot verify `alg` (an EC key of
   * another curve, an RSA key for ES*, a key whose own `alg` differs). Throws when never loaded.
   */
  async keyFor(kid: string, alg: string): Promise<CryptoKey | undefined> {
    const entry = this.#entry(kid);
    if (entry === undefined || !entry.algorithms.includes(alg) || !this.settings.algorithms.includes(alg)) return undefined;
    let key = entry.imported.get(alg);
    if (key === undefined) {
      key = importJWK(entry.jwk, alg).then(
        (k) => k as CryptoKey,
        () => undefined,
      );
      entry.imported.set(alg, key);
    }
    return key;
  }

  #entry(kid: string): BundleKey | undefined {
    if (!this.#loaded) {
      throw new MandateError('ERR_TRUST_UNAVAILABLE', `the bundle of trust domain "${this.name}" is not loaded`);
    }
    return this.#keys.get(kid);
  }

  /** X.509 authorities (CA certificates) of this domain. Throws when the bundle was never loaded. */
  x509Authorities(): readonly X509Certificate[] {
    if (!this.#loaded) {
      throw new MandateError('ERR_TRUST_UNAVAILABLE', `the bundle of trust domain "${this.name}" is not loaded`);
    }
    return this.#authorities;
  }

  #nextRefreshMs(doc: SpiffeBundleDocument): number {
    const hint = doc.spiffe_refresh_hint;
    const seconds = typeof hint === 'number' && Number.isFinite(hint) && hint > 0 ? hint : this.settings.refreshSeconds;
    return Math.max(MIN_REFRESH_MS, seconds * 1000);
  }

  async #read(): Promise<SpiffeBundleDocument> {
    const src = this.settings.source;
    let doc: unknown;
    if (src.kind === 'static') doc = src.bundle;
    else if (src.kind === 'file') doc = JSON.parse(readFileSync(src.path, 'utf8'));
    else {
      const res = await fetch(src.url, { signal: AbortSignal.timeout(5000), headers: { accept: 'application/json' } });
      if (!res.ok) throw new Error(`bundle endpoint answered ${res.status}`);
      doc = await res.json();
    }
    if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) {
      throw new Error('the bundle is not a JWKS document');
    }
    return doc as SpiffeBundleDocument;
  }
}

function ecAlg(crv: unknown): string | undefined {
  return crv === 'P-256' ? 'ES256' : crv === 'P-384' ? 'ES384' : crv === 'P-521' ? 'ES512' : undefined;
}

export interface OidcIssuerSettings {
  readonly issuer: string;
  readonly audience: string;
  readonly algorithms: readonly string[];
  /** Remote JWKS URL, a local key set, or 'discover' (OpenID Connect Discovery). */
  readonly jwks: string | { keys: object[] } | 'discover';
}

export type JwksResolver = ReturnType<typeof createRemoteJWKSet> | ReturnType<typeof createLocalJWKSet>;

/** One OIDC issuer (workload tokens or human on-behalf-of tokens) with a lazily discovered JWKS. */
export class OidcIssuer {
  readonly settings: OidcIssuerSettings;
  #resolver: JwksResolver | undefined;

  constructor(settings: OidcIssuerSettings) {
    this.settings = settings;
  }

  async keySet(): Promise<JwksResolver> {
    if (this.#resolver !== undefined) return this.#resolver;
    const { jwks, issuer } = this.settings;
    if (typeof jwks === 'object') this.#resolver = createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0]);
    else if (jwks === 'discover') this.#resolver = createRemoteJWKSet(await discoverJwksUri(issuer));
    else this.#resolver = createRemoteJWKSet(new URL(jwks));
    return this.#resolver;
  }
}

/** OpenID Connect Discovery 1.0 §4.3: the metadata's issuer must equal the configured issuer. */
async function discoverJwksUri(issuer: string): Promise<URL> {
  try {
    const res = await fetch(`${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(5000) });
    const meta = (await res.json()) as { issuer?: unknown; jwks_uri?: unknown };
    if (!res.ok || meta.issuer !== issuer || typeof meta.jwks_uri !== 'string') throw new Error('bad discovery document');
    return new URL(meta.jwks_uri);
  } catch (err) {
    throw new MandateError('ERR_TRUST_UNAVAILABLE', `issuer ${issuer} cannot be discovered`, { cause: err });
  }
}

/** Every trust anchor the broker accepts proofs from. */
export class TrustStore {
  readonly domains = new Map<string, TrustDomain>();
  readonly workloadIssuers = new Map<string, OidcIssuer>();
  humanIssuer: OidcIssuer | undefined;

  addDomain(domain: TrustDomain): void {
    if (this.domains.has(domain.name)) throw new MandateError('ERR_CONFIG_INVALID', `trust domain "${domain.name}" is configured twice`);
    this.domains.set(domain.name, domain);
  }

  addWorkloadIssuer(issuer: OidcIssuer): void {
    this.workloadIssuers.set(issuer.settings.issuer, issuer);
  }

  /** Loads every bundle once and starts background refresh. */
  async start(): Promise<void> {
    await Promise.all([...this.domains.values()].map((d) => d.refresh()));
    for (const d of this.domains.values()) d.startRefresh();
  }

  stop(): void {
    for (const d of this.domains.values()) d.stopRefresh();
  }
}

/** Resolves a configured bundle file against the data folder (like the SQLite path). */
export function bundleSource(dataDir: string, file: string | undefined, url: string | undefined): BundleSource {
  if (file !== undefined && url !== undefined)
    throw new MandateError('ERR_CONFIG_INVALID', 'a trust domain takes bundleFile or bundleEndpointUrl, not both');
  if (file !== undefined) return { kind: 'file', path: resolve(dataDir, file) };
  if (url !== undefined) return { kind: 'url', url };
  throw new MandateError('ERR_CONFIG_INVALID', 'a trust domain needs bundleFile or bundleEndpointUrl');
}
