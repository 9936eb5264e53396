// Interactive clients (MCP Inspector, desktop assistants, IDEs): the OAuth 2.1 authorization code
// flow with PKCE, where the consent page *is* a mandate request (docs/clients-interactive.md).
//
//   GET  /oauth/authorize           validates client and redirect URI (an unvalidated redirect URI is
//                                   never redirected to: an error page instead, RFC 6749 §4.1.2.1),
//                                   then PKCE S256, response_type, resource; binds the request to this
//                                   browser (cookie) and sends the human to sign in at the operator
//                                   issuer (the development issuer in demo mode)
//   GET  /oauth/authorize/callback  the operator issuer's answer: the broker redeems it (its own PKCE)
//                                   and verifies the operator token; the human must be an active human principal
//   GET  /oauth/consent             the consent form: agent principal, purpose, task template, tools and
//                                   limits, environment, lifetime — prefilled from a task template
//   POST /oauth/consent             approve (validated like any mandate request: what the agent's
//                                   ceiling and profile would not grant is refused on the page) or deny;
//                                   then the code (or access_denied) goes to the client's redirect URI, with `iss` (RFC 9207)
//   POST /oauth/register            RFC 7591 dynamic registration of public clients
//
// The human grants to an *agent principal they own* that an operator marked for interactive use
// (`attributes.interactive: true`): org policy, ceilings, budgets and approvals attach to that agent,
// the mandate is on the human's behalf, and the OAuth client is recorded with the mandate's evidence.
// No session outlives one authorization: every authorization signs the human in again.
//
// CSRF: the browser binding is a random secret in an HttpOnly SameSite=Lax cookie scoped to /oauth/
// (its SHA-256 is stored with the request); the consent form carries a token derived from it, so a
// page elsewhere can neither submit the form nor use a request started in another browser.
import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Agent } from '../../agents/agent.js';
import { DEFAULT_TEMPLATE } from '../../agents/template.js';
import { publicUrl } from '../../broker.js';
import { type ErrorCode, errorRegistry, MandateError, OAuthError } from '../../errors/index.js';
import { requestFromTemplate } from '../../mandates/from-template.js';
import type { MandateRequest } from '../../mandates/mandate.js';
import { type AuthorizationRequest, AuthorizationRequests, CODE_CHALLENGE, randomSecret, sha256 } from '../../oauth/authorization-code.js';
import type { AppContext } from '../app.js';

export const INTERACTIVE_PATHS = {
  authorize: '/oauth/authorize',
  signInCallback: '/oauth/authorize/callback',
  consent: '/oauth/consent',
  register: '/oauth/register',
} as const;
export const SIGN_IN_CALLBACK_PATH = INTERACTIVE_PATHS.signInCallback;

const FORM = 'application/x-www-form-urlencoded';
const COOKIE_PREFIX = 'mandate_authz_';
/** Addresses remembered per limiter (a flood from more starts the windows over). */
const REGISTRATION_SOURCES = 10_000;

const cookieName = (a: Pick<AuthorizationRequest, 'id'>) => `${COOKIE_PREFIX}${sha256(a.id).slice(0, 16)}`;

function cookies(req: FastifyRequest): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  return out;
}

/** One value per parameter (RFC 6749 §3.1: parameters must not be repeated); undefined when absent. */
function single(query: Record<string, unknown>, name: string): string | undefined | null {
  const v = query[name];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : null;
}

const equal = (a: string, b: string) => a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

