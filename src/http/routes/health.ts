// Liveness and readiness. /readyz answers 503 while the store cannot be reached.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../app.js';

export function registerHealthRoutes(app: FastifyInstance, { broker }: AppContext): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    try {
      await broker.store.ping();
      return { status: 'ready', store: broker.store.dialect };
    } catch {
      return reply.code(503).send({ status: 'unavailable', store: broker.store.dialect, error: 'ERR_STORE_UNAVAILABLE' });
    }
  });
}
