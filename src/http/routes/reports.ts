// Admin API: governance reports (/admin/v1/reports/<name>), the framework control map, and the one
// reviewed step that applies a suggested least-privilege ceiling.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AuthError, MandateError } from '../../errors/index.js';
import { applySuggestedCeiling } from '../../reports/apply.js';
import { buildReportContext } from '../../reports/context.js';
import { controlMap, controlsReport } from '../../reports/controls.js';
import { isReportName, reportNames, runReport } from '../../reports/index.js';
import { contentTypes, formats, render } from '../../reports/render.js';
import { ADMIN_PREFIX, type AppContext } from '../app.js';

/** An ISO 8601 time or epoch milliseconds. */
const time = z
  .string()
  .max(64)
  .transform((v, ctx) => {
    const t = /^\d{1,16}$/.test(v) ? Number(v) : Date.parse(v);
    if (!Number.isFinite(t)) {
      ctx.addIssue({ code: 'custom', message: 'an ISO 8601 time or epoch milliseconds' });
      return z.NEVER;
    }
    return t;
  });

const reportQuery = z.strictObject({
  format: z.enum(formats).default('json'),
  since: time.optional(),
  dormantDays: z.coerce.number().int().min(1).max(3650).optional(),
  framework: z.string().max(64).optional(),
  /** One agent (over-privilege: its argument ranges and suggested ceiling). */
  agentId: z.string().min(1).max(255).optional(),
});

const applyBody = z.strictObject({
  suggestionHash: z.string().regex(/^[0-9a-f]{64}$/),
  since: time.optional(),
});

export function registerReportRoutes(app: FastifyInstance, { broker }: AppContext): void {
  const base = `${ADMIN_PREFIX}reports`;
  const context = () =>
    buildReportContext({
      store: broker.store,
      config: broker.config,
      now: broker.clock.now(),
      policySet: broker.policies.current?.set,
      secrets: broker.secrets,
      fingerprint: (v) => broker.audit.redact(v),
    });

  app.get(
    base,
    { config: { access: { permission: 'audit:read' }, doc: { summary: 'List governance reports and frameworks' } } },
    async () => ({
      reports: [...reportNames, 'controls'],
      frameworks: controlMap.frameworks,
      controlMapVersion: controlMap.version,
    }),
  );

  app.get(
    `${base}/:name`,
    {
      config: { access: { permission: 'audit:read' }, doc: { summary: 'A governance report (json, csv, md or html)', query: reportQuery } },
    },
    async (req, reply) => {
      const { name } = req.params as { name: string };
      const q = reportQuery.parse(req.query);
      const params = {
        ...(q.since === undefined ? {} : { since: q.since }),
        ...(q.dormantDays === undefined ? {} : { dormantDays: q.dormantDays }),
        ...(q.agentId === undefined ? {} : { agentId: q.agentId }),
      };
      const ctx = await context();
      let report: Awaited<ReturnType<typeof runReport>>;
      if (name === 'controls')
        report = await controlsReport(ctx, { ...params, ...(q.framework === undefined ? {} : { framework: q.framework }) });
      else if (isReportName(name)) report = await runReport(name, ctx, params);
      else throw new MandateError('ERR_NOT_FOUND', 'no such report');
      if (q.format === 'json') return report;
      return reply
        .type(contentTypes[q.format])
        .header('content-disposition', `inline; filename="${report.name}.${q.format}"`)
        .send(render(report, q.format));
    },
  );

  app.post(
    `${base}/over-privilege/:agentId/apply`,
    {
      config: {
        access: { permission: 'agents:write' },
        doc: { summary: 'Apply the reviewed least-privilege ceiling suggested for an agent', body: applyBody },
      },
    },
    async (req) => {
      if (req.operator === undefined) throw new AuthError('ERR_AUTH_MISSING');
      const { agentId } = req.params as { agentId: string };
      const body = applyBody.parse(req.body);
      return applySuggestedCeiling(
        await context(),
        { agents: broker.agents, audit: broker.audit },
        {
          agentId,
          suggestionHash: body.suggestionHash,
          ...(body.since === undefined ? {} : { since: body.since }),
          actor: { type: 'operator', id: req.operator.id },
        },
      );
    },
  );
}
