// OAuth client credentials from an external authorization server (oauth4webapi as the client):
// per mandate, an access token whose scope is down-selected to what the mandate's tools on this
// upstream need, cached as the mandate's lease and revoked (RFC 7009) at the end where the server
// advertises a `revocation_endpoint`; elsewhere it dies at its own expiry (capped at the mandate's).
import * as oauth from 'oauth4webapi';
import type { Clock } from '../../lib/clock.js';
import type { LeaseProvider, LeaseRequest, ObtainedLease, RevokeRequest } from '../provider.js';
import { injectSecret } from './inject.js';

type Config = Extract<import('../lease.js').LeaseConfig, { type: 'oauth-client-credentials' }>;

/** How long discovered metadata is reused before it is fetched again. */
const METADATA_TTL_MS = 10 * 60_000;

export class OAuthClientCredentialsProvider implements LeaseProvider {
  readonly type = 'oauth-client-credentials' as const;
  readonly #c: Config;
  readonly #clock: Clock;
  readonly #timeoutMs: number;
  readonly #client: oauth.Client;
  readonly #auth: oauth.ClientAuth;
  #as: { server: oauth.AuthorizationServer; at: number } | undefined;

  constructor(config: Config, clock: Clock, timeoutMs: number) {
    this.#c = config;
    this.#clock = clock;
    this.#timeoutMs = timeoutMs;
    this.#client = { client_id: config.clientId };
    this.#auth = oauth.ClientSecretBasic(config.clientSecret);
  }

  prepare(): Readonly<Record<string, string>> {
    return {};
  }

  /** The scopes a mandate granting `tools` asks for: the base scopes plus those of each granted tool. */
  scopesFor(tools: readonly string[]): string[] {
    const scopes = new Set(this.#c.baseScopes);
    for (const t of tools) for (const s of this.#c.scopes[t] ?? []) scopes.add(s);
    return [...scopes].sort();
  }

  async obtain(request: LeaseRequest): Promise<ObtainedLease> {
    const as = await this.#server();
    const scopes = this.scopesFor(request.tools);
    const params: Record<string, string> = {};
    if (scopes.length > 0) params.scope = scopes.join(' ');
    if (this.#c.resource !== undefined) params.resource = this.#c.resource;
    const res = await oauth.clientCredentialsGrantRequest(as, this.#client, this.#auth, params, this.#options());
    const token = await oauth.processClientCredentialsResponse(as, this.#client, res);
    const now = this.#clock.now();
    const lifetime = typeof token.expires_in === 'number' ? token.expires_in * 1000 : Number.POSITIVE_INFINITY;
    const expiresAt = Math.min(now + lifetime, request.notAfter);
    // The server may grant less (or, wrongly, more) than asked: record what it says it granted.
    const granted = typeof token.scope === 'string' ? token.scope.split(' ').filter(Boolean) : scopes;
    return {
      credential: injectSecret(this.#c.inject, token.access_token),
      secrets: [token.access_token],
      state: token.access_token,
      details: {
        issuer: as.issuer,
        scope: granted.join(' '),
        requestedScope: scopes.join(' '),
        revocable: as.revocation_endpoint !== undefined,
      },
      expiresAt,
    };
  }

  async revoke(request: RevokeRequest): Promise<void> {
    if (request.state === undefined) return; // never obtained: nothing to revoke
    const as = await this.#server();
    // No revocation endpoint: the token dies at its expiry, which never outlives the mandate.
    if (as.revocation_endpoint === undefined) return;
    const res = await oauth.revocationRequest(as, this.#client, this.#auth, request.state, this.#options());
    await oauth.processRevocationResponse(res);
  }

  async close(): Promise<void> {}

  async #server(): Promise<oauth.AuthorizationServer> {
    const now = this.#clock.now();
    if (this.#as !== undefined && now - this.#as.at < METADATA_TTL_MS) return this.#as.server;
    const issuer = new URL(this.#c.issuer);
    const res = await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...this.#options() });
    const server = await oauth.processDiscoveryResponse(issuer, res);
    this.#as = { server, at: now };
    return server;
  }

  #options() {
    return {
      signal: AbortSignal.timeout(this.#timeoutMs),
      ...(this.#c.allowInsecureHttp ? { [oauth.allowInsecureRequests]: true } : {}),
    };
  }
}
