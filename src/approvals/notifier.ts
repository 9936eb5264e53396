// Webhook notifications to approvers (chat tools, ticketing), sent through the shared webhook
// sender (src/webhooks): Standard Webhooks signatures, retries with backoff, a delivery log.
import type { WebhookSender } from '../webhooks/index.js';

export interface ApprovalNotification {
  readonly type: 'approval.requested' | 'approval.decided' | 'approval.withdrawn';
  /** Epoch milliseconds of the event. */
  readonly sentAt: number;
  readonly approval: Readonly<Record<string, unknown>>;
}

/** Something that tells approvers about approvals. */
export interface ApprovalNotifier {
  notify(notification: ApprovalNotification): Promise<void>;
}

/**
 * Posts `{ type, timestamp, data: { approval } }` for each notification. Resolves once the message
 * is handed to the sender: retries run in the background, so a slow receiver never holds the gateway.
 */
export class WebhookNotifier implements ApprovalNotifier {
  constructor(private readonly sender: WebhookSender) {}

  async notify(notification: ApprovalNotification): Promise<void> {
    void this.sender.send(notification.type, { approval: notification.approval });
  }
}

/** Used when no webhook is configured. */
export const silentNotifier: ApprovalNotifier = { notify: async () => {} };
