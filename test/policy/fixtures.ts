// Shared fixtures of the policy tests: the DESIGN §7 helpdesk mandate, agent and catalog tools.
import type { CallerAgent, CallerMandate } from '../../src/oauth/caller.js';
import type { CatalogTool } from '../../src/policy/types.js';
import type { Scope } from '../../src/scope/scope.js';

export const NOW = Date.parse('2026-11-22T12:00:00Z');

export const agent: CallerAgent = {
  id: 'agent-support-1',
  actorType: 'agent',
  owner: 'team-support',
  environment: 'production',
  status: 'active',
};

export const helpdeskScope: Scope = {
  tools: [
    { tool: 'helpdesk.search_tickets' },
    { tool: 'helpdesk.get_customer', args: { customerId: { eq: 'C-1009' } } },
    { tool: 'helpdesk.propose_refund', args: { customerId: { eq: 'C-1009' }, amountCents: { max: 25000 } }, maxCalls: 3 },
    { tool: 'helpdesk.execute_refund', args: { customerId: { eq: 'C-1009' } }, sum: { arg: 'amountCents', max: 25000 } },
    { tool: 'helpdesk.delete_customer', args: { customerId: { eq: 'C-1009' } } },
  ],
  delegable: true,
};

let n = 0;
export function mandate(over: Partial<CallerMandate> = {}): CallerMandate {
  n += 1;
  return {
    id: `m-${n}`,
    agentId: agent.id,
    onBehalfOf: 'dana',
    purpose: 'Resolve ticket T-4821: customer reports a double charge',
    taskType: 'support.refund',
    environment: 'production',
    scope: helpdeskScope,
    depth: 0,
    status: 'active',
    expiresAt: NOW + 900_000,
    ...over,
  };
}

const classes: Record<string, CatalogTool['actionClass']> = {
  search_tickets: 'read',
  get_customer: 'read',
  propose_refund: 'propose',
  execute_refund: 'execute',
  delete_customer: 'destructive',
};

export function tool(name: string): CatalogTool {
  const short = name.split('.')[1] ?? name;
  return {
    name,
    upstream: 'helpdesk',
    actionClass: classes[short] ?? 'read',
    sensitivity: short === 'get_customer' ? 'confidential' : 'internal',
    sensitiveArgs: [],
  };
}
