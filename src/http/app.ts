// buildApp(broker) → a Fastify instance with every route, hook and the one error boundary.
// It never listens: the CLI calls listen(), tests use inject() or listen on port 0.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Broker } from '../broker.js';
import { ConfigError, MandateError } from '../errors/index.js';
import { toHttpError, toMandateError } from '../errors/serialize.js';
import type { Operator } from '../identity/operators.js';
import { firstIllFormed } from '../lib/unicode.js';
import { version } from '../version.js';
import { registerMetrics } from './metrics.js';
import { OpenApiCollector, type RouteDoc } from './openapi.js';
import { registerRateLimits } from './rate-limit.js';
import { installRouteAccess, permissionOf } from './route-access.js';
import { registerAgentRoutes } from './routes/agents.js';
import { registerApprovalRoutes } from './routes/approvals.js';
import { registerAuditRoutes } from './routes/audit.js';
import { registerInteractiveRoutes } from './routes/authorize.js';
import { registerAuthzenRoutes } from './routes/authzen.js';
import { registerConsoleRoutes } from './routes/console.js';
import { registerConsoleApiRoutes } from './routes/console-api.js';
import { registerDevIssuerRoutes } from './routes/dev-issuer.js';
import { registerEventRoutes } from './routes/events.js';
import { registerGatewayRoutes } from './routes/gateway.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerMandateRoutes } from './routes/mandates.js';
import { registerOAuthRoutes } from './routes/oauth.js';
import { registerPolicyRoutes } from './routes/policy.js';
import { registerPrincipalRoutes } from './routes/principals.js';
import { registerReportRoutes } from './routes/reports.js';
import { registerRiskRoutes } from './routes/risk.js';
import { registerUpstreamRoutes } from './routes/upstreams.js';
import { registerWebhookRoutes } from './routes/webhooks.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** Starts draining: /readyz answers 503 from now on. */
    drain(): void;
  }
  interface FastifyRequest {
    operator?: Operator;
  }
  interface FastifyContextConfig {
    doc?: RouteDoc;
  }
}

/** Paths under this prefix are the admin API: every route here demands an operator permission (route-access.ts). */
export const ADMIN_PREFIX = '/admin/v1/';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export { redactPaths } from '../observability/log.js';

export interface AppContext {
  readonly broker: Broker;
  readonly openapi: OpenApiCollector;
  /** Set when shutdown has begun: /readyz turns 503 so load balancers drain this replica. */
  readonly lifecycle: { draining: boolean };
}

