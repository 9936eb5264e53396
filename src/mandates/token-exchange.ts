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
// on-behalf and delegate; refresh keeps the mandate as it is.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { X509Certificate } from 'node:crypto';
import type { Agent } from '../agents/agent.js';
import type { AgentRegistry } from '../agents/registry.js';
import type { RefusalRecorder } from '../audit/refusal-aggregator.js';
import type { AuditActor, AuditLog } from '../audit/types.js';
import { OAuthError } from '../errors/index.js';
import { type ProofVerifier, type VerifiedProof, verifyIssuerToken } from '../identity/proofs.js';
import type { OidcIssuer } from '../identity/trust.js';
import type { Clock } from '../lib/clock.js';
import type { PrincipalRepository } from '../principals/repository.js';
import { type AccessTokenIssuer, actChain, type MintInput } from '../tokens/access-token.js';
import type { DpopVerifier } from '../tokens/dpop.js';
import type { TokenVerifier } from '../tokens/verify.js';
import { grantedDetails, type Mandate, type MandateRequest } from './mandate.js';
import type { MandateService } from './service.js';

export const GRANT_TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
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
  readonly issued_token_type: string;
  readonly token_type: 'Bearer' | 'DPoP';
  readonly expires_in: number;
  readonly authorization_details: Record<string, unknown>[];
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

/** Mandate's extension parameter: a DPoP proof (RFC 9449 §4) of the key a DPoP-bound subject token is bound to. */
export const SUBJECT_TOKEN_DPOP = 'subject_token_dpop';

const bad = (message: string) => new OAuthError('OAUTH_INVALID_REQUEST', message);
const badToken = (message: string) => new OAuthError('OAUTH_INVALID_SUBJECT_TOKEN', message);
const badDpop = (message: string) => new OAuthError('OAUTH_INVALID_DPOP_PROOF', message);
const badGrant = (message: string) => new OAuthError('OAUTH_INVALID_GRANT', message);
const tooLarge = (message: string) => new OAuthError('OAUTH_INVALID_AUTHORIZATION_DETAILS', message, { details: { reason: 'limit' } });

// Whether the request in flight has authenticated anything yet (a proof, a human token or a
// mandate token verified). Kept per async call so the check sites need no extra parameters.
const attempt = new AsyncLocalStorage<{ authenticated: boolean }>();
const markAuthenticated = () => {
  const state = attempt.getStore();
  if (state !== undefined) state.authenticated = true;
};

export class TokenExchange {
  readonly #o: TokenExchangeOptions;

  constructor(options: TokenExchangeOptions) {
    this.#o = options;
  }

