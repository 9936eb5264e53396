// Admin API of org policy: what is loaded, and reload from the policy directory (announced to
// every replica on the change feed). A set that fails validation is refused as a whole.
import type { FastifyInstance } from 'fastify';
import { MandateError } from '../../errors/index.js';
import { formatProblems } from '../../policy/wiring.js';
import { ADMIN_PREFIX, type AppContext } from '../app.js';

export function registerPolicyRoutes(app: FastifyInstance, { broker }: AppContext): void {
  const base = `${ADMIN_PREFIX}policies`;

  app.get(base, { config: { access: { permission: 'policy:read' }, doc: { summary: 'The active org policy set' } } }, async () => {
    const bundle = broker.policies.current;
    return {
      version: bundle?.set.version,
      engine: bundle?.set.engine,
      engineNotices: bundle?.notices ?? [],
      loadedAt: bundle === undefined ? undefined : new Date(bundle.loadedAt).toISOString(),
      policies: bundle?.set.policies.map(({ id, file, line, effect }) => ({ id, file, line, effect })) ?? [],
      entities: bundle?.entities.size ?? 0,
      lastProblems: broker.policies.lastProblems,
    };
  });

  app.post(
    `${base}/reload`,
    { config: { access: { permission: 'policy:write' }, doc: { summary: 'Reload org policy from the policy directory' } } },
    async (req) => {
      const report = await broker.policies.reload(broker.store, broker.changes);
      if (!report.ok) {
        throw new MandateError('ERR_POLICY_INVALID', `the new policy set was refused:\n${formatProblems(report.problems)}`, {
          details: { problems: report.problems, serving: report.serving },
        });
      }
      // The set is already serving here (a reload is idempotent: it converges on the directory),
      // so an audit failure is reported to the caller rather than undoing it.
      await broker.audit.append({
        type: 'admin.policy.reloaded',
        actors: [{ type: 'operator', id: req.operator?.id ?? 'unknown' }],
        data: { version: report.version, policies: report.policies, changed: report.changed },
      });
      return report;
    },
  );
}
