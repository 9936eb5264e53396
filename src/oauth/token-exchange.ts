// The token endpoint's logic: OAuth 2.0 Token Exchange (RFC 8693) that opens, refreshes and
// delegates mandates. Transport-free (the HTTP route passes the form parameters and headers).
//
// Semantics (docs/mandates.md has the long form):
//   open        subject_token = the agent's identity proof (JWT-SVID or OIDC workload token, type jwt)
//   open (mTLS) subject_token = base64url DER of the X.509-SVID leaf this TLS connection presented
//               (type urn:mandate:params:oauth:token-type:x509-svid)
//   on behalf   subject_token = the human's token (type jwt or id_token), actor_token = the agent's proof
//   refresh     subject_token = a mandate access token (type access_token), no actor_token
//   delegate    subject_token = the parent's mandate access token, actor_token = the receiving agent's proof;
//               when the parent token is DPoP-bound, a proof of its key (DPoP header, or
//               `subject_token_dpop` when the header proves the receiver's key)
// `authorization_details` (RFC 9396, type `mandate`) carries the requested mandate for open,
// on-behalf and delegate; refresh keeps the mandate as it is. The same entry with only `mandate_id`
// names a live mandate of the presenting agent instead (a token for it, no new mandate).
//
// The same endpoint serves two more grants that reuse every step above (src/oauth/client-credentials.ts,
// src/oauth/refresh-tokens.ts):
//   client_credentials  the MCP client-credentials extension: private_key_jwt whose assertion is the
//                       agent's identity proof; the mandate from authorization_details or a task template
//                       named in scope; a repeated request continues the agent's live standing grant
//   refresh_token       a rotated, key-bound refresh token of a mandate (issued with every new mandate)
//   authorization_code  an interactive client's code (OAuth 2.1 + PKCE S256): the mandate the human
//                       approved on the consent page, on their behalf (src/oauth/authorization-code.ts)
import type { X509Certificate } from 'node:crypto';
import { z } from 'zod';
import type { Agent } from '../agents/agent.js';
import type { AgentRegistry } from '../agents/registry.js';
import { DEFAULT_TEMPLATE } from '../agents/template.js';
import type { RefusalRecorder } from '../audit/refusal-aggregator.js';
import type { AuditActor, AuditLog } from '../audit/types.js';
import { OAuthError } from '../errors/index.js';
import { type ProofVerifier, type VerifiedProof, verifyIssuerToken } from '../identity/proofs.js';
import type { OidcIssuer } from '../identity/trust.js';
import type { Clock } from '../lib/clock.js';
import { requestFromTemplate } from '../mandates/from-template.js';
import { grantedDetails, isLive, MANDATE_DETAILS_TYPE, type Mandate, type MandateRequest } from '../mandates/mandate.js';
import type { MandateService } from '../mandates/service.js';
import type { PrincipalRepository } from '../principals/repository.js';
import { type AccessTokenIssuer, actChain, type MintInput, type PreparedToken } from './access-token.js';
import { type AuthorizationRequest, type AuthorizationRequests, CODE_VERIFIER, sha256 } from './authorization-code.js';
import {
  type ClientAssertions,
  ClientAssertions as ClientAuth,
  ClientGrants,
  GRANT_CLIENT_CREDENTIALS,
  GRANT_REFRESH_TOKEN,
} from './client-credentials.js';
import type { DpopVerifier } from './dpop.js';
import { bindingOf, type RefreshBinding, type RefreshTokens } from './refresh-tokens.js';
import type { TokenVerifier } from './verify.js';

export const GRANT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const GRANT_AUTHORIZATION_CODE = 'authorization_code';
/**
 * The refresh binding of an interactive (public) client without DPoP: its client_id, in the
 * identity binding space (workload identity keys start `spiffe:` or `oidc:`, so none collides).
 * A public client has no key to prove (RFC 9700 §4.14.2: rotation with reuse detection protects it).
 */
export const publicClientBinding = (clientId: string): RefreshBinding => bindingOf.identity(`oauth-client:${clientId}`);
export const TOKEN_TYPE = {
  jwt: 'urn:ietf:params:oauth:token-type:jwt',
  idToken: 'urn:ietf:params:oauth:token-type:id_token',
  accessToken: 'urn:ietf:params:oauth:token-type:access_token',
  /**
   * Mandate's own type (RFC 8693 §3 allows URIs of one's own): the subject token is the base64url
   * DER of the X.509-SVID leaf the client presented in this request's mTLS handshake.
   */
  x509Svid: 'urn:mandate:params:oauth:token-type:x509-svid',
} as const;

export interface ExchangeRequest {
  /** Form parameters of the token request (single values). */
  readonly params: Readonly<Record<string, string | undefined>>;
  /** The DPoP header, when the client sent one. */
  readonly dpop: string | undefined;
  /** Absolute URL of the token endpoint as advertised (DPoP `htu`). */
  readonly url: string;
  /** The client certificate chain of the mTLS handshake (leaf first), when there was one. */
  readonly peerCertificates?: readonly X509Certificate[];
  /** The client address, under which refusals of unauthenticated requests are counted. */
  readonly source?: string;
}

export interface TokenResponse {
  readonly access_token: string;
  /** RFC 8693 §2.2.1: only in token-exchange responses. */
  readonly issued_token_type?: string;
  readonly token_type: 'Bearer' | 'DPoP';
  readonly expires_in: number;
  readonly authorization_details: Record<string, unknown>[];
  /** A refresh token of the mandate (src/oauth/refresh-tokens.ts), bound to the client's key or identity. */
  readonly refresh_token?: string;
}

