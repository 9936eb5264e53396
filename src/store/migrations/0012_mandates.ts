// Mandates: task-scoped grants. `path` lists the ancestors (`/root/.../self/`) so a cascade finds
// every descendant with one prefix match on either backend.
import type { Migration } from './index.js';

export const m0012Mandates: Migration = {
  id: 12,
  name: 'mandates',
  up: (t) => `
    CREATE TABLE mandates (
      id            TEXT PRIMARY KEY,
      agent_id      TEXT NOT NULL,
      parent_id     TEXT,
      root_id       TEXT NOT NULL,
      path          TEXT NOT NULL,
      depth         INTEGER NOT NULL,
      on_behalf_of  TEXT,
      purpose       TEXT NOT NULL,
      task_type     TEXT NOT NULL,
      environment   TEXT NOT NULL,
      scope         TEXT NOT NULL,
      status        TEXT NOT NULL CHECK (status IN ('active', 'completed', 'failed', 'revoked', 'expired')),
      expires_at    ${t.bigint} NOT NULL,
      created_at    ${t.bigint} NOT NULL,
      ended_at      ${t.bigint},
      ended_by      TEXT,
      end_reason    TEXT
    );
    CREATE INDEX mandates_root ON mandates (root_id);
    CREATE INDEX mandates_path ON mandates (path);
    CREATE INDEX mandates_agent ON mandates (agent_id, created_at);
    CREATE INDEX mandates_active_expiry ON mandates (status, expires_at);
  `,
};
