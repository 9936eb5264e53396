// Admin API: principals (humans, services, agents) and the caller's own identity.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { operatorActor } from '../../audit/actors.js';
import { MandateError } from '../../errors/index.js';
import { actorTypes, principalInput, principalPatch } from '../../principals/principal.js';
import { ADMIN_PREFIX, type AppContext } from '../app.js';

const listQuery = z.strictObject({
  actorType: z.enum(actorTypes).optional(),
  after: z.string().max(255).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

export function registerPrincipalRoutes(app: FastifyInstance, { broker }: AppContext): void {
  const { principals, audit } = broker;
  // Audit before acting (fail closed): the change is made only once its event is durable; a failed
  // append answers ERR_AUDIT_UNAVAILABLE and changes nothing. Requests that cannot succeed (exists,
  // not found, invalid) are refused before the append, so the log does not record them as changes.
  const audited = (req: { operator?: { id: string } }, type: string, data: Record<string, unknown>) =>
    audit.append({ type, actors: [operatorActor(req.operator)], data });
  const base = `${ADMIN_PREFIX}principals`;

  app.get(
    `${ADMIN_PREFIX}whoami`,
    { config: { access: { permission: 'self:read' }, doc: { summary: 'The authenticated operator' } } },
    async (req) => req.operator,
  );

  app.get(
    base,
    { config: { access: { permission: 'principals:read' }, doc: { summary: 'List principals', query: listQuery } } },
    async (req) => {
      const items = await principals.list(listQuery.parse(req.query));
      return { items, next: items.length > 0 ? items[items.length - 1]?.id : undefined };
    },
  );

  app.post(
    base,
    { config: { access: { permission: 'principals:write' }, doc: { summary: 'Create a principal', body: principalInput } } },
    async (req, reply) => {
      const input = principalInput.parse(req.body);
      const conflict = () => new MandateError('ERR_STORE_CONFLICT', 'a principal with this id exists');
      if ((await principals.get(input.id)) !== undefined) throw conflict();
      await audited(req, 'admin.principal.created', { principalId: input.id, principal: input });
      const created = await principals.create(input).catch((err: unknown) => {
        throw err instanceof MandateError && err.code === 'ERR_STORE_CONFLICT' ? conflict() : err;
      });
      return reply.code(201).send(created);
    },
  );

  app.get(`${base}/:id`, { config: { access: { permission: 'principals:read' }, doc: { summary: 'Get a principal' } } }, async (req) =>
    principals.require((req.params as { id: string }).id),
  );

  app.patch(
    `${base}/:id`,
    { config: { access: { permission: 'principals:write' }, doc: { summary: 'Update a principal', body: principalPatch } } },
    async (req) => {
      const id = (req.params as { id: string }).id;
      const patch = principalPatch.parse(req.body);
      await principals.require(id);
      await audited(req, 'admin.principal.updated', { principalId: id, patch });
      return principals.update(id, patch);
    },
  );

  app.delete(
    `${base}/:id`,
    { config: { access: { permission: 'principals:write' }, doc: { summary: 'Delete a principal' } } },
    async (req, reply) => {
      const id = (req.params as { id: string }).id;
      await principals.require(id);
      await audited(req, 'admin.principal.deleted', { principalId: id });
      if (!(await principals.delete(id))) throw new MandateError('ERR_NOT_FOUND', `no principal "${id}"`);
      return reply.code(204).send();
    },
  );
}
