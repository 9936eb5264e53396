// The change feed: one row per state change that in-memory caches on every replica must apply.
import type { Migration } from './index.js';

export const m0002Changes: Migration = {
  id: 2,
  name: 'changes',
  up: (t) => `
    CREATE TABLE changes (
      seq         ${t.serialPk},
      topic       TEXT NOT NULL,
      key         TEXT NOT NULL,
      data        TEXT NOT NULL DEFAULT '{}',
      created_at  ${t.bigint} NOT NULL
    );
  `,
};
