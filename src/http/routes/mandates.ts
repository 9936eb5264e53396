// Admin API: an orchestrator (or an admin) opens a mandate for an agent from a task template plus
// parameters and the human's request text, and lists the loaded templates. The agent then takes a
// token for the opened mandate with its own identity proof: token exchange or client credentials
// with `authorization_details=[{"type":"mandate","mandate_id":"mnd_…"}]` (docs/mandates.md).
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AuthError, MandateError } from '../../errors/index.js';
import { bindingOf } from '../../oauth/refresh-tokens.js';
import { templateRequestSchema } from '../../templates/resolve.js';
import { ADMIN_PREFIX, type AppContext } from '../app.js';

/** The body of POST /admin/v1/mandates: a template request (as in `authorization_details`) for an agent. */
export const openMandateBody = templateRequestSchema.omit({ type: true }).extend({
  agentId: z.string().min(1).max(255),
  /** The human the agent will act for: an active human principal. */
  onBehalfOf: z.string().min(1).max(255).optional(),
});

export function registerMandateRoutes(app: FastifyInstance, { broker }: AppContext): void {
  app.post(
    `${ADMIN_PREFIX}mandates`,
    {
      config: {
        access: { permission: 'mandates:open' },
        doc: { summary: 'Open a mandate for an agent from a task template, its parameters and the request text', body: openMandateBody },
      },
    },
    async (req, reply) => {
      const operator = req.operator;
      if (operator === undefined) throw new AuthError('ERR_AUTH_MISSING');
      const { agentId, onBehalfOf, ...wanted } = openMandateBody.parse(req.body);
      const agent = await broker.agents.get(agentId);
      if (agent === undefined) throw new MandateError('ERR_NOT_FOUND', `no agent "${agentId}"`);
      if (onBehalfOf !== undefined) {
        // Naming a human is a claim of their authority: an orchestrator may name only itself (the
        // human signed in as the operator); only an admin may name someone else.
        if (onBehalfOf !== operator.id && !operator.roles.includes('admin')) {
          throw new AuthError('ERR_FORBIDDEN', 'only an admin may open a mandate on behalf of another human');
        }
        const human = await broker.principals.get(onBehalfOf);
        if (human === undefined || human.actorType !== 'human' || human.status !== 'active') {
          throw new MandateError('ERR_VALIDATION', `onBehalfOf "${onBehalfOf}" is not an active human principal`, {
            details: { path: 'onBehalfOf' },
          });
        }
      }
      const request = broker.mandates.fromTemplate({ type: 'mandate', ...wanted }, agent.principal.environment);
      // The same checks as a token request: status, task types, environment, lifetime, ceiling.
      const mandate = broker.mandates.prepareOpen(agent, request, onBehalfOf);
      // Its tokens go to the agent's own identity (or, at its first token, its DPoP key): the
      // refresh family is bound to the identity now, so the agent can take the mandate over.
      const refresh = broker.identity.refreshTokens.start(mandate.id, bindingOf.identity(agent.identityKey), mandate.expiresAt);
      await broker.mandates.commitOpen(mandate, { openedBy: { type: 'operator', id: operator.id } }, refresh.write);
      return reply.code(201).send({ ...mandate, take: { type: 'mandate', mandate_id: mandate.id } });
    },
  );

  app.get(
    `${ADMIN_PREFIX}templates`,
    { config: { access: { permission: 'policy:read' }, doc: { summary: 'The task templates loaded with the org policy' } } },
    async () => ({ items: broker.policies.current?.templates.list() ?? [] }),
  );
}
