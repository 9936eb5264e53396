// Liveness and readiness. /readyz answers 503 while the store cannot be reached.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../app.js';

export function registerHealthRoutes(app: FastifyInstance, { broker, lifecycle }: AppContext): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const store = broker.store.dialect;
    if (lifecycle.draining) return reply.code(503).send({ status: 'draining', store });
    try {
      await broker.store.ping();
    } catch {
      return reply.code(503).send({ status: 'unavailable', store, error: 'ERR_STORE_UNAVAILABLE' });
    }
    // A replica that cannot confirm it has applied every change (revocations!) is not ready.
    const stalenessMs = broker.changes.staleness();
    if (stalenessMs > broker.config.changes.maxStalenessMs) {
      return reply.code(503).send({ status: 'stale', store, error: 'ERR_STORE_UNAVAILABLE', stalenessMs });
    }
    return { status: 'ready', store, changeSeq: broker.changes.lastSeq, stalenessMs };
  });
}
