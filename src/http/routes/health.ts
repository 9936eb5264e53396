// Liveness and readiness. /readyz answers 503 while draining or while any component check fails
// (store, trust bundles, issuers, policy, audit log), naming each check in the body.
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../app.js';
import { PUBLIC } from '../route-access.js';

export function registerHealthRoutes(app: FastifyInstance, { broker, lifecycle }: AppContext): void {
  app.get('/healthz', PUBLIC, async () => ({ status: 'ok' }));
  // Logged on change only: probes come every few seconds, a state change is what an operator needs.
  let wasReady: boolean | undefined;
  app.get('/readyz', PUBLIC, async (req, reply) => {
    const store = broker.store.dialect;
    if (lifecycle.draining) return reply.code(503).send({ status: 'draining', store });
    const readiness = await broker.readiness();
    const checks = Object.fromEntries(
      readiness.checks.map((c) => [c.name, c.detail === undefined ? { ready: c.ready } : { ready: c.ready, detail: c.detail }]),
    );
    const body = { store, changeSeq: broker.changes.lastSeq, stalenessMs: broker.changes.staleness(), checks };
    const failing = readiness.checks.filter((c) => !c.ready);
    if (readiness.ready !== wasReady) {
      if (readiness.ready) req.log.info('ready');
      else req.log.warn({ checks: failing.map((c) => ({ check: c.name, code: c.code, reason: c.detail })) }, 'not ready');
      wasReady = readiness.ready;
    }
    const first = failing[0];
    if (first === undefined) return { status: 'ready', ...body };
    const status = first.code === 'ERR_REPLICA_STALE' ? 'stale' : first.name === 'store' ? 'unavailable' : 'not_ready';
    return reply.code(503).send({ status, error: first.code, ...body });
  });
}
