// OAuth endpoints of the broker as an authorization server: RFC 8414 metadata, JWKS, the token
// endpoint (RFC 8693 token exchange with RFC 9396 authorization_details and RFC 9449 DPoP),
// RFC 7662 introspection and RFC 7009 revocation; plus the mandate lifecycle for agents
// (complete / fail / revoke with their own token) and for operators (admin or the agent's owner).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AuthError, type ErrorCode, MandateError, OAuthError } from '../../errors/index.js';
import type { EndStatus } from '../../mandates/service.js';
import type { VerifiedCaller } from '../../oauth/caller.js';
import { authorizationServerMetadata, OAUTH_PATHS } from '../../oauth/metadata.js';
import { secondsSince } from '../../observability/metrics.js';
import { SPANS, SpanKind } from '../../observability/tracing.js';
import { ADMIN_PREFIX, type AppContext } from '../app.js';
import { peerCertificates } from '../peer-certificates.js';
import { dpopHeader, presentedToken } from '../presented-token.js';
import { requestUri } from '../request-uri.js';
import { INTERACTIVE_PATHS } from './authorize.js';

const FORM = 'application/x-www-form-urlencoded';
export const AGENT_API_PREFIX = '/mandate/v1';

/** RFC 6749 §3.2: parameters must not repeat; values are single strings. */
function parseForm(body: string): Record<string, string> {
  const params = new URLSearchParams(body);
  const out: Record<string, string> = {};
  for (const key of new Set(params.keys())) {
    const values = params.getAll(key);
    if (values.length > 1) throw new OAuthError('OAUTH_INVALID_REQUEST', `parameter ${key} is repeated`);
    out[key] = values[0] ?? '';
  }
  return out;
}

/**
 * RFC 7662 §2.3: a caller of the introspection endpoint whose credentials are missing or refused
 * gets an OAuth error (`invalid_client`, or `insufficient_scope` for an operator without the
 * permission), which the serializer renders with `WWW-Authenticate`; the admin-API codes the route
 * gate throws would not be understood by an OAuth client.
 */
const INTROSPECTION_CALLER_ERRORS: Partial<Record<ErrorCode, ErrorCode>> = {
  ERR_AUTH_MISSING: 'OAUTH_INVALID_CLIENT',
  ERR_AUTH_INVALID_TOKEN: 'OAUTH_INVALID_CLIENT',
  ERR_AUTH_TOKEN_EXPIRED: 'OAUTH_INVALID_CLIENT',
  ERR_FORBIDDEN: 'OAUTH_INSUFFICIENT_SCOPE',
};

/** Copies a server nonce challenge into the `DPoP-Nonce` header before the error is rendered. */
function withNonce(reply: FastifyReply, err: unknown): never {
  const nonce = (err as MandateError).details?.dpopNonce;
  if (typeof nonce === 'string') reply.header('dpop-nonce', nonce);
  throw err;
}