export function registerInteractiveRoutes(app: FastifyInstance, { broker }: AppContext): void {
  const settings = broker.config.interactiveClients;
  const id = broker.identity;
  const base = id.issuer;
  const secure = publicUrl(broker.config).startsWith('https:');
  const operatorIssuer = broker.config.operators.issuer?.issuer ?? broker.devIssuer?.issuer;
  const acceptedResources = [base, `${base}/mcp`];
  const defaultResource = `${base}/mcp`;
  const signInRedirect = `${base}${INTERACTIVE_PATHS.signInCallback}`;

  if (!settings.enabled) {
    // RFC 6749 §4.1.2.1: no client can be validated, so never a redirect.
    app.get(
      INTERACTIVE_PATHS.authorize,
      { config: { access: 'public', doc: { summary: 'Authorization endpoint (interactive clients are disabled)' } } },
      async (_req, reply) => {
        reply.header('cache-control', 'no-store');
        throw new OAuthError(
          'OAUTH_UNSUPPORTED_RESPONSE_TYPE',
          'interactive clients are disabled on this server (interactiveClients.enabled)',
        );
      },
    );
    return;
  }

  /** The authorization response (code or error) at the client's validated redirect URI, with `iss` (RFC 9207). */
  const respond = (reply: FastifyReply, redirectUri: string, state: string | undefined, params: Record<string, string>) => {
    const target = new URL(redirectUri);
    for (const [k, v] of Object.entries(params)) target.searchParams.set(k, v);
    if (state !== undefined) target.searchParams.set('state', state);
    target.searchParams.set('iss', base);
    return reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer').redirect(target.toString(), 303);
  };
  const errorParams = (code: ErrorCode, description: string): Record<string, string> => {
    const spec = errorRegistry[code];
    return { error: ('oauthError' in spec ? spec.oauthError : undefined) ?? 'server_error', error_description: description };
  };

  // ── the operator sign-in the consent page relies on ──
  interface SignInEndpoints {
    readonly authorization: string;
    redeem(code: string, verifier: string): Promise<string>;
  }
  let discovered: Promise<SignInEndpoints> | undefined;
  const signIn = (): Promise<SignInEndpoints> => {
    if (operatorIssuer === undefined) return Promise.reject(new MandateError('ERR_TRUST_UNAVAILABLE', 'no operator issuer is configured'));
    const dev = broker.devIssuer;
    if (dev !== undefined && broker.config.operators.issuer === undefined) {
      // Demo mode's default issuer: its own code redemption in-process (the checks of its token
      // endpoint), so a demo broker need not reach its own public URL. A configured issuer — the
      // development one included — goes through discovery and its token endpoint below.
      return Promise.resolve({
        authorization: `${dev.issuer}/authorize`,
        redeem: async (code, verifier) =>
          (await dev.redeemCode({ code, clientId: broker.config.console.clientId, redirectUri: signInRedirect, codeVerifier: verifier }))
            .access_token,
      });
    }
    discovered ??= (async () => {
      const res = await fetch(`${(operatorIssuer as string).replace(/\/$/, '')}/.well-known/openid-configuration`, {
        signal: AbortSignal.timeout(5000),
      });
      if (!res.ok) throw new MandateError('ERR_TRUST_UNAVAILABLE', `operator issuer discovery answered ${res.status}`);
      const meta = (await res.json()) as { issuer?: string; authorization_endpoint?: string; token_endpoint?: string };
      // OpenID Connect Discovery §4.3: the document must name the issuer it was fetched for.
      if (meta.issuer !== operatorIssuer) throw new MandateError('ERR_TRUST_UNAVAILABLE', 'operator issuer discovery names another issuer');
      if (typeof meta.authorization_endpoint !== 'string' || typeof meta.token_endpoint !== 'string') {
        throw new MandateError('ERR_TRUST_UNAVAILABLE', 'operator issuer discovery names no authorization or token endpoint');
      }
      const tokenEndpoint = meta.token_endpoint;
      return {
        authorization: meta.authorization_endpoint,
        redeem: async (code: string, verifier: string) => {
          const body = new URLSearchParams({
            grant_type: 'authorization_code',
            code,
            redirect_uri: signInRedirect,
            client_id: broker.config.console.clientId,
            code_verifier: verifier,
          });
          const r = await fetch(tokenEndpoint, { method: 'POST', body, signal: AbortSignal.timeout(5000) });
          const json = (await r.json().catch(() => ({}))) as { access_token?: unknown };
          if (!r.ok || typeof json.access_token !== 'string')
            throw new OAuthError('OAUTH_ACCESS_DENIED', 'the operator issuer refused the sign-in');
          return json.access_token;
        },
      };
    })().catch((err: unknown) => {
      discovered = undefined;
      throw err;
    });
    return discovered;
  };

  /** The live request a browser presents, bound to its cookie (undefined: show an error page). */
  const bound = async (req: FastifyRequest, requestId: string | undefined | null) => {
    if (typeof requestId !== 'string') return undefined;
    const a = await id.authorizationRequests.get(requestId);
    if (a === undefined) return undefined;
    const secret = cookies(req).get(cookieName(a));
    if (!AuthorizationRequests.boundTo(a, secret)) return undefined;
    return { a, secret: secret as string };
  };
  const lost = (reply: FastifyReply) =>
    page(
      reply,
      400,
      'This authorization request is not valid here',
      '<p role="alert">It expired, was already decided, or was started in another browser. Start again from your application.</p>',
    );

  /**
   * A fixed-window counter per client address (per replica, like every rate limit): true when
   * `source` is over `max` in the current `server.rateLimit.windowMs` window.
   */
  const limiter = (max: number) => {
    const windows = new Map<string, { count: number; until: number }>();
    return (req: FastifyRequest, reply: FastifyReply): boolean => {
      const limits = broker.config.server.rateLimit;
      if (!limits.enabled) return false;
      const now = broker.clock.now();
      const source = req.ip ?? '';
      let entry = windows.get(source);
      if (entry === undefined || entry.until <= now) {
        if (windows.size >= REGISTRATION_SOURCES) windows.clear();
        entry = { count: 0, until: now + limits.windowMs };
        windows.set(source, entry);
      }
      entry.count += 1;
      if (entry.count <= max) return false;
      reply.header('retry-after', String(Math.max(1, Math.ceil((entry.until - now) / 1000))));
      return true;
    };
  };
  const authorizeLimit = limiter(settings.authorizePerWindow);
  const registrationLimit = limiter(settings.registration.perWindow);

  /** Agents the human may grant to: active, owned by them, marked for interactive clients by an operator. */
  const eligibleAgents = async (human: string): Promise<Agent[]> =>
    (await broker.agents.list({ limit: 1000 })).filter(
      (a) => a.principal.status === 'active' && a.principal.owner === human && a.principal.attributes.interactive === true,
    );

  app.get(
    INTERACTIVE_PATHS.authorize,
    { config: { access: 'public', doc: { summary: 'Authorization endpoint (authorization code + PKCE S256, RFC 9207 iss)' } } },
    async (req, reply) => {
      if (authorizeLimit(req, reply)) {
        return page(reply, 429, 'Too many requests', '<p role="alert">Too many authorization requests from this address; retry later.</p>');
      }
      const q = req.query as Record<string, unknown>;
      const clientId = single(q, 'client_id');
      if (typeof clientId !== 'string' || clientId === '' || clientId.length > 2048) {
        return page(reply, 400, 'Invalid authorization request', '<p role="alert">client_id is missing, repeated or too long.</p>');
      }
      let client: Awaited<ReturnType<typeof id.oauthClients.resolve>>;
      try {
        client = await id.oauthClients.resolve(clientId);
      } catch (err) {
        if (!(err instanceof OAuthError)) throw err;
        return page(reply, 400, 'Unknown client', `<p role="alert">${esc(err.message)}</p><p>Client: <code>${esc(clientId)}</code></p>`);
      }
      const requested = single(q, 'redirect_uri');
      // OAuth 2.1 §4.1.1: may be omitted when the client has exactly one.
      const redirectUri = requested === undefined && client.redirectUris.length === 1 ? client.redirectUris[0] : requested;
      if (typeof redirectUri !== 'string' || !client.redirectUris.includes(redirectUri)) {
        return page(
          reply,
          400,
          'Invalid redirect URI',
          `<p role="alert">redirect_uri is missing or is not registered for ${esc(client.clientName)}; this server does not redirect to it.</p>`,
        );
      }
      const stateValue = single(q, 'state');
      const state = typeof stateValue === 'string' ? stateValue : undefined;
      const fail = (code: ErrorCode, description: string) => respond(reply, redirectUri, state, errorParams(code, description));
      for (const [k, v] of Object.entries(q)) if (typeof v !== 'string') return fail('OAUTH_INVALID_REQUEST', `parameter ${k} is repeated`);
      if (state !== undefined && state.length > 1024) return fail('OAUTH_INVALID_REQUEST', 'state is longer than 1024 characters');
      if (q.response_type !== 'code') return fail('OAUTH_UNSUPPORTED_RESPONSE_TYPE', 'response_type must be code');
      if (q.code_challenge === undefined) return fail('OAUTH_INVALID_REQUEST', 'PKCE is required: send code_challenge (S256)');
      if (q.code_challenge_method !== 'S256') return fail('OAUTH_INVALID_REQUEST', 'code_challenge_method must be S256');
      if (!CODE_CHALLENGE.test(q.code_challenge as string)) return fail('OAUTH_INVALID_REQUEST', 'code_challenge is not an S256 challenge');
      const resource = (q.resource as string | undefined) ?? defaultResource;
      if (!acceptedResources.includes(resource.replace(/\/$/, ''))) {
        return fail('OAUTH_INVALID_TARGET', 'tokens are only issued for this broker and its MCP endpoint');
      }
      const scope = q.scope as string | undefined;
      if (scope !== undefined && scope.length > 1024) return fail('OAUTH_INVALID_SCOPE', 'scope is longer than 1024 characters');
      let endpoints: SignInEndpoints;
      try {
        endpoints = await signIn();
      } catch {
        return fail('OAUTH_ACCESS_DENIED', 'humans cannot sign in here: the operator issuer is unavailable');
      }
      const browserSecret = randomSecret();
      const a = await id.authorizationRequests.create({
        clientId: client.clientId,
        redirectUri,
        codeChallenge: q.code_challenge as string,
        state,
        resource: resource.replace(/\/$/, ''),
        scope,
        browserSecret,
      });
      const cookie = [
        `${cookieName(a)}=${browserSecret}`,
        'Path=/oauth/',
        `Max-Age=${settings.consentTtlSeconds}`,
        'HttpOnly',
        'SameSite=Lax',
        ...(secure ? ['Secure'] : []),
      ].join('; ');
      const target = new URL(endpoints.authorization);
      target.searchParams.set('response_type', 'code');
      target.searchParams.set('client_id', broker.config.console.clientId);
      target.searchParams.set('redirect_uri', signInRedirect);
      target.searchParams.set('scope', broker.config.console.scope);
      target.searchParams.set('state', a.id);
      target.searchParams.set('code_challenge', sha256(a.signInVerifier));
      target.searchParams.set('code_challenge_method', 'S256');
      if (broker.config.console.resource !== undefined) target.searchParams.set('resource', broker.config.console.resource);
      return reply.header('set-cookie', cookie).header('cache-control', 'no-store').redirect(target.toString(), 303);
    },
  );

  app.get(
    INTERACTIVE_PATHS.signInCallback,
    { config: { access: 'public', doc: { summary: 'Operator sign-in callback of the consent flow' } } },
    async (req, reply) => {
      const q = req.query as Record<string, unknown>;
      const found = await bound(req, single(q, 'state'));
      if (found === undefined || found.a.status !== 'pending') return lost(reply);
      const { a } = found;
      const deny = async (description: string) => {
        await id.authorizationRequests.deny(a.id);
        return respond(reply, a.redirectUri, a.state, errorParams('OAUTH_ACCESS_DENIED', description));
      };
      if (q.iss !== undefined && q.iss !== operatorIssuer) return deny('the sign-in answer came from another issuer');
      const code = single(q, 'code');
      if (typeof code !== 'string' || code === '') return deny('the human did not sign in');
      let human: string;
      try {
        const endpoints = await signIn();
        const token = await endpoints.redeem(code, a.signInVerifier);
        human = (await broker.authenticateOperator(`Bearer ${token}`)).subject;
      } catch (err) {
        // A refused code, an unreachable issuer or a token the admin API would not accept: the
        // human is not signed in. Logged for the operator; the client only learns access_denied.
        req.log.warn({ err }, 'interactive client sign-in failed');
        return deny('the sign-in could not be verified');
      }
      const principal = await broker.principals.get(human);
      if (principal === undefined || principal.actorType !== 'human' || principal.status !== 'active') {
        return deny(`"${human}" is not an active human principal of this broker`);
      }
      if (!(await id.authorizationRequests.signedIn(a.id, human))) return lost(reply);
      return reply.header('cache-control', 'no-store').redirect(`${INTERACTIVE_PATHS.consent}?request=${encodeURIComponent(a.id)}`, 303);
    },
  );

  /** Renders the consent form for `agent` with the request's values (prefilled or as submitted). */
  const consentForm = async (
    reply: FastifyReply,
    a: AuthorizationRequest,
    secret: string,
    agents: readonly Agent[],
    agent: Agent,
    values: FormValues,
    problem?: string,
  ) => {
    const client = await id.oauthClients.resolve(a.clientId).catch(() => undefined);
    const name = client?.clientName ?? a.clientId;
    const redirectHost = new URL(a.redirectUri).host;
    const link = (agentId: string, template?: string) =>
      `${INTERACTIVE_PATHS.consent}?request=${encodeURIComponent(a.id)}&agent=${encodeURIComponent(agentId)}${template === undefined ? '' : `&template=${encodeURIComponent(template)}`}`;
    const agentLinks =
      agents.length < 2
        ? ''
        : `<p>Grant to another agent: ${agents
            .filter((x) => x !== agent)
            .map((x) => `<a href="${esc(link(x.principal.id))}">${esc(x.principal.displayName)}</a>`)
            .join(', ')}</p>`;
    const templates = Object.keys(agent.templates);
    const templateLinks =
      templates.length === 0
        ? ''
        : `<p>Task templates: ${templates.map((t) => `<a href="${esc(link(agent.principal.id, t))}">${esc(t)}</a>`).join(', ')}</p>`;
    const body = `
<p>The application <strong>${esc(name)}</strong> asks to act for you.</p>
<dl>
<dt>Client</dt><dd><code>${esc(a.clientId)}</code>${client?.source === 'metadata-document' ? ' (metadata document)' : ' (registered dynamically)'}</dd>
<dt>Sends the result to</dt><dd><code>${esc(redirectHost)}</code></dd>
<dt>You</dt><dd>${esc(a.human ?? '')}</dd>
<dt>Acting as agent</dt><dd><strong>${esc(agent.principal.displayName)}</strong> (<code>${esc(agent.principal.id)}</code>, owner ${esc(agent.principal.owner ?? '')}, environment ${esc(agent.principal.environment ?? 'any')})</dd>
</dl>
${agentLinks}${templateLinks}
${problem === undefined ? '' : `<p class="problem" role="alert"><strong>Not granted:</strong> ${esc(problem)}</p>`}
<form method="post" action="${esc(INTERACTIVE_PATHS.consent)}">
<input type="hidden" name="request" value="${esc(a.id)}">
<input type="hidden" name="csrf" value="${esc(AuthorizationRequests.csrfToken(a, secret))}">
<input type="hidden" name="agent" value="${esc(agent.principal.id)}">
<label>Purpose <textarea name="purpose" rows="2" required maxlength="2000">${esc(values.purpose)}</textarea></label>
<label>Task type <input name="taskType" value="${esc(values.taskType)}" required maxlength="128"></label>
<label>Environment <input name="environment" value="${esc(values.environment)}" required maxlength="64"></label>
<label>Lifetime (seconds, at most ${Math.min(agent.maxTtlSeconds, broker.config.identity.maxMandateTtlSeconds)}) <input name="ttlSeconds" type="number" min="10" value="${esc(values.ttlSeconds)}" required></label>
<label>Tools and limits (mandate scope: tool grants with argument constraints and budgets) <textarea name="tools" rows="10" required>${esc(values.tools)}</textarea></label>
<details><summary>What this agent may ever hold (its ceiling)</summary><pre>${esc(JSON.stringify(agent.ceiling.tools, null, 2))}</pre></details>
<div class="buttons"><button type="submit" name="decision" value="approve">Grant this mandate</button>
<button type="submit" name="decision" value="deny" formnovalidate>Deny</button></div>
</form>`;
    return page(reply, problem === undefined ? 200 : 400, `Grant a mandate to ${name}?`, body, new URL(a.redirectUri).origin);
  };

  app.get(
    INTERACTIVE_PATHS.consent,
    { config: { access: 'public', doc: { summary: 'Consent page of interactive clients: the mandate request' } } },
    async (req, reply) => {
      const q = req.query as Record<string, unknown>;
      const found = await bound(req, single(q, 'request'));
      if (found === undefined || found.a.status !== 'signed_in') return lost(reply);
      const { a, secret } = found;
      const agents = await eligibleAgents(a.human ?? '');
      if (agents.length === 0) return noAgent(reply, a, secret);
      const wanted = single(q, 'agent');
      const agent = agents.find((x) => x.principal.id === wanted) ?? (agents[0] as Agent);
      const template = single(q, 'template');
      const hinted = (a.scope ?? '').split(' ').find((s) => Object.hasOwn(agent.templates, s));
      const name = typeof template === 'string' && Object.hasOwn(agent.templates, template) ? template : (hinted ?? DEFAULT_TEMPLATE);
      const t = Object.hasOwn(agent.templates, name) ? agent.templates[name] : undefined;
      const fromTemplate = t === undefined ? undefined : requestFromTemplate(t, agent.principal.environment);
      return consentForm(reply, a, secret, agents, agent, valuesOf(fromTemplate, agent, broker.config.identity.maxMandateTtlSeconds));
    },
  );

  const noAgent = (reply: FastifyReply, a: AuthorizationRequest, secret: string) =>
    page(
      reply,
      403,
      'No agent to grant to',
      `<p role="alert">You own no active agent that an operator has enabled for interactive clients (<code>attributes.interactive: true</code>), so nothing can be granted to this application.</p>
<form method="post" action="${esc(INTERACTIVE_PATHS.consent)}"><input type="hidden" name="request" value="${esc(a.id)}">
<input type="hidden" name="csrf" value="${esc(AuthorizationRequests.csrfToken(a, secret))}">
<button type="submit" name="decision" value="deny">Back to the application</button></form>`,
      new URL(a.redirectUri).origin,
    );

  app.register(async (scope) => {
    if (!scope.hasContentTypeParser(FORM)) {
      scope.addContentTypeParser(FORM, { parseAs: 'string' }, (_req, body, done) => {
        const params = new URLSearchParams(body as string);
        const out: Record<string, string> = {};
        for (const key of new Set(params.keys())) {
          if (params.getAll(key).length > 1)
            return done(new OAuthError('OAUTH_INVALID_REQUEST', `parameter ${key} is repeated`), undefined);
          out[key] = params.get(key) ?? '';
        }
        done(null, out);
      });
    }

    scope.post(
      INTERACTIVE_PATHS.consent,
      { config: { access: 'public', doc: { summary: 'The human grants (or denies) the mandate on the consent page' } } },
      async (req, reply) => {
        if (!(req.headers['content-type'] ?? '').startsWith(FORM)) return lost(reply);
        const f = (req.body ?? {}) as Record<string, string>;
        const found = await bound(req, f.request);
        if (found === undefined || found.a.status !== 'signed_in') return lost(reply);
        const { a, secret } = found;
        if (typeof f.csrf !== 'string' || !equal(f.csrf, AuthorizationRequests.csrfToken(a, secret))) {
          return page(reply, 403, 'Refused', '<p role="alert">This form was not submitted from the consent page (CSRF check failed).</p>');
        }
        if (f.decision === 'deny') {
          await id.authorizationRequests.deny(a.id);
          await broker.audit.append({
            type: 'consent.denied',
            actors: [{ type: 'human', id: a.human ?? '' }],
            data: { client: a.clientId, consent: a.id },
          });
          return respond(reply, a.redirectUri, a.state, errorParams('OAUTH_ACCESS_DENIED', 'the human denied the request'));
        }
        if (f.decision !== 'approve') return lost(reply);
        const human = a.human ?? '';
        const agents = await eligibleAgents(human);
        const agent = agents.find((x) => x.principal.id === f.agent);
        if (agent === undefined) return noAgent(reply, a, secret);
        const values: FormValues = {
          purpose: f.purpose ?? '',
          taskType: f.taskType ?? '',
          environment: f.environment ?? '',
          ttlSeconds: f.ttlSeconds ?? '',
          tools: f.tools ?? '',
        };
        let request: MandateRequest;
        try {
          request = parseConsent(values, broker.config.identity.maxGrantsPerMandate, (v) => broker.mandates.parseRequest(v));
          // The checks of the token endpoint: the agent's ceiling, task types, environment and lifetime.
          broker.mandates.prepareOpen(agent, request, human);
        } catch (err) {
          if (!(err instanceof MandateError)) throw err;
          return consentForm(reply, a, secret, agents, agent, values, err.message);
        }
        const code = await id.authorizationRequests.approve(a.id, agent.principal.id, request);
        if (code === undefined) return lost(reply);
        await broker.audit.append({
          type: 'consent.granted',
          actors: [
            { type: 'human', id: human },
            { type: 'agent', id: agent.principal.id },
          ],
          environment: request.environment,
          data: { client: a.clientId, consent: a.id, request },
        });
        return respond(reply, a.redirectUri, a.state, { code });
      },
    );
  });

  // ── RFC 7591 dynamic registration (public clients only), with its own per-address limit ──
  app.post(
    INTERACTIVE_PATHS.register,
    { config: { access: 'public', doc: { summary: 'Dynamic client registration (RFC 7591), public clients only' } } },
    async (req, reply) => {
      reply.header('cache-control', 'no-store');
      if (registrationLimit(req, reply)) {
        throw new OAuthError('OAUTH_RATE_LIMITED', 'too many client registrations from this address; retry later');
      }
      if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
        throw new OAuthError('OAUTH_INVALID_CLIENT_METADATA', 'the registration request must be application/json');
      }
      const registered = await id.oauthClients.register(req.body);
      await broker.audit.append({
        type: 'oauth.client_registered',
        actors: [{ type: 'system', id: 'registration-endpoint' }],
        data: { client: registered.client_id, name: registered.client_name, redirectUris: registered.redirect_uris },
      });
      return reply.code(201).send(registered);
    },
  );
}

