// One mandate's tokens: obtained, refreshed and presented with oauth4webapi (no hand-written OAuth).
// Opening uses the MCP client-credentials extension (private_key_jwt whose assertion is the agent's
// identity proof) or, on behalf of a human, the RFC 8693 token exchange; both return a rotated
// refresh token of the mandate. A token is refreshed when three quarters of its life have passed,
// before the request that would have needed it, so a long approval wait keeps the same mandate.
// Refreshes are serialized: a refresh token used twice revokes the mandate (reuse detection).
import * as oauth from 'oauth4webapi';
import { MandateAuthError } from './errors.js';
import type { IdentitySource } from './identity.js';

const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const GRANT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** The broker's authorization server, discovered once (RFC 8414). */
export interface Broker {
  readonly base: string;
  readonly as: oauth.AuthorizationServer;
  readonly client: oauth.Client;
  readonly http: { [oauth.allowInsecureRequests]?: boolean };
}

export async function discover(broker: string): Promise<Broker> {
  const issuer = new URL(broker.replace(/\/+$/, ''));
  const http = issuer.protocol === 'http:' ? { [oauth.allowInsecureRequests]: true } : {};
  const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...http }));
  // The client is the workload the assertion authenticates; this id is never sent.
  return { base: issuer.href.replace(/\/+$/, ''), as, client: { client_id: 'mandate-sdk' }, http };
}

/** RFC 7523 §2.2 client authentication with a workload identity proof as the assertion. */
const assertionAuth =
  (assertion: string): oauth.ClientAuth =>
  (_as, _client, body) => {
    body.set('client_assertion_type', CLIENT_ASSERTION_TYPE);
    body.set('client_assertion', assertion);
  };
/** No client authentication and no client_id: the request is authenticated by what it carries (a DPoP proof, tokens). */
const noAuth: oauth.ClientAuth = () => {};

export type TokenRequest =
  | { readonly grant: 'client_credentials'; readonly params: Record<string, string> }
  | { readonly grant: 'token_exchange'; readonly params: Record<string, string> };

/** Maps oauth4webapi's errors to the SDK's. */
export function authError(err: unknown): unknown {
  if (err instanceof oauth.ResponseBodyError)
    return new MandateAuthError(err.error, err.error_description ?? '', err.status, { cause: err });
  if (err instanceof oauth.WWWAuthenticateChallengeError) {
    const c = err.cause[0];
    return new MandateAuthError(c?.parameters.error ?? 'invalid_token', c?.parameters.error_description ?? '', err.status, { cause: err });
  }
  return err;
}

/**
 * A time source (epoch milliseconds), for {@link OpenOptions.clock}.
 *
 * @example
 * ```ts
 * const clock: Clock = { now: () => Date.now() + offsetMs };
 * ```
 */
export interface Clock {
  now(): number;
}

/** What a session is told besides its grant: its clock, and who to tell about a refresh. */
export interface SessionHooks {
  readonly clock: Clock;
  /** Called after each refresh with the mandate id and when the new token expires. */
  readonly onRefresh?: ((info: { mandateId: string; expiresAt: number }) => void) | undefined;
}

/**
 * DPoP handles of one key, one per clock skew: oauth4webapi fixes a handle's skew (the `iat` of its
 * proofs) when it is made, so a clock that moves away from the system clock gets a new handle; the
 * nonce it lacks then costs one `use_dpop_nonce` round trip.
 */
class DpopKey {
  #skew = 0;
  #handle: oauth.DPoPHandle | undefined;
  constructor(
    readonly keyPair: CryptoKeyPair,
    private readonly clock: Clock,
  ) {}
  handle(): oauth.DPoPHandle {
    const skew = Math.round((this.clock.now() - Date.now()) / 1000);
    if (this.#handle === undefined || skew !== this.#skew) {
      this.#skew = skew;
      this.#handle = oauth.DPoP({ [oauth.clockSkew]: skew }, this.keyPair);
    }
    return this.#handle;
  }
}

