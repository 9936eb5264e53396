// OpenID AuthZEN Authorization API 1.0: PDP metadata, access evaluation(s) and search, bound to
// the domain PDP in src/policy/authzen.ts. A deny is 200 `{decision:false}`; malformed requests
// are 400; unknown fields are ignored; X-Request-ID is echoed as sent.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  AuthzenPdp,
  actionSearchSchema,
  evaluationRequestSchema,
  evaluationsRequestSchema,
  parseBody,
  resourceSearchSchema,
  subjectSearchSchema,
} from '../../policy/authzen.js';
import { authorizeOperator } from '../admin-policy.js';
import type { AppContext } from '../app.js';

// AuthZEN lets the PEP choose any string as request id; echo it when it is a safe header value.
const ECHOABLE = /^[\x21-\x7e][\x20-\x7e]{0,255}$/;

export function registerAuthzenRoutes(app: FastifyInstance, { broker }: AppContext): void {
  const { config } = broker;
  const settings = config.policy.authzen;
  if (!settings.enabled) return;
  const pdp = new AuthzenPdp({
    policies: broker.policies,
    namespace: settings.namespace,
    types: settings.types,
    maxBatch: settings.maxBatch,
    pageSize: settings.pageSize,
  });

  const authenticate = async (req: FastifyRequest, reply: FastifyReply) => {
    const incoming = req.headers['x-request-id'];
    if (typeof incoming === 'string' && ECHOABLE.test(incoming)) reply.header('x-request-id', incoming);
    if (settings.auth === 'off') return;
    const operator = await broker.authenticateOperator(req.headers.authorization);
    authorizeOperator(operator, 'authzen:evaluate');
  };

  app.get('/.well-known/authzen-configuration', { config: { doc: { summary: 'AuthZEN PDP metadata' } } }, async (req) =>
    AuthzenPdp.metadata(config.server.publicUrl?.replace(/\/$/, '') ?? `${req.protocol}://${req.host}`),
  );

  const post = (url: string, summary: string, handle: (body: unknown) => unknown) =>
    app.post(url, { onRequest: authenticate, config: { doc: { summary } } }, async (req) => handle(req.body));

  post('/access/v1/evaluation', 'AuthZEN Access Evaluation', (body) => pdp.evaluate(parseBody(evaluationRequestSchema, body)));
  post('/access/v1/evaluations', 'AuthZEN Access Evaluations (batch)', (body) =>
    pdp.evaluations(parseBody(evaluationsRequestSchema, body)),
  );
  post('/access/v1/search/subject', 'AuthZEN Subject Search', (body) => pdp.searchSubjects(parseBody(subjectSearchSchema, body)));
  post('/access/v1/search/resource', 'AuthZEN Resource Search', (body) => pdp.searchResources(parseBody(resourceSearchSchema, body)));
  post('/access/v1/search/action', 'AuthZEN Action Search', (body) => pdp.searchActions(parseBody(actionSearchSchema, body)));
}
