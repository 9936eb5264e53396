// Decision fields the governance reports group on, as real columns of audit_entries: outcome, tool,
// action class, environment and the determining policies (JSON text). The audit log writes them at
// append from the event it has just built (src/audit/event.ts columnsOf); they are derived data,
// never part of a Merkle leaf. Existing decision rows are backfilled here from their bodies, once,
// so the reports have one code path and never parse a body again; the backfill is one pass over
// the decision rows (measured in docs/governance.md). The decision index (0062) is rebuilt on the
// columns: on SQLite no JSON is parsed per append any more, and on both stores the reports read
// every value from the index alone (PostgreSQL: columns INCLUDEd, for index-only scans; `seq` too,
// so the newest decisions by outcome, the evidence queries, need no table scan).
import type { Migration } from './index.js';

const COLUMNS = ['outcome', 'tool', 'action_class', 'environment', 'policies'] as const;

export const m0063AuditDecisionColumns: Migration = {
  id: 63,
  name: 'audit_decision_columns',
  up: (t) => {
    const add = COLUMNS.map((c) => `ALTER TABLE audit_entries ADD COLUMN ${c} TEXT;`).join('\n');
    if (t.dialect === 'sqlite') {
      // A string value only (as the log writes it); the policies list as its JSON text.
      const str = (path: string) => `CASE json_type(body, '${path}') WHEN 'text' THEN json_extract(body, '${path}') END`;
      return `${add}
        UPDATE audit_entries SET
          outcome = ${str('$.event.data.outcome')},
          tool = ${str('$.event.data.tool')},
          action_class = ${str('$.event.data.actionClass')},
          environment = ${str('$.event.environment')},
          policies = CASE json_type(body, '$.event.data.policies') WHEN 'array' THEN json(json_extract(body, '$.event.data.policies')) END
        WHERE type = 'decision';
        DROP INDEX audit_decisions;
        CREATE INDEX audit_decisions ON audit_entries (type, created_at, outcome, tool, action_class, environment, approval_id, policies, mandate_id)
          WHERE type = 'decision';`;
    }
    // json (not jsonb): `#>` returns the value's text as the canonical body holds it.
    const str = (path: string) => `CASE json_typeof(j #> '{${path}}') WHEN 'string' THEN j #>> '{${path}}' END`;
    return `${add}
      UPDATE audit_entries a SET
        outcome = ${str('event,data,outcome')},
        tool = ${str('event,data,tool')},
        action_class = ${str('event,data,actionClass')},
        environment = ${str('event,environment')},
        policies = CASE json_typeof(j #> '{event,data,policies}') WHEN 'array' THEN (j #> '{event,data,policies}')::text END
      FROM (SELECT seq, body::json AS j FROM audit_entries WHERE type = 'decision') s
      WHERE a.seq = s.seq;
      DROP INDEX audit_decisions;
      CREATE INDEX audit_decisions ON audit_entries (created_at, mandate_id)
        INCLUDE (seq, outcome, tool, action_class, environment, approval_id, policies) WHERE type = 'decision';`;
  },
};