interface FormValues {
  readonly purpose: string;
  readonly taskType: string;
  readonly environment: string;
  readonly ttlSeconds: string;
  readonly tools: string;
}

/** The form's prefill: a task template's request, else the agent's own environment, its ceiling's tools and an hour. */
function valuesOf(request: MandateRequest | undefined, agent: Agent, brokerMaxTtl: number): FormValues {
  const maxTtl = Math.min(agent.maxTtlSeconds, brokerMaxTtl);
  return {
    purpose: request?.purpose ?? '',
    taskType: request?.taskType ?? agent.taskTypes[0] ?? 'interactive',
    environment: request?.environment ?? agent.principal.environment ?? '',
    ttlSeconds: String(request?.ttlSeconds ?? Math.min(3600, maxTtl)),
    tools: JSON.stringify(request?.tools ?? agent.ceiling.tools.map((g) => ({ tool: g.tool })), null, 2),
  };
}

/** The submitted form as a mandate request (interactive mandates are not delegable). */
function parseConsent(v: FormValues, maxGrants: number, parse: (value: unknown) => MandateRequest): MandateRequest {
  let tools: unknown;
  try {
    tools = JSON.parse(v.tools);
  } catch {
    throw new OAuthError('OAUTH_INVALID_AUTHORIZATION_DETAILS', 'tools is not valid JSON (a list of tool grants)');
  }
  const ttl = Number(v.ttlSeconds);
  const request = parse({
    type: 'mandate',
    purpose: v.purpose.trim(),
    taskType: v.taskType.trim(),
    environment: v.environment.trim(),
    ttlSeconds: Number.isInteger(ttl) ? ttl : v.ttlSeconds,
    tools,
    delegable: false,
  });
  if (request.tools.length > maxGrants) {
    throw new OAuthError('OAUTH_INVALID_AUTHORIZATION_DETAILS', `${request.tools.length} tool grants; the limit is ${maxGrants}`);
  }
  return request;
}

