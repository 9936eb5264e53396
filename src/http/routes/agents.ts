// Admin API: the agent registry (register, update, quarantine, disable, activate, delete).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { agentInput, agentPatch } from '../../agents/agent.js';
import { type AgentReferenceDirectory, checkAgentReferences } from '../../agents/references.js';
import { AuthError, MandateError } from '../../errors/index.js';
import type { Operator } from '../../identity/operators.js';
import { ADMIN_PREFIX, type AppContext } from '../app.js';

const listQuery = z.strictObject({
  after: z.string().max(255).optional(),
  limit: z.coerce.number().int().min(1).max(1000).optional(),
});

export function registerAgentRoutes(app: FastifyInstance, { broker }: AppContext): void {
  const { agents } = broker;
  const base = `${ADMIN_PREFIX}agents`;
  const directory: AgentReferenceDirectory = {
    principal: (id) => broker.principals.get(id),
    // As the catalog route lists it: upstreams registered without discovery (the demo's) first.
    toolNames: async () => {
      await broker.upstreams.discoverPending();
      return new Set((await broker.upstreams.registry.tools()).map((t) => t.name));
    },
  };
  const actor = (op: Operator | undefined) => {
    if (op === undefined) throw new AuthError('ERR_AUTH_MISSING');
    return [{ type: 'operator' as const, id: op.id }];
  };

  /** A quarantined or disabled agent loses every mandate it holds, with their descendants. */
  const revokeMandates = (id: string, op: Operator | undefined, status: string) =>
    broker.mandates.revokeAllOf(id, { type: 'operator', id: op?.id ?? 'unknown' }, `agent ${status}`);

  app.get(base, { config: { access: { permission: 'agents:read' }, doc: { summary: 'List agents', query: listQuery } } }, async (req) => {
    const q = listQuery.parse(req.query);
    const items = await agents.list(q);
    // A cursor only when another page exists: a full page asks for one more agent after it.
    const last = items[items.length - 1]?.principal.id;
    const more = last !== undefined && items.length === (q.limit ?? 100) && (await agents.list({ after: last, limit: 1 })).length > 0;
    return { items, ...(more ? { next: last } : {}) };
  });

  app.post(
    base,
    { config: { access: { permission: 'agents:write' }, doc: { summary: 'Register an agent', body: agentInput } } },
    async (req, reply) => {
      const input = agentInput.parse(req.body);
      await checkAgentReferences(input, directory);
      await broker.audit.append({
        type: 'admin.agent.registered',
        actors: actor(req.operator),
        data: { agentId: input.id, owner: input.owner, identity: input.identity },
      });
      const created = await agents.register(input).catch((err: unknown) => {
        if (err instanceof MandateError && err.code === 'ERR_STORE_CONFLICT')
          throw new MandateError('ERR_STORE_CONFLICT', 'an agent with this id or identity exists');
        throw err;
      });
      return reply.code(201).send(created);
    },
  );

  app.get(`${base}/:id`, { config: { access: { permission: 'agents:read' }, doc: { summary: 'Get an agent' } } }, async (req) =>
    agents.require((req.params as { id: string }).id),
  );

  app.patch(
    `${base}/:id`,
    { config: { access: { permission: 'agents:write' }, doc: { summary: 'Update an agent', body: agentPatch } } },
    async (req) => {
      const id = (req.params as { id: string }).id;
      const patch = agentPatch.parse(req.body);
      await agents.require(id);
      await checkAgentReferences(patch, directory);
      await broker.audit.append({
        type: 'admin.agent.updated',
        actors: actor(req.operator),
        data: { agentId: id, fields: Object.keys(patch) },
      });
      const updated = await agents.update(id, patch);
      if (patch.status !== undefined && patch.status !== 'active') await revokeMandates(id, req.operator, patch.status);
      return updated;
    },
  );

  for (const [verb, status] of [
    ['quarantine', 'quarantined'],
    ['disable', 'disabled'],
    ['activate', 'active'],
  ] as const) {
    app.post(
      `${base}/:id/${verb}`,
      { config: { access: { permission: 'agents:write' }, doc: { summary: `Set the agent ${status}` } } },
      async (req) => {
        const id = (req.params as { id: string }).id;
        await agents.require(id);
        await broker.audit.append({ type: `admin.agent.${status}`, actors: actor(req.operator), data: { agentId: id } });
        const updated = await agents.setStatus(id, status);
        if (status !== 'active') await revokeMandates(id, req.operator, status);
        return updated;
      },
    );
  }

  app.delete(
    `${base}/:id`,
    { config: { access: { permission: 'agents:write' }, doc: { summary: 'Delete an agent' } } },
    async (req, reply) => {
      const id = (req.params as { id: string }).id;
      await agents.require(id);
      await broker.audit.append({ type: 'admin.agent.deleted', actors: actor(req.operator), data: { agentId: id } });
      if (!(await agents.delete(id))) throw new MandateError('ERR_NOT_FOUND', `no agent "${id}"`);
      return reply.code(204).send();
    },
  );
}