  /** Handles one token request; throws OAuthError (RFC 6749 §5.2) on refusal, after auditing it. */
  async exchange(req: ExchangeRequest): Promise<TokenResponse> {
    const state = { authenticated: false };
    try {
      return await attempt.run(state, () => this.#exchange(req));
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

  async #exchange(req: ExchangeRequest): Promise<TokenResponse> {
    const p = req.params;
    if (p.grant_type !== GRANT_TOKEN_EXCHANGE) {
      throw new OAuthError('OAUTH_UNSUPPORTED_GRANT_TYPE', 'only urn:ietf:params:oauth:grant-type:token-exchange is supported');
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
    // RFC 8693 §2.1 / RFC 8707: tokens are only issued for this broker (its gateway included).
    for (const target of [p.audience, p.resource]) {
      if (target !== undefined && !this.#o.acceptedTargets.includes(target.replace(/\/$/, ''))) {
        throw new OAuthError('OAUTH_INVALID_TARGET', 'tokens are only issued for this broker; audience/resource names another service');
      }
    }
    // DPoP first: a bad proof is refused before any token is looked at (RFC 9449 §5).
    const dpop = req.dpop === undefined ? undefined : await this.#o.dpop.verify({ proof: req.dpop, method: 'POST', url: req.url }, badDpop);

    if (p.subject_token_type === TOKEN_TYPE.accessToken) {
      if (p.actor_token === undefined) return this.#refresh(p.subject_token, p.authorization_details, dpop?.jkt);
      return this.#delegate(
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
      const request = this.#details(p.authorization_details);
      const { agent, proof } = await this.#agentFrom(() => this.#x509Proof(p.subject_token as string, req.peerCertificates));
      return this.#open(agent, proof, request, undefined, dpop?.jkt);
    }
    if (p.subject_token_type !== TOKEN_TYPE.jwt && p.subject_token_type !== TOKEN_TYPE.idToken) {
      throw bad('unsupported subject_token_type');
    }
    const request = this.#details(p.authorization_details);
    if (p.actor_token === undefined) {
      if (p.subject_token_type !== TOKEN_TYPE.jwt) throw bad('an agent identity proof has subject_token_type jwt');
      const { agent, proof } = await this.#agentFromProof(p.subject_token);
      return this.#open(agent, proof, request, undefined, dpop?.jkt);
    }
    const human = await this.#human(p.subject_token);
    const { agent, proof } = await this.#agentFromProof(p.actor_token);
    return this.#open(agent, proof, request, human, dpop?.jkt);
  }

  #details(raw: string | undefined): MandateRequest {
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
    const request = this.#o.mandates.parseRequest(parsed[0]);
    if (request.tools.length > this.#o.maxGrantsPerMandate) {
      throw tooLarge(`authorization_details asks for ${request.tools.length} tool grants; the limit is ${this.#o.maxGrantsPerMandate}`);
    }
    return request;
  }

  /** Verifies an identity proof and finds the registered, active agent bound to it. */
  #agentFromProof(token: string): Promise<{ agent: Agent; proof: VerifiedProof }> {
    return this.#agentFrom(() => this.#o.proofs.verify(token));
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

  async #agentFrom(verify: () => VerifiedProof | Promise<VerifiedProof>): Promise<{ agent: Agent; proof: VerifiedProof }> {
    let proof: VerifiedProof;
    try {
      proof = await verify();
    } catch (err) {
      // Unauthenticated requests are counted by exchange(); after a verified subject token this is part of its story.
      if (attempt.getStore()?.authenticated !== false || this.#o.refusals === undefined) {
        await this.#auditIdentity('identity.rejected', undefined, { reason: (err as Error).message });
      }
      throw err;
    }
    markAuthenticated();
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
  async #human(token: string): Promise<string> {
    const issuer = this.#o.humanIssuer;
    if (issuer === undefined) throw badToken('no human issuer is configured for on-behalf-of exchanges');
    const { payload } = await verifyIssuerToken(token, issuer, this.#o.clock, this.#o.leewaySeconds, 'human token');
    markAuthenticated();
    const sub = payload.sub as string;
    const human = await this.#o.principals.get(sub);
    if (human === undefined || human.actorType !== 'human' || human.status !== 'active') {
      throw badToken(`the on-behalf-of subject "${sub}" is not an active human principal`);
    }
    return sub;
  }

  async #open(agent: Agent, proof: VerifiedProof, request: MandateRequest, onBehalfOf: string | undefined, jkt: string | undefined) {
    this.#requireDpop(agent, request.environment, jkt);
    const mandate = this.#o.mandates.prepareOpen(agent, request, onBehalfOf);
    // Checked before anything is recorded: a refused token leaves no mandate behind.
    const mint = this.#mintInput(mandate, [agent.principal.id], jkt);
    // Sign while the mandate's audit event and row reach the disk; the token leaves only after both.
    return this.#issue(
      mandate,
      [agent.principal.id],
      mint,
      { proofId: proof.proofId },
      Promise.all([
        this.#verified(agent, proof, mandate.id),
        this.#o.mandates.commitOpen(mandate, { proofId: proof.proofId, identity: describe(proof) }),
      ]),
    );
  }

