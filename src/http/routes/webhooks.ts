// Admin API: the webhook delivery log. Operators see every outgoing message (approval
// notifications), how many attempts it took, and the last answer or error of a receiver that fails.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { deliveryStatuses } from '../../webhooks/index.js';
import { ADMIN_PREFIX, type AppContext } from '../app.js';

const listQuery = z.strictObject({
  status: z.enum(deliveryStatuses).optional(),
  eventType: z.string().max(128).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

export function registerWebhookRoutes(app: FastifyInstance, { broker }: AppContext): void {
  app.get(
    `${ADMIN_PREFIX}webhooks/deliveries`,
    {
      config: {
        access: { permission: 'webhooks:read' },
        doc: { summary: 'List webhook deliveries (newest first), with attempts and the last answer or error', query: listQuery },
      },
    },
    async (req) => {
      const q = listQuery.parse(req.query);
      const items = await broker.webhookDeliveries.list({
        ...(q.status === undefined ? {} : { status: q.status }),
        ...(q.eventType === undefined ? {} : { eventType: q.eventType }),
        ...(q.limit === undefined ? {} : { limit: q.limit }),
      });
      return { items };
    },
  );
}
