// Decision events by time with the fields governance reports group on (outcome, tool, action class,
// environment, approval, determining policies, mandate). On SQLite an index on JSON expressions lets
// the reports read those values from the index instead of parsing a million event bodies; it costs
// one JSON parse per decision appended. PostgreSQL gets a plain partial index: its expression values
// cannot serve index-only scans, and a jsonb cast per append would tax the hot path for nothing.
import type { Migration } from './index.js';

/** The SQLite index name the reports name in `INDEXED BY` (a missing index then fails loudly). */
export const DECISION_INDEX = 'audit_decisions';

export const m0062DecisionIndex: Migration = {
  id: 62,
  name: 'decision_index',
  up: (t) =>
    t.dialect === 'sqlite'
      ? `CREATE INDEX ${DECISION_INDEX} ON audit_entries (type, created_at,
           json_extract(body, '$.event.data.outcome'), json_extract(body, '$.event.data.tool'),
           json_extract(body, '$.event.data.actionClass'), json_extract(body, '$.event.environment'),
           json_extract(body, '$.event.data.approvalId'), json_extract(body, '$.event.data.policies'), mandate_id)
         WHERE type = 'decision';`
      : `CREATE INDEX ${DECISION_INDEX} ON audit_entries (created_at, mandate_id) WHERE type = 'decision';`,
};
