// Admin API: the risk engine's view (docs/risk.md). Scores are kept in memory per replica, with the
// counts of the other replicas added in; responses in force are the same on every replica.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ADMIN_PREFIX, type AppContext } from '../app.js';

const scoresQuery = z.strictObject({
  subject: z.enum(['mandate', 'tree', 'agent']).default('agent'),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

/** Audit event types of automatic responses (the timeline of a mandate or tree). */
const RISK_EVENTS = ['risk.response', 'risk.cleared'];

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
    `${ADMIN_PREFIX}risk/scores`,
    {
      config: {
        access: { permission: 'agents:read' },
        doc: { summary: 'Subjects of one kind with a risk score above 0, highest first', query: scoresQuery },
      },
    },
    async (req) => {
      const q = scoresQuery.parse(req.query);
      return { items: broker.risk.engine.scores(q.subject, q.limit) };
    },
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
      const score = broker.risk.engine.score(p.subject, p.id);
      // A mandate's or tree's responses are audited against its (root) mandate id.
      const timeline = p.subject === 'agent' ? [] : await broker.audit.entriesBy('mandate_id', p.id, { types: RISK_EVENTS, limit: 100 });
      return {
        ...score,
        timeline: timeline.map((e) => ({ seq: e.seq, id: e.id, type: e.event.type, time: e.event.time, data: e.event.data })),
      };
    },
  );
}
