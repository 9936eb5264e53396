// Flood control at the HTTP boundary: rate limits per client address (@fastify/rate-limit, in
// memory, so per replica) on the token endpoint, AuthZEN and sources that keep failing
// authentication; and every refusal of an unauthenticated request (401, 429) counted by the
// refusal aggregator instead of being audited one by one.
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Broker } from '../broker.js';
import { type ErrorCode, errorRegistry, isErrorCode, MandateError, OAuthError } from '../errors/index.js';
import { OAUTH_PATHS } from '../oauth/metadata.js';

/** Probes must keep answering under a flood, or the balancer would take a healthy replica out. */
const NEVER_LIMITED = new Set(['/healthz', '/readyz']);
const AUTHZEN_PREFIX = '/access/v1/';
const AGENT_API_PREFIX = '/mandate/v1/';
const OAUTH_ROUTES = new Set<string>(Object.values(OAUTH_PATHS));

/** Routes that answer in the OAuth error shape (RFC 6749 §5.2 / RFC 6750), so their 429 does too. /mcp answers JSON-RPC. */
const speaksOAuth = (route: string | undefined) => route !== undefined && (OAUTH_ROUTES.has(route) || route.startsWith(AGENT_API_PREFIX));

/** The registry code behind a refusal body: `ERR_…` as is, an OAuth wire value mapped back (401 ones). */
function codeOf(payload: unknown, status: number): string {
  if (typeof payload !== 'string') return `HTTP_${status}`;
  let error: unknown;
  try {
    error = (JSON.parse(payload) as { error?: unknown }).error;
  } catch {
    return `HTTP_${status}`;
  }
  if (typeof error !== 'string') return `HTTP_${status}`;
  if (isErrorCode(error)) return error;
  const match = Object.entries(errorRegistry).find(
    ([, spec]) => spec.status === status && 'oauthError' in spec && spec.oauthError === error,
  );
  return (match?.[0] as ErrorCode | undefined) ?? `HTTP_${status}`;
}

/**
 * Installs the limits (when `server.rateLimit.enabled`) and the refusal counting (always). Call
 * before the authentication hooks are added, so a throttled source costs no token verification.
 */
export async function registerRateLimits(app: FastifyInstance, broker: Broker): Promise<void> {
  const limits = broker.config.server.rateLimit;
  // `token` as the token exchange names it, so one source's token refusals add up under one name.
  const endpointOf = (req: FastifyRequest) => {
    const route = req.routeOptions.url;
    return route === OAUTH_PATHS.token ? 'token' : (route ?? 'unmatched');
  };

  /** 429 before any authentication: not a decision about an authenticated caller, so counted, not audited one by one. */
  const refuse = (req: FastifyRequest, reply: FastifyReply, retryAfterSeconds: number): never => {
    const retryAfter = String(Math.max(1, retryAfterSeconds));
    reply.header('retry-after', retryAfter);
    // Routes that write their own errors on the raw response (/mcp, JSON-RPC) keep it too.
    reply.raw.setHeader('retry-after', retryAfter);
    const err = speaksOAuth(req.routeOptions.url) ? new OAuthError('OAUTH_RATE_LIMITED') : new MandateError('ERR_RATE_LIMITED');
    broker.refusals.record({ source: req.ip ?? '', endpoint: endpointOf(req), code: err.code });
    throw err;
  };

  let countFailure: ((req: FastifyRequest) => Promise<unknown>) | undefined;
  if (limits.enabled) {
    await app.register(rateLimit, {
      global: false,
      timeWindow: limits.windowMs,
      // One LRU per limiter: a flood from more addresses than this forgets the oldest ones.
      cache: 10_000,
      // Only Retry-After on refusal (set below); quota headers would tell a prober how much is left.
      addHeaders: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false, 'retry-after': false },
      addHeadersOnExceeding: { 'x-ratelimit-limit': false, 'x-ratelimit-remaining': false, 'x-ratelimit-reset': false },
    });
    const token = app.createRateLimit({ max: limits.tokenEndpoint });
    const authzen = app.createRateLimit({ max: limits.authzen });
    const failures = app.createRateLimit({ max: limits.unauthenticated });
    countFailure = (req) => failures(req);

    app.addHook('onRequest', async (req, reply) => {
      const route = req.routeOptions.url;
      if (route !== undefined && NEVER_LIMITED.has(route)) return;
      // A source past its refused authentications gets nothing more this window: no verification work, no audit.
      const failed = await failures(req, { increment: false });
      if (!failed.isAllowed && failed.remaining === 0) return refuse(req, reply, failed.ttlInSeconds);
      const limiter = route === OAUTH_PATHS.token ? token : route?.startsWith(AUTHZEN_PREFIX) ? authzen : undefined;
      if (limiter === undefined) return;
      const used = await limiter(req);
      if (!used.isAllowed && used.isExceeded) return refuse(req, reply, used.ttlInSeconds);
    });
  }

  // 401 = authentication failed: not a decision about an authenticated caller, so counted per
  // source and window rather than audited one by one, and charged to the source's budget.
  // Synchronous on purpose: an async onSend lets a handler that sent and returned undefined be sent twice.
  const counted = new WeakSet<FastifyRequest>();
  app.addHook('onSend', (req, reply, payload, done) => {
    if (reply.statusCode === 401 && !counted.has(req)) {
      counted.add(req);
      broker.refusals.record({ source: req.ip ?? '', endpoint: endpointOf(req), code: codeOf(payload, 401) });
      // The in-memory store answers at once; a failure to count must not turn a 401 into a 500.
      if (countFailure !== undefined) countFailure(req).catch(() => {});
    }
    done(null, payload);
  });
}
