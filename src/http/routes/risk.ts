// Admin API: the risk engine's view (docs/risk.md). Scores are kept in memory per replica, with the
// counts of the other replicas added in; responses in force are the same on every replica.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ADMIN_PREFIX, type AppContext } from '../app.js';

const subjectParams = z.strictObject({
  subject: z.enum(['mandate', 'tree', 'agent']),
  id: z.string().min(1).max(256),
});

export function registerRiskRoutes(app: FastifyInstance, { broker }: AppContext): void {
  app.get(
    `${ADMIN_PREFIX}risk/responses`,
    {
      config: {
        access: { permission: 'agents:read' },
        doc: { summary: 'Automatic risk responses in force, with the score and the signals behind each' },
      },
    },
    async () => ({ items: broker.risk.engine.active() }),
  );
  app.get(
    `${ADMIN_PREFIX}risk/:subject/:id`,
    {
      config: {
        access: { permission: 'agents:read' },
        doc: {
          summary: "A mandate's, delegation tree's or agent's risk score (0–100) with each signal's contribution",
          params: subjectParams,
        },
      },
    },
    async (req) => {
      const p = subjectParams.parse(req.params);
      return broker.risk.engine.score(p.subject, p.id);
    },
  );
}
