// Approvals gain the `withdrawn` status (an agent cancelled the MCP task that waited for it) and at
// most one pending approval per exact call. SQLite cannot alter a CHECK constraint, so the table is
// rebuilt (same columns, rows copied) on both backends with one portable script.
import type { Migration } from './index.js';

export const m0042ApprovalWithdrawn: Migration = {
  id: 42,
  name: 'approval_withdrawn',
  up: (t) => `
    CREATE TABLE approvals_v2 (
      id              TEXT PRIMARY KEY,
      call_hash       TEXT NOT NULL,
      mandate_id      TEXT NOT NULL,
      tool            TEXT NOT NULL,
      agent_id        TEXT NOT NULL,
      on_behalf_of    TEXT,
      status          TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'consumed', 'expired', 'withdrawn')),
      required_roles  TEXT NOT NULL,
      forbid_approvers TEXT NOT NULL,
      decision_id     TEXT NOT NULL,
      reasons         TEXT NOT NULL,
      context         TEXT NOT NULL,
      decided_by      TEXT,
      decided_role    TEXT,
      decided_note    TEXT,
      created_at      ${t.bigint} NOT NULL,
      expires_at      ${t.bigint} NOT NULL,
      decided_at      ${t.bigint},
      consumed_at     ${t.bigint}
    );
    INSERT INTO approvals_v2 (id, call_hash, mandate_id, tool, agent_id, on_behalf_of, status, required_roles, forbid_approvers,
      decision_id, reasons, context, decided_by, decided_role, decided_note, created_at, expires_at, decided_at, consumed_at)
    SELECT id, call_hash, mandate_id, tool, agent_id, on_behalf_of, status, required_roles, forbid_approvers,
      decision_id, reasons, context, decided_by, decided_role, decided_note, created_at, expires_at, decided_at, consumed_at
    FROM approvals;
    DROP TABLE approvals;
    ALTER TABLE approvals_v2 RENAME TO approvals;
    -- Duplicates left by two replicas racing the old check-then-insert: keep the newest pending one.
    UPDATE approvals SET status = 'expired'
      WHERE status = 'pending' AND EXISTS (
        SELECT 1 FROM approvals b
         WHERE b.mandate_id = approvals.mandate_id AND b.call_hash = approvals.call_hash AND b.status = 'pending'
           AND (b.created_at > approvals.created_at OR (b.created_at = approvals.created_at AND b.id > approvals.id))
      );
    CREATE INDEX approvals_call ON approvals (mandate_id, call_hash, created_at);
    CREATE INDEX approvals_status ON approvals (status, created_at);
    CREATE UNIQUE INDEX approvals_one_pending ON approvals (mandate_id, call_hash) WHERE status = 'pending';
  `,
};
