// Budget leases (src/policy/budgets.ts): `calls`/`total` of budget_usage become what replicas have
// consumed and reported; `leased_calls`/`leased_total` what is leased to replicas and not yet
// reported or returned. The store keeps `consumed + leased <= budget` on every update.
import type { Migration } from './index.js';

export const m0050BudgetLeases: Migration = {
  id: 50,
  name: 'budget_leases',
  up: (t) => `
    ALTER TABLE budget_usage ADD COLUMN leased_calls ${t.bigint} NOT NULL DEFAULT 0;
    ALTER TABLE budget_usage ADD COLUMN leased_total ${t.dialect === 'sqlite' ? 'REAL' : 'DOUBLE PRECISION'} NOT NULL DEFAULT 0;
  `,
};