export async function buildApp(broker: Broker): Promise<FastifyInstance> {
  const { config } = broker;
  const tls = config.server.tls;
  const app = Fastify({
    // With TLS, client certificates are requested but not judged by a CA store: X.509-SVIDs are
    // verified against the trust bundles where they are used (the token endpoint).
    ...(tls === undefined
      ? {}
      : {
          https: {
            cert: readTlsFile(tls.certFile),
            key: readTlsFile(tls.keyFile),
            requestCert: tls.requestClientCertificate,
            rejectUnauthorized: false,
          },
        }),
    // The broker's one logger (level and redaction from the configuration); requests log through children of it.
    loggerInstance: broker.log as FastifyBaseLogger,
    bodyLimit: config.server.bodyLimitBytes,
    trustProxy: config.server.trustProxy,
    requestIdHeader: false,
    genReqId: (req) => {
      const incoming = req.headers['x-request-id'];
      return typeof incoming === 'string' && REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
    routerOptions: { maxParamLength: 256 },
    // The router's own refusals (a malformed percent-encoding) go through the one serializer too.
    frameworkErrors: (err, req, reply) => sendError(fromFastify(err), req, reply),
    clientErrorHandler: answerUnparsable,
  });
  const openapi = new OpenApiCollector();
  const ctx: AppContext = { broker, openapi, lifecycle: { draining: false } };
  app.decorate('drain', () => {
    ctx.lifecycle.draining = true;
  });
  app.addHook('onRoute', (route) => {
    const doc = route.config?.doc;
    if (doc === undefined) return;
    const permission = permissionOf(route.config?.access);
    for (const method of [route.method].flat()) if (method !== 'HEAD') openapi.add(method, route.url, doc, permission);
  });

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });
  // After the request id (a 429 carries it too), before any authentication hook: a throttled source costs no token verification.
  await registerRateLimits(app, broker);
  installRouteAccess(app, broker, ADMIN_PREFIX);
  // Parsed JSON bodies: a lone surrogate is refused here, before it reaches Cedar or the audit log.
  app.addHook('preValidation', async (req) => {
    if (typeof req.body !== 'object' || req.body === null) return;
    const at = firstIllFormed(req.body);
    if (at !== undefined) throw new MandateError('ERR_BAD_REQUEST', `${at} is not well-formed Unicode (a lone surrogate)`);
  });

  registerMetrics(app, broker);

  app.setErrorHandler((err, req, reply) => sendError(fromFastify(err), req, reply));
  app.setNotFoundHandler((req, reply) =>
    sendError(new MandateError('ERR_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`), req, reply),
  );

  registerHealthRoutes(app, ctx);
  registerPrincipalRoutes(app, ctx);
  registerAuditRoutes(app, ctx);
  registerUpstreamRoutes(app, ctx);
  registerApprovalRoutes(app, ctx);
  registerWebhookRoutes(app, ctx);
  registerGatewayRoutes(app, ctx);
  registerOAuthRoutes(app, ctx);
  registerMandateRoutes(app, ctx);
  registerInteractiveRoutes(app, ctx);
  registerAgentRoutes(app, ctx);
  registerReportRoutes(app, ctx);
  registerRiskRoutes(app, ctx);
  if (broker.devIssuer !== undefined) registerDevIssuerRoutes(app, broker.devIssuer, ctx);
  registerEventRoutes(app, ctx);
  registerConsoleApiRoutes(app, ctx);
  registerConsoleRoutes(app, ctx);
  registerPolicyRoutes(app, ctx);
  registerAuthzenRoutes(app, ctx);

  app.get('/openapi.json', { config: { access: 'public' } }, async () => openapi.document(version));

  app.addHook('onClose', async () => {
    await broker.close();
  });
  await app.ready();
  return app;
}

function readTlsFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError('ERR_CONFIG_UNREADABLE', `cannot read TLS file ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
}

const FRAMEWORK_REASONS: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'the body is not valid JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'the body is not valid JSON',
  FST_ERR_BAD_URL: 'the request target is not a valid URL',
  FST_ERR_MAX_PARAM_LENGTH: 'a path segment is longer than 256 characters',
  ECONNRESET: 'the client closed the connection before the body arrived',
};

/**
 * Maps Fastify's and Node's own failures (body parsing, limits, router refusals, aborted bodies)
 * onto registry codes. Any other client-side (4xx) failure of the framework is a bad request;
 * only what is left is internal.
 */
function fromFastify(err: unknown): unknown {
  if (err instanceof MandateError) return err;
  const e = err as { statusCode?: number; code?: string };
  if (e.statusCode === 413) return new MandateError('ERR_BODY_TOO_LARGE');
  if (e.statusCode === 415) return new MandateError('ERR_UNSUPPORTED_MEDIA_TYPE');
  if (e.statusCode === 405) return new MandateError('ERR_METHOD_NOT_ALLOWED');
  const reason =
    FRAMEWORK_REASONS[e.code ?? ''] ?? (err instanceof SyntaxError && e.statusCode === 400 ? 'the body is not valid JSON' : undefined);
  if (reason !== undefined) return new MandateError('ERR_BAD_REQUEST', reason);
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new MandateError('ERR_BAD_REQUEST', 'the request is malformed');
  }
  return err;
}

/**
 * Node could not parse the request at all (bad request line, oversized headers): answer in the
 * registry's shape on the raw socket, since no request object exists yet.
 */
function answerUnparsable(err: Error & { code?: string }, socket: Duplex): void {
  if (!socket.writable || err.code === 'ECONNRESET') {
    socket.destroy();
    return;
  }
  const code = err.code === 'HPE_HEADER_OVERFLOW' ? 'ERR_HEADERS_TOO_LARGE' : 'ERR_BAD_REQUEST';
  const res = toHttpError(new MandateError(code), randomUUID());
  const body = JSON.stringify(res.body);
  socket.end(
    `HTTP/1.1 ${res.status} ${STATUS_CODES[res.status] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function sendError(err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const res = toHttpError(err, req.id);
  if (res.internal) req.log.error({ err }, 'request failed');
  else {
    // Every refusal leaves a line with its registry code and reason; 5xx ones (a component is down) at warn.
    const e = toMandateError(err);
    // With the route pattern (never the raw path) and, on the admin API, the operator refused.
    req.log[res.status >= 500 ? 'warn' : 'info'](
      {
        code: e.code,
        reason: e.message,
        status: res.status,
        route: req.routeOptions?.url ?? 'unmatched',
        ...(req.operator === undefined ? {} : { operator: req.operator.id }),
      },
      'request refused',
    );
  }
  return reply.code(res.status).headers(res.headers).send(res.body);
}
