// The audit log: RFC 9162 Merkle leaves (canonical event bytes), the tile-level node hashes, the
// tree head that serializes appends (one row, locked per batch), signed checkpoints, and sealed
// per-log material (HMAC salt, checkpoint signing key).
import type { Migration } from './index.js';

export const m0030AuditLog: Migration = {
  id: 30,
  name: 'audit_log',
  up: (t) => `
    CREATE TABLE audit_entries (
      seq          ${t.bigint} PRIMARY KEY,
      type         TEXT NOT NULL,
      mandate_id   TEXT,
      decision_id  TEXT,
      approval_id  TEXT,
      created_at   ${t.bigint} NOT NULL,
      body         TEXT NOT NULL,
      leaf_hash    ${t.blob} NOT NULL
    );
    CREATE INDEX audit_entries_mandate ON audit_entries (mandate_id) WHERE mandate_id IS NOT NULL;
    CREATE INDEX audit_entries_decision ON audit_entries (decision_id) WHERE decision_id IS NOT NULL;
    CREATE INDEX audit_entries_approval ON audit_entries (approval_id) WHERE approval_id IS NOT NULL;
    CREATE TABLE audit_nodes (
      level  INTEGER NOT NULL,
      idx    ${t.bigint} NOT NULL,
      hash   ${t.blob} NOT NULL,
      PRIMARY KEY (level, idx)
    );
    CREATE TABLE audit_head (
      id          INTEGER PRIMARY KEY CHECK (id = 1),
      size        ${t.bigint} NOT NULL,
      frontier    ${t.blob} NOT NULL,
      updated_at  ${t.bigint} NOT NULL
    );
    INSERT INTO audit_head (id, size, frontier, updated_at) VALUES (1, 0, ${t.dialect === 'sqlite' ? "X''" : "decode('', 'hex')"}, 0);
    CREATE TABLE audit_checkpoints (
      size        ${t.bigint} PRIMARY KEY,
      root        ${t.blob} NOT NULL,
      note        TEXT NOT NULL,
      created_at  ${t.bigint} NOT NULL
    );
    CREATE TABLE audit_meta (
      name   TEXT PRIMARY KEY,
      value  TEXT NOT NULL
    );
  `,
};
