// Agent profiles: the identity binding and limits of principals with actorType 'agent'.
// No foreign key to principals (another domain's table); the registry keeps them in step.
import type { Migration } from './index.js';

export const m0011AgentProfiles: Migration = {
  id: 11,
  name: 'agent_profiles',
  up: (t) => `
    CREATE TABLE agent_profiles (
      agent_id                TEXT PRIMARY KEY,
      identity_key            TEXT NOT NULL UNIQUE,
      ceiling                 TEXT NOT NULL,
      task_types              TEXT NOT NULL DEFAULT '[]',
      max_ttl_seconds         INTEGER NOT NULL,
      dpop_required           INTEGER NOT NULL DEFAULT 0,
      may_receive_delegation  INTEGER NOT NULL DEFAULT 0,
      created_at              ${t.bigint} NOT NULL,
      updated_at              ${t.bigint} NOT NULL
    );
  `,
};
