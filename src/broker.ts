// The composition root: opens the store, resolves secrets, and wires the domain services from one
// validated configuration. The HTTP layer and the CLI both start from here.

import { auditOrigin, DEMO_HUMANS, publicUrl } from './addresses.js';
import type { AgentRegistry } from './agents/registry.js';
import { silentNotifier, WebhookNotifier } from './approvals/notifier.js';
import { ApprovalService } from './approvals/service.js';
import { AuditService } from './audit/log.js';
import { RefusalAggregator } from './audit/refusal-aggregator.js';
import type { Config } from './config/load.js';
import { createGatewayService, type GatewayService } from './gateway/index.js';
import { DEV_ISSUER_PATH, DEV_OPERATOR_AUDIENCE, DevIssuer } from './identity/dev-issuer.js';
import { createOperatorAuthenticator, type OperatorAuthenticator } from './identity/operators.js';
import { createLeases, type Leases } from './leases/index.js';
import { type Clock, systemClock } from './lib/clock.js';
import type { MandateService } from './mandates/service.js';
import { DPOP_ALGORITHMS } from './oauth/dpop.js';
import type { TokenVerifier } from './oauth/verify.js';
import { createIdentityServices, type IdentityServices } from './oauth/wiring.js';
import { createLogger, failure, type Logger } from './observability/log.js';
import { Metrics } from './observability/metrics.js';
import { createTracing, type Tracing } from './observability/tracing.js';
import { BudgetCounter } from './policy/budgets.js';
import { DecisionService } from './policy/decisions.js';
import type { PolicyStore } from './policy/store.js';
import { engineNotice, loadPolicyStore } from './policy/wiring.js';
import { PrincipalRepository } from './principals/repository.js';
import { createReadiness, type Readiness } from './readiness.js';
import { createRisk, type Risk } from './risk/wiring.js';
import { resolveSecretBox, type SecretBox } from './secrets/index.js';
import { ChangeFeed } from './store/changes.js';
import { openStore, type Store } from './store/index.js';
import { TaskService } from './tasks/index.js';
import { createUpstreams, demoAllowedCommands, registerDemoUpstreams, type Upstreams } from './upstreams/index.js';
import { WebhookDeliveries, WebhookSender } from './webhooks/index.js';

export interface Broker {
  readonly config: Config;
  readonly clock: Clock;
  readonly store: Store;
  readonly secrets: SecretBox;
  readonly principals: PrincipalRepository;
  /** The tamper-evident audit log (src/audit): `append` is durable and fail-closed. */
  readonly audit: AuditService;
  /** Refusals of unauthenticated requests, written as one audit event per source and window. */
  readonly refusals: RefusalAggregator;
  /** Change fan-out between replicas; subscribe before relying on in-memory state. */
  readonly changes: ChangeFeed;
  /** The active, validated org policy set (Cedar); reloaded on `policy` changes. */
  readonly policies: PolicyStore;
  /** The one decision function: mandate chain scope + budgets, then org policy. */
  readonly decisions: DecisionService;
  /** Budget counters, leased to this replica in chunks (usage for the console and API). */
  readonly budgets: BudgetCounter;
  readonly authenticateOperator: OperatorAuthenticator;
  /** Verifies mandate access tokens (+ DPoP) for resource servers; revocation checked in memory. */
  readonly verifier: TokenVerifier;
  /** Mandates: open, delegate, complete/fail/revoke with cascade, get, list. */
  readonly mandates: MandateService;
  /** Registered agents (principals with a workload identity binding and limits). */
  readonly agents: AgentRegistry;
  /** Trust anchors, proof verification, signing keys, DPoP and the token exchange. */
  readonly identity: IdentityServices;
  /** Upstream MCP servers, their sealed credentials, and this replica's tool catalog. */
  readonly upstreams: Upstreams;
  /** Human approvals bound to one exact call (canonical call hash), single use, expiring. */
  readonly approvals: ApprovalService;
  /** Durable MCP tasks: approval-waiting calls any replica can serve, forwarded at most once. */
  readonly tasks: TaskService;
  /** The log of outgoing webhook messages (approval notifications): attempts, last answer, failures. */
  readonly webhookDeliveries: WebhookDeliveries;
  /** Per-mandate upstream credentials (dynamic roles, upstream tokens, OAuth tokens) and the injection seam. */
  readonly leases: Leases;
  /** Risk signals, scores (context.risk) and automatic responses (docs/risk.md). */
  readonly risk: Risk;
  /** The MCP gateway: governed tools/list and tools/call, agent sessions, pooled upstream sessions. */
  readonly gateway: GatewayService;
  /** Present in demo mode only. */
  readonly devIssuer: DevIssuer | undefined;
  /** The one logger (pino): the HTTP server and the domain services log through it. */
  readonly log: Logger;
  /** Prometheus metrics of this broker (its own registry), served at /metrics. */
  readonly metrics: Metrics;
  /** OpenTelemetry tracing; undefined unless telemetry.tracing.enabled. */
  readonly tracing: Tracing | undefined;
  /** Messages the CLI prints at start (demo warnings). */
  readonly notices: readonly string[];
  /** Store, trust bundles, issuers, policy and audit log: whether each can serve right now (/readyz). */
  readiness(): Promise<Readiness>;
  close(): Promise<void>;
}

