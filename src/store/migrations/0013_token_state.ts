// Token state that must hold across replicas: individually revoked access tokens (RFC 7009) and
// seen DPoP proof ids (RFC 9449 §11.1 replay). Rows are dropped once their expiry has passed.
import type { Migration } from './index.js';

export const m0013TokenState: Migration = {
  id: 13,
  name: 'token_state',
  up: (t) => `
    CREATE TABLE revoked_tokens (
      jti         TEXT PRIMARY KEY,
      mandate_id  TEXT NOT NULL,
      expires_at  ${t.bigint} NOT NULL
    );
    CREATE INDEX revoked_tokens_expiry ON revoked_tokens (expires_at);
    CREATE TABLE dpop_proofs (
      proof_key   TEXT PRIMARY KEY,
      expires_at  ${t.bigint} NOT NULL
    );
    CREATE INDEX dpop_proofs_expiry ON dpop_proofs (expires_at);
  `,
};
