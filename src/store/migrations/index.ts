// Versioned schema migrations, applied in order at start and by `mandate migrate`.
// Each migration is portable SQL produced per dialect; never edit one that has shipped.
import type { Dialect } from '../types.js';
import { m0001Principals } from './0001_principals.js';
import { m0002Changes } from './0002_changes.js';
import { m0010SigningKeys } from './0010_signing_keys.js';
import { m0011AgentProfiles } from './0011_agent_profiles.js';
import { m0012Mandates } from './0012_mandates.js';
import { m0013TokenState } from './0013_token_state.js';
import { m0014OAuthGrants } from './0014_oauth_grants.js';
import { m0015OAuthClients } from './0015_oauth_clients.js';
import { m0020BudgetUsage } from './0020_budget_usage.js';
import { m0030AuditLog } from './0030_audit_log.js';
import { m0040Upstreams } from './0040_upstreams.js';
import { m0041Approvals } from './0041_approvals.js';
import { m0042ApprovalWithdrawn } from './0042_approval_withdrawn.js';
import { m0043Tasks } from './0043_tasks.js';
import { m0050BudgetLeases } from './0050_budget_leases.js';
import { m0051Leases } from './0051_leases.js';
import { m0055HttpApiUpstreams } from './0055_http_api_upstreams.js';
import { m0056MandateRequest } from './0056_mandate_request.js';
import { m0060WebhookDeliveries } from './0060_webhook_deliveries.js';
import { m0061ReportIndexes } from './0061_report_indexes.js';
import { m0062DecisionIndex } from './0062_decision_index.js';
import { m0063AuditDecisionColumns } from './0063_audit_decision_columns.js';
import { m0066WebhookDeliveryClaims } from './0066_webhook_delivery_claims.js';

export interface Migration {
  readonly id: number;
  readonly name: string;
  readonly up: (sql: SqlTypes) => string;
}

/** Column types that differ between SQLite and PostgreSQL. */
export interface SqlTypes {
  readonly dialect: Dialect;
  readonly bigint: string;
  readonly blob: string;
  /** An auto-incrementing 64-bit primary key column definition. */
  readonly serialPk: string;
}

export function sqlTypes(dialect: Dialect): SqlTypes {
  return dialect === 'sqlite'
    ? { dialect, bigint: 'INTEGER', blob: 'BLOB', serialPk: 'INTEGER PRIMARY KEY AUTOINCREMENT' }
    : { dialect, bigint: 'BIGINT', blob: 'BYTEA', serialPk: 'BIGSERIAL PRIMARY KEY' };
}

export const migrations: readonly Migration[] = [
  m0001Principals,
  m0002Changes,
  m0010SigningKeys,
  m0011AgentProfiles,
  m0012Mandates,
  m0013TokenState,
  m0014OAuthGrants,
  m0015OAuthClients,
  m0020BudgetUsage,
  m0030AuditLog,
  m0040Upstreams,
  m0041Approvals,
  m0042ApprovalWithdrawn,
  m0043Tasks,
  m0050BudgetLeases,
  m0051Leases,
  m0055HttpApiUpstreams,
  m0056MandateRequest,
  m0060WebhookDeliveries,
  m0061ReportIndexes,
  m0062DecisionIndex,
  m0063AuditDecisionColumns,
  m0066WebhookDeliveryClaims,
];
