// The gateway service (`broker.gateway`): the governed call path, the agent MCP sessions, the
// pooled upstream sessions, and their lifecycle (mandates ending, upstreams changing).
import type { ApprovalService } from '../approvals/service.js';
import type { AuditLog } from '../audit/types.js';
import type { Config } from '../config/load.js';
import type { CredentialInjector } from '../leases/injection.js';
import type { Clock } from '../lib/clock.js';
import { failure, type Logger } from '../observability/log.js';
import type { Metrics } from '../observability/metrics.js';
import type { Tracing } from '../observability/tracing.js';
import type { RiskEngine } from '../risk/engine.js';
import type { ChangeFeed } from '../store/changes.js';
import type { TaskService } from '../tasks/index.js';
import type { Upstreams } from '../upstreams/index.js';
import { McpEndpoint } from './endpoint.js';
import { Gateway } from './gateway.js';
import { LegacySessions } from './legacy-sessions.js';
import type { Decider } from './types.js';
import { UpstreamPool } from './upstream-pool.js';

export type { VerifiedCaller } from '../oauth/caller.js';
export { ERROR_META_KEY, Gateway, MASKED } from './gateway.js';
export type { CallerVerifier } from './types.js';

/** Freshness hint of tools/list and server/discover results: the catalog changes rarely; a changed one is refused, never stale-allowed. */
const LIST_TTL_MS = 60_000;

/** Path of the agent-facing MCP endpoint. */
export const MCP_PATH = '/mcp';
/** RFC 9728 metadata of the protected resource (the broker; access tokens name it as audience). */
export const PROTECTED_RESOURCE_METADATA_PATH = '/.well-known/oauth-protected-resource';

export interface GatewayService {
  readonly gateway: Gateway;
  /** The /mcp endpoint (both MCP revisions). */
  readonly endpoint: McpEndpoint;
  /** Sessions of legacy (2025-11-25) clients. */
  readonly sessions: LegacySessions;
  readonly pool: UpstreamPool;
  /** The resource identifier tokens must be issued for (RFC 8707 / RFC 9728 `resource`). */
  readonly resource: string;
  /** Absolute URL of the RFC 9728 metadata document. */
  readonly resourceMetadataUrl: string;
  /**
   * RFC 9728 metadata of the resource `<publicUrl><path>`: the broker itself (`''`, the default) or
   * its MCP endpoint (`/mcp`). §3.3: `resource` is exactly the identifier the well-known URL was built from.
   */
  protectedResourceMetadata(path?: '' | typeof MCP_PATH): Record<string, unknown>;
  close(): Promise<void>;
}

export interface GatewayServiceOptions {
  readonly config: Config;
  readonly publicUrl: string;
  readonly clock: Clock;
  readonly changes: ChangeFeed;
  readonly upstreams: Upstreams;
  readonly decisions: Decider;
  readonly audit: AuditLog;
  readonly approvals: ApprovalService;
  readonly tasks: TaskService;
  /** The one credential-injection seam (static sealed credentials + per-mandate leases, src/leases). */
  readonly credentials?: CredentialInjector;
  /** The issuer of access tokens (the broker's authorization server). */
  readonly issuer: string;
  readonly dpopAlgorithms: readonly string[];
  readonly log?: Logger;
  readonly metrics?: Metrics;
  readonly tracing?: Tracing;
  /** Risk signals and responses (src/risk); every call is reported to it. */
  readonly risk?: RiskEngine;
}

export function createGatewayService(o: GatewayServiceOptions): GatewayService {
  const gc = o.config.gateway;
  const pool = new UpstreamPool({
    registry: o.upstreams.registry,
    ...(o.credentials === undefined ? {} : { credentials: o.credentials }),
    clock: o.clock,
    connectTimeoutMs: gc.discoveryTimeoutMs,
    idleMs: gc.upstreamIdleMs,
    maxSessions: gc.maxUpstreamSessions,
  });
  const gateway = new Gateway({
    catalog: o.upstreams.catalog,
    pool,
    decisions: o.decisions,
    audit: o.audit,
    approvals: o.approvals,
    tasks: o.tasks,
    ...(o.credentials === undefined ? {} : { credentials: o.credentials }),
    clock: o.clock,
    limits: {
      maxArgumentsBytes: gc.maxArgumentsBytes,
      maxResultBytes: gc.maxResultBytes,
      upstreamTimeoutMs: gc.upstreamTimeoutMs,
      maxConcurrentCallsPerMandate: gc.maxConcurrentCallsPerMandate,
      forbidOnBehalfOfApprover: gc.approvals.forbidOnBehalfOfApprover,
    },
    beforeFirstUse: () => o.upstreams.discoverPending(),
    ...(o.log === undefined ? {} : { log: o.log }),
    ...(o.metrics === undefined ? {} : { metrics: o.metrics }),
    ...(o.tracing === undefined ? {} : { tracing: o.tracing }),
    ...(o.risk === undefined ? {} : { risk: o.risk, riskApproverRoles: o.config.risk.approverRoles }),
  });
  const sessions = new LegacySessions({ clock: o.clock, maxSessions: gc.maxSessions, idleMs: gc.sessionIdleMs });
  const endpoint = new McpEndpoint({
    gateway,
    sessions,
    listTtlMs: LIST_TTL_MS,
    ...(o.tracing === undefined ? {} : { tracing: o.tracing }),
  });
  const offUpstream = o.upstreams.onUpstreamChange((id) => pool.closeUpstream(id));
  // A mandate that ends takes its agent sessions, its isolated upstream sessions and its open approvals with it.
  const offMandate = o.changes.subscribe('mandate', (change) => {
    const { status, ids } = change.data;
    if (typeof status !== 'string' || status === 'active') return;
    // `ids` lists the mandate and every descendant ended with it (cascade).
    const ended = Array.isArray(ids) ? ids.filter((x): x is string => typeof x === 'string') : [change.key];
    for (const id of ended) {
      sessions.closeMandate(id);
      pool.closeMandate(id);
    }
    // Approvers are not asked to decide for a mandate that can no longer use the answer.
    void o.approvals
      .withdrawForMandates(ended, `mandate ${status}`)
      .catch((err: unknown) =>
        o.log?.warn({ ...failure(err), mandateId: change.key }, 'withdrawing the approvals of an ended mandate failed'),
      );
  });
  // Expired approvals are recorded (and audited) as such; reads already treat them as expired.
  const sweeper = setInterval(
    () => void o.approvals.sweep().catch((err: unknown) => o.log?.warn(failure(err), 'expiring approvals failed; retried in 30 s')),
    30_000,
  );
  sweeper.unref();
  const resource = o.publicUrl;
  const resourceMetadataUrl = `${o.publicUrl}${PROTECTED_RESOURCE_METADATA_PATH}`;
  return {
    gateway,
    endpoint,
    sessions,
    pool,
    resource,
    resourceMetadataUrl,
    protectedResourceMetadata: (path = '') => ({
      resource: `${resource}${path}`,
      authorization_servers: [o.issuer],
      bearer_methods_supported: ['header'],
      resource_name: 'Mandate MCP gateway',
      resource_documentation: `${o.publicUrl}/console/`,
      dpop_signing_alg_values_supported: [...o.dpopAlgorithms],
      dpop_bound_access_tokens_required: false,
      authorization_details_types_supported: ['mandate'],
    }),
    async close() {
      clearInterval(sweeper);
      offUpstream();
      offMandate();
      sessions.close();
      await pool.close();
    },
  };
}
