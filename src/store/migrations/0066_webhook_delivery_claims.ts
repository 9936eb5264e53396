// Durable webhook retries: each delivery names the sender it belongs to (one per configured
// endpoint: approvals, risk), and `next_attempt_at` doubles as a claim — a replica that attempts a
// delivery first moves it past the attempt's end with a compare-and-set, so a pending delivery is
// resumed after a restart or by another replica, and by one at a time.
import type { Migration } from './index.js';

export const m0066WebhookDeliveryClaims: Migration = {
  id: 66,
  name: 'webhook_delivery_claims',
  up: () => `
    ALTER TABLE webhook_deliveries ADD COLUMN sender TEXT NOT NULL DEFAULT '';
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (sender, next_attempt_at) WHERE status = 'pending';
  `,
};