export class TokenSession {
  readonly mandateId: string;
  /** When the mandate itself ends (epoch ms), as granted. */
  readonly mandateExpiresAt: number;
  #access: string;
  #refresh: string | undefined;
  #refreshAt: number;
  #expiresAt: number;
  #refreshing: Promise<void> | undefined;
  /** The last refusal of the token by a resource (401 with a challenge). */
  lastRefusal: MandateAuthError | undefined;

  private constructor(
    readonly broker: Broker,
    readonly identity: IdentitySource,
    readonly dpopKey: DpopKey | undefined,
    readonly hooks: SessionHooks,
    response: oauth.TokenEndpointResponse,
  ) {
    const details = response.authorization_details?.[0] as { mandate_id?: unknown; expiresAt?: unknown } | undefined;
    if (typeof details?.mandate_id !== 'string') throw new MandateAuthError('invalid_response', 'the token response names no mandate');
    this.mandateId = details.mandate_id;
    this.mandateExpiresAt = typeof details.expiresAt === 'string' ? Date.parse(details.expiresAt) : Number.NaN;
    this.#access = response.access_token;
    this.#refresh = response.refresh_token;
    [this.#refreshAt, this.#expiresAt] = this.#times(response);
  }

  get dpop(): oauth.DPoPHandle | undefined {
    return this.dpopKey?.handle();
  }

  #times(r: oauth.TokenEndpointResponse): [number, number] {
    const now = this.hooks.clock.now();
    const life = (r.expires_in ?? 300) * 1000;
    // Refresh with a quarter of the life left (at least 5 s): in time for a request in flight.
    return [now + Math.max(0, Math.min(life * 0.75, life - 5000)), now + life];
  }

