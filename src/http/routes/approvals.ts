// Admin API: approvals. Humans list what waits for them, see the exact call (sensitive arguments
// masked) with its full context, and approve or deny it. Who may decide a given approval is
// checked by the approval itself (required roles, never an agent of the chain, not the
// on-behalf-of human when configured); the permission here only requires an authenticated operator.

import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { approvalStatuses } from '../../approvals/approval.js';
import { MandateError } from '../../errors/index.js';
import type { Operator } from '../../identity/operators.js';
import { ADMIN_PREFIX, type AppContext } from '../app.js';

const listQuery = z.strictObject({
  status: z.enum(approvalStatuses).optional(),
  mandateId: z.string().max(255).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});
const approveBody = z.strictObject({
  role: z.string().min(1).max(64).optional().describe('the role you approve in; defaults to the first of yours that is required'),
  note: z.string().max(2000).optional(),
});
const denyBody = z.strictObject({ note: z.string().max(2000).optional() });

export function registerApprovalRoutes(app: FastifyInstance, { broker }: AppContext): void {
  const { approvals } = broker;
  const base = `${ADMIN_PREFIX}approvals`;
  const id = (req: { params: unknown }) => (req.params as { id: string }).id;
  const approver = (req: { operator?: Operator }) => {
    if (req.operator === undefined) throw new MandateError('ERR_AUTH_MISSING');
    return req.operator;
  };

  app.get(
    base,
    { config: { access: { permission: 'approvals:read' }, doc: { summary: 'List approvals (newest first)', query: listQuery } } },
    async (req) => {
      const q = listQuery.parse(req.query);
      const items = await approvals.list({
        ...(q.status === undefined ? {} : { status: q.status }),
        ...(q.mandateId === undefined ? {} : { mandateId: q.mandateId }),
        ...(q.limit === undefined ? {} : { limit: q.limit }),
      });
      return { items: items.map((a) => ({ ...a, url: approvals.consoleUrl(a.id) })) };
    },
  );

  app.get(
    `${base}/:id`,
    { config: { access: { permission: 'approvals:read' }, doc: { summary: 'Show one approval with its full context' } } },
    async (req) => {
      const a = await approvals.require(id(req));
      return { ...a, url: approvals.consoleUrl(a.id) };
    },
  );

  app.post(
    `${base}/:id/approve`,
    {
      config: {
        access: { permission: 'approvals:decide' },
        doc: { summary: 'Approve exactly this call (single use, until it expires)', body: approveBody },
      },
    },
    async (req) => {
      const body = approveBody.parse(req.body ?? {});
      return approvals.decide(id(req), approver(req), {
        approve: true,
        ...(body.role === undefined ? {} : { role: body.role }),
        ...(body.note === undefined ? {} : { note: body.note }),
      });
    },
  );

  app.post(
    `${base}/:id/deny`,
    { config: { access: { permission: 'approvals:decide' }, doc: { summary: 'Deny this call', body: denyBody } } },
    async (req) => {
      const body = denyBody.parse(req.body ?? {});
      return approvals.decide(id(req), approver(req), { approve: false, ...(body.note === undefined ? {} : { note: body.note }) });
    },
  );
}
