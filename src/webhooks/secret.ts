// Standard Webhooks signing secrets: `whsec_` and the base64 of 24 to 64 random bytes, the form
// every Standard Webhooks verifier library accepts.
import { randomBytes } from 'node:crypto';

const SECRET_FORMAT = /^whsec_([A-Za-z0-9+/]+={0,2})$/;

/** Whether `secret` is a Standard Webhooks signing secret (`whsec_` + base64 of 24–64 bytes). */
export function isWebhookSecret(secret: string): boolean {
  const m = SECRET_FORMAT.exec(secret);
  if (m === null) return false;
  const bytes = Buffer.from(m[1] as string, 'base64');
  return bytes.length >= 24 && bytes.length <= 64 && bytes.toString('base64') === m[1];
}

/** A new signing secret, to give to the receiver and to the broker. */
export function generateWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}
