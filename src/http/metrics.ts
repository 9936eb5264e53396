// GET /metrics and the HTTP request metrics. The registry is the broker's (src/observability/metrics.ts).
//
// Access: public by default, as before — the exposition holds counts and durations labelled by
// route pattern, outcome, reason code and upstream id, never a mandate, agent or human id, and a
// scraper usually reaches it over a private network. Setting telemetry.metrics.tokenSha256 (or
// MANDATE_METRICS_TOKEN) makes it demand `Authorization: Bearer <token>` (compared as SHA-256 in
// constant time), for listeners anything else can reach. No operator token is required because
// Prometheus scrapes with a static credential, not an OIDC login.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Broker } from '../broker.js';
import { AuthError } from '../errors/index.js';

export const METRICS_PATH = '/metrics';

export function registerMetrics(app: FastifyInstance, broker: Broker): void {
  const { metrics } = broker;
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    metrics.httpResponded(req.method, route, reply.statusCode, reply.elapsedTime / 1000);
  });

  const expected = broker.config.secrets.metricsTokenSha256;
  const digest = expected === undefined ? undefined : Buffer.from(expected, 'hex');
  app.get(METRICS_PATH, { config: { access: digest === undefined ? 'public' : 'scraper' } }, async (req, reply) => {
    if (digest !== undefined) {
      const header = req.headers.authorization;
      if (header === undefined) throw new AuthError('ERR_AUTH_MISSING', 'GET /metrics requires the metrics bearer token');
      const match = /^Bearer ([\x21-\x7e]{1,512})$/i.exec(header);
      const presented = createHash('sha256')
        .update(match?.[1] ?? '')
        .digest();
      if (match === null || !timingSafeEqual(presented, digest)) {
        throw new AuthError('ERR_AUTH_INVALID_TOKEN', 'the metrics bearer token is not the configured one');
      }
    }
    reply.type(metrics.registry.contentType).header('cache-control', 'no-store');
    return metrics.registry.metrics();
  });
}