export function registerOAuthRoutes(app: FastifyInstance, { broker }: AppContext): void {
  const id = broker.identity;
  const base = id.issuer;
  const ic = broker.config.interactiveClients;

  /** Verifies the agent's own token on agent API calls (resource-server rules: ath, scheme). */
  const agentAuth = async (req: FastifyRequest, reply: FastifyReply): Promise<VerifiedCaller> => {
    const presented = presentedToken(req);
    if (presented === undefined) throw new OAuthError('OAUTH_INVALID_TOKEN', 'an access token is required (Authorization: DPoP or Bearer)');
    try {
      const verified = await broker.verifier.verify({ ...presented, method: req.method, url: requestUri(base, req) });
      // RFC 9449 §8.2: the next nonce, when the one the client used is about to expire.
      if (verified.dpopNonce !== undefined) reply.header('dpop-nonce', verified.dpopNonce);
      return verified;
    } catch (err) {
      return withNonce(reply, err);
    }
  };

  // What a client assertion (a JWT-SVID or OIDC workload token) may be signed with: every trust
  // domain's and workload issuer's allow-list.
  const assertionAlgorithms = [
    ...new Set([
      ...[...id.trust.domains.values()].flatMap((d) => d.settings.algorithms),
      ...[...id.trust.workloadIssuers.values()].flatMap((i) => i.settings.algorithms),
    ]),
  ].sort();
  app.get(OAUTH_PATHS.metadata, { config: { access: 'public', doc: { summary: 'Authorization server metadata (RFC 8414)' } } }, async () =>
    authorizationServerMetadata({
      issuer: base,
      interactiveClients: ic,
      assertionAlgorithms,
      registrationPath: INTERACTIVE_PATHS.register,
    }),
  );

  app.get(OAUTH_PATHS.jwks, { config: { access: 'public', doc: { summary: 'Token signing keys (JWKS)' } } }, async (_req, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return id.keys.jwks();
  });

  app.register(async (scope) => {
    if (!scope.hasContentTypeParser(FORM)) {
      scope.addContentTypeParser(FORM, { parseAs: 'string' }, (_req, body, done) => {
        try {
          done(null, parseForm(body as string));
        } catch (err) {
          done(err as Error, undefined);
        }
      });
    }
    const form = (req: FastifyRequest): Record<string, string> => {
      if (!(req.headers['content-type'] ?? '').startsWith(FORM)) throw new OAuthError('OAUTH_INVALID_REQUEST', `the body must be ${FORM}`);
      return (req.body ?? {}) as Record<string, string>;
    };

    scope.post(
      OAUTH_PATHS.token,
      { config: { access: 'client', doc: { summary: 'Token exchange (RFC 8693): open, refresh or delegate a mandate' } } },
      async (req, reply) => {
        reply.header('cache-control', 'no-store');
        const started = performance.now();
        const grantType = (req.body as Record<string, unknown> | undefined)?.grant_type;
        const grant = typeof grantType === 'string' ? grantType : undefined;
        const serve = async () => {
          try {
            const res = await id.exchange.exchange({
              params: form(req),
              dpop: dpopHeader(req, 'OAUTH_INVALID_DPOP_PROOF'),
              peerCertificates: peerCertificates(req),
              url: `${base}${OAUTH_PATHS.token}`,
              source: req.ip,
            });
            if (id.dpop.requireNonce) reply.header('dpop-nonce', id.dpop.nonce());
            return res;
          } catch (err) {
            return withNonce(reply, err);
          }
        };
        const tracing = broker.tracing;
        try {
          const res = await (tracing === undefined
            ? serve()
            : tracing.inSpan(
                SPANS.token,
                {
                  kind: SpanKind.SERVER,
                  parent: tracing.parentOf(req.headers),
                  attributes: { 'oauth.grant_type': grant?.slice(0, 128) ?? '' },
                },
                serve,
              ));
          broker.metrics.tokenRequested(grant, 'issued', secondsSince(started));
          return res;
        } catch (err) {
          broker.metrics.tokenRequested(grant, err instanceof MandateError ? err.code : 'ERR_INTERNAL', secondsSince(started));
          throw err;
        }
      },
    );

    const introspection = { access: { permission: 'tokens:introspect' }, doc: { summary: 'Token introspection (RFC 7662)' } } as const;
    // Thrown on to the app's error handler (the one serializer), translated when it is about the caller.
    const introspectionErrors = (err: unknown): never => {
      const mapped = err instanceof MandateError ? INTROSPECTION_CALLER_ERRORS[err.code] : undefined;
      throw mapped === undefined ? err : new OAuthError(mapped, (err as MandateError).message);
    };
    scope.post(OAUTH_PATHS.introspect, { config: introspection, errorHandler: introspectionErrors }, async (req, reply) => {
      reply.header('cache-control', 'no-store');
      const token = form(req).token;
      if (token === undefined || token === '') throw new OAuthError('OAUTH_INVALID_REQUEST', 'token is required');
      try {
        const v = await broker.verifier.resolve(await broker.verifier.verifyToken(token));
        const c = v.claims;
        return {
          active: true,
          iss: c.iss,
          sub: c.sub,
          aud: c.aud,
          client_id: c.client_id,
          exp: c.exp,
          iat: c.iat,
          jti: c.jti,
          token_type: c.cnf === undefined ? 'Bearer' : 'DPoP',
          ...(c.cnf === undefined ? {} : { cnf: c.cnf }),
          ...(c.act === undefined ? {} : { act: c.act }),
          mandate: c.mandate,
          authorization_details: c.authorization_details,
          mandate_chain: v.chain.map((m) => ({ id: m.id, agentId: m.agentId, depth: m.depth, status: m.status })),
        };
      } catch (err) {
        // RFC 7662 §2.2: any invalid, expired or revoked token is simply `active: false`.
        if (!(err instanceof OAuthError)) throw err;
        // A per-mandate upstream token (src/leases, audience of a configured upstream): active only
        // while it is unrevoked and its mandate and every ancestor are live on this replica.
        const up = await broker.leases.upstreamTokens.verify(token).catch(() => undefined);
        if (up === undefined) return { active: false };
        return {
          active: true,
          iss: up.iss,
          sub: up.sub,
          aud: up.aud,
          client_id: up.client_id,
          scope: up.scope,
          exp: up.exp,
          iat: up.iat,
          jti: up.jti,
          token_type: 'Bearer',
          ...(up.act === undefined ? {} : { act: up.act }),
          mandate: up.mandate,
          authorization_details: up.authorization_details,
        };
      }
    });

    scope.post(
      OAUTH_PATHS.revoke,
      { config: { access: 'client', doc: { summary: 'Token revocation (RFC 7009)' } } },
      async (req, reply) => {
        // Possession of a token is enough to revoke it (RFC 7009 §2.1 allows public clients).
        reply.header('cache-control', 'no-store');
        // `token_type_hint` is ignored, whatever its value: §2.1 lets the server ignore it and makes
        // it search all its token types anyway. Refresh tokens first (their format says what they are).
        const { token } = form(req);
        if (token === undefined || token === '') throw new OAuthError('OAUTH_INVALID_REQUEST', 'token is required');
        const refreshOf = await id.refreshTokens.revoke(token);
        if (refreshOf !== undefined) {
          const agentId = (await broker.mandates.get(refreshOf))?.agentId;
          await broker.audit.append({
            type: 'token.revoked',
            actors: [agentId === undefined ? { type: 'system', id: 'revocation-endpoint' } : { type: 'agent', id: agentId }],
            mandateId: refreshOf,
            data: { refreshToken: true },
          });
          return reply.code(200).send();
        }
        try {
          const claims = await broker.verifier.verifyToken(token);
          await broker.mandates.revokeToken(claims.jti, claims.mandate, claims.exp);
          await broker.audit.append({
            type: 'token.revoked',
            actors: [{ type: 'agent', id: claims.client_id }],
            mandateId: claims.mandate,
            data: { tokenId: claims.jti },
          });
        } catch (err) {
          // §2.2: an invalid token is not an error for the caller.
          if (!(err instanceof OAuthError)) throw err;
        }
        return reply.code(200).send();
      },
    );
  });

  // ── mandate lifecycle for the agent holding a token: its own mandate or a descendant ──
  const endStatuses = { complete: 'completed', fail: 'failed', revoke: 'revoked' } as const satisfies Record<string, EndStatus>;
  const endBody = z.strictObject({ reason: z.string().max(1000).optional() }).optional();
  for (const [verb, status] of Object.entries(endStatuses)) {
    app.post(
      `${AGENT_API_PREFIX}/mandates/:id/${verb}`,
      { config: { access: 'agent', doc: { summary: `Agent: ${verb} its mandate (or a descendant); cascades to all descendants` } } },
      async (req, reply) => {
        const caller = await agentAuth(req, reply);
        const target = await broker.mandates.get((req.params as { id: string }).id);
        const isSelf = target?.id === caller.mandate.id;
        const isDescendant = target !== undefined && (await broker.mandates.chain(target)).some((m) => m.id === caller.mandate.id);
        if (target === undefined || (!isSelf && !isDescendant)) {
          throw new OAuthError('OAUTH_INSUFFICIENT_SCOPE', 'an agent may only end its own mandate or one delegated from it');
        }
        if (!isSelf && status !== 'revoked') throw new OAuthError('OAUTH_INSUFFICIENT_SCOPE', 'an ancestor may only revoke a descendant');
        const ended = await broker.mandates.end(target.id, status, { type: 'agent', id: caller.agent.id }, endBody.parse(req.body)?.reason);
        return { id: target.id, status, ended: ended.map((m) => m.id) };
      },
    );
  }

  // ── mandates for operators ──
  const listQuery = z.strictObject({
    agentId: z.string().max(255).optional(),
    status: z.enum(['active', 'completed', 'failed', 'revoked', 'expired']).optional(),
    rootId: z.string().max(64).optional(),
    limit: z.coerce.number().int().min(1).max(1000).optional(),
  });
  app.get(
    `${ADMIN_PREFIX}mandates`,
    { config: { access: { permission: 'mandates:read' }, doc: { summary: 'List mandates', query: listQuery } } },
    async (req) => ({
      items: await broker.mandates.list(listQuery.parse(req.query)),
    }),
  );
  app.get(
    `${ADMIN_PREFIX}mandates/:id`,
    { config: { access: { permission: 'mandates:read' }, doc: { summary: 'A mandate with its delegation chain' } } },
    async (req) => {
      const m = await broker.mandates.require((req.params as { id: string }).id);
      return { ...m, chain: (await broker.mandates.chain(m)).map((c) => c.id) };
    },
  );
  app.get(
    `${ADMIN_PREFIX}mandates/:id/leases`,
    {
      config: {
        access: { permission: 'mandates:read' },
        doc: { summary: 'Leases of a mandate: per-mandate upstream credentials, with status and HMACs (never the secret)' },
      },
    },
    async (req) => {
      const m = await broker.mandates.require((req.params as { id: string }).id);
      return { items: await broker.leases.service.list(m.id) };
    },
  );
  app.post(
    `${ADMIN_PREFIX}mandates/:id/revoke`,
    {
      config: {
        access: { permission: 'mandates:end' },
        doc: { summary: 'Revoke a mandate and all its descendants (admin or the agent owner)', body: endBody },
      },
    },
    async (req) => {
      const operator = req.operator;
      if (operator === undefined) throw new AuthError('ERR_AUTH_MISSING');
      const m = await broker.mandates.require((req.params as { id: string }).id);
      const agent = await broker.agents.get(m.agentId);
      if (!operator.roles.includes('admin') && agent?.principal.owner !== operator.subject) {
        throw new AuthError('ERR_FORBIDDEN', 'only an admin or the owner of the agent may revoke this mandate');
      }
      const ended = await broker.mandates.end(m.id, 'revoked', { type: 'operator', id: operator.id }, endBody.parse(req.body)?.reason);
      return { id: m.id, status: 'revoked', ended: ended.map((e) => e.id) };
    },
  );
  if (id.devSpiffe === undefined) return;
  // DEVELOPMENT ONLY: the demo trust domain's bundle, so local tools can verify demo SVIDs.
  const dev = id.devSpiffe;
  app.get('/dev/spiffe/bundle', { config: { access: 'public', doc: { summary: 'Development trust bundle (demo only)' } } }, async () =>
    dev.bundle(),
  );
}
