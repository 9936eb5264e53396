// The broker's Prometheus metrics: one registry per broker (tests build many), the domain metric
// families, and children pre-bound to every label value the call path uses, so recording on the
// hot path is one `inc()` or `observe()` on an existing child — no label object per call (the
// call-path families are lean.ts's, which record into plain numbers; the rest are prom-client's).
// docs/operations.md lists every family here; test/observability/metrics-docs.test.ts keeps the
// two in step.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { LeanCounter, type LeanCounterChild, LeanHistogram, type LeanHistogramChild } from './lean.js';

/** Why a tools/call was decided the way it was: a closed set, so the label stays bounded. */
export const DECISION_REASONS = {
  allow: ['policy', 'approval'],
  approval_required: ['policy', 'pending'],
  deny: [
    'tool_not_granted',
    'tool_not_in_catalog',
    'args_too_large',
    'non_finite_number',
    'concurrency_limit',
    'scope',
    'budget',
    'policy_forbid',
    'policy_no_permit',
    'policy_error',
    'no_approver_role',
    'approval_denied',
    'approval_used',
    'approval_not_usable',
  ],
} as const;

export type DecisionOutcome = keyof typeof DECISION_REASONS;
export type DecisionReason<O extends DecisionOutcome = DecisionOutcome> = (typeof DECISION_REASONS)[O][number];

/** How an upstream call ended (mirrors the gateway's registry codes, bounded). */
export const UPSTREAM_OUTCOMES = ['ok', 'tool_error', 'timeout', 'rpc_error', 'unavailable', 'cancelled', 'result_too_large'] as const;
export type UpstreamOutcome = (typeof UPSTREAM_OUTCOMES)[number];

/** What happened to one webhook delivery attempt (src/webhooks reports through `webhookDelivered`). */
export const WEBHOOK_OUTCOMES = ['delivered', 'retried', 'failed'] as const;
export type WebhookOutcome = (typeof WEBHOOK_OUTCOMES)[number];

/** `grant_type` label values (short names of the grants the token endpoint serves); anything else is `other`. */
export const GRANT_TYPES = [
  'urn:ietf:params:oauth:grant-type:token-exchange',
  'client_credentials',
  'refresh_token',
  'authorization_code',
] as const;

export const APPROVAL_DECISIONS = ['approved', 'denied'] as const;

/** Buckets (seconds) for in-process steps: 50 µs to 2.5 s. */
const FAST = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5];
/** Buckets (seconds) for network calls and propagation: 1 ms to 60 s. */
const SLOW = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Buckets (seconds) for a human's answer: 5 s to 1 day. */
const HUMAN = [5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14_400, 28_800, 86_400];

type Child = { inc(value?: number): void };
type Observer = { observe(value: number): void };

/** Live values read at scrape time (each may query the store, so they are not on any request path). */
export interface MetricSources {
  /** Pending approvals not yet expired, across replicas (the store is shared). */
  pendingApprovals?(): Promise<number>;
  /** Seconds since this replica last confirmed it had applied every change. */
  changeFeedStaleness?(): number;
  /** Highest change sequence this replica has applied. */
  changeFeedSeq?(): number;
}

export class Metrics {
  readonly registry = new Registry();
  readonly #sources: MetricSources = {};

