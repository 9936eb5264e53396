// Seed data of the demo helpdesk: a handful of customers and tickets for the refund scenario
// (DESIGN §7: ticket T-4821, customer C-1009 charged twice).

export interface Customer {
  readonly id: string;
  readonly name: string;
  readonly email: string;
  readonly plan: 'free' | 'pro' | 'enterprise';
  readonly balanceCents: number;
}

export interface Ticket {
  readonly id: string;
  readonly customerId: string;
  readonly subject: string;
  readonly status: 'open' | 'pending' | 'closed';
  readonly body: string;
}

export const demoCustomers: readonly Customer[] = [
  { id: 'C-1009', name: 'Dana Whitfield', email: 'dana@example.com', plan: 'pro', balanceCents: 0 },
  { id: 'C-1010', name: 'Ravi Menon', email: 'ravi@example.com', plan: 'enterprise', balanceCents: 125_000 },
  { id: 'C-1011', name: 'Lea Novak', email: 'lea@example.com', plan: 'free', balanceCents: 0 },
];

export const demoTickets: readonly Ticket[] = [
  {
    id: 'T-4821',
    customerId: 'C-1009',
    subject: 'Charged twice for March',
    status: 'open',
    body: 'My card was charged 249.00 twice on March 3rd. Please refund the duplicate.',
  },
  { id: 'T-4822', customerId: 'C-1010', subject: 'Invoice address change', status: 'pending', body: 'Please update our billing address.' },
  { id: 'T-4823', customerId: 'C-1011', subject: 'Cannot log in', status: 'closed', body: 'Resolved by password reset.' },
];
