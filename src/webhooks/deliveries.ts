// The webhook delivery log (table webhook_deliveries): one row per message, updated after each
// attempt. Operators read it through the admin API; a failed delivery stays here with its last
// HTTP status or error.
import type { Row, Store } from '../store/types.js';

export const deliveryStatuses = ['pending', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof deliveryStatuses)[number];

export interface WebhookDelivery {
  /** The message id, sent as `webhook-id`; the same on every attempt so receivers can deduplicate. */
  readonly id: string;
  /** The sender (configured endpoint) it belongs to: `approvals`, `risk`. */
  readonly sender: string;
  /** The receiver's origin; never its path or query, which may hold a credential. */
  readonly endpoint: string;
  readonly eventType: string;
  /** The JSON body exactly as signed. */
  readonly payload: string;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  /** HTTP status of the last answer, if the receiver answered at all. */
  readonly lastStatus: number | undefined;
  /** Why the last attempt failed (HTTP status, timeout, connection error). */
  readonly lastError: string | undefined;
  readonly createdAt: number;
  readonly updatedAt: number;
  /**
   * While `pending`: when the next attempt is due, or, while an attempt runs, when its claim on the
   * delivery lapses (a replica that died mid-attempt leaves it to be resumed after that).
   */
  readonly nextAttemptAt: number | undefined;
}

export interface AttemptOutcome {
  readonly status: DeliveryStatus;
  readonly attempts: number;
  readonly lastStatus?: number | undefined;
  readonly lastError?: string | undefined;
  readonly nextAttemptAt?: number | undefined;
  readonly at: number;
}

export interface ListDeliveriesOptions {
  readonly status?: DeliveryStatus;
  readonly eventType?: string;
  readonly limit?: number;
}

interface DeliveryRow extends Row {
  id: string;
  sender: string;
  endpoint: string;
  event_type: string;
  payload: string;
  status: DeliveryStatus;
  attempts: number | string;
  last_status: number | string | null;
  last_error: string | null;
  created_at: number | string;
  updated_at: number | string;
  next_attempt_at: number | string | null;
}

const COLUMNS =
  'id, sender, endpoint, event_type, payload, status, attempts, last_status, last_error, created_at, updated_at, next_attempt_at';
const optionalNumber = (v: number | string | null): number | undefined => (v === null ? undefined : Number(v));

export class WebhookDeliveries {
  constructor(private readonly store: Store) {}

  /** Logs a new message, claimed by its creator until `claimedUntil` (its first attempt runs now). */
  async create(d: {
    id: string;
    sender: string;
    endpoint: string;
    eventType: string;
    payload: string;
    at: number;
    claimedUntil: number;
  }): Promise<void> {
    await this.store.run(`INSERT INTO webhook_deliveries (${COLUMNS}) VALUES (?, ?, ?, ?, ?, 'pending', 0, NULL, NULL, ?, ?, ?)`, [
      d.id,
      d.sender,
      d.endpoint,
      d.eventType,
      d.payload,
      d.at,
      d.at,
      d.claimedUntil,
    ]);
  }

  /**
   * Claims a pending delivery whose next attempt is due, until `until`: a compare-and-set, so of the
   * replicas (or the sleeping sender and a resumer) that try at once, exactly one gets it.
   */
  async claim(id: string, now: number, until: number): Promise<boolean> {
    const { changes } = await this.store.run(
      "UPDATE webhook_deliveries SET next_attempt_at = ?, updated_at = ? WHERE id = ? AND status = 'pending' AND next_attempt_at <= ?",
      [until, now, id, now],
    );
    return changes === 1;
  }

  /** Pending deliveries of `sender` whose next attempt is due (or whose claim lapsed), oldest due first. */
  async due(sender: string, now: number, limit: number): Promise<WebhookDelivery[]> {
    const rows = await this.store.query<DeliveryRow>(
      `SELECT ${COLUMNS} FROM webhook_deliveries WHERE sender = ? AND status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`,
      [sender, now, limit],
    );
    return rows.map(fromRow);
  }

  async recordAttempt(id: string, o: AttemptOutcome): Promise<void> {
    await this.store.run(
      'UPDATE webhook_deliveries SET status = ?, attempts = ?, last_status = ?, last_error = ?, updated_at = ?, next_attempt_at = ? WHERE id = ?',
      [o.status, o.attempts, o.lastStatus ?? null, o.lastError ?? null, o.at, o.nextAttemptAt ?? null, id],
    );
  }

  async get(id: string): Promise<WebhookDelivery | undefined> {
    const [row] = await this.store.query<DeliveryRow>(`SELECT ${COLUMNS} FROM webhook_deliveries WHERE id = ?`, [id]);
    return row === undefined ? undefined : fromRow(row);
  }

  /** Newest first. */
  async list(options: ListDeliveriesOptions = {}): Promise<WebhookDelivery[]> {
    const where: string[] = [];
    const params: string[] = [];
    if (options.status !== undefined) {
      where.push('status = ?');
      params.push(options.status);
    }
    if (options.eventType !== undefined) {
      where.push('event_type = ?');
      params.push(options.eventType);
    }
    const rows = await this.store.query<DeliveryRow>(
      `SELECT ${COLUMNS} FROM webhook_deliveries ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id LIMIT ?`,
      [...params, Math.min(options.limit ?? 100, 1000)],
    );
    return rows.map(fromRow);
  }
}

function fromRow(r: DeliveryRow): WebhookDelivery {
  return {
    id: r.id,
    sender: r.sender,
    endpoint: r.endpoint,
    eventType: r.event_type,
    payload: r.payload,
    status: r.status,
    attempts: Number(r.attempts),
    lastStatus: optionalNumber(r.last_status),
    lastError: r.last_error ?? undefined,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    nextAttemptAt: optionalNumber(r.next_attempt_at),
  };
}
