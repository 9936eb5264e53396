// Token signing keys: Ed25519, private half sealed by the SecretBox, public half published as JWKS.
import type { Migration } from './index.js';

export const m0010SigningKeys: Migration = {
  id: 10,
  name: 'signing_keys',
  up: (t) => `
    CREATE TABLE signing_keys (
      kid             TEXT PRIMARY KEY,
      alg             TEXT NOT NULL,
      public_jwk      TEXT NOT NULL,
      private_sealed  TEXT NOT NULL,
      created_at      ${t.bigint} NOT NULL,
      retired_at      ${t.bigint}
    );
  `,
};
