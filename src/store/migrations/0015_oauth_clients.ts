// Interactive OAuth clients (authorization code + PKCE): clients registered by RFC 7591 dynamic
// registration (Client ID Metadata Documents are fetched, never stored here), and authorization
// requests from the moment a client sends the human to /oauth/authorize until its code is redeemed.
// Only hashes of the browser binding and of the code are stored (the consent form's CSRF token is
// derived from the browser binding, so it needs no column).
import type { Migration } from './index.js';

export const m0015OAuthClients: Migration = {
  id: 15,
  name: 'oauth_clients',
  up: (t) => `
    CREATE TABLE oauth_clients (
      client_id    TEXT PRIMARY KEY,
      metadata     TEXT NOT NULL,
      created_at   ${t.bigint} NOT NULL
    );
    CREATE TABLE oauth_authorizations (
      id              TEXT PRIMARY KEY,
      client_id       TEXT NOT NULL,
      redirect_uri    TEXT NOT NULL,
      code_challenge  TEXT NOT NULL,
      state           TEXT,
      resource        TEXT NOT NULL,
      scope           TEXT,
      browser_hash    TEXT NOT NULL,
      signin_verifier TEXT NOT NULL,
      status          TEXT NOT NULL CHECK (status IN ('pending', 'signed_in', 'approved', 'denied', 'redeemed', 'replayed')),
      human           TEXT,
      agent_id        TEXT,
      request         TEXT,
      code_hash       TEXT UNIQUE,
      mandate_id      TEXT,
      expires_at      ${t.bigint} NOT NULL,
      created_at      ${t.bigint} NOT NULL
    );
    CREATE INDEX oauth_authorizations_expiry ON oauth_authorizations (expires_at);
  `,
};
