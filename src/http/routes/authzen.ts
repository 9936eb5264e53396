// OpenID AuthZEN Authorization API 1.0: PDP metadata, access evaluation(s) and search, bound to
// the domain PDP in src/policy/authzen.ts. A deny is 200 `{decision:false}`; malformed requests
// are 400; unknown fields are ignored; X-Request-ID is echoed as sent.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AuthError, ConfigError } from '../../errors/index.js';
import {
  type AuthzenDecision,
  AuthzenPdp,
  actionSearchSchema,
  type EvaluationRequest,
  evaluationRequestSchema,
  evaluationsRequestSchema,
  parseBody,
  resourceSearchSchema,
  subjectSearchSchema,
} from '../../policy/authzen.js';
import { authorizeOperator } from '../admin-policy.js';
import type { AppContext } from '../app.js';
import { peerCertificates } from '../peer-certificates.js';

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

  if (settings.auth === 'mtls' && config.server.tls === undefined) {
    throw new ConfigError('ERR_CONFIG_INVALID', 'policy.authzen.auth is mtls but server.tls is not configured', {
      details: { path: 'policy.authzen.auth' },
    });
  }
  const mtlsClients = new Set(settings.mtlsClients);

  /** mTLS: the connection's X.509-SVID, verified against the trust bundles, must be an allowed PEP. */
  const authenticateClientCertificate = (req: FastifyRequest) => {
    const chain = peerCertificates(req);
    if (chain === undefined) throw new AuthError('ERR_CLIENT_CERTIFICATE_REQUIRED');
    let spiffeId: string;
    try {
      const proof = broker.identity.proofs.verifyX509(chain);
      spiffeId = proof.identity.kind === 'spiffe' ? proof.identity.spiffeId : '';
    } catch (err) {
      throw new AuthError('ERR_CLIENT_CERTIFICATE_REQUIRED', `the client certificate is not a valid X.509-SVID: ${(err as Error).message}`);
    }
    if (!mtlsClients.has(spiffeId)) throw new AuthError('ERR_FORBIDDEN', `${spiffeId} is not an allowed enforcement point`);
    req.operator = { id: spiffeId, subject: spiffeId, name: spiffeId, roles: ['pdp'], via: 'mtls' };
  };

  const authenticate = async (req: FastifyRequest, reply: FastifyReply) => {
    const incoming = req.headers['x-request-id'];
    if (typeof incoming === 'string' && ECHOABLE.test(incoming)) reply.header('x-request-id', incoming);
    if (settings.auth === 'off') return;
    if (settings.auth === 'mtls') return authenticateClientCertificate(req);
    const operator = await broker.authenticateOperator(req.headers.authorization);
    authorizeOperator(operator, 'authzen:evaluate');
  };

  app.get('/.well-known/authzen-configuration', { config: { access: 'public', doc: { summary: 'AuthZEN PDP metadata' } } }, async (req) =>
    AuthzenPdp.metadata(config.server.publicUrl?.replace(/\/$/, '') ?? `${req.protocol}://${req.host}`),
  );

  const post = (url: string, summary: string, handle: (body: unknown, req: FastifyRequest) => unknown) =>
    app.post(url, { onRequest: authenticate, config: { access: 'pdp', doc: { summary } } }, async (req) => handle(req.body, req));

  // Every decision has an audit event, durable before the answer leaves (a PEP acts on it);
  // if the audit log cannot take it, the request fails instead of answering unaudited.
  const audited = async (req: FastifyRequest, items: readonly { request: EvaluationRequest; decision: AuthzenDecision }[]) => {
    if (!settings.audit) return;
    const actors = [{ type: 'service' as const, id: req.operator?.id ?? 'authzen-pep' }];
    await Promise.all(
      items.map(({ request, decision }) =>
        broker.audit.append({
          type: 'decision',
          actors,
          data: {
            decisionId: decision.context?.id,
            source: 'authzen',
            outcome: decision.decision ? 'allow' : 'deny',
            subject: { type: request.subject.type, id: request.subject.id },
            action: request.action.name,
            resource: { type: request.resource.type, id: request.resource.id },
            ...(decision.context?.reason_admin === undefined ? {} : { reasons: [decision.context.reason_admin.en] }),
            requestId: req.id,
          },
        }),
      ),
    );
  };

  post('/access/v1/evaluation', 'AuthZEN Access Evaluation', async (body, req) => {
    const request = parseBody(evaluationRequestSchema, body);
    const decision = pdp.evaluate(request);
    await audited(req, [{ request, decision }]);
    return decision;
  });
  post('/access/v1/evaluations', 'AuthZEN Access Evaluations (batch)', async (body, req) => {
    const { response, items } = pdp.evaluationsWithRequests(parseBody(evaluationsRequestSchema, body));
    await audited(req, items);
    return response;
  });
  post('/access/v1/search/subject', 'AuthZEN Subject Search', (body) => pdp.searchSubjects(parseBody(subjectSearchSchema, body)));
  post('/access/v1/search/resource', 'AuthZEN Resource Search', (body) => pdp.searchResources(parseBody(resourceSearchSchema, body)));
  post('/access/v1/search/action', 'AuthZEN Action Search', (body) => pdp.searchActions(parseBody(actionSearchSchema, body)));
}