export interface BrokerOptions {
  readonly clock?: Clock;
  /** Use this store instead of opening the configured one (tests). Closed with the broker. */
  readonly store?: Store;
  /** Log here instead of a new logger on stdout (tests capture lines through a pino destination). */
  readonly logger?: Logger;
}

export { auditOrigin, DEMO_HUMANS, publicUrl };

export async function createBroker(config: Config, options: BrokerOptions = {}): Promise<Broker> {
  const clock = options.clock ?? systemClock;
  const notices: string[] = [];
  const { box, demoKeyFile } = resolveSecretBox(config);
  if (demoKeyFile !== undefined) {
    notices.push(`DEMO MODE: secrets are encrypted with a development master key in ${demoKeyFile}. Set MANDATE_MASTER_KEY for real use.`);
  }
  const log = options.logger ?? createLogger(config);
  const metrics = new Metrics();
  const tracing = createTracing(config);
  const store = options.store ?? openStore(config);
  // Closed in reverse order; the store last, spans flushed just before it.
  const closers: (() => Promise<void>)[] = [() => store.close()];
  if (tracing !== undefined) closers.push(() => tracing.shutdown());
  const closeAll = async () => {
    for (const close of closers.reverse()) await close().catch(() => {});
  };
  try {
    await store.migrate();
    const changes = new ChangeFeed(store, {
      clock,
      pollIntervalMs: config.changes.pollIntervalMs,
      onHandlerError: (err, change) => log.error({ ...failure(err), topic: change.topic, seq: change.seq }, 'applying a change failed'),
      onStoreError: (err, what) => log.warn({ ...failure(err), what }, 'change feed: store error (the replica keeps polling)'),
      onApplied: (change) => {
        if (change.createdAt === undefined) return;
        const lag = (clock.now() - change.createdAt) / 1000;
        metrics.changeApplied(lag);
        // Handlers of this change (token revocation, sessions, approvals) have all run: the end is in force here.
        if (change.topic === 'mandate' && typeof change.data.status === 'string' && change.data.status !== 'active') {
          metrics.revocationInForce(lag);
        }
      },
    });
    await changes.start();
    closers.push(() => changes.stop());
    const policies = await loadPolicyStore(config, clock);
    // Which engine serves the org policy (and why not the configured one, if it refused the set).
    notices.push(engineNotice(policies));
    policies.follow(changes);
    if (config.policy.watch) {
      policies.watch(store, changes, (report) => {
        if (!report.ok) {
          const problems = report.problems.slice(0, 20).map((p) => ({ file: p.file, line: p.line, message: p.message.slice(0, 300) }));
          log.warn({ serving: report.serving, problems }, 'policy change on disk refused; the last valid set stays in force');
        } else if (report.changed) {
          log.info({ version: report.version, policies: report.policies, engine: report.engine }, 'policy reloaded from disk');
        }
      });
    }
    closers.push(async () => policies.close());
    // Budgets are leased to this replica in chunks and consumed in memory (src/policy/budgets.ts);
    // closing reports what was consumed and returns the unused leases before the store closes.
    const budgets = new BudgetCounter(store, { clock, ...config.policy.budgets });
    closers.push(() => budgets.close());
    const decisions = new DecisionService({
      policies,
      budgets,
      clock,
      approverRoles: config.policy.approverRoles,
    });
    const principals = new PrincipalRepository(store, clock, changes);
    const audit = await AuditService.open({
      store,
      secrets: box,
      clock,
      origin: auditOrigin(config),
      maxBatch: config.audit.maxBatch,
      checkpointIntervalMs: config.audit.checkpointIntervalMs,
      onBackgroundError: (err) => log.warn(failure(err), 'signing a checkpoint failed; retried at the next interval'),
      metrics,
      ...(tracing === undefined ? {} : { tracing }),
    });
    // Drains queued appends and signs a last checkpoint before the store closes.
    closers.push(async () => {
      await audit.close();
      await audit.checkpointIfGrown();
    });
    const refusals = new RefusalAggregator({
      audit,
      windowMs: config.audit.refusalWindowMs,
      maxSources: config.audit.refusalMaxSources,
    });
    // Closers run in reverse: the last window is written before the audit log closes.
    closers.push(() => refusals.close());
    let devIssuer: DevIssuer | undefined;
    let issuer = config.operators.issuer;
    let jwks: URL | { keys: object[] } | 'discover' | undefined;
    if (config.mode === 'demo') {
      devIssuer = await DevIssuer.open(config.dataDir, `${publicUrl(config)}${DEV_ISSUER_PATH}`, clock);
      notices.push('DEMO MODE: the development OIDC issuer signs operator tokens from a key in the data folder. Development only.');
      if (issuer === undefined) {
        issuer = {
          issuer: devIssuer.issuer,
          audience: DEV_OPERATOR_AUDIENCE,
          rolesClaim: 'roles',
          algorithms: ['EdDSA'],
          clockToleranceSeconds: 30,
        };
        jwks = devIssuer.jwks;
      }
      await seedDemo(principals);
    }
    if (issuer !== undefined && jwks === undefined) {
      jwks = issuer.jwksUri === undefined ? 'discover' : new URL(issuer.jwksUri);
    }
    const authenticateOperator = createOperatorAuthenticator({
      issuer: issuer === undefined || jwks === undefined ? undefined : { ...issuer, jwks },
      bootstrapTokenSha256: config.secrets.bootstrapTokenSha256,
      clock,
    });
    const identity = await createIdentityServices({
      config,
      publicUrl: publicUrl(config),
      store,
      secrets: box,
      clock,
      changes,
      audit,
      refusals,
      principals,
      templates: () => policies.current?.templates,
      ...(issuer === undefined || jwks === undefined ? {} : { operatorIssuer: { ...issuer, jwks } }),
    });
    closers.push(() => identity.close());
    const upstreams = await createUpstreams({
      store,
      clock,
      secrets: box,
      changes,
      discoveryTimeoutMs: config.gateway.discoveryTimeoutMs,
      allowedCommands: [
        ...config.upstreams.stdio.allowedCommands,
        ...(config.mode === 'demo' && config.gateway.demoUpstreams ? demoAllowedCommands() : []),
      ],
      httpApi: config.upstreams.httpApi,
    });
    if (config.mode === 'demo' && config.gateway.demoUpstreams) await registerDemoUpstreams(upstreams.registry);
    const webhookDeliveries = new WebhookDeliveries(store);
    /** A Standard Webhooks sender for one configured endpoint; every attempt counted, failures logged. */
    const senderFor = (
      name: string,
      webhook: typeof config.gateway.approvals.webhook,
      secret: string | undefined,
    ): WebhookSender | undefined => {
      if (webhook === undefined || secret === undefined) return undefined;
      const sender = new WebhookSender({
        name,
        url: webhook.url,
        // Deliveries left pending by a stopped replica are taken up again (see src/webhooks/sender.ts).
        resumeEveryMs: Math.min(Math.max(webhook.initialBackoffMs, 1000), 30_000),
        secret,
        timeoutMs: webhook.timeoutMs,
        retry: { maxAttempts: webhook.maxAttempts, initialDelayMs: webhook.initialBackoffMs, maxDelayMs: webhook.maxBackoffMs },
        deliveries: webhookDeliveries,
        clock,
        onOutcome: (o) => {
          metrics.webhookDelivered(o.status === 'delivered' ? 'delivered' : o.status === 'failed' ? 'failed' : 'retried');
          if (o.logError !== undefined) {
            log.error({ deliveryId: o.id, eventType: o.eventType, reason: o.logError }, 'webhook delivery log unavailable');
          }
          if (o.status === 'delivered' || o.lastError === undefined) return;
          log.warn(
            { deliveryId: o.id, eventType: o.eventType, attempts: o.attempts, status: o.lastStatus, reason: o.lastError },
            o.status === 'failed' ? 'webhook delivery failed, giving up' : 'webhook delivery failed, will retry',
          );
        },
      });
      closers.push(() => sender.close());
      return sender;
    };
    const webhookSender = senderFor('approvals', config.gateway.approvals.webhook, config.secrets.approvalWebhookSecret);
    // Risk signals, scores and automatic responses; the gateway reports every call to it.
    const risk = createRisk({
      config: config.risk,
      clock,
      store,
      changes,
      audit,
      mandates: identity.mandates,
      agents: identity.agents,
      notify: senderFor('risk', config.risk.webhook, config.secrets.riskWebhookSecret),
      log,
    });
    closers.push(() => risk.close());
    const approvals = new ApprovalService({
      store,
      clock,
      audit,
      changes,
      notifier: webhookSender === undefined ? silentNotifier : new WebhookNotifier(webhookSender),
      ttlMs: config.gateway.approvals.ttlSeconds * 1000,
      consoleBaseUrl: `${publicUrl(config)}/console/approvals/`,
      actorTypeOf: async (id) => (await principals.get(id))?.actorType,
      isMandateActive: async (id) => (await identity.mandates.get(id))?.status === 'active',
      metrics,
      onDecided: (a) => risk.approvalDecided(a),
    });
    const tasks = new TaskService({
      store,
      clock,
      secrets: box,
      changes,
      audit,
      pollIntervalMs: config.gateway.tasks.pollIntervalMs,
      ttlMs: config.gateway.tasks.ttlMs,
      retentionMs: config.gateway.tasks.retentionMs,
      defaultForwardTimeoutMs: config.gateway.upstreamTimeoutMs,
    });
    tasks.start();
    closers.push(() => tasks.close());
    // Leases follow mandate ends (revoked on every replica) and reap what a crash left behind.
    const leases = createLeases({
      config,
      store,
      clock,
      secrets: box,
      changes,
      audit,
      mandates: identity.mandates,
      registry: upstreams.registry,
      keys: identity.keys,
      issuer: identity.issuer,
    });
    closers.push(() => leases.close());
    const gateway = createGatewayService({
      config,
      publicUrl: publicUrl(config),
      clock,
      changes,
      upstreams,
      decisions,
      audit,
      approvals,
      tasks,
      credentials: leases.service,
      risk: risk.engine,
      issuer: identity.issuer,
      dpopAlgorithms: DPOP_ALGORITHMS,
      log,
      metrics,
      ...(tracing === undefined ? {} : { tracing }),
    });
    closers.push(() => gateway.close());
    metrics.readFrom({
      pendingApprovals: async () => {
        const [row] = await store.query<{ n: number | string }>(
          "SELECT COUNT(*) AS n FROM approvals WHERE status = 'pending' AND expires_at > ?",
          [clock.now()],
        );
        return Number(row?.n ?? 0);
      },
      changeFeedStaleness: () => changes.staleness() / 1000,
      changeFeedSeq: () => changes.lastSeq,
    });
    log.info(
      {
        mode: config.mode,
        source: config.source,
        publicUrl: publicUrl(config),
        store: config.store.driver,
        policyEngine: policies.current?.set.engine,
        tracing: tracing === undefined ? 'off' : config.telemetry.tracing.endpoint,
        metrics: config.secrets.metricsTokenSha256 === undefined ? 'public' : 'bearer token',
      },
      'broker started',
    );
    for (const notice of notices) log.warn({ notice }, 'startup notice');
    return {
      config,
      clock,
      store,
      secrets: box,
      principals,
      audit,
      refusals,
      changes,
      policies,
      decisions,
      budgets,
      authenticateOperator,
      verifier: identity.verifier,
      mandates: identity.mandates,
      agents: identity.agents,
      identity,
      upstreams,
      approvals,
      tasks,
      webhookDeliveries,
      leases,
      risk,
      gateway,
      devIssuer,
      log,
      metrics,
      tracing,
      notices,
      readiness: createReadiness({
        store,
        changes,
        maxStalenessMs: config.changes.maxStalenessMs,
        trust: identity.trust,
        policies,
        audit,
      }),
      close: closeAll,
    };
  } catch (err) {
    log.error(failure(err), 'broker failed to start');
    await closeAll();
    throw err;
  }
}

async function seedDemo(principals: PrincipalRepository): Promise<void> {
  for (const human of DEMO_HUMANS) {
    if ((await principals.get(human.id)) === undefined) {
      await principals.create({ ...human, roles: [...human.roles], actorType: 'human' });
    }
  }
}
