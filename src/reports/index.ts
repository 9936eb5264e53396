// The governance reports by name: what the admin API (/admin/v1/reports/<name>) and the CLI
// (`mandate report <name>`) serve.
import { approvalsReport } from './approvals.js';
import { coverageReport } from './coverage.js';
import { credentialsReport } from './credentials.js';
import { delegationReport } from './delegation.js';
import { inventoryReport } from './inventory.js';
import { overPrivilegeReport } from './over-privilege.js';
import { ownershipReport } from './ownership.js';
import type { Report, ReportContext, ReportParams } from './types.js';

export type { Report, ReportContext, ReportParams } from './types.js';

export const reports = {
  inventory: inventoryReport,
  ownership: ownershipReport,
  'over-privilege': overPrivilegeReport,
  credentials: credentialsReport,
  approvals: approvalsReport,
  coverage: coverageReport,
  delegation: delegationReport,
} as const satisfies Record<string, (ctx: ReportContext, params?: ReportParams) => Promise<Report<object>>>;

export type ReportName = keyof typeof reports;

export const reportNames = Object.keys(reports) as ReportName[];

export function isReportName(v: unknown): v is ReportName {
  return typeof v === 'string' && Object.hasOwn(reports, v);
}

export function runReport(name: ReportName, ctx: ReportContext, params: ReportParams = {}): Promise<Report<object>> {
  return reports[name](ctx, params) as Promise<Report<object>>;
}