  async #refresh(token: string, rawDetails: string | undefined, jkt: string | undefined): Promise<TokenResponse> {
    if (rawDetails !== undefined)
      throw new OAuthError('OAUTH_INVALID_AUTHORIZATION_DETAILS', 'a refresh keeps its mandate; omit authorization_details');
    const current = await this.#verifiedSubject(token);
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
    parentToken: string,
    actorProof: string,
    request: MandateRequest,
    jkt: string | undefined,
    subjectProof: string | undefined,
    url: string,
  ): Promise<TokenResponse> {
    const parent = await this.#verifiedSubject(parentToken);
    await this.#possession(parentToken, parent.claims.cnf?.jkt, jkt, subjectProof, url);
    const { agent: receiver, proof } = await this.#agentFromProof(actorProof).catch((err: unknown) => {
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
    return this.#issue(
      child,
      agents,
      mint,
      { parentMandateId: parent.mandate.id },
      Promise.all([
        this.#verified(receiver, proof, child.id),
        this.#o.mandates.commitDelegation(child, parent.mandate, { proofId: proof.proofId, identity: describe(proof) }),
      ]),
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
  async #verifiedSubject(token: string) {
    try {
      const claims = await this.#o.verifier.verifyToken(token);
      markAuthenticated();
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
  #mintInput(mandate: Mandate, agents: readonly string[], jkt: string | undefined): MintInput {
    const nowS = Math.floor(this.#o.clock.now() / 1000);
    const exp = Math.min(nowS + this.#o.tokenTtlSeconds, Math.floor(mandate.expiresAt / 1000));
    if (exp <= nowS) throw badToken('the mandate expires too soon to issue a token');
    const subject = mandate.onBehalfOf ?? agents[0] ?? mandate.agentId;
    const act = actChain(agents, subject);
    const input: MintInput = {
      sub: subject,
      clientId: mandate.agentId,
      mandateId: mandate.id,
      details: grantedDetails(mandate),
      ...(act === undefined ? {} : { act }),
      ...(jkt === undefined ? {} : { jkt }),
      exp,
    };
    const size = this.#o.tokens.measure(input);
    if (size > this.#o.maxAccessTokenBytes) {
      throw tooLarge(`the access token for this mandate would be ${size} bytes; the limit is ${this.#o.maxAccessTokenBytes}`);
    }
    return input;
  }

  async #issue(
    mandate: Mandate,
    agents: readonly string[],
    input: MintInput,
    data: Record<string, unknown>,
    recorded: Promise<unknown> = Promise.resolve(),
  ): Promise<TokenResponse> {
    // Awaited below; this branch only keeps an early throw from leaving it unhandled.
    recorded.catch(() => {});
    const nowS = Math.floor(this.#o.clock.now() / 1000);
    const { token, claims } = await this.#o.tokens.mint(input);
    // `measure` is exact; this guard only keeps a future divergence from letting an oversized token out.
    if (token.length > this.#o.maxAccessTokenBytes) {
      throw tooLarge(`the access token for this mandate is ${token.length} bytes; the limit is ${this.#o.maxAccessTokenBytes}`);
    }
    const actors: AuditActor[] = [
      ...(mandate.onBehalfOf === undefined ? [] : [{ type: 'human' as const, id: mandate.onBehalfOf }]),
      ...agents.map((id) => ({ type: 'agent' as const, id })),
    ];
    const issued = this.#o.audit?.append({
      type: 'token.issued',
      actors,
      mandateId: mandate.id,
      environment: mandate.environment,
      data: { ...data, tokenId: claims.jti, exp: input.exp, dpopBound: input.jkt !== undefined },
    });
    await Promise.all([recorded, issued]);
    return {
      access_token: token,
      issued_token_type: TOKEN_TYPE.accessToken,
      token_type: input.jkt === undefined ? 'Bearer' : 'DPoP',
      expires_in: input.exp - nowS,
      authorization_details: [input.details],
    };
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
