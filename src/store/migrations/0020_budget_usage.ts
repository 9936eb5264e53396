// Budget counters of mandate grants (maxCalls, numeric sums), one row per (mandate, grant index).
// A call under a delegated mandate counts against the matching grant of every ancestor too.
import type { Migration } from './index.js';

export const m0020BudgetUsage: Migration = {
  id: 20,
  name: 'budget_usage',
  up: (t) => `
    CREATE TABLE budget_usage (
      mandate_id   TEXT NOT NULL,
      grant_index  INTEGER NOT NULL,
      calls        ${t.bigint} NOT NULL DEFAULT 0,
      total        ${t.dialect === 'sqlite' ? 'REAL' : 'DOUBLE PRECISION'} NOT NULL DEFAULT 0,
      PRIMARY KEY (mandate_id, grant_index)
    );
  `,
};
