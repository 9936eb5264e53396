// DEVELOPMENT ONLY (demo mode): the local operator issuer — discovery, JWKS, and an OAuth 2.0
// authorization code flow with PKCE (RFC 7636) so the console signs in exactly as it would against
// a real identity provider. The "login" is a page listing the seeded humans: anyone who can reach
// it can act as an administrator, which is why it only exists in demo mode.
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { publicUrl } from '../../broker.js';
import { OAuthError } from '../../errors/index.js';
import { DEV_ISSUER_PATH, type DevIssuer } from '../../identity/dev-issuer.js';
import type { Principal } from '../../principals/principal.js';
import type { AppContext } from '../app.js';
import { PUBLIC } from '../route-access.js';
import { SIGN_IN_CALLBACK_PATH } from './authorize.js';
import { CONSOLE_CALLBACK_PATH } from './console.js';

const authorizeQuery = z.object({
  response_type: z.literal('code'),
  client_id: z.string().min(1).max(255),
  redirect_uri: z.string().min(1).max(2048),
  state: z.string().max(1024).optional(),
  nonce: z.string().max(1024).optional(),
  scope: z.string().max(1024).optional(),
  code_challenge: z.string().min(1).max(128),
  code_challenge_method: z.literal('S256'),
  user: z.string().max(255).optional(),
});

const tokenBody = z.object({
  grant_type: z.string(),
  code: z.string().min(1).max(512),
  redirect_uri: z.string().min(1).max(2048),
  client_id: z.string().min(1).max(255),
  code_verifier: z.string().min(1).max(256),
});

const FORM = 'application/x-www-form-urlencoded';

