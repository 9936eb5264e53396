// The webhook delivery log: one row per message (Standard Webhooks `webhook-id`), updated after
// every attempt, so a receiver that is down or refusing is visible to operators, not silent.
import type { Migration } from './index.js';

export const m0060WebhookDeliveries: Migration = {
  id: 60,
  name: 'webhook_deliveries',
  up: (t) => `
    CREATE TABLE webhook_deliveries (
      id              TEXT PRIMARY KEY,
      endpoint        TEXT NOT NULL,
      event_type      TEXT NOT NULL,
      payload         TEXT NOT NULL,
      status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
      attempts        INTEGER NOT NULL,
      last_status     INTEGER,
      last_error      TEXT,
      created_at      ${t.bigint} NOT NULL,
      updated_at      ${t.bigint} NOT NULL,
      next_attempt_at ${t.bigint}
    );
    CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);
    CREATE INDEX webhook_deliveries_status ON webhook_deliveries (status, created_at);
  `,
};