export interface TokenExchangeOptions {
  readonly proofs: ProofVerifier;
  readonly humanIssuer: OidcIssuer | undefined;
  readonly agents: AgentRegistry;
  readonly principals: PrincipalRepository;
  readonly mandates: MandateService;
  readonly tokens: AccessTokenIssuer;
  readonly verifier: TokenVerifier;
  readonly dpop: DpopVerifier;
  readonly refreshTokens: RefreshTokens;
  readonly clientAssertions: ClientAssertions;
  readonly clientGrants: ClientGrants;
  /** Authorization requests of interactive clients (the authorization_code grant); absent: the grant is refused. */
  readonly authorizationRequests?: AuthorizationRequests;
  readonly audit: AuditLog | undefined;
  /** Counts refusals of requests that authenticated nothing (one audit event per source and window). */
  readonly refusals?: RefusalRecorder;
  readonly clock: Clock;
  readonly tokenTtlSeconds: number;
  readonly leewaySeconds: number;
  readonly dpopRequiredEnvironments: readonly string[];
  /** `audience` / `resource` values a client may ask for (the broker and its MCP endpoint). */
  readonly acceptedTargets: readonly string[];
  /** Limits (docs/mandates.md "Limits"): tool grants per requested mandate, bytes of `authorization_details`, bytes of a signed token. */
  readonly maxGrantsPerMandate: number;
  readonly maxAuthorizationDetailsBytes: number;
  readonly maxAccessTokenBytes: number;
}

/** A token about to be issued: what it holds, and its serialization awaiting the signature. */
interface Minting {
  readonly input: MintInput;
  readonly prepared: PreparedToken;
}

/** Mandate's extension parameter: a DPoP proof (RFC 9449 §4) of the key a DPoP-bound subject token is bound to. */
export const SUBJECT_TOKEN_DPOP = 'subject_token_dpop';

const bad = (message: string) => new OAuthError('OAUTH_INVALID_REQUEST', message);
const badToken = (message: string) => new OAuthError('OAUTH_INVALID_SUBJECT_TOKEN', message);
const badDpop = (message: string) => new OAuthError('OAUTH_INVALID_DPOP_PROOF', message);
const badGrant = (message: string) => new OAuthError('OAUTH_INVALID_GRANT', message);
const badClient = (message: string) => new OAuthError('OAUTH_INVALID_CLIENT', message);
const badScope = (message: string) => new OAuthError('OAUTH_INVALID_SCOPE', message);
const tooLarge = (message: string) => new OAuthError('OAUTH_INVALID_AUTHORIZATION_DETAILS', message, { details: { reason: 'limit' } });

/** An `authorization_details` entry naming an existing mandate (the shape the granted entry has: `mandate_id`). */
const continuationSchema = z.strictObject({ type: z.literal(MANDATE_DETAILS_TYPE), mandate_id: z.string().min(1).max(64) });

/**
 * A requested mandate as parsed before the requesting agent is known: complete, or naming a task
 * template whose parameters are resolved once the agent's environment is (`#resolve`).
 */
type Wanted = MandateRequest | { readonly pendingTemplate: Readonly<Record<string, unknown>> };

/** What a request asks for: a new mandate, or a token for an existing one. */
type Requested = { readonly kind: 'open'; readonly request: Wanted } | { readonly kind: 'continue'; readonly mandateId: string };

/**
 * Whether the request in flight has authenticated anything yet (a proof, a human token or a
 * mandate token verified). Passed down explicitly: an AsyncLocalStorage here enabled promise hooks
 * for the whole process (every promise of every request paid for them, the gateway's included).
 */
interface Attempt {
  authenticated: boolean;
}

export class TokenExchange {
  readonly #o: TokenExchangeOptions;

  constructor(options: TokenExchangeOptions) {
    this.#o = options;
  }

  /** Handles one token request; throws OAuthError (RFC 6749 §5.2) on refusal, after auditing it. */
  async exchange(req: ExchangeRequest): Promise<TokenResponse> {
    const state: Attempt = { authenticated: false };
    try {
      return await this.#exchange(req, state);
    } catch (err) {
      if (err instanceof OAuthError && !state.authenticated && this.#o.refusals !== undefined) {
        // Garbage from nobody: counted per source and window, so a flood cannot add an event per request.
        this.#o.refusals.record({ source: req.source ?? 'unknown', endpoint: 'token', code: err.code });
      } else if (err instanceof OAuthError) {
        await this.#o.audit
          ?.append({
            type: 'mandate.refused',
            actors: [{ type: 'system', id: 'token-endpoint' }],
            data: { code: err.code, reason: err.message },
          })
          .catch(() => {});
      }
      throw err;
    }
  }

  async #exchange(req: ExchangeRequest, at: Attempt): Promise<TokenResponse> {
    const p = req.params;
    if (p.grant_type === GRANT_CLIENT_CREDENTIALS) return this.#clientCredentials(req, at);
    if (p.grant_type === GRANT_REFRESH_TOKEN) return this.#refreshGrant(req, at);
    if (p.grant_type === GRANT_AUTHORIZATION_CODE && this.#o.authorizationRequests !== undefined) {
      return this.#authorizationCode(req, this.#o.authorizationRequests, at);
    }
    if (p.grant_type !== GRANT_TOKEN_EXCHANGE) {
      throw new OAuthError(
        'OAUTH_UNSUPPORTED_GRANT_TYPE',
        `supported grant types: ${GRANT_TOKEN_EXCHANGE}, ${GRANT_CLIENT_CREDENTIALS}, ${GRANT_REFRESH_TOKEN}${this.#o.authorizationRequests === undefined ? '' : `, ${GRANT_AUTHORIZATION_CODE}`}`,
      );
    }
    if (p.requested_token_type !== undefined && p.requested_token_type !== TOKEN_TYPE.accessToken) {
      throw bad('requested_token_type must be urn:ietf:params:oauth:token-type:access_token');
    }
    if (p.subject_token === undefined || p.subject_token === '') throw bad('subject_token is required');
    if (p.subject_token_type === undefined) throw bad('subject_token_type is required');
    if (p.actor_token !== undefined && p.actor_token_type !== TOKEN_TYPE.jwt) {
      throw bad('actor_token_type must be urn:ietf:params:oauth:token-type:jwt (an agent identity proof)');
    }
    if (p.actor_token === undefined && p.actor_token_type !== undefined) throw bad('actor_token_type without actor_token');
    if (p[SUBJECT_TOKEN_DPOP] !== undefined && (p.subject_token_type !== TOKEN_TYPE.accessToken || p.actor_token === undefined)) {
      throw bad(`${SUBJECT_TOKEN_DPOP} belongs only to the delegation of a DPoP-bound mandate token`);
    }
    const dpop = await this.#targetsAndDpop(req);

