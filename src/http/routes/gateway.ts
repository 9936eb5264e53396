// The agent-facing MCP endpoint (`/mcp`, streamable HTTP) and its RFC 9728 protected-resource
// metadata. Every HTTP request is authenticated with the mandate token (Bearer or DPoP) before the
// SDK transport sees it; a 401 carries `WWW-Authenticate` with `resource_metadata` so MCP clients
// can discover the authorization server.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isMandateError, OAuthError } from '../../errors/index.js';
import { MCP_PATH, PROTECTED_RESOURCE_METADATA_PATH } from '../../gateway/index.js';
import { writeRpcError } from '../../gateway/sessions.js';
import type { VerifiedCaller } from '../../gateway/types.js';
import { DPOP_ALGORITHMS } from '../../tokens/dpop.js';
import type { AppContext } from '../app.js';
import { presentedToken } from '../presented-token.js';

const quote = (s: string) => s.replace(/["\\\r\n]/g, '');

export function registerGatewayRoutes(app: FastifyInstance, { broker }: AppContext): void {
  const gw = broker.gateway;
  const base = broker.identity.issuer;

  const metadata = async (_req: FastifyRequest, reply: FastifyReply) => {
    reply.header('cache-control', 'max-age=300');
    return gw.protectedResourceMetadata();
  };
  app.get(PROTECTED_RESOURCE_METADATA_PATH, { config: { doc: { summary: 'Protected resource metadata (RFC 9728)' } } }, metadata);
  // RFC 9728 §3.1: the path-suffixed form for the resource `<publicUrl>/mcp`, which some clients probe.
  app.get(`${PROTECTED_RESOURCE_METADATA_PATH}${MCP_PATH}`, metadata);

  /** RFC 6750 §3 / RFC 9449 §7.1 challenges, both naming the metadata (RFC 9728 §5.1). */
  const challenge = (reply: FastifyReply, err?: OAuthError) => {
    const params = [`resource_metadata="${gw.resourceMetadataUrl}"`];
    if (err !== undefined) params.unshift(`error="invalid_token"`, `error_description="${quote(err.message)}"`);
    const nonce = err?.details?.dpopNonce;
    if (typeof nonce === 'string') reply.header('dpop-nonce', nonce);
    reply
      .code(401)
      .header('www-authenticate', `Bearer ${params.join(', ')}, DPoP algs="${DPOP_ALGORITHMS.join(' ')}", ${params.join(', ')}`)
      .header('cache-control', 'no-store')
      .send(
        err === undefined
          ? { error: 'invalid_token', error_description: 'an access token is required' }
          : { error: 'invalid_token', error_description: err.message },
      );
  };

  // DNS-rebinding protection (MCP transport security): a browser tricked into calling /mcp sends
  // a foreign Host or Origin; refuse both before anything else.
  const publicUrl = new URL(gw.resource);
  const hosts = new Set([publicUrl.host, ...broker.config.gateway.allowedHosts].map((h) => h.toLowerCase()));
  const origins = new Set([publicUrl.origin, ...broker.config.gateway.allowedOrigins.map((o) => new URL(o).origin)]);

  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const origin = req.headers.origin;
    if (!hosts.has((req.headers.host ?? '').toLowerCase()) || (origin !== undefined && !origins.has(origin))) {
      reply.hijack();
      return writeRpcError(reply.raw, 'ERR_FORBIDDEN', 'this Host or Origin is not allowed to reach the MCP endpoint', 403);
    }
    let caller: VerifiedCaller;
    try {
      const presented = presentedToken(req);
      if (presented === undefined) return challenge(reply);
      caller = await broker.verifier.verify({ ...presented, method: req.method, url: `${base}${req.url}` });
    } catch (err) {
      if (err instanceof OAuthError) return challenge(reply, err);
      throw err;
    }
    reply.hijack();
    try {
      await gw.sessions.handle(req.raw, reply.raw, req.body, caller);
    } catch (err) {
      req.log.error({ err: isMandateError(err) ? err.code : err }, 'MCP request failed');
      if (!reply.raw.headersSent) writeRpcError(reply.raw, 'RPC_INTERNAL_ERROR', `internal error (request ${req.id})`, 500);
      else reply.raw.end();
    }
  };

  // Open GET (SSE) streams would keep the server from closing: end the sessions first.
  app.addHook('preClose', async () => {
    await gw.sessions.close();
  });

  app.route({
    method: ['GET', 'POST', 'DELETE'],
    url: MCP_PATH,
    // Arguments have their own, tighter limit (gateway.maxArgumentsBytes); this bounds the envelope.
    bodyLimit: Math.max(broker.config.server.bodyLimitBytes, broker.config.gateway.maxArgumentsBytes + 64 * 1024),
    config: { doc: { summary: 'MCP streamable HTTP endpoint for agents (mandate token required)' } },
    handler,
  });
}