  /** Opens (or continues) a mandate. `dpopKey` binds its tokens; the same key stays with every token of it. */
  static async open(
    broker: Broker,
    identity: IdentitySource,
    keyPair: CryptoKeyPair | DpopKey | undefined,
    request: TokenRequest,
    hooks: SessionHooks,
  ): Promise<TokenSession> {
    const dpopKey = keyPair === undefined || keyPair instanceof DpopKey ? keyPair : new DpopKey(keyPair, hooks.clock);
    const dpop = dpopKey?.handle();
    const proof = await identity.token();
    const response = await TokenSession.#tokenEndpoint(broker, dpop, async () => {
      if (request.grant === 'client_credentials') {
        return oauth.processClientCredentialsResponse(
          broker.as,
          broker.client,
          await oauth.clientCredentialsGrantRequest(broker.as, broker.client, assertionAuth(proof), request.params, {
            ...(dpop === undefined ? {} : { DPoP: dpop }),
            ...broker.http,
          }),
        );
      }
      return oauth.processGenericTokenEndpointResponse(
        broker.as,
        broker.client,
        await oauth.genericTokenEndpointRequest(
          broker.as,
          broker.client,
          noAuth,
          GRANT_TOKEN_EXCHANGE,
          { ...request.params, actor_token: proof, actor_token_type: JWT_TYPE },
          { ...(dpop === undefined ? {} : { DPoP: dpop }), ...broker.http },
        ),
      );
    });
    return new TokenSession(broker, identity, dpopKey, hooks, response);
  }

  /** A child mandate for the agent `identity` proves: the holder of this mandate asks (RFC 8693), with this key. */
  async delegate(identity: IdentitySource, scope: Record<string, unknown>, hooks: SessionHooks): Promise<TokenSession> {
    const subject = await this.token();
    return TokenSession.open(
      this.broker,
      identity,
      this.dpopKey,
      {
        grant: 'token_exchange',
        params: {
          subject_token: subject,
          subject_token_type: ACCESS_TOKEN_TYPE,
          authorization_details: JSON.stringify([{ type: 'mandate', ...scope }]),
        },
      },
      hooks,
    );
  }

  /** Runs a token endpoint request, once more with the server's DPoP nonce when it asks for one (RFC 9449 §8). */
  static async #tokenEndpoint(
    broker: Broker,
    dpop: oauth.DPoPHandle | undefined,
    send: () => Promise<oauth.TokenEndpointResponse>,
  ): Promise<oauth.TokenEndpointResponse> {
    void broker;
    try {
      try {
        return await send();
      } catch (err) {
        if (dpop !== undefined && oauth.isDPoPNonceError(err)) return await send();
        throw err;
      }
    } catch (err) {
      throw authError(err);
    }
  }

  /** When the current access token expires (epoch ms). */
  get expiresAt(): number {
    return this.#expiresAt;
  }

  /** A valid access token of the mandate, refreshed first when most of its life has passed. */
  async token(): Promise<string> {
    if (this.hooks.clock.now() >= this.#refreshAt) await this.refresh();
    return this.#access;
  }

  /** A new access token of the same mandate (rotates the refresh token). Concurrent callers share one refresh. */
  refresh(): Promise<void> {
    this.#refreshing ??= this.#doRefresh().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #doRefresh(): Promise<void> {
    const refreshToken = this.#refresh;
    if (refreshToken === undefined) throw new MandateAuthError('invalid_grant', 'the broker issued no refresh token for this mandate');
    // A DPoP-bound refresh token is proven by the key; an unbound one by a fresh identity proof.
    const auth = this.dpopKey === undefined ? assertionAuth(await this.identity.token()) : noAuth;
    const dpop = this.dpop;
    const response = await TokenSession.#tokenEndpoint(this.broker, dpop, async () =>
      oauth.processRefreshTokenResponse(
        this.broker.as,
        this.broker.client,
        await oauth.refreshTokenGrantRequest(this.broker.as, this.broker.client, auth, refreshToken, {
          ...(dpop === undefined ? {} : { DPoP: dpop }),
          ...this.broker.http,
        }),
      ),
    );
    this.#access = response.access_token;
    // Rotation: the presented refresh token is spent whatever happens next; keep the new one.
    this.#refresh = response.refresh_token ?? undefined;
    [this.#refreshAt, this.#expiresAt] = this.#times(response);
    this.hooks.onRefresh?.({ mandateId: this.mandateId, expiresAt: this.#expiresAt });
  }

  /**
   * `fetch` for the broker's resources (/mcp, the agent API): the access token (DPoP or Bearer),
   * a fresh DPoP proof per request, one retry with the server nonce (`use_dpop_nonce`), and one
   * retry after a refresh when the token was refused as expired.
   */
  readonly fetch = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    const method = init.method ?? 'GET';
    const send = async (): Promise<Response> => {
      const headers = new Headers(init.headers);
      headers.delete('authorization');
      const token = await this.token();
      const dpop = this.dpop;
      return oauth.protectedResourceRequest(token, method, url, headers, (init.body ?? null) as oauth.ProtectedResourceRequestBody, {
        ...(dpop === undefined ? {} : { DPoP: dpop }),
        ...(init.signal ? { signal: init.signal } : {}),
        ...this.broker.http,
      });
    };
    let refreshed = false;
    for (let attempt = 0; ; attempt++) {
      try {
        return await send();
      } catch (err) {
        if (attempt < 3 && this.dpopKey !== undefined && oauth.isDPoPNonceError(err)) continue;
        if (err instanceof oauth.WWWAuthenticateChallengeError) {
          const expired = err.cause.some((c) => c.parameters.error === 'invalid_token');
          if (expired && !refreshed && this.hooks.clock.now() >= this.#refreshAt - 60_000) {
            refreshed = true;
            await this.refresh();
            continue;
          }
          // Anything else is the resource's answer: let the caller (the MCP transport) see it, and
          // remember it for the SDK's error (the transport reports only an HTTP failure).
          const c = err.cause[0];
          this.lastRefusal = new MandateAuthError(
            c?.parameters.error ?? 'invalid_token',
            c?.parameters.error_description ?? 'the token was refused',
            err.status,
            { cause: err },
          );
          return err.response;
        }
        throw err;
      }
    }
  };
}
