// Approvals: a human's yes/no for one exact call, bound to the SHA-256 of the canonical call.
// `consumed_at` is set by one conditional UPDATE so an approval is used at most once across replicas.
import type { Migration } from './index.js';

export const m0041Approvals: Migration = {
  id: 41,
  name: 'approvals',
  up: (t) => `
    CREATE TABLE approvals (
      id              TEXT PRIMARY KEY,
      call_hash       TEXT NOT NULL,
      mandate_id      TEXT NOT NULL,
      tool            TEXT NOT NULL,
      agent_id        TEXT NOT NULL,
      on_behalf_of    TEXT,
      status          TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'consumed', 'expired')),
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
    CREATE INDEX approvals_call ON approvals (mandate_id, call_hash, status);
    CREATE INDEX approvals_status ON approvals (status, created_at);
  `,
};
