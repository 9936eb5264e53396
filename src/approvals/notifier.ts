// Webhook notifications to approvers (chat tools, ticketing): a JSON body signed with
// HMAC-SHA256 under a shared secret, so the receiver can check it came from this broker.
import { createHmac } from 'node:crypto';

/** Header carrying `sha256=<hex HMAC-SHA256 of the exact body bytes>`. */
export const SIGNATURE_HEADER = 'x-mandate-signature';

export interface ApprovalNotification {
  readonly type: 'approval.requested' | 'approval.decided' | 'approval.withdrawn';
  /** Epoch milliseconds when sent; receivers should reject old ones (replay). */
  readonly sentAt: number;
  readonly approval: Readonly<Record<string, unknown>>;
}

/** Something that tells approvers about approvals. */
export interface ApprovalNotifier {
  notify(notification: ApprovalNotification): Promise<void>;
}

export function signBody(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

export interface WebhookOptions {
  readonly url: string;
  readonly secret: string;
  readonly timeoutMs: number;
  /** Delivery failures are reported here (never thrown: notification is best effort, the approval stands). */
  readonly onError?: (err: unknown) => void;
}

/** POSTs each notification once; no retries, so a slow receiver never holds the gateway. */
export class WebhookNotifier implements ApprovalNotifier {
  constructor(private readonly o: WebhookOptions) {}

  async notify(notification: ApprovalNotification): Promise<void> {
    const body = JSON.stringify(notification);
    try {
      const res = await fetch(this.o.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: signBody(body, this.o.secret) },
        body,
        redirect: 'error',
        signal: AbortSignal.timeout(this.o.timeoutMs),
      });
      await res.arrayBuffer().catch(() => {});
      if (!res.ok) throw new Error(`approval webhook answered HTTP ${res.status}`);
    } catch (err) {
      this.o.onError?.(err);
    }
  }
}

/** Used when no webhook is configured. */
export const silentNotifier: ApprovalNotifier = { notify: async () => {} };
