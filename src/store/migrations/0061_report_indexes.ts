// Indexes for the governance reports (src/reports/): audit events by type and time (decision
// windows, evidence queries), newest event per mandate (last activity), and delegation fan-out.
import type { Migration } from './index.js';

export const m0061ReportIndexes: Migration = {
  id: 61,
  name: 'report_indexes',
  up: () => `
    CREATE INDEX audit_entries_type_time ON audit_entries (type, created_at);
    CREATE INDEX audit_entries_mandate_time ON audit_entries (mandate_id, created_at) WHERE mandate_id IS NOT NULL;
    CREATE INDEX mandates_parent ON mandates (parent_id) WHERE parent_id IS NOT NULL;
    CREATE INDEX mandates_created ON mandates (created_at);
    CREATE INDEX approvals_created ON approvals (created_at);
  `,
};
