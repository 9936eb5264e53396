// Principals: humans, services and agents. Agents carry owner, environment and status (DESIGN §2).
import type { Migration } from './index.js';

export const m0001Principals: Migration = {
  id: 1,
  name: 'principals',
  up: (t) => `
    CREATE TABLE principals (
      id            TEXT PRIMARY KEY,
      actor_type    TEXT NOT NULL CHECK (actor_type IN ('human', 'service', 'agent')),
      display_name  TEXT NOT NULL,
      owner         TEXT,
      environment   TEXT,
      status        TEXT NOT NULL CHECK (status IN ('active', 'quarantined', 'disabled')),
      roles         TEXT NOT NULL DEFAULT '[]',
      attributes    TEXT NOT NULL DEFAULT '{}',
      created_at    ${t.bigint} NOT NULL,
      updated_at    ${t.bigint} NOT NULL,
      CHECK (actor_type <> 'agent' OR owner IS NOT NULL)
    );
    CREATE INDEX principals_actor_type ON principals (actor_type);
    CREATE INDEX principals_owner ON principals (owner);
  `,
};
