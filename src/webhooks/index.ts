// Outgoing webhooks: Standard Webhooks signatures, retries with backoff, and a delivery log.
export {
  type DeliveryStatus,
  deliveryStatuses,
  type ListDeliveriesOptions,
  WebhookDeliveries,
  type WebhookDelivery,
} from './deliveries.js';
export { generateWebhookSecret, isWebhookSecret } from './secret.js';
export {
  backoffMs,
  type DeliveryOutcome,
  defaultRetryPolicy,
  endpointOf,
  type RetryPolicy,
  WebhookSender,
  type WebhookSenderOptions,
} from './sender.js';