    if (p.subject_token_type === TOKEN_TYPE.accessToken) {
      if (p.actor_token === undefined) return this.#refresh(at, p.subject_token, p.authorization_details, dpop?.jkt);
      return this.#delegate(
        at,
        p.subject_token,
        p.actor_token,
        this.#details(p.authorization_details),
        dpop?.jkt,
        p[SUBJECT_TOKEN_DPOP],
        req.url,
      );
    }
    if (p.subject_token_type === TOKEN_TYPE.x509Svid) {
      if (p.actor_token !== undefined) throw bad('an X.509-SVID subject takes no actor_token');
      const requested = this.#requested(p.authorization_details);
      const { agent, proof } = await this.#agentFrom(at, () => this.#x509Proof(p.subject_token as string, req.peerCertificates));
      if (requested.kind === 'continue') return this.#continue(agent, proof, requested.mandateId, dpop?.jkt, 'token-exchange');
      return this.#open(agent, proof, requested.request, undefined, dpop?.jkt);
    }
    if (p.subject_token_type !== TOKEN_TYPE.jwt && p.subject_token_type !== TOKEN_TYPE.idToken) {
      throw bad('unsupported subject_token_type');
    }
    if (p.actor_token === undefined) {
      const requested = this.#requested(p.authorization_details);
      if (p.subject_token_type !== TOKEN_TYPE.jwt) throw bad('an agent identity proof has subject_token_type jwt');
      const { agent, proof } = await this.#agentFromProof(at, p.subject_token);
      if (requested.kind === 'continue') return this.#continue(agent, proof, requested.mandateId, dpop?.jkt, 'token-exchange');
      return this.#open(agent, proof, requested.request, undefined, dpop?.jkt);
    }
    const request = this.#details(p.authorization_details);
    const human = await this.#human(at, p.subject_token);
    const { agent, proof } = await this.#agentFromProof(at, p.actor_token);
    return this.#open(agent, proof, request, human, dpop?.jkt);
  }

  /**
   * Checks shared by every grant: RFC 8693 §2.1 / RFC 8707 targets (tokens are only issued for this
   * broker, its gateway included), then the DPoP proof — before any token is looked at (RFC 9449 §5).
   */
  async #targetsAndDpop(req: ExchangeRequest): Promise<{ jkt: string } | undefined> {
    const p = req.params;
    for (const target of [p.audience, p.resource]) {
      if (target !== undefined && !this.#o.acceptedTargets.includes(target.replace(/\/$/, ''))) {
        throw new OAuthError('OAUTH_INVALID_TARGET', 'tokens are only issued for this broker; audience/resource names another service');
      }
    }
    return req.dpop === undefined ? undefined : this.#o.dpop.verify({ proof: req.dpop, method: 'POST', url: req.url }, badDpop);
  }

  /** `authorization_details` of a request that may also name an existing mandate (`[{type, mandate_id}]`). */
  #requested(raw: string | undefined): Requested {
    if (raw !== undefined && raw.length < 256) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch {
        // #details reports it.
      }
      const entry = Array.isArray(parsed) && parsed.length === 1 ? parsed[0] : undefined;
      if (typeof entry === 'object' && entry !== null && 'mandate_id' in entry) {
        const named = continuationSchema.safeParse(entry);
        if (!named.success) {
          throw new OAuthError(
            'OAUTH_INVALID_AUTHORIZATION_DETAILS',
            'an entry naming an existing mandate has exactly type "mandate" and mandate_id',
          );
        }
        return { kind: 'continue', mandateId: named.data.mandate_id };
      }
    }
    return { kind: 'open', request: this.#details(raw) };
  }

  #details(raw: string | undefined): Wanted {
    if (raw === undefined) throw new OAuthError('OAUTH_INVALID_AUTHORIZATION_DETAILS', 'authorization_details (type mandate) is required');
    const bytes = Buffer.byteLength(raw, 'utf8');
    if (bytes > this.#o.maxAuthorizationDetailsBytes) {
      throw tooLarge(`authorization_details is ${bytes} bytes; the limit is ${this.#o.maxAuthorizationDetailsBytes}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      throw new OAuthError('OAUTH_INVALID_AUTHORIZATION_DETAILS', 'authorization_details is not valid JSON');
    }
    if (!Array.isArray(parsed) || parsed.length !== 1) {
      throw new OAuthError('OAUTH_INVALID_AUTHORIZATION_DETAILS', 'authorization_details must be an array with exactly one mandate entry');
    }
    const entry: unknown = parsed[0];
    if (entry !== null && typeof entry === 'object' && !Array.isArray(entry) && 'template' in entry) {
      return { pendingTemplate: entry as Record<string, unknown> };
    }
    return this.#limited(this.#o.mandates.parseRequest(entry));
  }

  /**
   * The mandate request `wanted` stands for: a template request resolved against the loaded task
   * templates (src/templates/), its environment defaulting to `environment` (the agent's, or the
   * parent's for a delegation).
   */
  #resolve(wanted: Wanted, environment: string | undefined): MandateRequest {
    if (!('pendingTemplate' in wanted)) return wanted;
    return this.#limited(this.#o.mandates.parseRequest(wanted.pendingTemplate, environment));
  }

  #limited(request: MandateRequest): MandateRequest {
    if (request.tools.length > this.#o.maxGrantsPerMandate) {
      throw tooLarge(`authorization_details asks for ${request.tools.length} tool grants; the limit is ${this.#o.maxGrantsPerMandate}`);
    }
    return request;
  }

  /** Verifies an identity proof and finds the registered, active agent bound to it. */
  #agentFromProof(at: Attempt, token: string): Promise<{ agent: Agent; proof: VerifiedProof }> {
    return this.#agentFrom(at, () => this.#o.proofs.verify(token));
  }

  /**
   * The X.509-SVID of this request's mTLS handshake. The subject token names the leaf so the
   * request states which identity it uses; possession of its key was proven by the handshake.
   */
  #x509Proof(subjectToken: string, chain: readonly X509Certificate[] | undefined): VerifiedProof {
    const leaf = chain?.[0];
    if (leaf === undefined) throw badToken('an X.509-SVID subject needs a client certificate in the TLS handshake');
    if (subjectToken !== leaf.raw.toString('base64url')) throw badToken('subject_token is not the client certificate of this connection');
    return this.#o.proofs.verifyX509(chain ?? []);
  }

  async #agentFrom(at: Attempt, verify: () => VerifiedProof | Promise<VerifiedProof>): Promise<{ agent: Agent; proof: VerifiedProof }> {
    let proof: VerifiedProof;
    try {
      proof = await verify();
    } catch (err) {
      // Unauthenticated requests are counted by exchange(); after a verified subject token this is part of its story.
      if (at.authenticated || this.#o.refusals === undefined) {
        await this.#auditIdentity('identity.rejected', undefined, { reason: (err as Error).message });
      }
      throw err;
    }
    at.authenticated = true;
    const agent = await this.#o.agents.byIdentity(proof.identity.key);
    const who = describe(proof);
    if (agent === undefined) {
      await this.#auditIdentity('identity.rejected', undefined, { identity: who, proofId: proof.proofId, reason: 'not registered' });
      throw badToken(`the identity ${who} is not a registered agent`);
    }
    if (agent.principal.status !== 'active') {
      await this.#auditIdentity('identity.rejected', agent.principal.id, {
        identity: who,
        proofId: proof.proofId,
        reason: agent.principal.status,
      });
      throw badToken(`agent ${agent.principal.id} is ${agent.principal.status}`);
    }
    return { agent, proof };
  }

  /**
   * Records the verification behind a mandate (with its id, so `explain` finds it). Durable before
   * any token leaves: callers join it into what `#issue` awaits.
   */
  #verified(agent: Agent, proof: VerifiedProof, mandateId: string): Promise<unknown> {
    const appended = this.#o.audit?.append({
      type: 'identity.verified',
      actors: [{ type: 'agent', id: agent.principal.id }],
      mandateId,
      data: { identity: describe(proof), proofId: proof.proofId, via: proof.identity.kind },
    });
    return appended ?? Promise.resolve();
  }

  /** Verifies the on-behalf-of human's token; the human must be a registered, active human principal. */
  async #human(at: Attempt, token: string): Promise<string> {
    const issuer = this.#o.humanIssuer;
    if (issuer === undefined) throw badToken('no human issuer is configured for on-behalf-of exchanges');
    const { payload } = await verifyIssuerToken(token, issuer, this.#o.clock, this.#o.leewaySeconds, 'human token');
    at.authenticated = true;
    const sub = payload.sub as string;
    const human = await this.#o.principals.get(sub);
    if (human === undefined || human.actorType !== 'human' || human.status !== 'active') {
      throw badToken(`the on-behalf-of subject "${sub}" is not an active human principal`);
    }
    return sub;
  }

  async #open(
    agent: Agent,
    proof: VerifiedProof,
    wanted: Wanted,
    onBehalfOf: string | undefined,
    jkt: string | undefined,
    grant: { readonly type: string; readonly recorded?: (m: Mandate) => Promise<unknown> } = { type: 'token-exchange' },
  ) {
    const request = this.#resolve(wanted, agent.principal.environment);
    this.#requireDpop(agent, request.environment, jkt);
    const mandate = this.#o.mandates.prepareOpen(agent, request, onBehalfOf);
    // Checked before anything is recorded: a refused token leaves no mandate behind.
    const mint = this.#mintInput(mandate, [agent.principal.id], jkt);
    // Sign while the mandate's audit event and row reach the disk; the token leaves only after both.
    const refresh = this.#o.refreshTokens.start(mandate.id, this.#binding(proof, jkt), mandate.expiresAt);
    return this.#issue(
      mandate,
      [agent.principal.id],
      mint,
      grant.type === 'token-exchange' ? { proofId: proof.proofId } : { proofId: proof.proofId, grant: grant.type },
      Promise.all([
        this.#verified(agent, proof, mandate.id),
        // The refresh family's first row commits with the mandate's.
        this.#o.mandates.commitOpen(mandate, { proofId: proof.proofId, identity: describe(proof) }, refresh.write),
        grant.recorded?.(mandate),
      ]),
      { refresh: Promise.resolve(refresh.token), exchange: grant.type === 'token-exchange' },
    );
  }

  /** What a new mandate's refresh tokens are bound to: the DPoP key of its first token, else the holder's identity. */
  #binding(proof: VerifiedProof, jkt: string | undefined): RefreshBinding {
    return jkt === undefined ? bindingOf.identity(proof.identity.key) : bindingOf.jkt(jkt);
  }

  /**
   * A token for an existing mandate, asked for with a fresh identity proof (a re-exchange naming it,
   * or a client-credentials request of its standing grant): the mandate and every ancestor live, held
   * by this agent, and — when its tokens are bound to a DPoP key — the same key. The refresh family
   * restarts (the previous refresh token is superseded, not reused).
   */
  async #continue(agent: Agent, proof: VerifiedProof, mandateId: string, jkt: string | undefined, via: string): Promise<TokenResponse> {
    const notYours = () => badGrant(`no live mandate "${mandateId}" of agent ${agent.principal.id}`);
    const mandate = await this.#o.mandates.get(mandateId);
    if (mandate === undefined || mandate.agentId !== agent.principal.id) throw notYours();
    const chain = await this.#o.mandates.chain(mandate);
    const now = this.#o.clock.now();
    if (!chain.every((m) => isLive(m, now) && !this.#o.mandates.hasEnded(m.id))) throw notYours();
    const binding = await this.#o.refreshTokens.bindingOf(mandate.id);
    if (binding === undefined) throw badGrant(`mandate ${mandateId} records no key binding; open a new mandate`);
    if (binding.startsWith('jkt:') && binding !== bindingOf.jkt(jkt ?? '')) {
      throw badGrant(`the tokens of mandate ${mandateId} are DPoP-bound: send a DPoP proof of the same key`);
    }
    if (binding.startsWith('identity:') && binding !== bindingOf.identity(proof.identity.key)) throw notYours();
    this.#requireDpop(agent, mandate.environment, jkt);
    const agents = chain.map((m) => m.agentId);
    const mint = this.#mintInput(mandate, agents, jkt);
    const refresh = this.#o.refreshTokens.issue(mandate.id, binding, mandate.expiresAt);
    return this.#issue(
      mandate,
      agents,
      mint,
      { proofId: proof.proofId, continued: via },
      Promise.all([this.#verified(agent, proof, mandate.id), refresh]),
      { refresh, exchange: via === 'token-exchange' },
    );
  }

  /**
   * The MCP client-credentials extension: client authentication is RFC 7523 §2.2 with the agent's
   * identity proof as the assertion; the mandate comes from `authorization_details`, from the task
   * template named in `scope` (the agent's `default` template when neither is sent), or — when the
   * agent already holds a live mandate for exactly this request and key — is that mandate.
   */
  async #clientCredentials(req: ExchangeRequest, at: Attempt): Promise<TokenResponse> {
    const p = req.params;
    for (const name of ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'refresh_token', SUBJECT_TOKEN_DPOP]) {
      if (p[name] !== undefined) throw bad(`${name} does not belong to a client_credentials request`);
    }
    if (p.authorization_details !== undefined && p.scope !== undefined) {
      throw bad('send either authorization_details or scope (a task template name), not both');
    }
    const dpop = await this.#targetsAndDpop(req);
    const { agent, proof } = await this.#agentFrom(at, () => this.#o.clientAssertions.verify(p)).catch((err: unknown) => {
      // An unregistered or stopped workload is a client that failed to authenticate (RFC 6749 §5.2).
      if (err instanceof OAuthError && err.code === 'OAUTH_INVALID_SUBJECT_TOKEN') throw badClient(err.message);
      throw err;
    });
    // RFC 7523 §3: the client is the assertion's subject; a client_id, if sent, must name the same one.
    if (p.client_id !== undefined && p.client_id !== agent.principal.id && p.client_id !== describe(proof)) {
      throw badClient(`client_id "${p.client_id}" is not the client the assertion authenticates (${agent.principal.id})`);
    }
    const requested: Requested =
      p.authorization_details === undefined
        ? { kind: 'open', request: this.#template(agent, p.scope) }
        : this.#requested(p.authorization_details);
    if (requested.kind === 'continue') return this.#continue(agent, proof, requested.mandateId, dpop?.jkt, GRANT_CLIENT_CREDENTIALS);
    const request = this.#resolve(requested.request, agent.principal.environment);
    const key = ClientGrants.key(request, this.#binding(proof, dpop?.jkt));
    const standing = await this.#o.clientGrants.find(agent.principal.id, key);
    if (standing !== undefined) {
      try {
        return await this.#continue(agent, proof, standing, dpop?.jkt, GRANT_CLIENT_CREDENTIALS);
      } catch (err) {
        // The standing grant's mandate ended: this request opens the next one.
        if (!(err instanceof OAuthError && err.code === 'OAUTH_INVALID_GRANT')) throw err;
      }
    }
    return this.#open(agent, proof, request, undefined, dpop?.jkt, {
      type: GRANT_CLIENT_CREDENTIALS,
      recorded: (m) => this.#o.clientGrants.record(agent.principal.id, key, m.id, m.expiresAt),
    });
  }

  /**
   * OAuth 2.1 §4.1.3 with PKCE (RFC 7636, S256 only): a public client redeems the code of a consent
   * a human gave on the consent page. The mandate — for the agent principal the human chose, on the
   * human's behalf — is checked against the agent's profile again here (policy may have changed
   * since the consent), and opened with a refresh family bound to the DPoP key or the client_id.
   */
  async #authorizationCode(req: ExchangeRequest, requests: AuthorizationRequests, at: Attempt): Promise<TokenResponse> {
    const p = req.params;
    for (const name of [
      'subject_token',
      'subject_token_type',
      'actor_token',
      'actor_token_type',
      'refresh_token',
      'authorization_details',
    ]) {
      if (p[name] !== undefined) throw bad(`${name} does not belong to an authorization_code request`);
    }
    for (const name of ['code', 'redirect_uri', 'client_id', 'code_verifier'] as const) {
      if (p[name] === undefined || p[name] === '') throw bad(`${name} is required`);
    }
    if (ClientAuth.present(p)) throw badClient('interactive clients are public clients: send client_id and no client authentication');
    const dpop = await this.#targetsAndDpop(req);
    const redemption = await requests.redeem(p.code as string);
    at.authenticated = true;
    const a = redemption.authorization;
    if (redemption.kind === 'replayed') return this.#codeReplayed(a, requests);
    // Checked after the code is consumed: a code is presented once, right or wrong.
    if (a.clientId !== p.client_id) throw badGrant('the authorization code was issued to another client');
    if (a.redirectUri !== p.redirect_uri) throw badGrant('redirect_uri does not match the authorization request');
    if (!CODE_VERIFIER.test(p.code_verifier as string)) throw badGrant('code_verifier is malformed (RFC 7636 §4.1)');
    if (sha256(p.code_verifier as string) !== a.codeChallenge) throw badGrant('code_verifier does not match the code_challenge');
    if (p.resource !== undefined && p.resource.replace(/\/$/, '') !== a.resource.replace(/\/$/, '')) {
      throw new OAuthError('OAUTH_INVALID_TARGET', 'resource differs from the one the authorization was given for');
    }
    if (a.human === undefined || a.agentId === undefined || a.request === undefined) throw badGrant('the authorization was not approved');
    const human = await this.#o.principals.get(a.human);
    if (human === undefined || human.actorType !== 'human' || human.status !== 'active') {
      throw badGrant(`the human "${a.human}" who consented is no longer an active human principal`);
    }
    const agent = await this.#o.agents.get(a.agentId);
    if (agent === undefined || agent.principal.status !== 'active') throw badGrant(`agent ${a.agentId} is not active`);
    if (agent.principal.owner !== a.human) throw badGrant(`agent ${a.agentId} is no longer owned by ${a.human}`);
    this.#requireDpop(agent, a.request.environment, dpop?.jkt);
    const mandate = this.#o.mandates.prepareOpen(agent, a.request, a.human);
    const mint = this.#mintInput(mandate, [agent.principal.id], dpop?.jkt);
    const binding = dpop === undefined ? publicClientBinding(a.clientId) : bindingOf.jkt(dpop.jkt);
    const refresh = this.#o.refreshTokens.start(mandate.id, binding, mandate.expiresAt);
    const evidence = { grant: GRANT_AUTHORIZATION_CODE, client: a.clientId, consent: a.id };
    const recorded = this.#o.mandates.commitOpen(mandate, evidence, refresh.write).then(async () => {
      if (await requests.attach(a.id, mandate.id)) return;
      // The code came back while this mandate was being opened: it must not outlive the replay.
      await this.#o.mandates.end(
        mandate.id,
        'revoked',
        { type: 'system', id: 'authorization-code-replay' },
        'the authorization code was used twice',
      );
      throw badGrant('the authorization code has already been used');
    });
    // A literal of its own: #issue adds the token's fields to the event data it is given.
    const data = { grant: GRANT_AUTHORIZATION_CODE, client: a.clientId, consent: a.id };
    return this.#issue(mandate, [agent.principal.id], mint, data, recorded, {
      refresh: Promise.resolve(refresh.token),
      exchange: false,
    });
  }

  /** RFC 6749 §4.1.2: a code used twice is refused, and the mandate opened from it is revoked (audited first). */
  async #codeReplayed(a: AuthorizationRequest, requests: AuthorizationRequests): Promise<never> {
    const mandateId = await requests.mandateOf(a.id);
    await this.#o.audit?.append({
      type: 'token.code_reused',
      actors: [{ type: 'system', id: 'token-endpoint' }],
      ...(mandateId === undefined ? {} : { mandateId }),
      data: { client: a.clientId, consent: a.id },
    });
    if (mandateId !== undefined) {
      await this.#o.mandates.end(
        mandateId,
        'revoked',
        { type: 'system', id: 'authorization-code-replay' },
        'the authorization code was used twice',
      );
    }
    throw badGrant('the authorization code has already been used; the tokens issued from it are revoked');
  }

  /** The mandate request of the task template named in `scope` (one name; none: the agent's `default`). */
  #template(agent: Agent, scope: string | undefined): MandateRequest {
    const names = (scope ?? '').split(' ').filter((n) => n !== '');
    if (names.length > 1) throw badScope('scope names one task template');
    const name = names[0] ?? DEFAULT_TEMPLATE;
    const template = Object.hasOwn(agent.templates, name) ? agent.templates[name] : undefined;
    if (template === undefined) {
      throw badScope(
        names.length === 0
          ? `send authorization_details (type mandate) or name a task template in scope: agent ${agent.principal.id} has no "${DEFAULT_TEMPLATE}" template`
          : `agent ${agent.principal.id} has no task template "${name}"`,
      );
    }
    const request = requestFromTemplate(template, agent.principal.environment, (ref) =>
      this.#o.mandates.parseRequest({ type: MANDATE_DETAILS_TYPE, ...ref }, agent.principal.environment),
    );
    if (request === undefined) throw badScope(`task template "${name}" names no environment and agent ${agent.principal.id} has none`);
    if (request.tools.length > this.#o.maxGrantsPerMandate) {
      throw tooLarge(`task template "${name}" has ${request.tools.length} tool grants; the limit is ${this.#o.maxGrantsPerMandate}`);
    }
    return request;
  }

  /**
   * RFC 6749 §6 with rotation and reuse detection (RFC 9700 §4.14.2). The presenter proves the
   * binding first — a DPoP proof of the bound key, or a client assertion of the bound identity —
   * so a refresh token without its key is refused without consequence; a bound presenter of an
   * already-used token ends the mandate and every descendant.
   */
  async #refreshGrant(req: ExchangeRequest, at: Attempt): Promise<TokenResponse> {
    const p = req.params;
    if (p.refresh_token === undefined || p.refresh_token === '') throw bad('refresh_token is required');
    if (p.authorization_details !== undefined) {
      throw new OAuthError('OAUTH_INVALID_AUTHORIZATION_DETAILS', 'a refresh keeps its mandate; omit authorization_details');
    }
    const dpop = await this.#targetsAndDpop(req);
    const presented = await this.#o.refreshTokens.find(p.refresh_token);
    const client = ClientAuth.present(p) ? await this.#o.clientAssertions.verify(p) : undefined;
    if (presented.binding.startsWith('jkt:')) {
      if (dpop === undefined || presented.binding !== bindingOf.jkt(dpop.jkt)) {
        throw badGrant('the refresh token is bound to a DPoP key: send a DPoP proof of that key');
      }
    } else if (presented.binding.startsWith(publicClientBinding(''))) {
      // An interactive public client: it names itself (RFC 6749 §6 requires client_id of public clients).
      if (client !== undefined) throw badClient('a public client sends no client authentication');
      if (p.client_id === undefined || presented.binding !== publicClientBinding(p.client_id)) {
        throw badGrant('the refresh token was issued to another client (send its client_id)');
      }
    } else if (client === undefined) {
      throw badClient('the refresh token is bound to the workload identity it was issued to: authenticate with client_assertion');
    } else if (presented.binding !== bindingOf.identity(client.identity.key)) {
      throw badGrant('the refresh token was issued to another client');
    }
    at.authenticated = true;
    const mandate = await this.#o.mandates.get(presented.mandateId);
    if (mandate === undefined) throw badGrant('the mandate of this refresh token does not exist');
    if (presented.status === 'used') return this.#reused(mandate, presented.generation);
    const chain = await this.#o.mandates.chain(mandate);
    const now = this.#o.clock.now();
    if (!chain.every((m) => isLive(m, now) && !this.#o.mandates.hasEnded(m.id)))
      throw badGrant('the mandate of this refresh token has ended');
    const agent = await this.#o.agents.get(mandate.agentId);
    if (agent === undefined || agent.principal.status !== 'active') throw badGrant(`agent ${mandate.agentId} is not active`);
    this.#requireDpop(agent, mandate.environment, dpop?.jkt);
    const agents = chain.map((m) => m.agentId);
    const mint = this.#mintInput(mandate, agents, dpop?.jkt);
    const next = await this.#o.refreshTokens.rotate(presented, mandate.expiresAt);
    // Lost a race with another use of the same token (on any replica): that is reuse too.
    if (next === undefined) return this.#reused(mandate, presented.generation);
    return this.#issue(
      mandate,
      agents,
      mint,
      { grant: GRANT_REFRESH_TOKEN, refreshGeneration: presented.generation + 1 },
      Promise.resolve(),
      {
        refresh: Promise.resolve(next),
        exchange: false,
      },
    );
  }

  /** A refresh token used a second time: someone else holds a copy. The mandate ends (audited), then the refusal. */
  async #reused(mandate: Mandate, generation: number): Promise<never> {
    await this.#o.audit?.append({
      type: 'token.refresh_reused',
      actors: [{ type: 'system', id: 'token-endpoint' }],
      mandateId: mandate.id,
      environment: mandate.environment,
      data: { generation, agentId: mandate.agentId },
    });
    await this.#o.mandates.end(mandate.id, 'revoked', { type: 'system', id: 'refresh-reuse' }, 'a refresh token was used twice');
    throw badGrant('the refresh token has already been used; its mandate has been revoked');
  }

  async #refresh(at: Attempt, token: string, rawDetails: string | undefined, jkt: string | undefined): Promise<TokenResponse> {
    if (rawDetails !== undefined)
      throw new OAuthError('OAUTH_INVALID_AUTHORIZATION_DETAILS', 'a refresh keeps its mandate; omit authorization_details');
    const current = await this.#verifiedSubject(at, token);
    const bound = current.claims.cnf?.jkt;
    // Key continuity: a bound token is refreshed only by its holder, and stays bound to the same key.
    if (bound !== undefined && jkt !== bound) throw badDpop('refreshing a DPoP-bound token needs a proof with the same key');
    const agent = await this.#o.agents.get(current.mandate.agentId);
    if (agent === undefined) throw badToken('the agent is no longer registered');
    this.#requireDpop(agent, current.mandate.environment, jkt);
    const agents = current.chain.map((m) => m.agentId);
    return this.#issue(current.mandate, agents, this.#mintInput(current.mandate, agents, jkt), { refreshedTokenId: current.tokenId });
  }

  async #delegate(
    at: Attempt,
    parentToken: string,
    actorProof: string,
    wanted: Wanted,
    jkt: string | undefined,
    subjectProof: string | undefined,
    url: string,
  ): Promise<TokenResponse> {
    const parent = await this.#verifiedSubject(at, parentToken);
    const request = this.#resolve(wanted, parent.mandate.environment);
    await this.#possession(parentToken, parent.claims.cnf?.jkt, jkt, subjectProof, url);
    const { agent: receiver, proof } = await this.#agentFromProof(at, actorProof).catch((err: unknown) => {
      // The receiver is the requested target of a delegation (RFC 8693 §2.2.2 `invalid_target`).
      if (err instanceof OAuthError && /not a registered agent|is (quarantined|disabled)/.test(err.message)) {
        throw new OAuthError('OAUTH_INVALID_TARGET', err.message);
      }
      throw err;
    });
    if (receiver.principal.id === parent.mandate.agentId)
      throw new OAuthError('OAUTH_INVALID_TARGET', 'an agent cannot delegate to itself');
    this.#requireDpop(receiver, request.environment, jkt);
    const child = this.#o.mandates.prepareDelegation(parent.mandate, receiver, request);
    const agents = [...parent.chain.map((m) => m.agentId), receiver.principal.id];
    const mint = this.#mintInput(child, agents, jkt);
    const refresh = this.#o.refreshTokens.start(child.id, this.#binding(proof, jkt), child.expiresAt);
    return this.#issue(
      child,
      agents,
      mint,
      { parentMandateId: parent.mandate.id },
      Promise.all([
        this.#verified(receiver, proof, child.id),
        this.#o.mandates.commitDelegation(child, parent.mandate, { proofId: proof.proofId, identity: describe(proof) }, refresh.write),
      ]),
      { refresh: Promise.resolve(refresh.token), exchange: true },
    );
  }

  /**
   * Proof of possession for a DPoP-bound parent token (RFC 9449): a token without its key is not
   * authority, so it delegates nothing. The proof is the request's DPoP header when the holder of
   * the parent key asks (the child is then bound to that key too), or `subject_token_dpop` — a
   * proof of the parent key with `ath` of the parent token, made by its holder for this endpoint —
   * when the header proves the receiver's key. Either proof is single-use and obeys the nonce
   * rules. The child of a bound parent is always bound: delegation never downgrades to Bearer.
   */
  async #possession(
    parentToken: string,
    bound: string | undefined,
    jkt: string | undefined,
    subjectProof: string | undefined,
    url: string,
  ): Promise<void> {
    if (bound === undefined) {
      if (subjectProof !== undefined) throw bad(`${SUBJECT_TOKEN_DPOP} is only for a DPoP-bound subject token`);
      return;
    }
    if (jkt === undefined) {
      throw badGrant('the subject token is DPoP-bound: delegating it needs a DPoP proof of its key, and the child token is DPoP-bound too');
    }
    if (jkt === bound) {
      if (subjectProof !== undefined) throw bad(`${SUBJECT_TOKEN_DPOP} is redundant when the DPoP header proves the subject token's key`);
      return;
    }
    if (subjectProof === undefined) {
      throw badGrant(`the subject token is DPoP-bound to another key: send ${SUBJECT_TOKEN_DPOP}, a DPoP proof of that key`);
    }
    await this.#o.dpop.verify(
      { proof: subjectProof, method: 'POST', url, accessToken: parentToken, expectedJkt: bound, at: 'token-endpoint' },
      (message) => badGrant(`${SUBJECT_TOKEN_DPOP}: ${message}`),
    );
  }

  /** A presented mandate access token, fully verified (signature, revocation, live chain, agent). */
  async #verifiedSubject(at: Attempt, token: string) {
    try {
      const claims = await this.#o.verifier.verifyToken(token);
      at.authenticated = true;
      return await this.#o.verifier.resolve(claims);
    } catch (err) {
      if (err instanceof OAuthError) throw badToken(`subject_token: ${err.message}`);
      throw err;
    }
  }

  #requireDpop(agent: Agent, environment: string, jkt: string | undefined): void {
    if (jkt !== undefined) return;
    if (agent.dpopRequired) throw badDpop(`agent ${agent.principal.id} requires DPoP-bound tokens`);
    if (this.#o.dpopRequiredEnvironments.includes(environment)) throw badDpop(`environment ${environment} requires DPoP-bound tokens`);
  }

  /**
   * What the token for `mandate` will hold (`agents` root first); refused when the mandate expires
   * too soon or the signed token would exceed `maxAccessTokenBytes` (it travels in a header).
   */
  #mintInput(mandate: Mandate, agents: readonly string[], jkt: string | undefined): Minting {
    const nowS = Math.floor(this.#o.clock.now() / 1000);
    const exp = Math.min(nowS + this.#o.tokenTtlSeconds, Math.floor(mandate.expiresAt / 1000));
    if (exp <= nowS) throw badToken('the mandate expires too soon to issue a token');
    const subject = mandate.onBehalfOf ?? agents[0] ?? mandate.agentId;
    const act = actChain(agents, subject);
    // A plain literal (no spreads on the call path); absent optional fields stay absent.
    const input: { -readonly [K in keyof MintInput]: MintInput[K] } = {
      sub: subject,
      clientId: mandate.agentId,
      mandateId: mandate.id,
      details: grantedDetails(mandate),
      exp,
    };
    if (act !== undefined) input.act = act;
    if (jkt !== undefined) input.jkt = jkt;
    // Serialized once: the length is checked now, the same bytes are signed by #issue.
    const prepared = this.#o.tokens.prepare(input);
    if (prepared.length > this.#o.maxAccessTokenBytes) {
      throw tooLarge(`the access token for this mandate would be ${prepared.length} bytes; the limit is ${this.#o.maxAccessTokenBytes}`);
    }
    return { input, prepared };
  }

  async #issue(
    mandate: Mandate,
    agents: readonly string[],
    mint: Minting,
    data: Record<string, unknown>,
    recorded: Promise<unknown> = Promise.resolve(),
    extra: { readonly refresh?: Promise<string>; readonly exchange: boolean } = { exchange: true },
  ): Promise<TokenResponse> {
    // Awaited below; this branch only keeps an early throw from leaving it unhandled.
    recorded.catch(() => {});
    const nowS = Math.floor(this.#o.clock.now() / 1000);
    const input = mint.input;
    const { token, claims } = this.#o.tokens.sign(mint.prepared);
    // `prepare` measures exactly; this guard only keeps a future divergence from letting an oversized token out.
    if (token.length > this.#o.maxAccessTokenBytes) {
      throw tooLarge(`the access token for this mandate is ${token.length} bytes; the limit is ${this.#o.maxAccessTokenBytes}`);
    }
    // Plain literals and loops, no spreads (call path).
    const actors: AuditActor[] = [];
    if (mandate.onBehalfOf !== undefined) actors.push({ type: 'human', id: mandate.onBehalfOf });
    for (const id of agents) actors.push({ type: 'agent', id });
    // `data` is a literal each caller builds for this event alone: the token's fields are added to it.
    data.tokenId = claims.jti;
    data.exp = input.exp;
    data.dpopBound = input.jkt !== undefined;
    const issued = this.#o.audit?.append({ type: 'token.issued', actors, mandateId: mandate.id, environment: mandate.environment, data });
    const [, , refreshToken] = await Promise.all([recorded, issued, extra.refresh]);
    const response: { -readonly [K in keyof TokenResponse]: TokenResponse[K] } = {
      access_token: token,
      token_type: input.jkt === undefined ? 'Bearer' : 'DPoP',
      expires_in: input.exp - nowS,
      authorization_details: [input.details],
    };
    if (extra.exchange) response.issued_token_type = TOKEN_TYPE.accessToken;
    if (refreshToken !== undefined) response.refresh_token = refreshToken;
    return response;
  }

  /** A rejection is audited best-effort: we refuse anyway. */
  async #auditIdentity(type: string, agentId: string | undefined, data: Record<string, unknown>): Promise<void> {
    await this.#o.audit?.append({ type, actors: agentId === undefined ? [] : [{ type: 'agent', id: agentId }], data }).catch(() => {});
  }
}

/** The identity a proof established, as written in audit events (never the proof itself). */
function describe(proof: VerifiedProof): string {
  return proof.identity.kind === 'spiffe' ? proof.identity.spiffeId : `${proof.identity.issuer} ${proof.identity.subject}`;
}
