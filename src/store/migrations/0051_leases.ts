// Leases: credentials obtained or minted for one upstream on behalf of one mandate (dynamic database
// roles, upstream tokens, OAuth tokens), revoked with the mandate. The secret is only ever sealed.
import type { Migration } from './index.js';

export const m0051Leases: Migration = {
  id: 51,
  name: 'leases',
  up: (t) => `
    CREATE TABLE leases (
      id               TEXT PRIMARY KEY,
      mandate_id       TEXT NOT NULL,
      upstream         TEXT NOT NULL,
      provider         TEXT NOT NULL,
      status           TEXT NOT NULL CHECK (status IN ('obtaining', 'active', 'revoking', 'revoked', 'failed')),
      handle           TEXT NOT NULL,
      details          TEXT NOT NULL,
      sealed           TEXT,
      secret_hmacs     TEXT,
      expires_at       ${t.bigint} NOT NULL,
      created_at       ${t.bigint} NOT NULL,
      obtained_at      ${t.bigint},
      revoked_at       ${t.bigint},
      revoke_reason    TEXT,
      claimed_at       ${t.bigint},
      attempts         INTEGER NOT NULL DEFAULT 0,
      last_error       TEXT
    );
    CREATE UNIQUE INDEX leases_one_live ON leases (mandate_id, upstream) WHERE status IN ('obtaining', 'active');
    CREATE INDEX leases_mandate ON leases (mandate_id);
    CREATE INDEX leases_open ON leases (status, expires_at);
  `,
};
