// The agent-facing MCP endpoint (`/mcp`, streamable HTTP) and its RFC 9728 protected-resource
// metadata. Every HTTP request is authenticated with the mandate token (Bearer or DPoP) before the
// endpoint (src/gateway/endpoint.ts) sees it; a 401 carries `WWW-Authenticate` with `resource_metadata` so MCP clients
// can discover the authorization server.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isMandateError, MandateError, OAuthError } from '../../errors/index.js';
import { headerParam } from '../../errors/serialize.js';
import { type McpRequestContext, writeRpcError } from '../../gateway/endpoint.js';
import { MCP_PATH, PROTECTED_RESOURCE_METADATA_PATH } from '../../gateway/index.js';
import type { VerifiedCaller } from '../../oauth/caller.js';
import { DPOP_ALGORITHMS } from '../../oauth/dpop.js';
import type { AppContext } from '../app.js';
import { presentedToken } from '../presented-token.js';
import { requestUri } from '../request-uri.js';

export function registerGatewayRoutes(app: FastifyInstance, { broker }: AppContext): void {
  const gw = broker.gateway;
  const base = broker.identity.issuer;

  const metadata = (path: '' | typeof MCP_PATH) => async (_req: FastifyRequest, reply: FastifyReply) => {
    reply.header('cache-control', 'max-age=300');
    return gw.protectedResourceMetadata(path);
  };
  app.get(
    PROTECTED_RESOURCE_METADATA_PATH,
    { config: { access: 'public', doc: { summary: 'Protected resource metadata (RFC 9728)' } } },
    metadata(''),
  );
  // RFC 9728 §3.1: the path-suffixed form, for the resource `<publicUrl>/mcp` (which clients probe);
  // §3.3: it must name that resource, not the broker.
  app.get(`${PROTECTED_RESOURCE_METADATA_PATH}${MCP_PATH}`, { config: { access: 'public' } }, metadata(MCP_PATH));

  /** RFC 6750 §3 / RFC 9449 §7.1 challenges, both naming the metadata (RFC 9728 §5.1). */
  const challenge = (reply: FastifyReply, err?: OAuthError) => {
    const metadataParam = `resource_metadata="${gw.resourceMetadataUrl}"`;
    const params = [metadataParam];
    // RFC 9449 §9: a nonce challenge is `DPoP error="use_dpop_nonce"` with the nonce in DPoP-Nonce;
    // the Bearer challenge then carries no error (the token itself was not refused).
    const useNonce = err?.code === 'OAUTH_RESOURCE_USE_DPOP_NONCE';
    const error = useNonce ? 'use_dpop_nonce' : 'invalid_token';
    const errorParams = err === undefined ? [] : [`error="${error}"`, `error_description="${headerParam(err.message)}"`];
    if (!useNonce) params.unshift(...errorParams);
    const dpopParams = [...(useNonce ? errorParams : params.slice(0, -1)), `algs="${DPOP_ALGORITHMS.join(' ')}"`, metadataParam];
    const nonce = err?.details?.dpopNonce;
    if (typeof nonce === 'string') reply.header('dpop-nonce', nonce);
    reply.log.info(
      { code: err?.code ?? 'OAUTH_INVALID_TOKEN', reason: err?.message ?? 'an access token is required', status: 401 },
      'request refused',
    );
    reply
      .code(401)
      .header('www-authenticate', `Bearer ${params.join(', ')}, DPoP ${dpopParams.join(', ')}`)
      .header('cache-control', 'no-store')
      .send(
        err === undefined
          ? { error: 'invalid_token', error_description: 'an access token is required' }
          : { error, error_description: err.message },
      );
  };

  // DNS-rebinding protection (MCP transport security): a browser tricked into calling /mcp sends
  // a foreign Host or Origin; refuse both before anything else.
  const publicUrl = new URL(gw.resource);
  const hosts = new Set([publicUrl.host, ...broker.config.gateway.allowedHosts].map((h) => h.toLowerCase()));
  const origins = new Set([publicUrl.origin, ...broker.config.gateway.allowedOrigins.map((o) => new URL(o).origin)]);

  const contextOf = (req: FastifyRequest): McpRequestContext => ({
    requestId: req.id,
    onInternalError: (err) =>
      req.log.error({ err: isMandateError(err) ? { code: err.code, cause: err.cause } : err }, 'MCP request failed'),
    onRefusal: (err) => req.log.info({ code: err.code, reason: err.message }, 'request refused'),
  });

  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const origin = req.headers.origin;
    if (!hosts.has((req.headers.host ?? '').toLowerCase()) || (origin !== undefined && !origins.has(origin))) {
      reply.hijack();
      const refusal = new MandateError('ERR_FORBIDDEN', 'this Host or Origin is not allowed to reach the MCP endpoint');
      return writeRpcError(reply.raw, refusal, contextOf(req));
    }
    let caller: VerifiedCaller;
    let nextNonce: string | undefined;
    try {
      const presented = presentedToken(req);
      if (presented === undefined) return challenge(reply);
      const verified = await broker.verifier.verify({ ...presented, method: req.method, url: requestUri(base, req) });
      nextNonce = verified.dpopNonce;
      caller = verified;
    } catch (err) {
      if (err instanceof OAuthError) return challenge(reply, err);
      throw err;
    }
    // RFC 9449 §8.2: a fresh nonce before the one the client uses expires (set on the raw response,
    // which the hijacked handler writes).
    if (nextNonce !== undefined) reply.raw.setHeader('dpop-nonce', nextNonce);
    // Risk: a mandate's token used from one more client address is a signal (new_client).
    broker.risk.engine.observeClient(
      { mandateId: caller.mandate.id, rootId: caller.chain[0]?.id ?? caller.mandate.id, agentId: caller.agent.id },
      `ip:${req.ip}`,
    );
    reply.hijack();
    const ctx = contextOf(req);
    try {
      // The body is parsed only now, after the caller is authenticated (see the raw parser below).
      await gw.endpoint.handle(req.raw, reply.raw, typeof req.body === 'string' ? req.body : undefined, caller, ctx);
    } catch (err) {
      if (!reply.raw.headersSent) writeRpcError(reply.raw, err, ctx);
      else {
        ctx.onInternalError(err);
        reply.raw.end();
      }
    }
  };

  /** Fastify's own refusals on /mcp (body too large, unreadable body) as JSON-RPC errors through the one serializer. */
  const errorHandler = (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    const refusal =
      err.statusCode === 413
        ? new MandateError('ERR_BODY_TOO_LARGE')
        : err.statusCode === 415
          ? new MandateError('ERR_UNSUPPORTED_MEDIA_TYPE', 'the content type must be application/json')
          : err.statusCode !== undefined && err.statusCode < 500
            ? new MandateError('RPC_INVALID_REQUEST', 'the request cannot be read')
            : err;
    reply.hijack();
    writeRpcError(reply.raw, refusal, contextOf(req));
  };

  // Requests in flight of legacy sessions are cancelled when the server closes.
  app.addHook('preClose', async () => {
    gw.sessions.close();
  });

  // Arguments have their own, tighter limit (gateway.maxArgumentsBytes); this bounds the envelope.
  const bodyLimit = Math.max(broker.config.server.bodyLimitBytes, broker.config.gateway.maxArgumentsBytes + 64 * 1024);
  // Its own scope, so the body is only read here, never parsed before the caller is authenticated;
  // the gateway parses and checks it (src/gateway/envelope.ts) and refuses in JSON-RPC.
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string', bodyLimit }, (_req, body, done) => done(null, body));
    scope.route({
      method: ['GET', 'POST', 'DELETE'],
      url: MCP_PATH,
      bodyLimit,
      config: { access: 'agent', doc: { summary: 'MCP streamable HTTP endpoint for agents (mandate token required)' } },
      errorHandler,
      handler,
    });
  });
}
