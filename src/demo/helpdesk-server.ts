// The demo helpdesk: a small, real MCP server (official SDK, stdio) behind the gateway in the demo
// and the tests. Its annotations are honest: reads are readOnlyHint, deleting a customer is
// destructiveHint, refunds are neither read-only nor idempotent.
//
// Run it: `node --import tsx src/demo/helpdesk-server.ts` (stdio). It needs HELPDESK_API_KEY in its
// environment, as a real helpdesk API would: the gateway injects it from the encrypted upstream
// credential, so agents never see it.
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { type Customer, demoCustomers, demoTickets, type Ticket } from './helpdesk-data.js';

/** Path of this file, so the gateway (and tests) can start it as a stdio upstream. */
export const HELPDESK_SERVER_PATH = fileURLToPath(import.meta.url);

/** Environment variable holding the helpdesk API key (the upstream credential). */
export const HELPDESK_KEY_ENV = 'HELPDESK_API_KEY';

export interface HelpdeskOptions {
  /** The API key this helpdesk was started with; without one every tool refuses. */
  readonly apiKey: string | undefined;
}

interface Refund {
  readonly id: string;
  readonly customerId: string;
  readonly amountCents: number;
  readonly reason: string;
  status: 'proposed' | 'executed';
}

const ok = (value: unknown): CallToolResult => ({
  content: [{ type: 'text', text: JSON.stringify(value) }],
  structuredContent: value as Record<string, unknown>,
});
const fail = (message: string): CallToolResult => ({ content: [{ type: 'text', text: message }], isError: true });

// Refund amounts are integer US cents; the catalog hint (x-mandate-amount) lets the console show
// 24900 as $249.00 (src/upstreams/catalog.ts).
const usdCents = z
  .number()
  .int()
  .positive()
  .max(10_000_000)
  .meta({ 'x-mandate-amount': { currency: 'USD', minorUnits: 2 } });

/** Builds the helpdesk MCP server with its own in-memory state (one per process). */
export function createHelpdeskServer(options: HelpdeskOptions): McpServer {
  const customers = new Map<string, Customer>(demoCustomers.map((c) => [c.id, c]));
  const tickets: Ticket[] = [...demoTickets];
  const refunds = new Map<string, Refund>();
  const server = new McpServer({ name: 'mandate-demo-helpdesk', version: '0.1.0' });

  // A real API rejects calls without its key; so does the demo, so credential injection is visible.
  const guarded =
    <A>(fn: (args: A) => CallToolResult) =>
    (args: A): CallToolResult =>
      options.apiKey === undefined || options.apiKey === '' ? fail(`helpdesk: not authenticated (${HELPDESK_KEY_ENV} missing)`) : fn(args);

  server.registerTool(
    'search_tickets',
    {
      description: 'Search support tickets by text, customer or status.',
      inputSchema: {
        query: z.string().max(200).optional().describe('text to look for in subject and body'),
        customerId: z.string().max(64).optional(),
        status: z.enum(['open', 'pending', 'closed']).optional(),
      },
      annotations: { title: 'Search tickets', readOnlyHint: true, openWorldHint: false },
    },
    guarded(({ query, customerId, status }) => {
      const q = query?.toLowerCase();
      const found = tickets.filter(
        (t) =>
          (q === undefined || `${t.subject} ${t.body}`.toLowerCase().includes(q)) &&
          (customerId === undefined || t.customerId === customerId) &&
          (status === undefined || t.status === status),
      );
      return ok({ tickets: found });
    }),
  );

  server.registerTool(
    'get_customer',
    {
      description: 'Read one customer record.',
      inputSchema: { customerId: z.string().max(64) },
      annotations: { title: 'Get customer', readOnlyHint: true, openWorldHint: false },
    },
    guarded(({ customerId }) => {
      const customer = customers.get(customerId);
      return customer === undefined ? fail(`no customer ${customerId}`) : ok({ customer });
    }),
  );

  server.registerTool(
    'propose_refund',
    {
      description: 'Draft a refund for a customer; nothing is paid until execute_refund.',
      inputSchema: {
        customerId: z.string().max(64),
        amountCents: usdCents,
        reason: z.string().max(500),
      },
      annotations: { title: 'Propose refund', readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    },
    guarded(({ customerId, amountCents, reason }) => {
      if (!customers.has(customerId)) return fail(`no customer ${customerId}`);
      const refund: Refund = { id: `R-${randomUUID().slice(0, 8)}`, customerId, amountCents, reason, status: 'proposed' };
      refunds.set(refund.id, refund);
      return ok({ refund });
    }),
  );

  server.registerTool(
    'execute_refund',
    {
      description: 'Pay a refund to the customer. Moves money; not idempotent.',
      inputSchema: {
        customerId: z.string().max(64),
        amountCents: usdCents,
        refundId: z.string().max(64).optional().describe('a proposed refund to execute'),
      },
      // Paying out adds a ledger entry and deletes nothing: not destructive in MCP's sense, but
      // never read-only and never idempotent.
      annotations: { title: 'Execute refund', readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
    },
    guarded(({ customerId, amountCents, refundId }) => {
      const customer = customers.get(customerId);
      if (customer === undefined) return fail(`no customer ${customerId}`);
      if (refundId !== undefined) {
        const proposed = refunds.get(refundId);
        if (proposed === undefined || proposed.customerId !== customerId || proposed.amountCents !== amountCents) {
          return fail(`refund ${refundId} does not match this customer and amount`);
        }
        if (proposed.status === 'executed') return fail(`refund ${refundId} was already executed`);
        proposed.status = 'executed';
      }
      customers.set(customerId, { ...customer, balanceCents: customer.balanceCents + amountCents });
      return ok({ executed: { customerId, amountCents, refundId: refundId ?? null }, balanceCents: customer.balanceCents + amountCents });
    }),
  );

  server.registerTool(
    'delete_customer',
    {
      description: 'Permanently delete a customer and their tickets.',
      inputSchema: { customerId: z.string().max(64) },
      annotations: { title: 'Delete customer', readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    },
    guarded(({ customerId }) => {
      if (!customers.delete(customerId)) return fail(`no customer ${customerId}`);
      for (let i = tickets.length - 1; i >= 0; i--) if (tickets[i]?.customerId === customerId) tickets.splice(i, 1);
      return ok({ deleted: customerId });
    }),
  );

  return server;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const server = createHelpdeskServer({ apiKey: process.env[HELPDESK_KEY_ENV] });
  await server.connect(new StdioServerTransport());
}
