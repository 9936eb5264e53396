// Upstreams (MCP servers behind the gateway) with their sealed credentials, the tool catalog
// discovered from them, and operator overrides that survive re-discovery.
import type { Migration } from './index.js';

export const m0040Upstreams: Migration = {
  id: 40,
  name: 'upstreams',
  up: (t) => `
    CREATE TABLE upstreams (
      id                  TEXT PRIMARY KEY,
      display_name        TEXT NOT NULL,
      transport           TEXT NOT NULL,
      isolation           TEXT NOT NULL CHECK (isolation IN ('mandate', 'shared')),
      default_sensitivity TEXT NOT NULL,
      timeout_ms          ${t.bigint},
      credential_sealed   TEXT,
      credential_names    TEXT,
      discovered_at       ${t.bigint},
      discovery_error     TEXT,
      created_at          ${t.bigint} NOT NULL,
      updated_at          ${t.bigint} NOT NULL
    );
    CREATE TABLE catalog_tools (
      name           TEXT PRIMARY KEY,
      upstream       TEXT NOT NULL,
      upstream_tool  TEXT NOT NULL,
      title          TEXT,
      description    TEXT,
      input_schema   TEXT NOT NULL,
      annotations    TEXT NOT NULL,
      discovered_at  ${t.bigint} NOT NULL
    );
    CREATE INDEX catalog_tools_upstream ON catalog_tools (upstream);
    CREATE TABLE catalog_overrides (
      name            TEXT PRIMARY KEY,
      action_class    TEXT,
      sensitivity     TEXT,
      sensitive_args  TEXT,
      updated_at      ${t.bigint} NOT NULL
    );
  `,
};
