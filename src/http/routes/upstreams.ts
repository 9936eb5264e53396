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

  app.get(base, { config: { access: { permission: 'upstreams:read' }, doc: { summary: 'List upstreams' } } }, async () => ({
    items: await registry.list(),
  }));

  app.post(
    base,
    {
      config: {
        access: { permission: 'upstreams:write' },
        doc: { summary: 'Register an upstream and discover its tools', body: upstreamInput },
      },
    },
    async (req, reply) => reply.code(201).send(await registry.create(upstreamInput.parse(req.body))),
  );

  app.get(`${base}/:id`, { config: { access: { permission: 'upstreams:read' }, doc: { summary: 'Get an upstream' } } }, async (req) =>
    registry.require(id(req)),
  );

  app.patch(
    `${base}/:id`,
    {
      config: {
        access: { permission: 'upstreams:write' },
        doc: { summary: 'Update an upstream (credential, transport, defaults)', body: upstreamPatch },
      },
    },
    async (req) => registry.update(id(req), upstreamPatch.parse(req.body)),
  );

  app.delete(
    `${base}/:id`,
    { config: { access: { permission: 'upstreams:write' }, doc: { summary: 'Remove an upstream and its tools' } } },
    async (req, reply) => {
      if (!(await registry.delete(id(req)))) throw new MandateError('ERR_NOT_FOUND', `no upstream "${id(req)}"`);
      return reply.code(204).send();
    },
  );

  app.post(
    `${base}/:id/refresh`,
    { config: { access: { permission: 'upstreams:write' }, doc: { summary: 'List the upstream tools again and rebuild its catalog' } } },
    async (req) => registry.refresh((await registry.require(id(req))).id),
  );

  app.get(
    `${ADMIN_PREFIX}catalog`,
    { config: { access: { permission: 'upstreams:read' }, doc: { summary: 'The effective tool catalog' } } },
    async () => {
      // Upstreams registered without discovery (the demo's) are listed first, as the gateway does on
      // its first use: an operator reading the catalog must see every tool a ceiling may name.
      await broker.upstreams.discoverPending();
      return { items: await registry.tools() };
    },
  );

  app.patch(
    `${ADMIN_PREFIX}catalog/:name`,
    {
      config: {
        access: { permission: 'upstreams:write' },
        doc: {
          summary: 'Override action class, sensitivity or sensitive arguments of a tool',
          body: toolOverrideInput,
        },
      },
    },
    async (req) => registry.override((req.params as { name: string }).name, toolOverrideInput.parse(req.body)),
  );
}
