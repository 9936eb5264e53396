// Outgoing webhooks signed per Standard Webhooks (https://www.standardwebhooks.com): headers
// webhook-id, webhook-timestamp and webhook-signature (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`),
// computed by the `standardwebhooks` library so any receiver's Standard Webhooks verifier accepts
// them. Failed attempts are retried with exponential backoff, and every message has a row in the
// delivery log. Sending never throws and never blocks the caller's decision.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Webhook } from 'standardwebhooks';
import type { Clock } from '../lib/clock.js';
import type { DeliveryStatus, WebhookDeliveries } from './deliveries.js';
import { isWebhookSecret } from './secret.js';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly maxAttempts: number;
  /** Wait before the second attempt; doubled before each further one. */
  readonly initialDelayMs: number;
  /** No wait is longer than this. */
  readonly maxDelayMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { maxAttempts: 5, initialDelayMs: 1000, maxDelayMs: 60_000 };

/** The wait before attempt `attempt + 1` (attempt counts from 1): initial · 2^(attempt-1), capped. */
export function backoffMs(policy: RetryPolicy, attempt: number): number {
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (attempt - 1));
}

/** What happened to one message after an attempt: for logs and metrics. */
export interface DeliveryOutcome {
  readonly id: string;
  readonly eventType: string;
  /** The receiver's origin only (scheme, host, port): see endpointOf. */
  readonly endpoint: string;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  readonly lastStatus?: number | undefined;
  readonly lastError?: string | undefined;
  /** Why the delivery log could not record this message or attempt (the delivery went on regardless). */
  readonly logError?: string | undefined;
}

export interface WebhookSenderOptions {
  readonly url: string;
  /** Standard Webhooks secret (`whsec_…`); see isWebhookSecret. */
  readonly secret: string;
  /** Each attempt is abandoned after this long. */
  readonly timeoutMs: number;
  readonly retry?: RetryPolicy;
  readonly deliveries: WebhookDeliveries;
  readonly clock: Clock;
  /** Called once after every attempt; a `failed` status means the sender gave up. */
  readonly onOutcome?: (outcome: DeliveryOutcome) => void;
}

/** Sends events to one endpoint. Reusable for any event type (approvals, owner notifications). */
export class WebhookSender {
  readonly #o: WebhookSenderOptions;
  readonly #webhook: Webhook;
  readonly #retry: RetryPolicy;
  readonly #closing = new AbortController();
  readonly #inFlight = new Set<Promise<unknown>>();

  constructor(options: WebhookSenderOptions) {
    if (!isWebhookSecret(options.secret)) throw new TypeError('webhook secret must be whsec_ followed by the base64 of 24 to 64 bytes');
    this.#o = options;
    this.#webhook = new Webhook(options.secret);
    this.#retry = options.retry ?? defaultRetryPolicy;
  }

  /**
   * Records and delivers one event: `{ type, timestamp, data }`. Resolves with the final outcome
   * (delivered, failed after the last attempt, or pending when the sender closed); never rejects.
   */
  send(eventType: string, data: unknown): Promise<DeliveryOutcome> {
    const run = this.#deliver(eventType, data);
    this.#inFlight.add(run);
    void run.finally(() => this.#inFlight.delete(run));
    return run;
  }

  /** Stops retrying; messages still waiting stay `pending` in the log. */
  async close(): Promise<void> {
    this.#closing.abort();
    await Promise.allSettled([...this.#inFlight]);
  }

  async #deliver(eventType: string, data: unknown): Promise<DeliveryOutcome> {
    const { deliveries, clock } = this.#o;
    const endpoint = endpointOf(this.#o.url);
    const id = `msg_${randomBytes(16).toString('base64url')}`;
    const created = clock.now();
    const payload = JSON.stringify({ type: eventType, timestamp: new Date(created).toISOString(), data });
    let outcome: DeliveryOutcome = { id, eventType, endpoint, status: 'pending', attempts: 0 };
    // Without a log row the delivery still goes out; the failure to record it rides on the outcomes.
    const unlogged = (err: unknown) => `delivery log unavailable: ${errorText(err)}`;
    const createError = await deliveries.create({ id, endpoint, eventType, payload, at: created }).then(() => undefined, unlogged);
    for (let attempt = 1; attempt <= this.#retry.maxAttempts; attempt++) {
      if (this.#closing.signal.aborted) return outcome;
      const answer = await this.#attempt(id, payload);
      const last = attempt === this.#retry.maxAttempts;
      const status: DeliveryStatus = answer.ok ? 'delivered' : last ? 'failed' : 'pending';
      const wait = status === 'pending' ? backoffMs(this.#retry, attempt) : undefined;
      const at = clock.now();
      outcome = { id, eventType, endpoint, status, attempts: attempt, lastStatus: answer.status, lastError: answer.error };
      const logError =
        createError ??
        (await deliveries
          .recordAttempt(id, { ...outcome, at, nextAttemptAt: wait === undefined ? undefined : at + wait })
          .then(() => undefined, unlogged));
      if (logError !== undefined) outcome = { ...outcome, logError };
      this.#o.onOutcome?.(outcome);
      if (wait === undefined) return outcome;
      try {
        await sleep(wait, undefined, { signal: this.#closing.signal });
      } catch {
        return outcome;
      }
    }
    return outcome;
  }

  async #attempt(id: string, payload: string): Promise<{ ok: boolean; status?: number; error?: string }> {
    // Signed at each attempt: the timestamp is the attempt's, so retries pass receivers' freshness checks.
    const timestamp = new Date(this.#o.clock.now());
    try {
      const res = await fetch(this.#o.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
          'webhook-signature': this.#webhook.sign(id, timestamp, payload),
        },
        body: payload,
        redirect: 'error',
        signal: AbortSignal.any([AbortSignal.timeout(this.#o.timeoutMs), this.#closing.signal]),
      });
      await res.arrayBuffer().catch(() => {});
      // Standard Webhooks: any 2xx is success; anything else, redirects included, is retried.
      return res.status >= 200 && res.status < 300
        ? { ok: true, status: res.status }
        : { ok: false, status: res.status, error: `HTTP ${res.status}` };
    } catch (err) {
      return { ok: false, error: errorText(err) };
    }
  }
}

/**
 * What the delivery log and outcomes name a receiver by: its origin. Chat webhook URLs carry their
 * credential in the path or query (a Slack incoming webhook is one), and the log is readable by auditors.
 */
export function endpointOf(url: string): string {
  return new URL(url).origin;
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'timed out';
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message;
  }
  return String(err);
}
