// Durable MCP tasks (extension io.modelcontextprotocol/tasks): a tools/call that waits for a human
// approval, readable from any replica. The call arguments and the result are sealed (SecretBox,
// bound to the task id); `status = 'forwarding'` is the claim one replica takes by a conditional
// UPDATE before it forwards, so a call is forwarded at most once.
import type { Migration } from './index.js';

export const m0043Tasks: Migration = {
  id: 43,
  name: 'tasks',
  up: (t) => `
    CREATE TABLE tasks (
      id               TEXT PRIMARY KEY,
      mandate_id       TEXT NOT NULL,
      approval_id      TEXT NOT NULL,
      call_hash        TEXT NOT NULL,
      tool             TEXT NOT NULL,
      args_sealed      TEXT NOT NULL,
      status           TEXT NOT NULL CHECK (status IN ('working', 'forwarding', 'completed', 'failed', 'cancelled')),
      status_message   TEXT,
      result_sealed    TEXT,
      error            TEXT,
      created_at       ${t.bigint} NOT NULL,
      updated_at       ${t.bigint} NOT NULL,
      ttl_ms           ${t.bigint} NOT NULL,
      expires_at       ${t.bigint} NOT NULL,
      claimed_by       TEXT,
      claimed_at       ${t.bigint},
      claim_expires_at ${t.bigint}
    );
    CREATE INDEX tasks_mandate ON tasks (mandate_id, status);
    CREATE INDEX tasks_approval ON tasks (approval_id);
    CREATE INDEX tasks_due ON tasks (status, expires_at);
    CREATE INDEX tasks_claims ON tasks (status, claim_expires_at);
  `,
};
