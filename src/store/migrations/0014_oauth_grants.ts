// State of the OAuth grants that keep one mandate across many access tokens: refresh tokens (only
// their SHA-256 is stored; rotated on every use, a reused one ends its mandate), the standing
// client-credentials grant of an agent (which live mandate a repeated client_credentials request
// continues), and the task templates registered on agent profiles.
import type { Migration } from './index.js';

export const m0014OAuthGrants: Migration = {
  id: 14,
  name: 'oauth_grants',
  up: (t) => `
    CREATE TABLE refresh_tokens (
      token_hash  TEXT PRIMARY KEY,
      mandate_id  TEXT NOT NULL,
      binding     TEXT NOT NULL,
      generation  INTEGER NOT NULL,
      status      TEXT NOT NULL CHECK (status IN ('active', 'used', 'superseded')),
      expires_at  ${t.bigint} NOT NULL,
      created_at  ${t.bigint} NOT NULL,
      used_at     ${t.bigint}
    );
    CREATE INDEX refresh_tokens_mandate ON refresh_tokens (mandate_id, generation);
    CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
    CREATE UNIQUE INDEX refresh_tokens_one_active ON refresh_tokens (mandate_id) WHERE status = 'active';
    CREATE TABLE client_grants (
      agent_id     TEXT NOT NULL,
      request_key  TEXT NOT NULL,
      mandate_id   TEXT NOT NULL,
      expires_at   ${t.bigint} NOT NULL,
      PRIMARY KEY (agent_id, request_key)
    );
    ALTER TABLE agent_profiles ADD COLUMN templates TEXT NOT NULL DEFAULT '{}';
  `,
};
