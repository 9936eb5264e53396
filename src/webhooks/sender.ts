// Outgoing webhooks signed per Standard Webhooks (https://www.standardwebhooks.com): headers
// webhook-id, webhook-timestamp and webhook-signature (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`),
// computed by the `standardwebhooks` library so any receiver's Standard Webhooks verifier accepts
// them. Failed attempts are retried with exponential backoff, and every message has a row in the
// delivery log. Sending never throws and never blocks the caller's decision.
//
// Retries are durable: a message still pending when its sender stopped (a restart, a replica that
// died) is resumed from the log — by this sender's next resume pass or another replica's — once
// its next attempt is due or the claim of the attempt it was in lapsed. Before every attempt the
// sender claims the message with a compare-and-set on `next_attempt_at`, so one replica at a time
// attempts it. Delivery is at least once: a replica that dies after the receiver got a message but
// before the log says so leaves it to be sent again, with the same `webhook-id` (receivers dedupe).
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Webhook } from 'standardwebhooks';
import type { Clock } from '../lib/clock.js';
import type { DeliveryStatus, WebhookDeliveries, WebhookDelivery } from './deliveries.js';
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
  /** Which configured endpoint this is (`approvals`, `risk`): its deliveries are resumed by it alone. */
  readonly name: string;
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
  /** How often pending deliveries left by a stopped sender are looked for (none when unset). */
  readonly resumeEveryMs?: number;
}

/** Deliveries resumed per pass, at most (the rest wait for the next pass). */
const RESUME_BATCH = 50;
/** A claim outlives its attempt by this much (the log write after the answer included). */
const CLAIM_MARGIN_MS = 10_000;

/** Sends events to one endpoint. Reusable for any event type (approvals, owner notifications). */
export class WebhookSender {
  readonly #o: WebhookSenderOptions;
  readonly #webhook: Webhook;
  readonly #retry: RetryPolicy;
  readonly #closing = new AbortController();
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #endpoint: string;
  readonly #claimMs: number;
  #resumer: NodeJS.Timeout | undefined;
  #resuming: Promise<number> | undefined;

  constructor(options: WebhookSenderOptions) {
    if (!isWebhookSecret(options.secret)) throw new TypeError('webhook secret must be whsec_ followed by the base64 of 24 to 64 bytes');
    this.#o = options;
    this.#webhook = new Webhook(options.secret);
    this.#retry = options.retry ?? defaultRetryPolicy;
    this.#endpoint = endpointOf(options.url);
    this.#claimMs = options.timeoutMs + CLAIM_MARGIN_MS;
    if (options.resumeEveryMs !== undefined) {
      void this.resume();
      this.#resumer = setInterval(() => void this.resume(), options.resumeEveryMs);
      this.#resumer.unref();
    }
  }

  /**
   * One pass over the log: every pending delivery of this sender whose next attempt is due (or
   * whose attempt's claim lapsed) and that this sender claims first is attempted again, from where
   * it stopped. Resolves with how many it took up; never rejects.
   */
  resume(): Promise<number> {
    this.#resuming ??= this.#resumeDue().finally(() => {
      this.#resuming = undefined;
    });
    return this.#resuming;
  }

  async #resumeDue(): Promise<number> {
    if (this.#closing.signal.aborted) return 0;
    const now = this.#o.clock.now();
    let due: WebhookDelivery[];
    try {
      due = await this.#o.deliveries.due(this.#o.name, now, RESUME_BATCH);
    } catch {
      return 0; // the log is unavailable: the next pass tries again
    }
    let taken = 0;
    for (const d of due) {
      if (this.#closing.signal.aborted) break;
      const claimed = await this.#o.deliveries.claim(d.id, now, now + this.#claimMs).catch(() => false);
      if (!claimed) continue;
      taken++;
      this.#track(this.#attempts(d.id, d.eventType, d.payload, d.attempts + 1, undefined));
    }
    return taken;
  }

  /**
   * Records and delivers one event: `{ type, timestamp, data }`. Resolves with the final outcome
   * (delivered, failed after the last attempt, or pending when the sender closed); never rejects.
   */
  send(eventType: string, data: unknown): Promise<DeliveryOutcome> {
    return this.#track(this.#deliver(eventType, data));
  }

  #track(run: Promise<DeliveryOutcome>): Promise<DeliveryOutcome> {
    this.#inFlight.add(run);
    void run.finally(() => this.#inFlight.delete(run));
    return run;
  }

  /** Stops retrying; messages still waiting stay `pending` in the log, for a resume pass to take up. */
  async close(): Promise<void> {
    this.#closing.abort();
    if (this.#resumer !== undefined) clearInterval(this.#resumer);
    await Promise.allSettled([...this.#inFlight, this.#resuming]);
  }

  async #deliver(eventType: string, data: unknown): Promise<DeliveryOutcome> {
    const { deliveries, clock } = this.#o;
    const id = `msg_${randomBytes(16).toString('base64url')}`;
    const created = clock.now();
    const payload = JSON.stringify({ type: eventType, timestamp: new Date(created).toISOString(), data });
    // Without a log row the delivery still goes out; the failure to record it rides on the outcomes.
    const createError = await deliveries
      .create({
        id,
        sender: this.#o.name,
        endpoint: this.#endpoint,
        eventType,
        payload,
        at: created,
        claimedUntil: created + this.#claimMs,
      })
      .then(() => undefined, unlogged);
    return this.#attempts(id, eventType, payload, 1, createError);
  }

  /**
   * Attempts `first` and the ones after it, each recorded in the log. The first is already claimed
   * (by create or a resume pass); each later one is claimed again after its wait, and a claim lost
   * (another replica took the message) ends this run. `createError`: the message has no log row.
   */
  async #attempts(
    id: string,
    eventType: string,
    payload: string,
    first: number,
    createError: string | undefined,
  ): Promise<DeliveryOutcome> {
    const { deliveries, clock } = this.#o;
    const endpoint = this.#endpoint;
    let outcome: DeliveryOutcome = { id, eventType, endpoint, status: 'pending', attempts: first - 1 };
    for (let attempt = first; attempt <= this.#retry.maxAttempts; attempt++) {
      if (this.#closing.signal.aborted) return outcome;
      if (attempt > first && createError === undefined) {
        const now = clock.now();
        if (!(await deliveries.claim(id, now, now + this.#claimMs).catch(() => false))) return outcome;
      }
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
    // Only when resumed past its last attempt (the limit was lowered since): it is given up.
    outcome = { id, eventType, endpoint, status: 'failed', attempts: first - 1, lastError: 'no attempts left' };
    await deliveries.recordAttempt(id, { ...outcome, at: clock.now() }).catch(() => {});
    this.#o.onOutcome?.(outcome);
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

/** A delivery log failure as the outcome carries it. */
const unlogged = (err: unknown): string => `delivery log unavailable: ${errorText(err)}`;

function errorText(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === 'TimeoutError') return 'timed out';
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message}: ${cause.message}` : err.message;
  }
  return String(err);
}