function esc(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * A server-rendered page without script. `formTarget` is the origin the form's POST may redirect to
 * (the client's redirect URI): CSP `form-action` also governs where a form submission is redirected.
 */
function page(reply: FastifyReply, status: number, title: string, body: string, formTarget?: string): FastifyReply {
  const formAction = `'self'${formTarget === undefined ? '' : ` ${formTarget}`}`;
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header(
      'content-security-policy',
      `default-src 'none'; style-src 'unsafe-inline'; form-action ${formAction}; base-uri 'none'; frame-ancestors 'none'`,
    )
    .send(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)}</title><style>
body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:3rem auto;padding:0 1rem;color:#1b1f24}
label{display:grid;gap:.25rem;margin:.75rem 0;font-weight:600}
input,textarea{font:14px/1.4 ui-monospace,monospace;padding:.4rem;border:1px solid #889;border-radius:6px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}dd{margin:0}
.problem{background:#ffebe9;border:1px solid #cf222e;padding:.5rem .75rem;border-radius:6px}
.buttons{display:flex;gap:1rem;margin-top:1rem}
button{padding:.6rem 1.2rem;font:inherit;border:1px solid #889;border-radius:6px;background:#f6f8fa;cursor:pointer}
button[value=approve]{background:#1f883d;color:#fff;border-color:#1a7f37}
pre{background:#f6f8fa;padding:.5rem;overflow:auto}
</style></head><body><main><h1>${esc(title)}</h1>${body}</main></body></html>`);
}