  // Families (exported for tests and the docs check; the call path uses the bound children below).
  readonly decisions = new LeanCounter({
    name: 'mandate_decisions_total',
    help: 'tools/call decisions by outcome and reason code.',
    labelNames: ['outcome', 'reason'] as const,
    registry: this.registry,
  });
  readonly decisionSeconds = new LeanHistogram({
    name: 'mandate_decision_duration_seconds',
    help: 'Time of one evaluation of the decision function for a tools/call (mandate chain, budgets, org policy).',
    buckets: FAST,
    registry: this.registry,
  });
  readonly tokenRequests = new Counter({
    name: 'mandate_token_requests_total',
    help: 'Token endpoint requests by grant type and result: issued, or the registry code of the refusal.',
    labelNames: ['grant_type', 'result'] as const,
    registers: [this.registry],
  });
  readonly tokenRequestSeconds = new Histogram({
    name: 'mandate_token_request_duration_seconds',
    help: 'Time to answer one token endpoint request (for token-exchange: proof verified, mandate recorded, token signed), refusals included.',
    labelNames: ['grant_type'] as const,
    buckets: SLOW,
    registers: [this.registry],
  });
  readonly auditAppendSeconds = new LeanHistogram({
    name: 'mandate_audit_append_duration_seconds',
    help: 'Time from submitting an audit event to its durable commit (group commit included).',
    buckets: FAST,
    registry: this.registry,
  });
  readonly upstreamCalls = new LeanCounter({
    name: 'mandate_upstream_calls_total',
    help: 'tools/call forwarded to upstreams, by upstream id (bounded by the catalog) and outcome.',
    labelNames: ['upstream', 'outcome'] as const,
    registry: this.registry,
  });
  readonly upstreamCallSeconds = new LeanHistogram({
    name: 'mandate_upstream_call_duration_seconds',
    help: 'Time an upstream took to answer one forwarded tools/call, by upstream id.',
    labelNames: ['upstream'] as const,
    buckets: SLOW,
    registry: this.registry,
  });
  readonly approvalsRequested = new Counter({
    name: 'mandate_approvals_requested_total',
    help: 'Approval requests created (retries of a pending call create none).',
    registers: [this.registry],
  });
  readonly approvalDecisionSeconds = new Histogram({
    name: 'mandate_approval_decision_duration_seconds',
    help: 'Time from an approval request to the human decision, by decision.',
    labelNames: ['decision'] as const,
    buckets: HUMAN,
    registers: [this.registry],
  });
  readonly approvalsPending = new Gauge({
    name: 'mandate_approvals_pending',
    help: 'Approvals waiting for a human (not expired), across replicas.',
    registers: [this.registry],
    collect: async () => {
      const read = this.#sources.pendingApprovals;
      if (read === undefined) return;
      try {
        this.approvalsPending.set(await read());
      } catch {
        // The store is down: leave the last value; /readyz reports the store.
      }
    },
  });
  readonly revocationPropagationSeconds = new Histogram({
    name: 'mandate_revocation_propagation_seconds',
    help: 'Time from a mandate ending (revoked, completed, failed, expired) being committed to it being in force on this replica.',
    buckets: SLOW,
    registers: [this.registry],
  });
  readonly changeLagSeconds = new Histogram({
    name: 'mandate_change_feed_lag_seconds',
    help: 'Time from a change being committed (any replica) to this replica applying it.',
    buckets: SLOW,
    registers: [this.registry],
  });
  readonly changeStaleness = new Gauge({
    name: 'mandate_change_feed_staleness_seconds',
    help: 'Seconds since this replica last confirmed it had applied every change (/readyz fails past changes.maxStalenessMs).',
    registers: [this.registry],
    collect: () => {
      const read = this.#sources.changeFeedStaleness;
      if (read !== undefined) this.changeStaleness.set(read());
    },
  });
  readonly changeSeq = new Gauge({
    name: 'mandate_change_feed_applied_sequence',
    help: 'Highest change sequence number this replica has applied (compare replicas to see one behind).',
    registers: [this.registry],
    collect: () => {
      const read = this.#sources.changeFeedSeq;
      if (read !== undefined) this.changeSeq.set(read());
    },
  });
  readonly webhookDeliveries = new Counter({
    name: 'mandate_webhook_deliveries_total',
    help: 'Webhook delivery attempts by outcome: delivered, retried (failed, will try again), failed (failed, gave up).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly httpRequests = new LeanCounter({
    name: 'mandate_http_requests_total',
    help: 'HTTP requests by method, route and status.',
    labelNames: ['method', 'route', 'status'] as const,
    registry: this.registry,
  });
  readonly httpSeconds = new LeanHistogram({
    name: 'mandate_http_request_duration_seconds',
    help: 'HTTP request duration.',
    labelNames: ['method', 'route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registry: this.registry,
  });

  // Pre-bound children: every series the call path touches exists (at 0) from the start.
  readonly #decision: { readonly [O in DecisionOutcome]: Record<DecisionReason<O>, LeanCounterChild> };
  readonly #decideSeconds: LeanHistogramChild;
  readonly #auditSeconds: LeanHistogramChild;
  readonly #upstream = new Map<
    string,
    { readonly seconds: LeanHistogramChild; readonly outcome: Record<UpstreamOutcome, LeanCounterChild> }
  >();
  readonly #webhook: Record<WebhookOutcome, Child>;
  /** HTTP children by `method route`, then status: routes are the registered patterns (bounded), never raw paths. */
  readonly #http = new Map<string, { readonly seconds: LeanHistogramChild; readonly byStatus: Map<number, LeanCounterChild> }>();
  readonly #approvalDecided: Record<(typeof APPROVAL_DECISIONS)[number], Observer>;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'mandate_' });
    const bind = <O extends DecisionOutcome>(outcome: O) =>
      Object.fromEntries(DECISION_REASONS[outcome].map((reason) => [reason, this.decisions.labels(outcome, reason)])) as Record<
        DecisionReason<O>,
        LeanCounterChild
      >;
    this.#decision = { allow: bind('allow'), approval_required: bind('approval_required'), deny: bind('deny') };
    this.#decideSeconds = this.decisionSeconds.labels();
    this.#auditSeconds = this.auditAppendSeconds.labels();
    this.#webhook = Object.fromEntries(WEBHOOK_OUTCOMES.map((o) => [o, this.webhookDeliveries.labels(o)])) as Record<WebhookOutcome, Child>;
    this.#approvalDecided = {
      approved: this.approvalDecisionSeconds.labels('approved'),
      denied: this.approvalDecisionSeconds.labels('denied'),
    };
  }

  /** Where the scrape-time gauges read from (the broker wires the store and the change feed). */
  readFrom(sources: MetricSources): void {
    Object.assign(this.#sources, sources);
  }

  /** One tools/call decided (or refused before deciding), by outcome and reason code. */
  decided<O extends DecisionOutcome>(outcome: O, reason: DecisionReason<O>): void {
    (this.#decision[outcome] as Record<string, LeanCounterChild>)[reason]?.inc();
  }

  /** Time one call of the decision function took. */
  decisionTimed(seconds: number): void {
    this.#decideSeconds.observe(seconds);
  }

  /** One HTTP response; `route` is the matched route pattern or `unmatched`. */
  httpResponded(method: string, route: string, status: number, seconds: number): void {
    const key = `${method} ${route}`;
    let h = this.#http.get(key);
    if (h === undefined) {
      h = { seconds: this.httpSeconds.labels(method, route), byStatus: new Map() };
      this.#http.set(key, h);
    }
    let c = h.byStatus.get(status);
    if (c === undefined) {
      c = this.httpRequests.labels(method, route, String(status));
      h.byStatus.set(status, c);
    }
    c.inc();
    h.seconds.observe(seconds);
  }

  /** One forwarded call; children per upstream id are made once (ids come from the catalog, never from agents, so the set is bounded by what operators registered). */
  upstreamCalled(upstream: string, outcome: UpstreamOutcome, seconds: number): void {
    let u = this.#upstream.get(upstream);
    if (u === undefined) {
      u = {
        seconds: this.upstreamCallSeconds.labels(upstream),
        outcome: Object.fromEntries(UPSTREAM_OUTCOMES.map((o) => [o, this.upstreamCalls.labels(upstream, o)])) as Record<
          UpstreamOutcome,
          LeanCounterChild
        >,
      };
      this.#upstream.set(upstream, u);
    }
    u.seconds.observe(seconds);
    u.outcome[outcome].inc();
  }

  auditAppended(seconds: number): void {
    this.#auditSeconds.observe(seconds);
  }

  /** One token endpoint request; `grantType` is mapped onto the known grants, `result` is `issued` or a registry code. */
  tokenRequested(grantType: string | undefined, result: string, seconds: number): void {
    const grant = (GRANT_TYPES as readonly string[]).includes(grantType ?? '') ? (grantType as string) : 'other';
    this.tokenRequests.labels(grant, result).inc();
    this.tokenRequestSeconds.labels(grant).observe(seconds);
  }

  approvalRequested(): void {
    this.approvalsRequested.inc();
  }

  approvalDecided(decision: 'approved' | 'denied', seconds: number): void {
    this.#approvalDecided[decision].observe(Math.max(0, seconds));
  }

  changeApplied(lagSeconds: number): void {
    this.changeLagSeconds.observe(Math.max(0, lagSeconds));
  }

  revocationInForce(seconds: number): void {
    this.revocationPropagationSeconds.observe(Math.max(0, seconds));
  }

  /**
   * The hook src/webhooks calls once per delivery attempt.
   *
   * @example
   * metrics.webhookDelivered('retried');
   */
  webhookDelivered(outcome: WebhookOutcome): void {
    this.#webhook[outcome].inc();
  }
}

/** Seconds since `start` (a `performance.now()` reading). */
export function secondsSince(start: number): number {
  return (performance.now() - start) / 1000;
}
