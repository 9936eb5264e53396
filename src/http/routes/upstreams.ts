// Admin API: upstreams (MCP servers behind the gateway), their discovery, and the tool catalog.
// Credentials are write-only: requests may set them, responses only name what they inject.
import type { FastifyInstance } from 'fastify';
import { MandateError } from '../../errors/index.js';
import { toolOverrideInput, upstreamInput, upstreamPatch } from '../../upstreams/upstream.js';
import { ADMIN_PREFIX, type AppContext } from '../app.js';

export function registerUpstreamRoutes(app: FastifyInstance, { broker }: AppContext): void {
  const { registry } = broker.upstreams;
  const base = `${ADMIN_PREFIX}upstreams`;
  const id = (req: { params: unknown }) => (req.params as { id: string }).id;

  app.get(base, { config: { doc: { summary: 'List upstreams', permission: 'upstreams:read' } } }, async () => ({
    items: await registry.list(),
  }));

  app.post(
    base,
    { config: { doc: { summary: 'Register an upstream and discover its tools', permission: 'upstreams:write', body: upstreamInput } } },
    async (req, reply) => reply.code(201).send(await registry.create(upstreamInput.parse(req.body))),
  );

  app.get(`${base}/:id`, { config: { doc: { summary: 'Get an upstream', permission: 'upstreams:read' } } }, async (req) =>
    registry.require(id(req)),
  );

  app.patch(
    `${base}/:id`,
    {
      config: {
        doc: { summary: 'Update an upstream (credential, transport, defaults)', permission: 'upstreams:write', body: upstreamPatch },
      },
    },
    async (req) => registry.update(id(req), upstreamPatch.parse(req.body)),
  );

  app.delete(
    `${base}/:id`,
    { config: { doc: { summary: 'Remove an upstream and its tools', permission: 'upstreams:write' } } },
    async (req, reply) => {
      if (!(await registry.delete(id(req)))) throw new MandateError('ERR_NOT_FOUND', `no upstream "${id(req)}"`);
      return reply.code(204).send();
    },
  );

  app.post(
    `${base}/:id/refresh`,
    { config: { doc: { summary: 'List the upstream tools again and rebuild its catalog', permission: 'upstreams:write' } } },
    async (req) => registry.refresh((await registry.require(id(req))).id),
  );

  app.get(
    `${ADMIN_PREFIX}catalog`,
    { config: { doc: { summary: 'The effective tool catalog', permission: 'upstreams:read' } } },
    async () => ({
      items: await registry.tools(),
    }),
  );

  app.patch(
    `${ADMIN_PREFIX}catalog/:name`,
    {
      config: {
        doc: {
          summary: 'Override action class, sensitivity or sensitive arguments of a tool',
          permission: 'upstreams:write',
          body: toolOverrideInput,
        },
      },
    },
    async (req) => registry.override((req.params as { name: string }).name, toolOverrideInput.parse(req.body)),
  );
}