export function registerDevIssuerRoutes(app: FastifyInstance, issuer: DevIssuer, { broker }: AppContext): void {
  const base = issuer.issuer;
  const clientId = broker.config.console.clientId;
  const redirectUri = `${publicUrl(broker.config)}${CONSOLE_CALLBACK_PATH}`;
  // The broker's own sign-in for the consent page of interactive clients (src/http/routes/authorize.ts).
  const consentSignIn = `${publicUrl(broker.config)}${SIGN_IN_CALLBACK_PATH}`;

  app.get(`${DEV_ISSUER_PATH}/.well-known/openid-configuration`, PUBLIC, async () => ({
    issuer: base,
    jwks_uri: `${base}/jwks`,
    authorization_endpoint: `${base}/authorize`,
    token_endpoint: `${base}/token`,
    id_token_signing_alg_values_supported: ['EdDSA'],
    subject_types_supported: ['public'],
    response_types_supported: ['code'],
    grant_types_supported: ['authorization_code'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['none'],
    authorization_response_iss_parameter_supported: true,
    scopes_supported: ['openid', 'profile'],
    'x-development-only': true,
  }));
  app.get(`${DEV_ISSUER_PATH}/jwks`, PUBLIC, async () => issuer.jwks);

  app.get(`${DEV_ISSUER_PATH}/authorize`, PUBLIC, async (req, reply) => {
    const parsed = authorizeQuery.safeParse(req.query);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return page(
        reply,
        400,
        'Invalid sign-in request',
        `<p role="alert">${esc(`${issue?.path.join('.') ?? ''}: ${issue?.message ?? ''}`)}</p>`,
      );
    }
    const q = parsed.data;
    // Never redirect to an unregistered client or URI (RFC 6749 §4.1.2.1): show the error instead.
    if (q.client_id !== clientId || (q.redirect_uri !== redirectUri && q.redirect_uri !== consentSignIn)) {
      return page(
        reply,
        400,
        'Unknown client',
        `<p role="alert">client_id or redirect_uri is not the registered console (${esc(redirectUri)}).</p>`,
      );
    }
    const humans = (await broker.principals.list({ actorType: 'human', limit: 100 })).filter((p) => p.status === 'active');
    if (q.user !== undefined) {
      const human = humans.find((h) => h.id === q.user);
      if (human === undefined) return page(reply, 400, 'Unknown user', `<p role="alert">No active seeded human "${esc(q.user)}".</p>`);
      const code = issuer.issueCode({
        clientId: q.client_id,
        redirectUri: q.redirect_uri,
        codeChallenge: q.code_challenge,
        ...(q.nonce === undefined ? {} : { nonce: q.nonce }),
        ...(q.scope === undefined ? {} : { scope: q.scope }),
        human: { sub: human.id, roles: [...human.roles], name: human.displayName },
      });
      const target = new URL(q.redirect_uri);
      target.searchParams.set('code', code);
      if (q.state !== undefined) target.searchParams.set('state', q.state);
      target.searchParams.set('iss', base);
      return reply.header('cache-control', 'no-store').redirect(target.toString(), 303);
    }
    const hidden = Object.entries(q)
      .filter(([k, v]) => k !== 'user' && v !== undefined)
      .map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(String(v))}">`)
      .join('');
    const buttons = humans.map((h) => humanButton(h)).join('');
    return page(
      reply,
      200,
      'Sign in to Mandate (development issuer)',
      `<p class="warn"><strong>Development only.</strong> This issuer signs tokens for any seeded human without a password.</p>
<form method="get" action="${esc(`${DEV_ISSUER_PATH}/authorize`)}">${hidden}
<fieldset><legend>Continue as</legend>${buttons || '<p>No seeded humans.</p>'}</fieldset></form>`,
    );
  });

  // Form bodies only on this route (RFC 6749 §4.1.3); registered in its own context so the token
  // endpoint of the broker can install its own parser without a clash.
  app.register(async (scope) => {
    if (!scope.hasContentTypeParser(FORM)) {
      scope.addContentTypeParser(FORM, { parseAs: 'string' }, (_req, body, done) => {
        done(null, Object.fromEntries(new URLSearchParams(body as string)));
      });
    }
    scope.post(`${DEV_ISSUER_PATH}/token`, { config: { access: 'client' } }, async (req, reply) => {
      const parsed = tokenBody.safeParse(req.body);
      if (!parsed.success) throw new OAuthError('OAUTH_INVALID_REQUEST', 'code, redirect_uri, client_id and code_verifier are required');
      const b = parsed.data;
      if (b.grant_type !== 'authorization_code') throw new OAuthError('OAUTH_UNSUPPORTED_GRANT_TYPE');
      if (b.client_id !== clientId) throw new OAuthError('OAUTH_INVALID_CLIENT', 'unknown client_id');
      const tokens = await issuer.redeemCode({
        code: b.code,
        clientId: b.client_id,
        redirectUri: b.redirect_uri,
        codeVerifier: b.code_verifier,
      });
      return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(tokens);
    });
  });
}

function humanButton(h: Principal): string {
  return `<button type="submit" name="user" value="${esc(h.id)}"><span class="name">${esc(h.displayName)}</span> <span class="roles">${esc(h.id)} · ${esc(h.roles.join(', ') || 'no roles')}</span></button>`;
}

function esc(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(reply: FastifyReply, status: number, title: string, body: string): FastifyReply {
  return reply
    .code(status)
    .type('text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
    .send(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${esc(title)}</title><style>
body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#1b1f24}
.warn{background:#fff4d6;border:1px solid #e0b100;padding:.5rem .75rem;border-radius:6px}
fieldset{border:1px solid #ccd;border-radius:8px;padding:1rem;display:grid;gap:.5rem}
button{display:flex;justify-content:space-between;gap:1rem;width:100%;padding:.75rem 1rem;font:inherit;border:1px solid #889;border-radius:6px;background:#f6f8fa;cursor:pointer;text-align:left}
button:hover,button:focus-visible{background:#e7efff;outline:3px solid #2f6feb;outline-offset:1px}
.roles{color:#57606a;font-size:.9em}
</style></head><body><main><h1>${esc(title)}</h1>${body}</main></body></html>`);
}
